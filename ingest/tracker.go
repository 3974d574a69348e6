package ingest

import "sync"

// Stats are the counters of a chunk. Once a chunk is finished, Read == Indexed + DeadLettered.
type Stats struct {
	Read         int64 // records read (documents and refused records)
	Indexed      int64 // documents Elasticsearch acknowledged
	Retried      int64 // item sends repeated after a 429/5xx or a failed request
	DeadLettered int64 // records written to the dead-letter sink
	Bytes        int64 // bytes of the chunk's range behind the checkpoint (decompressed for compressed objects); the ranges of an object add up to its size
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Read += o.Read
	s.Indexed += o.Indexed
	s.Retried += o.Retried
	s.DeadLettered += o.DeadLettered
	s.Bytes += o.Bytes
}

// Progress is reported whenever the checkpoint advances.
type Progress struct {
	// Checkpoint: every record that starts before it has been acknowledged. A resumed
	// attempt continues reading there.
	Checkpoint int64
	// Stats count the records before Checkpoint (so a resumed attempt that starts from them
	// counts nothing twice).
	Stats Stats
}

// watermark advances the checkpoint over the contiguous prefix of finished batches. Batches are
// opened in record order and may finish in any order.
type watermark struct {
	mu       sync.Mutex
	base     int64 // the chunk's Start: its byte count starts there
	limit    int64 // the chunk's End (< 0: none): bytes past it belong to the next range
	next     uint64
	first    uint64 // oldest unfinished batch
	pending  map[uint64]*pendingBatch
	progress Progress
}

type pendingBatch struct {
	end   int64
	done  bool
	stats Stats
}

func newWatermark(start Progress, base, limit int64) *watermark {
	return &watermark{base: base, limit: limit, pending: map[uint64]*pendingBatch{}, progress: start}
}

// open registers a batch whose last record ends at end and returns its sequence number.
func (w *watermark) open(end int64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq := w.next
	w.next++
	w.pending[seq] = &pendingBatch{end: end}
	return seq
}

// finish marks a batch done and reports whether the checkpoint moved, with the new progress.
func (w *watermark) finish(seq uint64, s Stats) (Progress, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pending[seq]
	p.done, p.stats = true, s
	moved := false
	for {
		p, ok := w.pending[w.first]
		if !ok || !p.done {
			break
		}
		delete(w.pending, w.first)
		w.first++
		w.progress.Stats.Add(p.stats)
		if p.end > w.progress.Checkpoint {
			w.progress.Checkpoint = p.end
		}
		moved = true
	}
	covered := w.progress.Checkpoint
	if w.limit >= 0 {
		covered = min(covered, w.limit) // the last record may end past the range
	}
	w.progress.Stats.Bytes = max(covered-w.base, 0)
	return w.progress, moved
}

func (w *watermark) current() Progress {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.progress
}
