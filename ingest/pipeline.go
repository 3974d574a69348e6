package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// pipeline is one chunk's run: a producer decodes records into small requests and queues
// them, a batcher joins them into full requests, Limits.Inflight senders send those, and the
// watermark turns what they finished into checkpoints.
type pipeline struct {
	budget     *Budget
	bulk       *es.Client
	sink       DeadLetterSink
	spec       ChunkSpec
	lim        Limits
	log        *slog.Logger
	queue      *queue
	requests   chan *request // from the batcher to the senders
	wm         *watermark
	onProgress func(Progress)
	cancel     context.CancelCauseFunc
	objects    []string // each object's name ("s3://bucket/key") by its index in the chunk
	packed     bool     // the chunk is whole objects read in order (Engine.IngestObjects)
	// unavailable reports the read errors that fail only the object being read; nil: none.
	unavailable func(error) string
	throttle    *throttle // Limits.MaxDocsPerSecond, MaxBytesPerSecond
	adaptive    *Adaptive // the worker's limit on requests in flight; nil: Limits.Inflight

	progressMu sync.Mutex
	reported   Progress // the last checkpoint given to onProgress

	// badInput is the decode error (ErrBadInput) that ended reading: the records before it
	// were still sent, and the chunk fails with it once they settled. Set by the producer,
	// read after run.
	badInput error
}

var errPipelineDone = errors.New("pipeline done")

func (p *pipeline) fail(err error) {
	if err != nil && !errors.Is(err, errPipelineDone) {
		p.cancel(err)
	}
}

// run starts the producer, the batcher and the senders and waits for all of them.
func (p *pipeline) run(ctx context.Context, src objectSource) {
	if p.adaptive != nil {
		p.adaptive.join(p.lim.Inflight)
		defer p.adaptive.leave(p.lim.Inflight)
	}
	var wg sync.WaitGroup
	wg.Add(2 + p.lim.Inflight)
	go func() { defer wg.Done(); p.fail(p.produce(ctx, src)) }()
	go func() { defer wg.Done(); p.fail(p.assemble(ctx)) }()
	for range p.lim.Inflight {
		go func() {
			defer wg.Done()
			if err := p.sendLoop(ctx); !errors.Is(err, errPipelineDone) {
				p.fail(err)
				// Stop the batcher, and give back what it still hands over.
				for r := range p.requests {
					r.release()
				}
			}
		}()
	}
	wg.Wait()
	p.drain()
}

// drain releases the budget still held by requests a failed pipeline left in the queue.
func (p *pipeline) drain() {
	for {
		left, err := p.queue.take(context.Background(), nil, 1<<30, nil, nil)
		for _, r := range left {
			r.release()
		}
		if err != nil || len(left) == 0 {
			return
		}
	}
}

// report gives onProgress a checkpoint that moved, never an older one after a newer one.
func (p *pipeline) report(prog Progress) {
	if p.onProgress == nil {
		return
	}
	p.progressMu.Lock()
	defer p.progressMu.Unlock()
	if prog.After(p.reported) {
		p.reported = prog
		p.onProgress(prog)
	}
}

// producer turns decoded records into requests and queues them. A request is queued when its
// block is full, when the decoder has nothing more buffered (the source is slow, so waiting
// would only delay; in a packed chunk only once the request waited a quarter of the flush
// interval, since every object ends and starts that way), and before waiting on the memory
// budget (so the bytes it holds can be sent and given back).
type producer struct {
	*pipeline
	spec   ChunkSpec // the object being read
	obj    int       // its index in the chunk
	ids    *idHasher
	idBuf  []byte
	action []byte    // the action line of the record at hand
	cur    *request  // being filled
	since  time.Time // when cur got its first record (packed chunks)
	// mem is the decoding memory of the object being read (each object's decoder has its own,
	// charged from its open to its close), which charge may take from.
	mem *decodeMemory

	idFound   bool // a record of the chunk had the id field
	idMissing int  // records without it, while none had it
}

// idFieldProbe is how many records without the id field, and none with it, stop a chunk with
// ErrBadConfig: an id field that no record has would otherwise dead-letter every record.
const idFieldProbe = 100

// checkIDField stops the chunk when its first idFieldProbe records lack the id field, or
// when every record of an object's first chunk does (at its end). A packed chunk counts over
// its objects: it stops at the end of its first whole object none of whose records had it.
func (pr *producer) checkIDField(end bool) error {
	if pr.spec.IDField == "" || pr.idFound || pr.idMissing == 0 {
		return nil
	}
	if pr.idMissing < idFieldProbe && !(end && pr.spec.From().Checkpoint == 0) {
		return nil
	}
	return fmt.Errorf("%w: none of the first %d records of %s from offset %d has the id field %q",
		ErrBadConfig, pr.idMissing, pr.spec.object(), pr.spec.From().Checkpoint, pr.spec.IDField)
}

// produce reads the chunk's objects in order and queues their records.
func (p *pipeline) produce(ctx context.Context, src objectSource) error {
	pr := &producer{pipeline: p, cur: newRequest(p.budget)}
	defer func() {
		pr.cur.free()
		p.queue.close()
	}()
	for {
		o, err := src.next(ctx, pr.flush)
		if errors.Is(err, io.EOF) {
			pr.cur.final = true
			return pr.push(ctx)
		}
		if err != nil {
			return err
		}
		err = pr.object(ctx, o)
		o.close() // gives back the object's decoding memory
		pr.mem = nil
		if errors.Is(err, ErrBadInput) {
			// Send what was decoded before the break, and fail only once it settled (see
			// runChunk), so that the checkpoint and counters cover every record indexed.
			p.badInput = err
			pr.cur.final = true
			return pr.push(ctx)
		}
		if err != nil {
			return err
		}
	}
}

// object queues the records of one object. A read error that fails only this object (see
// pipeline.unavailable) ends it as it stands and is recorded for the watermark to report.
func (pr *producer) object(ctx context.Context, o *chunkObject) error {
	pr.spec, pr.obj, pr.mem = o.spec, o.index, o.mem
	pr.ids = newIDHasher(o.spec.Bucket, o.spec.Key)
	if o.err != nil {
		return pr.giveUp(o.spec.From().Checkpoint, o.err)
	}
	dec := o.dec
	for {
		if !pr.cur.empty() && !dec.Buffered() && (!pr.packed || time.Since(pr.since) >= pr.lim.FlushInterval/4) {
			if err := pr.push(ctx); err != nil {
				return err
			}
		}
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			if err := pr.checkIDField(true); err != nil {
				return err
			}
			pr.cur.advance(pr.obj, dec.Pos())
			pr.objectEnd(dec.Pos())
			return nil
		}
		if err != nil && pr.unavailable != nil && pr.unavailable(err) != "" {
			return pr.giveUp(dec.Pos(), err)
		}
		if err != nil {
			return fmt.Errorf("reading %s at offset %d: %w", pr.spec.object(), dec.Pos(), err)
		}
		if pr.cur.empty() && pr.packed {
			pr.since = time.Now()
		}
		if err := pr.add(ctx, rec); err != nil {
			return err
		}
	}
}

// giveUp ends the current object at offset off because of err, which fails only this object.
func (pr *producer) giveUp(off int64, err error) error {
	pr.log.Warn("object changed or vanished since planning; skipping the rest of it", "object", pr.spec.object(), "offset", off, "err", err)
	pr.cur.advance(pr.obj, off)
	pr.cur.failed = append(pr.cur.failed, ObjectFailure{Object: pr.obj, Key: pr.spec.Key, Offset: off, Type: pr.unavailable(err), Err: err.Error()})
	pr.objectEnd(off)
	return nil
}

// objectEnd tells a packed chunk's watermark the length of the object just read.
func (pr *producer) objectEnd(n int64) {
	if pr.packed {
		pr.wm.objectEnd(pr.obj, n)
	}
}

// add puts one record into the current request: as a document, or as a refused record.
func (pr *producer) add(ctx context.Context, rec Record) error {
	if rec.Err == nil && pr.lim.ValidateJSON && pr.spec.Format == FormatNDJSON && !json.Valid(rec.Data) {
		rec.Err = errors.New("not valid JSON")
	}
	id := pr.id(&rec)
	if err := pr.checkIDField(false); err != nil {
		return err
	}
	pr.setAction(id, &rec)
	size := len(pr.action) + len(rec.Data) + 1
	if rec.Err == nil && int64(size) > pr.lim.MaxBytes {
		rec.Err = tooLongError(int64(len(rec.Data)), int(pr.lim.MaxBytes))
	}
	if rec.Err != nil {
		return pr.refuse(ctx, rec)
	}
	originBytes, err := pr.chargeOrigin(ctx, rec.Origin)
	if err != nil {
		return err
	}
	if len(pr.cur.items) >= pr.lim.MaxOps || int64(pr.cur.size+size) > pr.lim.MaxBytes || pr.cur.room() < size {
		if err := pr.newBlock(ctx, size); err != nil {
			pr.budget.Release(originBytes)
			return err
		}
	}
	pr.cur.addDoc(pr.obj, rec.Offset, rec.End, pr.action, rec.Data)
	pr.cur.keepOrigin(rec.Origin, originBytes)
	return nil
}

// id returns the record's _id: its id field's value, or a hash of bucket, key and offset. A
// record without a usable id field gets rec.Err.
func (pr *producer) id(rec *Record) []byte {
	if rec.Err != nil {
		return nil
	}
	if pr.spec.IDField == "" && rec.ID != nil {
		return rec.ID
	}
	if pr.spec.IDField == "" {
		pr.idBuf = pr.ids.appendID(pr.idBuf[:0], rec.Offset)
		return pr.idBuf
	}
	id, err := idFieldValue(rec.Data, pr.spec.IDField)
	if err != nil {
		rec.Err = err
		pr.idMissing++
	} else {
		pr.idFound = true
	}
	return id
}

// setAction writes the action line of a document with the given _id: {"index":{"_id":"..."}}\n
// (or "create", per ChunkSpec.Op), with the record's own "routing" when it has one, and
// "pipeline":"NAME" when the spec names an ingest pipeline.
func (pr *producer) setAction(id []byte, rec *Record) {
	a := append(pr.action[:0], `{"index":{"_id":`...)
	if pr.spec.Op == OpCreate {
		a = append(pr.action[:0], `{"create":{"_id":`...)
	}
	if pr.spec.IDField == "" && rec.ID == nil {
		a = append(append(append(a, '"'), id...), '"') // base64url: nothing to escape
	} else {
		a = appendJSONString(a, id)
	}
	if rec.Routing != nil {
		a = appendJSONString(append(a, `,"routing":`...), rec.Routing)
	}
	if pr.spec.Pipeline != "" {
		a = appendJSONString(append(a, `,"pipeline":`...), []byte(pr.spec.Pipeline))
	}
	pr.action = append(a, "}}\n"...)
}

// refuse keeps a record that will not be sent, for the dead-letter sink: a charged copy of its
// head (at most previewBytes), with its length and hash.
func (pr *producer) refuse(ctx context.Context, rec Record) error {
	d := DeadLetter{
		Time: time.Now(), Index: pr.spec.Index, Object: pr.spec.object(), Offset: rec.Offset,
		ErrorType: "sluice_rejected", Reason: rec.Err.Error(),
	}
	d.setRecord(rec)
	d.setOrigin(rec.Origin)
	n := int64(len(d.Record))
	if err := pr.charge(ctx, n); err != nil {
		return err
	}
	d.Record = append([]byte(nil), d.Record...)
	pr.cur.charge(n)
	pr.cur.advance(pr.obj, rec.End)
	pr.cur.rejects = append(pr.cur.rejects, d)
	return nil
}

// newBlock makes room for a document of size bytes: it queues the current request unless it
// is empty, and starts a new block.
func (pr *producer) newBlock(ctx context.Context, size int) error {
	if !pr.cur.empty() {
		if err := pr.push(ctx); err != nil {
			return err
		}
	}
	capacity := blockCapacity(pr.budget, size)
	if err := pr.charge(ctx, int64(capacity)); err != nil {
		return err
	}
	pr.cur.addBlock(capacity)
	return nil
}

// push queues the current request and starts another.
func (pr *producer) push(ctx context.Context) error {
	r := pr.cur
	pr.cur = newRequest(pr.budget)
	if err := pr.queue.put(ctx, r); err != nil {
		r.free()
		return err
	}
	return nil
}

// charge takes n bytes from the budget, first from what the decoder reserved for the record at
// hand (see decodeMemory.take); if it has to wait, the current request is queued first, so
// that its bytes can be sent and come back.
func (pr *producer) charge(ctx context.Context, n int64) error {
	n -= pr.mem.take(n)
	if pr.budget.TryAcquire(n) {
		return nil
	}
	if err := pr.flush(ctx); err != nil {
		return err
	}
	return pr.budget.Acquire(ctx, n)
}

// flush queues the current request, marked urgent, before the producer waits for the budget.
func (pr *producer) flush(ctx context.Context) error {
	if pr.cur.empty() {
		return nil
	}
	pr.cur.urgent = true
	return pr.push(ctx)
}

// batcher joins queued requests into full ones: at most MaxOps documents and MaxBytes of body
// each (a queued request that does not fit is split at a document boundary, sharing its
// block), handed to a sender when full, when the flush interval has passed since their first
// record, when the producer waits for memory, or at the end of the chunk. A request that is
// full on its own is sent as it is, without copying.
type batcher struct {
	*pipeline
	cur    *request // being assembled; nil when none
	taken  []*request
	timer  *time.Timer
	timerC <-chan time.Time // nil while no flush is due
}

func (p *pipeline) assemble(ctx context.Context) (err error) {
	b := &batcher{pipeline: p, taken: make([]*request, 0, 64)}
	defer func() {
		close(p.requests)
		if err != nil && !errors.Is(err, errPipelineDone) {
			b.release()
		}
	}()
	for {
		var pressure <-chan struct{}
		if b.cur != nil {
			pressure = p.budget.Pressure()
		}
		var terr error
		b.taken, terr = p.queue.take(ctx, b.taken[:0], 64, b.timerC, pressure)
		if terr != nil && !errors.Is(terr, errQueueClosed) {
			return terr
		}
		if len(b.taken) == 0 && terr == nil { // the flush interval passed, or memory is short
			if err := b.send(ctx); err != nil {
				return err
			}
			continue
		}
		for i, r := range b.taken {
			b.taken[i] = nil
			if err := b.add(ctx, r); err != nil {
				return err
			}
		}
		if errors.Is(terr, errQueueClosed) {
			if err := b.send(ctx); err != nil {
				return err
			}
			return errPipelineDone
		}
	}
}

// add joins r to the request being assembled, or sends that one and starts over with r.
func (b *batcher) add(ctx context.Context, r *request) error {
	switch {
	case b.cur == nil:
		b.cur = r
	case b.cur.fits(r, b.lim):
		b.cur.join(r)
	default:
		if k := b.cur.headFits(r, b.lim); k > 0 {
			b.cur.joinHead(r, k) // fill the request to its limits; the rest of r starts the next
		}
		if err := b.send(ctx); err != nil {
			r.release()
			return err
		}
		b.cur = r
	}
	if b.cur.full(b.lim) || b.cur.urgent || b.cur.final {
		return b.send(ctx)
	}
	b.startFlushTimer()
	return nil
}

func (b *batcher) startFlushTimer() {
	if b.timerC != nil {
		return
	}
	if b.timer == nil {
		b.timer = time.NewTimer(b.lim.FlushInterval)
	} else {
		b.timer.Reset(b.lim.FlushInterval)
	}
	b.timerC = b.timer.C
}

// send hands the request being assembled to a sender.
func (b *batcher) send(ctx context.Context) error {
	if b.timer != nil {
		b.timer.Stop()
		b.timerC = nil
	}
	if b.cur == nil {
		return nil
	}
	b.cur.seq = b.wm.open(b.cur)
	select {
	case b.requests <- b.cur:
		b.cur = nil
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// release gives back the bytes of what the batcher took and did not hand to a sender.
func (b *batcher) release() {
	if b.cur != nil {
		b.cur.release()
	}
	for _, r := range b.taken {
		if r != nil {
			r.release()
		}
	}
}
