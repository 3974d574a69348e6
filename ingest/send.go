package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
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
	var parts [][]byte // the body of a subset (retries and splits): slices of b's blocks, not copies
	var refusal targetRefusal
	job := &es.BulkJob{
		Index:   p.spec.Index,
		Backoff: es.RetryPolicy{Initial: p.lim.RetryInitial, Max: p.lim.RetryMax, MaxElapsed: p.lim.RetryMaxElapsed}.Start(),
		Body: func(idx []int) [][]byte {
			parts = b.wireOf(idx, parts[:0])
			return parts
		},
		Settle: func(i int, c es.Class, r es.ItemResult) (bool, error) {
			refusal.see(c, r)
			return false, p.settle(b, i, c, r, st)
		},
		Describe: func(i int) string { return fmt.Sprintf("%s at offset %d", p.objects[b.items[i].obj], b.items[i].off) },
		OnRetry: func(i int, err error) {
			p.log.Warn("bulk request failed; retrying", "object", p.objects[b.items[i].obj], "offset", b.items[i].off, "err", err)
		},
		Full: b.full(p.lim),
	}
	if p.adaptive != nil {
		job.Gate = p.adaptive
	}
	var body [][]byte
	if len(idx) == len(b.items) {
		body = b.blocks // the request as it was built, not copied
	}
	err := p.bulk.Deliver(ctx, job, idx, body, results)
	st.Retried += job.Resent
	if err == nil {
		err = refusal.err(p.spec.Index, len(idx))
	}
	return err
}

// settle records the outcome of item i of b: indexed, dead-lettered, or an error that stops
// the chunk (credentials, an index that refuses every write).
func (p *pipeline) settle(b *request, i int, c es.Class, r es.ItemResult, st *Stats) error {
	switch c {
	case es.OK:
		st.Indexed++
	case es.Rejected:
		if p.spec.Op == OpCreate && r.Status == http.StatusConflict && r.Type == "version_conflict_engine_exception" {
			st.Indexed++ // sent before, by an attempt that did not live to checkpoint it
			return nil
		}
		fallthrough
	default:
		p.deadLetter(b, i, r.Status, r.Type, r.Reason)
	case es.Unauthorized:
		if r.Type != "cluster_block_exception" { // 403 for a write block on the index
			return fmt.Errorf("%w: indexing into %q: %d %s: %s", ErrUnauthorized, p.spec.Index, r.Status, r.Type, r.Reason)
		}
		fallthrough
	case es.IndexMissing, es.IndexClosed:
		return fmt.Errorf("%w: indexing into %q: %d %s: %s", ErrIndexNotAllowed, p.spec.Index, r.Status, r.Type, r.Reason)
	}
	return nil
}

// deadLetter queues item i for the dead-letter sink; it is counted once the sink stored it.
// Its Record is the head of the document in b's blocks, not a copy: b is freed only after
// the sink has written it (see DeadLetterSink).
func (p *pipeline) deadLetter(b *request, i int, status int, typ, reason string) {
	d := DeadLetter{
		Time: time.Now(), Index: p.spec.Index, Object: p.objects[b.items[i].obj], Offset: b.items[i].off,
		Status: status, ErrorType: typ, Reason: reason,
	}
	d.setRecord(Record{Data: b.doc(i)})
	d.setOrigin(b.origin(i))
	b.rejects = append(b.rejects, d)
}

// targetRefusal watches the outcomes of one request for a refusal about the target rather
// than the documents: when every item of a request is refused for the same such reason, the
// run stops with it instead of dead-lettering every record of the dataset. The reasons and
// their wording are those of OpenSearch 2.19 and Elasticsearch 8.19 (checked on both):
//
//   - an index action into a data stream: 400 illegal_argument_exception "only write ops with
//     an op_type of create are allowed in data streams" (the engine uses OpCreate for a data
//     stream that exists; one an index template creates on the first write is refused so);
//   - an alias without a write index: 400 illegal_argument_exception "no write index is
//     defined for alias [NAME]. ...";
//   - the mapping's field limit: 400 illegal_argument_exception (OpenSearch) or
//     document_parsing_exception caused by it (Elasticsearch), "Limit of total fields [N] has
//     been exceeded..." (one document over the limit among others that fit is dead-lettered).
//
// A write block (403 cluster_block_exception) stops the run at its first item (see settle);
// the flood-stage read-only block answers 429 and is retried like any 429.
type targetRefusal struct {
	items int      // items settled
	kind  *refusal // the refusal every settled item had; nil when none, or once one differs
	first string   // the first item's status, type and reason
}

// refusal is a reason that names the target, with the sentinel and the advice it stops with.
type refusal struct {
	match  string
	err    error
	advice string
}

var refusals = []*refusal{
	{"op_type of create are allowed in data streams", ErrIndexNotAllowed,
		"the target is a data stream (or an index template makes it one): create the data stream before the backfill, sluice then writes to it with create"},
	{"no write index is defined for alias", ErrIndexNotAllowed, "give the alias a write index (is_write_index: true) or target an index"},
	{"Limit of total fields", ErrBadConfig, "raise index.mapping.total_fields.limit or map the fields before the backfill"},
}

func (t *targetRefusal) see(c es.Class, r es.ItemResult) {
	var k *refusal
	if c == es.Rejected {
		for _, rf := range refusals {
			if strings.Contains(r.Reason, rf.match) {
				k = rf
				break
			}
		}
	}
	if t.items == 0 {
		t.kind, t.first = k, fmt.Sprintf("%d %s: %s", r.Status, r.Type, r.Reason)
	} else if k != t.kind {
		t.kind = nil
	}
	t.items++
}

// err is the error that stops the run when all n items of the request had the same refusal.
func (t *targetRefusal) err(index string, n int) error {
	if t.kind == nil || t.items < n {
		return nil
	}
	return fmt.Errorf("%w: all %d documents of a request to %q were refused: %s (%s)", t.kind.err, n, index, t.first, t.kind.advice)
}
