package ingest

import (
	"context"

	"golang.org/x/time/rate"
)

// throttle holds a chunk's _bulk requests to Limits.MaxDocsPerSecond and MaxBytesPerSecond,
// shared by its senders. A request waits before it is sent (holding its memory: the producer
// then waits for the budget, which is the backpressure). The buckets start full, with room for
// one full request, so the rates hold on average over more than a request's worth.
type throttle struct {
	docs, bytes *rate.Limiter // nil: no cap
}

func newThrottle(l Limits) *throttle {
	t := &throttle{}
	if l.MaxDocsPerSecond > 0 {
		t.docs = rate.NewLimiter(rate.Limit(l.MaxDocsPerSecond), max(l.MaxOps, 1))
	}
	if l.MaxBytesPerSecond > 0 {
		t.bytes = rate.NewLimiter(rate.Limit(l.MaxBytesPerSecond), int(max(l.MaxBytes, 1)))
	}
	return t
}

// wait blocks until a request of docs documents and bytes bytes may go, or ctx is done.
func (t *throttle) wait(ctx context.Context, docs, bytes int) error {
	if t.docs != nil && docs > 0 {
		if err := t.docs.WaitN(ctx, min(docs, t.docs.Burst())); err != nil {
			return err
		}
	}
	if t.bytes != nil && bytes > 0 {
		if err := t.bytes.WaitN(ctx, min(bytes, t.bytes.Burst())); err != nil {
			return err
		}
	}
	return nil
}
