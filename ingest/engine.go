package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits tune one chunk's pipeline. The zero value of a field means its default.
type Limits struct {
	MaxOps          int           // documents per _bulk request. Defaults to 1000.
	MaxBytes        int64         // bytes per _bulk request body. Defaults to 5 MiB. A record that cannot fit alone is dead-lettered.
	FlushInterval   time.Duration // a partial batch is sent after waiting this long. Defaults to 1s.
	Inflight        int           // _bulk requests in flight per chunk. Defaults to 2.
	QueueBytes      int64         // bytes of records queued ahead of the batcher. Defaults to 2 x MaxBytes, at most the whole budget.
	RetryInitial    time.Duration // first backoff after a 429/5xx. Defaults to 100ms; doubles, jittered.
	RetryMax        time.Duration // longest single backoff. Defaults to 10s.
	RetryMaxElapsed time.Duration // give up on a batch that keeps failing after this long. Defaults to 5m.
	ValidateJSON    bool          // check each NDJSON line is valid JSON before sending. Defaults to off: Elasticsearch validates each document anyway, and its rejections are dead-lettered.
}

// WithDefaults fills in the zero fields.
func (l Limits) WithDefaults() Limits {
	if l.MaxOps <= 0 {
		l.MaxOps = 1000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 5 << 20
	}
	if l.FlushInterval <= 0 {
		l.FlushInterval = time.Second
	}
	if l.Inflight <= 0 {
		l.Inflight = 2
	}
	if l.RetryInitial <= 0 {
		l.RetryInitial = 100 * time.Millisecond
	}
	if l.RetryMax <= 0 {
		l.RetryMax = 10 * time.Second
	}
	if l.RetryMaxElapsed <= 0 {
		l.RetryMaxElapsed = 5 * time.Minute
	}
	return l
}

// Engine runs chunks. One Engine serves a whole worker process: its Budget is the process's
// memory budget, shared by every chunk running at once. An Engine is safe for concurrent use.
type Engine struct {
	Budget      *Budget
	Bulk        *Bulk
	DeadLetters DeadLetterSink
	Logger      *slog.Logger // nil: slog.Default()
}

// ChunkSpec names the records to ingest: those that start in [Start, End) of one object.
type ChunkSpec struct {
	Bucket, Key string
	Format      string // FormatNDJSON or FormatCSV
	Compression string // CompressionAuto, None, Gzip or Zstd; compressed objects are read whole
	Index       string
	IDField     string // top-level field (CSV: column) whose value is the _id; empty: DocumentID
	Start, End  int64  // End < 0: to the end of the object
	// Resume is the checkpoint of an earlier attempt, a record boundary; 0 for none.
	Resume int64
	// ResumeStats are the counters of the earlier attempt up to Resume.
	ResumeStats Stats
	Limits      Limits
}

// Opener opens the object for reading from offset to its end. The engine reads past the
// chunk's end only to finish its last record, then closes the reader.
type Opener func(ctx context.Context, offset int64) (io.ReadCloser, error)

func (s ChunkSpec) object() string { return "s3://" + s.Bucket + "/" + s.Key }

// qrec is a record on its way to the batcher. wire holds the action line, the document and its
// newline, exactly as they will stand in the request body.
type qrec struct {
	off, end int64
	wire     []byte
	docStart int
	reject   *DeadLetter // refused before sending
	final    bool        // end of the chunk: off is its final checkpoint
}

// Ingest runs one chunk to its end, or until ctx is done or an error stops it. It calls
// onProgress (which may be nil) each time the checkpoint advances, from one goroutine at a
// time. It returns the final progress; on error that is the last checkpoint reached, from
// which a retry can resume.
func (e *Engine) Ingest(ctx context.Context, spec ChunkSpec, open Opener, onProgress func(Progress)) (Progress, error) {
	spec.Limits = spec.Limits.WithDefaults()
	lim := spec.Limits
	if lim.QueueBytes <= 0 {
		lim.QueueBytes = min(2*lim.MaxBytes, e.Budget.Max())
	}
	if lim.MaxBytes > e.Budget.Max() || lim.QueueBytes > e.Budget.Max() {
		return Progress{}, fmt.Errorf("%w: request cap (%d bytes) and queue (%d bytes) must fit in the memory budget (%d bytes)", ErrBadConfig, lim.MaxBytes, lim.QueueBytes, e.Budget.Max())
	}
	if spec.Format != FormatNDJSON && spec.Format != FormatCSV {
		return Progress{}, fmt.Errorf("%w: unknown format %q (want ndjson or csv)", ErrBadConfig, spec.Format)
	}
	log := e.Logger
	if log == nil {
		log = slog.Default()
	}
	dec, closeSrc, err := e.openDecoder(ctx, spec, open)
	if err != nil {
		return Progress{Checkpoint: max(spec.Start, spec.Resume), Stats: spec.ResumeStats}, err
	}
	defer closeSrc()

	start := Progress{Checkpoint: max(spec.Start, spec.Resume), Stats: spec.ResumeStats}
	p := &pipeline{
		e: e, spec: spec, lim: lim, log: log,
		queue:      NewMemQueue[qrec](e.Budget, lim.QueueBytes),
		batches:    make(chan *batch),
		wm:         newWatermark(start, spec.Start),
		onProgress: onProgress,
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.cancel = cancel

	var wg sync.WaitGroup
	wg.Add(2 + lim.Inflight)
	go func() { defer wg.Done(); p.fail(p.produce(ctx, dec)) }()
	go func() { defer wg.Done(); p.fail(p.batch(ctx)) }()
	for range lim.Inflight {
		go func() {
			defer wg.Done()
			if err := p.sendLoop(ctx); !errors.Is(err, errPipelineDone) {
				p.fail(err)
				// Stop the batcher, and give back what it still hands over.
				for b := range p.batches {
					p.e.Budget.Release(b.reserved)
				}
			}
		}()
	}
	wg.Wait()
	p.drain()

	prog := p.wm.current()
	if p.onProgress != nil && prog.Checkpoint > p.reported {
		p.onProgress(prog)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, errPipelineDone) {
		return prog, err
	}
	return prog, nil
}

var errPipelineDone = errors.New("pipeline done")

// openDecoder opens the stream at the right place and wraps it in the decoders.
//
// Where reading starts:
//   - compressed object (always one whole-object chunk): at 0, decompressed, records before
//     Resume dropped;
//   - resumed plain range: at Resume, a record boundary;
//   - plain range starting inside the object: one byte before Start, skipping the partial
//     record an earlier range owns;
//   - otherwise at 0.
//
// With compression "auto" a whole-object chunk whose name says nothing is opened at 0 first
// and recognised by its magic bytes.
func (e *Engine) openDecoder(ctx context.Context, spec ChunkSpec, open Opener) (Decoder, func(), error) {
	maxLine := int(spec.Limits.MaxBytes)
	compression, err := DetectCompression(spec.Compression, spec.Key, nil)
	if err != nil {
		return nil, nil, err
	}
	readAt := func(off int64) (io.ReadCloser, error) {
		rc, err := open(ctx, off)
		if err != nil {
			return nil, fmt.Errorf("opening %s at offset %d: %w", spec.object(), off, err)
		}
		return rc, nil
	}
	var closers []io.Closer
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close()
		}
	}
	fail := func(err error) (Decoder, func(), error) {
		closeAll()
		return nil, nil, err
	}

	var src io.Reader
	autoWhole := compression == CompressionNone && spec.Compression != CompressionNone && spec.Start == 0 && spec.End < 0
	if compression != CompressionNone || autoWhole {
		rc, err := readAt(0)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, rc)
		src = rc
		if autoWhole {
			br, peek := peekReader(rc)
			compression, _ = DetectCompression(spec.Compression, spec.Key, peek)
			src = br
		}
	}
	var rs rangeSpec
	switch {
	case compression != CompressionNone:
		zr, err := decompress(src, compression)
		if err != nil {
			return fail(fmt.Errorf("%w: %s: %v", ErrBadInput, spec.object(), err))
		}
		closers = append(closers, zr)
		src = zr
		rs = rangeSpec{from: spec.Resume, end: -1}
	case spec.Resume > 0:
		if src != nil { // opened at 0 to look at it: reopen where we resume instead
			closeAll()
			closers = closers[:0]
		}
		rc, err := readAt(spec.Resume)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, rc)
		src = rc
		rs = rangeSpec{base: spec.Resume, end: spec.End}
	case spec.Start > 0:
		rc, err := readAt(spec.Start - 1)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, rc)
		src = rc
		rs = rangeSpec{base: spec.Start - 1, skipPartial: true, end: spec.End}
	default:
		if src == nil {
			rc, err := readAt(0)
			if err != nil {
				return nil, nil, err
			}
			closers = append(closers, rc)
			src = rc
		}
		rs = rangeSpec{end: spec.End}
	}
	lines := newOwnedLines(src, rs, maxLine)
	if spec.Format == FormatNDJSON {
		return &ndjsonDecoder{lines: lines, maxBytes: maxLine}, closeAll, nil
	}
	var header []string
	if rs.base > 0 || rs.skipPartial || rs.from > 0 {
		// The header row is not in the part of the stream we decode: read it at the start.
		header, err = e.readCSVHeader(ctx, spec, compression, readAt)
		if err != nil {
			return fail(err)
		}
	}
	return newCSVDecoder(lines, header, maxLine), closeAll, nil
}

func (e *Engine) readCSVHeader(ctx context.Context, spec ChunkSpec, compression string, readAt func(int64) (io.ReadCloser, error)) ([]string, error) {
	rc, err := readAt(0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	zr, err := decompress(rc, compression)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadInput, spec.object(), err)
	}
	defer zr.Close()
	d := newCSVDecoder(newOwnedLines(zr, rangeSpec{end: -1}, int(spec.Limits.MaxBytes)), nil, int(spec.Limits.MaxBytes))
	// Reading the first record reads the header first.
	_, err = d.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the CSV header of %s: %w", spec.object(), err)
	}
	if d.keys == nil {
		return nil, fmt.Errorf("%w: %s: no CSV header row", ErrBadInput, spec.object())
	}
	header := make([]string, len(d.keys))
	for i, k := range d.keys {
		var s string
		_ = json.Unmarshal(k[:len(k)-1], &s)
		header[i] = s
	}
	return header, nil
}

type pipeline struct {
	e          *Engine
	spec       ChunkSpec
	lim        Limits
	log        *slog.Logger
	queue      *MemQueue[qrec]
	batches    chan *batch
	wm         *watermark
	onProgress func(Progress)
	cancel     context.CancelCauseFunc

	progressMu sync.Mutex
	reported   int64 // the last checkpoint given to onProgress
}

func (p *pipeline) fail(err error) {
	if err != nil && !errors.Is(err, errPipelineDone) {
		p.cancel(err)
	}
}

// drain releases the budget still held by records and batches a failed pipeline left behind.
func (p *pipeline) drain() {
	for {
		recs, n, err := p.queue.Take(context.Background(), nil, 1<<30, 1<<62)
		_ = recs
		p.e.Budget.Release(n)
		if err != nil || n == 0 {
			break
		}
	}
}

// produce decodes the stream and queues its records. The budget blocks it when memory is spent.
func (p *pipeline) produce(ctx context.Context, dec Decoder) error {
	defer p.queue.Close()
	ids := newIDHasher(p.spec.Bucket, p.spec.Key)
	var slab []byte
	var idBuf []byte
	for {
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return p.queue.Put(ctx, qrec{off: dec.Pos(), end: dec.Pos(), final: true}, 0)
		}
		if err != nil {
			return fmt.Errorf("reading %s at offset %d: %w", p.spec.object(), dec.Pos(), err)
		}
		q := qrec{off: rec.Offset, end: rec.End}
		if rec.Err == nil && p.lim.ValidateJSON && p.spec.Format == FormatNDJSON && !json.Valid(rec.Data) {
			rec.Err = errors.New("not valid JSON")
		}
		var id []byte
		if rec.Err == nil {
			if p.spec.IDField != "" {
				v, ferr := fieldValue(rec.Data, p.spec.IDField)
				if ferr != nil {
					rec.Err = fmt.Errorf("id field: %w", ferr)
				} else {
					id = v
				}
			} else {
				idBuf = ids.appendID(idBuf[:0], rec.Offset)
				id = idBuf
			}
		}
		if rec.Err == nil {
			// {"index":{"_id":"..."}}\n<doc>\n
			size := len(`{"index":{"_id":}}`) + 2 + len(id) + 8 + 1 + len(rec.Data) + 1
			if cap(slab)-len(slab) < size {
				slab = make([]byte, 0, max(size, 1<<20))
			}
			w := slab[len(slab):len(slab)]
			w = append(w, `{"index":{"_id":`...)
			w = appendJSONString(w, id)
			w = append(w, "}}\n"...)
			q.docStart = len(w)
			w = append(w, rec.Data...)
			w = append(w, '\n')
			if int64(len(w)) > p.lim.MaxBytes {
				rec.Err = tooLongError(rec.End, rec.Offset, int(p.lim.MaxBytes))
			} else {
				slab = slab[:len(slab)+len(w)]
				q.wire = w[:len(w):len(w)]
			}
		}
		size := int64(len(q.wire))
		if rec.Err != nil {
			q.wire = nil
			q.reject = &DeadLetter{
				Index: p.spec.Index, Object: p.spec.object(), Offset: rec.Offset,
				ErrorType: "sluice_rejected", Reason: rec.Err.Error(),
				Record: append([]byte(nil), rec.Data...), Truncated: rec.Truncated,
			}
			size = int64(len(q.reject.Record))
		}
		if err := p.queue.Put(ctx, q, size); err != nil {
			return err
		}
	}
}

// batch is one _bulk request's worth of records, in record order.
type batch struct {
	seq      uint64
	end      int64
	body     []byte
	items    []item
	rejects  []DeadLetter
	reserved int64 // bytes charged to the budget for this batch
}

type item struct {
	off        int64
	start, doc int // action line and document start in body
	end        int // end of the document's line, newline included
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (p *pipeline) newBatch() *batch {
	bp := bodyPool.Get().(*[]byte)
	return &batch{body: (*bp)[:0]}
}

// batch moves records from the queue into batches: at most MaxOps documents and MaxBytes of
// body each, sent when full, when the flush interval has passed since the first record, or at
// the end of the chunk.
func (p *pipeline) batch(ctx context.Context) error {
	defer close(p.batches)
	b := p.newBatch()
	var timer *time.Timer
	var timerC <-chan time.Time
	recs := make([]qrec, 0, 256)
	flush := func() error {
		if timer != nil {
			timer.Stop()
			timerC = nil
		}
		if len(b.items) == 0 && len(b.rejects) == 0 && b.reserved == 0 && b.end == 0 {
			return nil
		}
		b.seq = p.wm.open(b.end)
		select {
		case p.batches <- b:
		case <-ctx.Done():
			p.e.Budget.Release(b.reserved)
			return context.Cause(ctx)
		}
		b = p.newBatch()
		return nil
	}
	for {
		var err error
		room := max(p.lim.MaxBytes-int64(len(b.body)), 1)
		recs, _, err = p.queue.TakeUntil(ctx, recs[:0], p.lim.MaxOps-len(b.items), room, timerC)
		if err != nil && !errors.Is(err, ErrQueueClosed) {
			p.e.Budget.Release(b.reserved)
			return err
		}
		if len(recs) == 0 && err == nil { // the flush interval passed
			if ferr := flush(); ferr != nil {
				return ferr
			}
			continue
		}
		for _, r := range recs {
			switch {
			case r.final:
				b.end = max(b.end, r.off)
				if ferr := flush(); ferr != nil {
					return ferr
				}
				continue
			case r.reject != nil:
				r.reject.Time = time.Now()
				b.rejects = append(b.rejects, *r.reject)
				b.reserved += int64(len(r.reject.Record))
			default:
				if int64(len(b.body)+len(r.wire)) > p.lim.MaxBytes {
					if ferr := flush(); ferr != nil {
						p.e.Budget.Release(int64(len(r.wire)))
						return ferr
					}
				}
				start := len(b.body)
				b.body = append(b.body, r.wire...)
				b.items = append(b.items, item{off: r.off, start: start, doc: start + r.docStart, end: len(b.body)})
				b.reserved += int64(len(r.wire))
			}
			b.end = r.end
			if timerC == nil {
				if timer == nil {
					timer = time.NewTimer(p.lim.FlushInterval)
				} else {
					timer.Reset(p.lim.FlushInterval)
				}
				timerC = timer.C
			}
			if len(b.items) >= p.lim.MaxOps || int64(len(b.body)) >= p.lim.MaxBytes {
				if ferr := flush(); ferr != nil {
					return ferr
				}
			}
		}
		if errors.Is(err, ErrQueueClosed) {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return errPipelineDone
		}
	}
}

// sendLoop sends batches until there are no more, and advances the checkpoint over them.
func (p *pipeline) sendLoop(ctx context.Context) error {
	var results []itemResult
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
		body := b.body[:0]
		bodyPool.Put(&body)
		prog, moved := p.wm.finish(b.seq, stats)
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
func (p *pipeline) sendBatch(ctx context.Context, b *batch, results *[]itemResult) (Stats, error) {
	st := Stats{Read: int64(len(b.items))}
	if len(b.items) == 0 {
		return st, nil
	}
	idx := make([]int, len(b.items))
	for i := range idx {
		idx[i] = i
	}
	err := p.sendItems(ctx, b, idx, b.body, results, &st, time.Now().Add(p.lim.RetryMaxElapsed))
	return st, err
}

// sendItems sends the items idx of b (whose body is body) until each is indexed or
// dead-lettered. 429/5xx items are resent alone with jittered exponential backoff; a 413 or a
// whole-request 400 splits the request in halves.
func (p *pipeline) sendItems(ctx context.Context, b *batch, idx []int, body []byte, results *[]itemResult, st *Stats, deadline time.Time) error {
	backoff := p.lim.RetryInitial
	var owned *[]byte // a body built here for a subset, returned to the pool at the end
	defer func() {
		if owned != nil {
			*owned = (*owned)[:0]
			bodyPool.Put(owned)
		}
	}()
	for attempt := 0; ; attempt++ {
		if body == nil {
			if owned == nil {
				owned = bodyPool.Get().(*[]byte)
			}
			buf := (*owned)[:0]
			for _, i := range idx {
				it := b.items[i]
				buf = append(buf, b.body[it.start:it.end]...)
			}
			*owned = buf
			body = buf
		}
		if attempt > 0 {
			st.Retried += int64(len(idx))
		}
		out, err := p.e.Bulk.send(ctx, p.spec.Index, body, len(idx), *results)
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
func (p *pipeline) deadLetter(b *batch, i int, status int, typ, reason string) {
	it := b.items[i]
	doc := b.body[it.doc : it.end-1]
	b.rejects = append(b.rejects, DeadLetter{
		Time: time.Now(), Index: p.spec.Index, Object: p.spec.object(), Offset: it.off,
		Status: status, ErrorType: typ, Reason: reason, Record: append([]byte(nil), doc...),
	})
}
