package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// sendLoop sends requests until there are no more, and advances the checkpoint over them.
func (p *pipeline) sendLoop(ctx context.Context) error {
	var results []itemResult
	for b := range p.requests {
		refused := int64(len(b.rejects)) // records the producer refused before sending
		stats, err := p.sendBatch(ctx, b, &results)
		if err == nil && len(b.rejects) > 0 {
			if err = p.sink.Write(ctx, b.rejects); err != nil {
				err = fmt.Errorf("dead-letter sink: %w", err)
			}
		}
		if err != nil {
			b.release()
			return err
		}
		stats.Read += refused
		stats.DeadLettered = int64(len(b.rejects))
		seq := b.seq
		b.free()
		if prog, moved := p.wm.finish(seq, stats); moved {
			p.report(prog)
		}
	}
	return errPipelineDone
}

// sendBatch delivers every document of b: indexed, or dead-lettered (appended to b.rejects)
// when Elasticsearch refuses it for good. It returns an error only when the batch cannot be
// finished: a permanent cluster-side refusal, retries exhausted, or ctx done.
func (p *pipeline) sendBatch(ctx context.Context, b *request, results *[]itemResult) (Stats, error) {
	st := Stats{Read: int64(len(b.items))}
	if len(b.items) == 0 {
		return st, nil
	}
	idx := make([]int, len(b.items))
	for i := range idx {
		idx[i] = i
	}
	err := p.sendItems(ctx, b, idx, b.blocks, results, &st, time.Now().Add(p.lim.RetryMaxElapsed))
	return st, err
}

// sendItems sends the items idx of b (whose body is body) until each is indexed or
// dead-lettered. 429/5xx items are resent alone with jittered exponential backoff; a 413 or a
// whole-request 400 splits the request in halves.
func (p *pipeline) sendItems(ctx context.Context, b *request, idx []int, body [][]byte, results *[]itemResult, st *Stats, deadline time.Time) error {
	backoff := p.lim.RetryInitial
	var owned []byte // a body built here for a subset (retries and splits only)
	for attempt := 0; ; attempt++ {
		if body == nil {
			owned = owned[:0]
			for _, i := range idx {
				owned = append(owned, b.wire(i)...)
			}
			body = [][]byte{owned}
		}
		if attempt > 0 {
			st.Retried += int64(len(idx))
		}
		out, err := p.bulk.send(ctx, p.spec.Index, body, len(idx), *results)
		var retry []int
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			p.log.Warn("bulk request failed; retrying", "object", p.spec.object(), "offset", b.items[idx[0]].off, "err", err)
			retry = idx
		case out.Status == http.StatusTooManyRequests || out.Status >= 500:
			retry = idx
		case out.Status == http.StatusRequestEntityTooLarge || out.Status == http.StatusBadRequest:
			if len(idx) == 1 {
				p.deadLetter(b, idx[0], out.Status, "request_rejected", string(out.Body))
				return nil
			}
			half := len(idx) / 2
			if err := p.sendItems(ctx, b, idx[:half], nil, results, st, deadline); err != nil {
				return err
			}
			return p.sendItems(ctx, b, idx[half:], nil, results, st, deadline)
		case out.Status == http.StatusUnauthorized || out.Status == http.StatusForbidden:
			return fmt.Errorf("%w: _bulk to %q: %d %s", ErrUnauthorized, p.spec.Index, out.Status, out.Body)
		case out.Status == http.StatusNotFound:
			return fmt.Errorf("%w: _bulk to %q: %d %s", ErrIndexNotAllowed, p.spec.Index, out.Status, out.Body)
		case out.Status < 200 || out.Status > 299:
			return fmt.Errorf("%w: _bulk to %q: unexpected status %d %s", ErrPermanent, p.spec.Index, out.Status, out.Body)
		case !out.Errors:
			st.Indexed += int64(len(idx))
			return nil
		default:
			*results = out.Items
			for k, r := range out.Items {
				i := idx[k]
				switch {
				case r.Status >= 200 && r.Status <= 299:
					st.Indexed++
				case r.Status == http.StatusTooManyRequests || r.Status >= 500:
					retry = append(retry, i)
				case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
					return fmt.Errorf("%w: indexing into %q: %s: %s", ErrUnauthorized, p.spec.Index, r.Type, r.Reason)
				case r.Type == "index_not_found_exception" || r.Type == "index_closed_exception":
					return fmt.Errorf("%w: indexing into %q: %s: %s", ErrIndexNotAllowed, p.spec.Index, r.Type, r.Reason)
				default:
					p.deadLetter(b, i, r.Status, r.Type, r.Reason)
				}
			}
		}
		if len(retry) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d documents of %s from offset %d still refused after %s (last: %v)", ErrRetriesExhausted, len(retry), p.spec.object(), b.items[retry[0]].off, p.lim.RetryMaxElapsed, describe(out, err))
		}
		if len(retry) != len(idx) {
			idx = append([]int(nil), retry...)
			body = nil
		}
		// Full jitter: sleep a random time up to the current backoff.
		sleep := time.Duration(rand.Int64N(int64(backoff)) + 1)
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
		backoff = min(2*backoff, p.lim.RetryMax)
	}
}

func describe(out bulkOutcome, err error) string {
	if err != nil {
		return err.Error()
	}
	return "status " + strconv.Itoa(out.Status)
}

// deadLetter queues item i for the dead-letter sink; it is counted once the sink stored it.
func (p *pipeline) deadLetter(b *request, i int, status int, typ, reason string) {
	b.rejects = append(b.rejects, DeadLetter{
		Time: time.Now(), Index: p.spec.Index, Object: p.spec.object(), Offset: b.items[i].off,
		Status: status, ErrorType: typ, Reason: reason, Record: append([]byte(nil), b.doc(i)...),
	})
}
