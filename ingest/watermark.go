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

	// A packed chunk counts the bytes of the objects behind the checkpoint: objectEnds holds
	// the length of each object the producer finished and the checkpoint has not passed yet,
	// doneBytes the sum over the objects it passed.
	packed     bool
	objectEnds map[int]int64
	doneBytes  int64
}

type pendingRequest struct {
	obj    int
	end    int64
	done   bool
	stats  Stats
	failed []ObjectFailure
}

func newWatermark(start Progress, base, limit int64) *watermark {
	return &watermark{base: base, limit: limit, pending: map[uint64]*pendingRequest{}, progress: start}
}

// newPackedWatermark is the watermark of a packed chunk resuming from start.
func newPackedWatermark(start Progress) *watermark {
	w := newWatermark(start, 0, -1)
	w.packed, w.objectEnds = true, map[int]int64{}
	w.doneBytes = start.Stats.Bytes - start.Checkpoint
	return w
}

// objectEnd records that object obj of a packed chunk is n bytes long (decompressed), or
// stopped after n bytes. The producer calls it before any record of a later object is queued.
func (w *watermark) objectEnd(obj int, n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.objectEnds[obj] = n
}

// open registers a request, whose last record ends at r.end of object r.obj, and returns its
// sequence number. The object failures r carries are reported once the checkpoint passes it.
func (w *watermark) open(r *request) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq := w.next
	w.next++
	w.pending[seq] = &pendingRequest{obj: r.obj, end: r.end, failed: r.failed}
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
		if len(p.failed) > 0 {
			// A new slice each time: earlier Progress values handed out keep theirs.
			w.progress.Failed = append(w.progress.Failed[:len(w.progress.Failed):len(w.progress.Failed)], p.failed...)
		}
		w.advance(p.obj, p.end)
		moved = true
	}
	covered := w.progress.Checkpoint
	if w.limit >= 0 {
		covered = min(covered, w.limit) // the last record may end past the range
	}
	w.progress.Stats.Bytes = max(covered-w.base, 0)
	if w.packed {
		w.progress.Stats.Bytes = w.doneBytes + w.progress.Checkpoint
	}
	return w.progress, moved
}

// advance moves the checkpoint to offset end of object obj when that is further.
func (w *watermark) advance(obj int, end int64) {
	for w.progress.Object < obj {
		w.doneBytes += w.objectEnds[w.progress.Object]
		delete(w.objectEnds, w.progress.Object)
		w.progress.Object++
		w.progress.Checkpoint = 0
	}
	if obj == w.progress.Object && end > w.progress.Checkpoint {
		w.progress.Checkpoint = end
	}
}

func (w *watermark) current() Progress {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.progress
}
