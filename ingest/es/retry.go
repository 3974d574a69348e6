package es

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryPolicy is the one backoff of every retried request to the cluster: full-jitter
// exponential (a random wait up to the current step, the step doubling up to Max), within a
// total of MaxElapsed for one piece of work. The zero value of a field means its default.
type RetryPolicy struct {
	Initial    time.Duration // first step. Defaults to 100ms.
	Max        time.Duration // longest single wait. Defaults to 10s.
	MaxElapsed time.Duration // give up after this long since Start. Defaults to 5m.
}

// WithDefaults fills in the zero fields.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	if p.Initial <= 0 {
		p.Initial = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 10 * time.Second
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = 5 * time.Minute
	}
	return p
}

// Start begins the retries of one piece of work: every wait of it shares one deadline.
func (p RetryPolicy) Start() *Backoff {
	p = p.WithDefaults()
	return &Backoff{p: p, deadline: time.Now().Add(p.MaxElapsed), step: p.Initial}
}

// Backoff is the state of one piece of work's retries. It is not safe for concurrent use.
type Backoff struct {
	p        RetryPolicy
	deadline time.Time
	step     time.Duration
}

// Wait sleeps before the next attempt. It returns an error wrapping ErrRetriesExhausted and
// last when the policy's MaxElapsed has passed, or the context's cause when ctx ends first.
func (b *Backoff) Wait(ctx context.Context, last error) error {
	if time.Now().After(b.deadline) {
		return fmt.Errorf("%w: still failing after %s: %w", ErrRetriesExhausted, b.p.MaxElapsed, last)
	}
	t := time.NewTimer(time.Duration(rand.Int64N(int64(b.step))) + 1)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	b.step = min(2*b.step, b.p.Max)
	return nil
}
