package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// sendLoop sends requests until there are no more, and advances the checkpoint over them.
func (p *pipeline) sendLoop(ctx context.Context) error {
	var results []es.ItemResult
	for b := range p.requests {
		refused := int64(len(b.rejects)) // records the producer refused before sending
		if err := p.throttle.wait(ctx, len(b.items), b.size); err != nil {
			b.release()
			return err
		}
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
func (p *pipeline) sendBatch(ctx context.Context, b *request, results *[]es.ItemResult) (Stats, error) {
	st := Stats{Read: int64(len(b.items))}
	if len(b.items) == 0 {
		return st, nil
	}
	err := p.sendItems(ctx, b, allIndexes(len(b.items)), results, &st)
	return st, err
}

// sendItems sends the items idx of b until each is indexed or dead-lettered. es.Client.Deliver
// is the retry loop (retryable items resent alone after the batch's backoff, a 413 or a
// whole-request 400 split in halves); settle says what an outcome means for a document.
func (p *pipeline) sendItems(ctx context.Context, b *request, idx []int, results *[]es.ItemResult, st *Stats) error {
	var owned []byte // a body built here for a subset (retries and splits only); requests of a job are sequential
	job := &es.BulkJob{
		Index:   p.spec.Index,
		Backoff: es.RetryPolicy{Initial: p.lim.RetryInitial, Max: p.lim.RetryMax, MaxElapsed: p.lim.RetryMaxElapsed}.Start(),
		Body: func(idx []int) [][]byte {
			owned = owned[:0]
			for _, i := range idx {
				owned = append(owned, b.wire(i)...)
			}
			return [][]byte{owned}
		},
		Settle:   func(i int, c es.Class, r es.ItemResult) (bool, error) { return false, p.settle(b, i, c, r, st) },
		Describe: func(i int) string { return fmt.Sprintf("%s at offset %d", p.spec.object(), b.items[i].off) },
		OnRetry: func(i int, err error) {
			p.log.Warn("bulk request failed; retrying", "object", p.spec.object(), "offset", b.items[i].off, "err", err)
		},
	}
	var body [][]byte
	if len(idx) == len(b.items) {
		body = b.blocks // the request as it was built, not copied
	}
	err := p.bulk.Deliver(ctx, job, idx, body, results)
	st.Retried += job.Resent
	return err
}

// settle records the outcome of item i of b: indexed, dead-lettered, or an error that stops
// the chunk (credentials, an index that refuses every write).
func (p *pipeline) settle(b *request, i int, c es.Class, r es.ItemResult, st *Stats) error {
	switch c {
	case es.OK:
		st.Indexed++
	case es.Unauthorized:
		return fmt.Errorf("%w: indexing into %q: %d %s: %s", ErrUnauthorized, p.spec.Index, r.Status, r.Type, r.Reason)
	case es.IndexMissing, es.IndexClosed:
		return fmt.Errorf("%w: indexing into %q: %d %s: %s", ErrIndexNotAllowed, p.spec.Index, r.Status, r.Type, r.Reason)
	default:
		p.deadLetter(b, i, r.Status, r.Type, r.Reason)
	}
	return nil
}

// deadLetter queues item i for the dead-letter sink; it is counted once the sink stored it.
func (p *pipeline) deadLetter(b *request, i int, status int, typ, reason string) {
	b.rejects = append(b.rejects, DeadLetter{
		Time: time.Now(), Index: p.spec.Index, Object: p.spec.object(), Offset: b.items[i].off,
		Status: status, ErrorType: typ, Reason: reason, Record: append([]byte(nil), b.doc(i)...),
	})
}
