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
)

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
