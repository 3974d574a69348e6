package ingest

import "sync"

// watermark advances the checkpoint over the contiguous prefix of finished requests. Requests are
// opened in record order and may finish in any order.
type watermark struct {
	mu       sync.Mutex
	base     int64 // the chunk's Start: its byte count starts there
	limit    int64 // the chunk's End (< 0: none): bytes past it belong to the next range
	next     uint64
	first    uint64 // oldest unfinished request
	pending  map[uint64]*pendingRequest
	progress Progress
}

type pendingRequest struct {
	end   int64
	done  bool
	stats Stats
}

func newWatermark(start Progress, base, limit int64) *watermark {
	return &watermark{base: base, limit: limit, pending: map[uint64]*pendingRequest{}, progress: start}
}

// open registers a request whose last record ends at end and returns its sequence number.
func (w *watermark) open(end int64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq := w.next
	w.next++
	w.pending[seq] = &pendingRequest{end: end}
	return seq
}

// finish marks a request done and reports whether the checkpoint moved, with the new progress.
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
