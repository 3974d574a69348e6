package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// sendLoop sends batches until there are no more, and advances the checkpoint over them.
func (p *pipeline) sendLoop(ctx context.Context) error {
	var results []es.ItemResult
	for b := range p.batches {
		refused := int64(len(b.rejects)) // records the producer refused before sending
		stats, err := p.sendBatch(ctx, b, &results)
		if err == nil && len(b.rejects) > 0 {
			if err = p.e.DeadLetters.Write(ctx, b.rejects); err != nil {
				err = fmt.Errorf("dead-letter sink: %w", err)
			}
		}
		p.e.Budget.Release(b.reserved)
		if err != nil {
			return err
		}
		stats.Read += refused
		stats.DeadLettered = int64(len(b.rejects))
		seq := b.seq
		b.recycle()
		prog, moved := p.wm.finish(seq, stats)
		if moved && p.onProgress != nil {
			p.progressMu.Lock()
			if prog.Checkpoint > p.reported {
				p.reported = prog.Checkpoint
				p.onProgress(prog)
			}
			p.progressMu.Unlock()
		}
	}
	return errPipelineDone
}

// sendBatch delivers every document of b: indexed, or dead-lettered (appended to b.rejects)
// when Elasticsearch refuses it for good. It returns an error only when the batch cannot be
// finished: a permanent cluster-side refusal, retries exhausted, or ctx done.
func (p *pipeline) sendBatch(ctx context.Context, b *batch, results *[]es.ItemResult) (Stats, error) {
	st := Stats{Read: int64(len(b.items))}
	if len(b.items) == 0 {
		return st, nil
	}
	idx := make([]int, len(b.items))
	for i := range idx {
		idx[i] = i
	}
	retry := es.RetryPolicy{Initial: p.lim.RetryInitial, Max: p.lim.RetryMax, MaxElapsed: p.lim.RetryMaxElapsed}.Start()
	err := p.sendItems(ctx, b, idx, b.parts, results, &st, retry)
	return st, err
}

// sendItems sends the items idx of b (whose body is body) until each is indexed or
// dead-lettered, as es.ClassifyStatus and es.ClassifyItem say: retryable items are resent
// alone after the batch's backoff; a 413 or a whole-request 400 splits the request in halves.
func (p *pipeline) sendItems(ctx context.Context, b *batch, idx []int, body [][]byte, results *[]es.ItemResult, st *Stats, backoff *es.Backoff) error {
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
		out, err := p.e.Bulk.Bulk(ctx, p.spec.Index, body, len(idx), *results)
		class := out.Class()
		if err != nil {
			class = es.ClassifyError(err)
		}
		var retry []int
		switch class {
		case es.Retry:
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err != nil {
				p.log.Warn("bulk request failed; retrying", "object", p.spec.object(), "offset", b.items[idx[0]].off, "err", err)
			}
			retry = idx
		case es.Split, es.Rejected:
			if len(idx) == 1 {
				p.deadLetter(b, idx[0], out.Status, "request_rejected", string(out.Body))
				return nil
			}
			half := len(idx) / 2
			if err := p.sendItems(ctx, b, idx[:half], nil, results, st, backoff); err != nil {
				return err
			}
			return p.sendItems(ctx, b, idx[half:], nil, results, st, backoff)
		case es.Unauthorized:
			return fmt.Errorf("%w: _bulk to %q: %d %s", ErrUnauthorized, p.spec.Index, out.Status, out.Body)
		case es.IndexMissing:
			return fmt.Errorf("%w: _bulk to %q: %d %s", ErrIndexNotAllowed, p.spec.Index, out.Status, out.Body)
		case es.OK:
			if !out.Errors {
				st.Indexed += int64(len(idx))
				return nil
			}
			*results = out.Items
			for k, r := range out.Items {
				i := idx[k]
				switch es.ClassifyItem(r.Status, r.Type) {
				case es.OK:
					st.Indexed++
				case es.Retry:
					retry = append(retry, i)
				case es.Unauthorized:
					return fmt.Errorf("%w: indexing into %q: %s: %s", ErrUnauthorized, p.spec.Index, r.Type, r.Reason)
				case es.IndexMissing, es.IndexClosed:
					return fmt.Errorf("%w: indexing into %q: %s: %s", ErrIndexNotAllowed, p.spec.Index, r.Type, r.Reason)
				default:
					p.deadLetter(b, i, r.Status, r.Type, r.Reason)
				}
			}
		default:
			return fmt.Errorf("%w: _bulk to %q: unexpected status %d %s", ErrPermanent, p.spec.Index, out.Status, out.Body)
		}
		if len(retry) == 0 {
			return nil
		}
		if werr := backoff.Wait(ctx, describe(out, err)); werr != nil {
			if errors.Is(werr, ErrRetriesExhausted) {
				return fmt.Errorf("%d documents of %s from offset %d: %w", len(retry), p.spec.object(), b.items[retry[0]].off, werr)
			}
			return werr
		}
		if len(retry) != len(idx) {
			idx = append([]int(nil), retry...)
			body = nil
		}
	}
}

// describe is the last failure of a request that is retried, for the message when retries
// run out.
func describe(out es.BulkResult, err error) error {
	if err != nil {
		return err
	}
	for _, r := range out.Items {
		if es.ClassifyItem(r.Status, r.Type) == es.Retry {
			return fmt.Errorf("item status %d %s: %s", r.Status, r.Type, r.Reason)
		}
	}
	return fmt.Errorf("status %d %s", out.Status, out.Body)
}

// deadLetter queues item i for the dead-letter sink; it is counted once the sink stored it.
func (p *pipeline) deadLetter(b *batch, i int, status int, typ, reason string) {
	b.rejects = append(b.rejects, DeadLetter{
		Time: time.Now(), Index: p.spec.Index, Object: p.spec.object(), Offset: b.items[i].off,
		Status: status, ErrorType: typ, Reason: reason, Record: append([]byte(nil), b.doc(i)...),
	})
}
