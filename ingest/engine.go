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
		queue:      NewMemQueue[*batch](e.Budget, lim.QueueBytes),
		batches:    make(chan *batch),
		wm:         newWatermark(start, spec.Start, spec.End),
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
	queue      *MemQueue[*batch]
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

// drain releases the budget still held by blocks a failed pipeline left in the queue.
func (p *pipeline) drain() {
	for {
		blocks, _, err := p.queue.Take(context.Background(), nil, 1<<30, 1<<62)
		for _, b := range blocks {
			p.e.Budget.Release(b.reserved)
		}
		if err != nil || len(blocks) == 0 {
			return
		}
	}
}

// batch is a run of consecutive records of the chunk: the documents as they stand in a _bulk
// body, and the records refused before sending. The producer writes documents into fixed-size
// blocks; the batcher joins blocks into requests without copying them (the body is sent as a
// vector of parts), so records move in bulk, not one by one.
type batch struct {
	seq      uint64
	end      int64    // offset just past the batch's last record
	parts    [][]byte // the body, in order
	size     int      // bytes of body in parts
	items    []item
	rejects  []DeadLetter
	reserved int64 // bytes charged to the budget: the capacity of parts plus the rejects
	urgent   bool  // send without waiting for more: the producer is blocked on the budget
	final    bool  // the chunk's last batch; end is the final checkpoint
}

type item struct {
	off        int64
	part       int // which part holds the item
	start, doc int // action line and document start in the part
	end        int // end of the document's line, newline included
}

// blockBytes is the capacity of a block. Blocks are charged to the budget by capacity, which
// is the memory they really hold; a record larger than a block gets a block of its own size,
// and with a budget under 64 blocks every record gets a buffer of its own exact size, so that
// slack in half-filled blocks cannot eat a small budget.
const blockBytes = 256 << 10

var blockPool = sync.Pool{New: func() any { b := make([]byte, 0, blockBytes); return &b }}

func getBlock(capacity int) []byte {
	if capacity == blockBytes {
		return (*blockPool.Get().(*[]byte))[:0]
	}
	return make([]byte, 0, capacity)
}

// Batches are pooled with the capacity of their slices: a block's item list would otherwise
// grow from nothing, allocation by allocation, for every block of every chunk.
var batchPool = sync.Pool{New: func() any { return new(batch) }}

func newBatch() *batch { return batchPool.Get().(*batch) }

// recycle gives b's blocks back to the block pool and b to the batch pool. b must not be used
// afterwards.
func (b *batch) recycle() {
	for _, part := range b.parts {
		if cap(part) == blockBytes {
			part = part[:0]
			blockPool.Put(&part)
		}
	}
	b.reset()
}

// reset puts b, emptied, in the batch pool without its blocks, which belong to another batch
// now (see appendBatch). b must not be used afterwards.
func (b *batch) reset() {
	clear(b.parts)
	clear(b.rejects)
	*b = batch{parts: b.parts[:0], items: b.items[:0], rejects: b.rejects[:0]}
	batchPool.Put(b)
}

func (b *batch) empty() bool { return len(b.items) == 0 && len(b.rejects) == 0 }

// full reports whether no further document should join b.
func (b *batch) full(lim Limits) bool {
	return len(b.items) >= lim.MaxOps || int64(b.size) >= lim.MaxBytes
}

// appendBatch moves o's records to the end of b, without copying bodies.
func (b *batch) appendBatch(o *batch) {
	shift := len(b.parts)
	b.parts = append(b.parts, o.parts...)
	for _, it := range o.items {
		it.part += shift
		b.items = append(b.items, it)
	}
	b.size += o.size
	b.rejects = append(b.rejects, o.rejects...)
	b.reserved += o.reserved
	b.end = max(b.end, o.end)
	b.urgent = b.urgent || o.urgent
	b.final = b.final || o.final
}

// wire returns item i's bytes as they stand in the body: action line, document, newline.
func (b *batch) wire(i int) []byte {
	it := b.items[i]
	return b.parts[it.part][it.start:it.end]
}

// doc returns item i's document.
func (b *batch) doc(i int) []byte {
	it := b.items[i]
	return b.parts[it.part][it.doc : it.end-1]
}

// produce decodes the stream into blocks of records and queues them. A block is queued when
// it is full, when the decoder has nothing more buffered (the source is slow, so waiting would
// only delay), and before waiting on the memory budget (so the bytes it holds can be sent and
// given back).
func (p *pipeline) produce(ctx context.Context, dec Decoder) error {
	ids := newIDHasher(p.spec.Bucket, p.spec.Key)
	var idBuf, action []byte
	blk := newBatch()
	push := func() error {
		b := blk
		blk = newBatch()
		if err := p.queue.PutReserved(ctx, b, b.reserved); err != nil {
			p.e.Budget.Release(b.reserved)
			b.recycle()
			return err
		}
		return nil
	}
	// charge takes n bytes from the budget; if it has to wait, what blk holds is sent first.
	charge := func(n int64) error {
		if p.e.Budget.TryAcquire(n) {
			return nil
		}
		if !blk.empty() {
			blk.urgent = true
			if err := push(); err != nil {
				return err
			}
		}
		return p.e.Budget.Acquire(ctx, n)
	}
	defer func() {
		p.e.Budget.Release(blk.reserved)
		blk.recycle()
		p.queue.Close()
	}()
	for {
		if !blk.empty() && !dec.Buffered() {
			if err := push(); err != nil {
				return err
			}
		}
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			blk.end, blk.final = max(blk.end, dec.Pos()), true
			return push()
		}
		if err != nil {
			return fmt.Errorf("reading %s at offset %d: %w", p.spec.object(), dec.Pos(), err)
		}
		if rec.Err == nil && p.lim.ValidateJSON && p.spec.Format == FormatNDJSON && !json.Valid(rec.Data) {
			rec.Err = errors.New("not valid JSON")
		}
		var id []byte
		if rec.Err == nil {
			if p.spec.IDField != "" {
				if id, err = fieldValue(rec.Data, p.spec.IDField); err != nil {
					rec.Err = fmt.Errorf("id field: %w", err)
				}
			} else {
				idBuf = ids.appendID(idBuf[:0], rec.Offset)
				id = idBuf
			}
		}
		// The document as it will stand in the body: {"index":{"_id":"..."}}\n<doc>\n
		action = append(action[:0], `{"index":{"_id":`...)
		if p.spec.IDField == "" {
			action = append(append(append(action, '"'), id...), '"') // base64url: nothing to escape
		} else {
			action = appendJSONString(action, id)
		}
		action = append(action, "}}\n"...)
		size := len(action) + len(rec.Data) + 1
		if rec.Err == nil && int64(size) > p.lim.MaxBytes {
			rec.Err = tooLongError(rec.End, rec.Offset, int(p.lim.MaxBytes))
		}
		if rec.Err != nil {
			if err := charge(int64(len(rec.Data))); err != nil {
				return err
			}
			blk.reserved += int64(len(rec.Data))
			blk.end = rec.End
			blk.rejects = append(blk.rejects, DeadLetter{
				Time: time.Now(), Index: p.spec.Index, Object: p.spec.object(), Offset: rec.Offset,
				ErrorType: "sluice_rejected", Reason: rec.Err.Error(),
				Record: append([]byte(nil), rec.Data...), Truncated: rec.Truncated,
			})
			continue
		}
		var part []byte
		if n := len(blk.parts); n > 0 {
			part = blk.parts[n-1]
		}
		if len(blk.items) >= p.lim.MaxOps || int64(blk.size+size) > p.lim.MaxBytes || cap(part)-len(part) < size {
			if !blk.empty() {
				if err := push(); err != nil {
					return err
				}
			}
			capacity := size
			if p.e.Budget.Max() >= 64*blockBytes {
				capacity = max(blockBytes, size)
			}
			if err := charge(int64(capacity)); err != nil {
				return err
			}
			part = getBlock(capacity)
			blk.parts = append(blk.parts, part)
			blk.reserved += int64(capacity)
		}
		start := len(part)
		part = append(part, action...)
		doc := len(part)
		part = append(part, rec.Data...)
		part = append(part, '\n')
		blk.parts[len(blk.parts)-1] = part
		blk.size += size
		blk.end = rec.End
		blk.items = append(blk.items, item{off: rec.Offset, part: len(blk.parts) - 1, start: start, doc: doc, end: len(part)})
	}
}

// batch merges blocks into requests: at most MaxOps documents and MaxBytes of body each, sent
// when full, when the flush interval has passed since their first record, when the producer
// waits for memory, or at the end of the chunk. A block that is a full request on its own is
// sent as it is, without copying.
func (p *pipeline) batch(ctx context.Context) (err error) {
	var cur *batch
	blocks := make([]*batch, 0, 64)
	defer func() {
		close(p.batches)
		if err != nil && !errors.Is(err, errPipelineDone) {
			// Give back what was taken from the queue and not handed to a sender.
			if cur != nil {
				p.e.Budget.Release(cur.reserved)
			}
			for _, b := range blocks {
				if b != nil {
					p.e.Budget.Release(b.reserved)
				}
			}
		}
	}()
	var timer *time.Timer
	var timerC <-chan time.Time
	send := func() error {
		if timer != nil {
			timer.Stop()
			timerC = nil
		}
		if cur == nil {
			return nil
		}
		cur.seq = p.wm.open(cur.end)
		select {
		case p.batches <- cur:
			cur = nil
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	for {
		var terr error
		var pressure <-chan struct{}
		if cur != nil {
			pressure = p.e.Budget.Pressure()
		}
		blocks, _, terr = p.queue.TakeUntil(ctx, blocks[:0], 64, 1<<62, timerC, pressure)
		if terr != nil && !errors.Is(terr, ErrQueueClosed) {
			return terr
		}
		if len(blocks) == 0 && terr == nil { // the flush interval passed, or memory is short
			if err := send(); err != nil {
				return err
			}
			continue
		}
		for i, b := range blocks {
			switch {
			case cur == nil:
				cur = b
			case len(cur.items)+len(b.items) <= p.lim.MaxOps && int64(cur.size+b.size) <= p.lim.MaxBytes:
				cur.appendBatch(b)
				b.reset()
			default:
				if err := send(); err != nil {
					return err
				}
				cur = b
			}
			blocks[i] = nil
			if cur.full(p.lim) || cur.urgent || cur.final {
				if err := send(); err != nil {
					return err
				}
			} else if timerC == nil {
				if timer == nil {
					timer = time.NewTimer(p.lim.FlushInterval)
				} else {
					timer.Reset(p.lim.FlushInterval)
				}
				timerC = timer.C
			}
		}
		if errors.Is(terr, ErrQueueClosed) {
			if err := send(); err != nil {
				return err
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
func (p *pipeline) sendBatch(ctx context.Context, b *batch, results *[]itemResult) (Stats, error) {
	st := Stats{Read: int64(len(b.items))}
	if len(b.items) == 0 {
		return st, nil
	}
	idx := make([]int, len(b.items))
	for i := range idx {
		idx[i] = i
	}
	err := p.sendItems(ctx, b, idx, b.parts, results, &st, time.Now().Add(p.lim.RetryMaxElapsed))
	return st, err
}

// sendItems sends the items idx of b (whose body is body) until each is indexed or
// dead-lettered. 429/5xx items are resent alone with jittered exponential backoff; a 413 or a
// whole-request 400 splits the request in halves.
func (p *pipeline) sendItems(ctx context.Context, b *batch, idx []int, body [][]byte, results *[]itemResult, st *Stats, deadline time.Time) error {
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
	b.rejects = append(b.rejects, DeadLetter{
		Time: time.Now(), Index: p.spec.Index, Object: p.spec.object(), Offset: b.items[i].off,
		Status: status, ErrorType: typ, Reason: reason, Record: append([]byte(nil), b.doc(i)...),
	})
}
