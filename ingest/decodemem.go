package ingest

import (
	"context"
	"fmt"
)

// Memory a chunk's decoding holds, and how it is charged to the budget.
//
// Fixed per chunk and not charged (the README names them): the line buffer up to
// smallBufferBytes, the CSV row buffers up to smallBufferBytes each, the 64 KiB peek buffer,
// and a gzip reader's state (its window is fixed by the format at 32 KiB; with its tables and
// buffers under 64 KiB).
//
// Charged: the zstd window (see zstdWindowCharge), held from open to close; and a big record.
// When a record needs a buffer past smallBufferBytes, the chunk reserves bigRecordBuffers x
// (maxLine+1) bytes in one step, before any buffer grows: the line buffer and (CSV) the row,
// unquoted-field and JSON buffers grow inside that reservation, and the request block the
// record is copied into is taken from it too (decodeMemory.take), so the producer never waits
// for the budget while the decoder holds a part of it. Once the record is consumed the buffers
// shrink back and the rest of the reservation is given back. A chunk thus waits for the budget
// only while it holds none of it for decoding, and chunks cannot deadlock on each other.
const smallBufferBytes = 256 << 10

// bigRecordBuffers is how many buffers of up to maxLine+1 bytes a big record can need at once:
// NDJSON the line buffer and the request block (both allocated at their exact size); CSV also
// the row of a quoted multi-line field and the unescaped fields (grown by append, so up to
// 1.25 times their length each: one more buffer covers that) and the JSON object (exact).
//
// A slice of an index source (formatSearch) holds the JSON decoder's buffer (grown by
// doubling, so up to twice the hit), the hit's _source copied out of it, and the block.
func bigRecordBuffers(format string) int64 {
	switch format {
	case FormatCSV:
		return 6
	case formatSearch:
		return 4
	}
	return 2
}

// recordCap is the longest record a chunk reads whole: maxBytes (no longer record can be sent),
// and no more than the big-record reservation allows within the budget, so that the
// reservation always covers the buffers. A longer record is dead-lettered by its head.
func recordCap(format string, maxBytes int64, budget *Budget) int {
	if budget != nil {
		maxBytes = min(maxBytes, (budget.Max()-maxActionBytes)/bigRecordBuffers(format)-1)
	}
	return int(max(maxBytes, 1))
}

// maxActionBytes bounds a document's action line, {"index":{"_id":...}}: an id of MaxIDBytes,
// each byte escaped into at most six. The request block of a big record is its line and this.
const maxActionBytes = 32 + 6*MaxIDBytes

// decodeMemory is a chunk's account of decoding memory in the budget. It is used from the
// producer's goroutine only (the decoder runs there), and close gives back all it holds.
type decodeMemory struct {
	ctx    context.Context
	budget *Budget // nil: nothing is charged (decoders tested alone, the CSV header reader)
	// bigBytes is what a big record reserves; see bigRecordBuffers.
	bigBytes int64
	// blockBytes is the part of bigBytes kept for the request block of the record.
	blockBytes int64
	fixed      int64 // the zstd window, until close
	big        int64 // held for the big record at hand (0: none)
	spare      int64 // part of big that the producer may still take for the record's block
	// beforeWait is called before waiting for the budget: the producer queues the request it
	// is filling, so that the bytes it holds can be sent and come back.
	beforeWait func(context.Context) error
}

func newDecodeMemory(ctx context.Context, budget *Budget, format string, maxLine int) *decodeMemory {
	m := &decodeMemory{ctx: ctx, budget: budget}
	if budget != nil {
		block := int64(blockCapacity(budget, maxLine+1+maxActionBytes))
		m.bigBytes = min((bigRecordBuffers(format)-1)*int64(maxLine+1)+block, budget.Max())
		m.blockBytes = min(block, m.bigBytes)
	}
	return m
}

// acquire takes n bytes from the budget, flushing the producer's request first if it must wait.
func (m *decodeMemory) acquire(n int64) error {
	if m == nil || m.budget == nil || m.budget.TryAcquire(n) {
		return nil
	}
	if m.beforeWait != nil {
		if err := m.beforeWait(m.ctx); err != nil {
			return err
		}
	}
	return m.budget.Acquire(m.ctx, n)
}

// chargeFixed charges n bytes held until close (a decompressor's window).
func (m *decodeMemory) chargeFixed(n int64) error {
	if m == nil || m.budget == nil {
		return nil
	}
	if err := m.acquire(n); err != nil {
		return fmt.Errorf("charging %d bytes of decompression window: %w", n, err)
	}
	m.fixed += n
	return nil
}

// enterBig reserves the memory of a big record, unless it is held already. Callers call it
// before a buffer grows past smallBufferBytes.
func (m *decodeMemory) enterBig() error {
	if m == nil || m.budget == nil || m.big > 0 {
		return nil
	}
	if err := m.acquire(m.bigBytes); err != nil {
		return err
	}
	m.big = m.bigBytes
	m.spare = m.blockBytes
	return nil
}

// take hands up to n bytes of the big record's reservation to the caller, who now owns them
// (the request block the record is copied into). It returns how many it handed over.
func (m *decodeMemory) take(n int64) int64 {
	if m == nil {
		return 0
	}
	t := min(n, m.spare)
	m.spare -= t
	m.big -= t
	return t
}

// leaveBig gives back what is left of the big record's reservation; the buffers are small again.
func (m *decodeMemory) leaveBig() {
	if m == nil || m.big == 0 {
		return
	}
	m.budget.Release(m.big)
	m.big, m.spare = 0, 0
}

func (m *decodeMemory) close() {
	if m == nil || m.budget == nil {
		return
	}
	m.leaveBig()
	m.budget.Release(m.fixed)
	m.fixed = 0
}
