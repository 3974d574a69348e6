package ingest

import (
	"sync"
	"sync/atomic"
)

// request is a run of consecutive records of a chunk: the documents as they stand in a _bulk
// body, and the records refused before sending. Documents are written into blocks of
// blockBytes; the body is sent as the vector of its blocks, never copied into one buffer.
//
// The producer fills small requests (one block, or less when the source is slow) and queues
// them; the batcher joins consecutive ones into requests of up to MaxOps documents and
// MaxBytes of body, splitting one at a document boundary to fill a request to its limits (see
// joinHead); a sender sends each. The bytes a request holds are charged to the budget from the
// moment its block is taken until release: whoever holds the request owns them. A block split
// between two requests is owned by its sharedBlock, which both hold.
type request struct {
	budget   *Budget
	seq      uint64          // the watermark's number for the request (see watermark.open)
	end      int64           // offset just past the request's last record
	obj      int             // the object (index in a packed chunk) end is an offset in
	failed   []ObjectFailure // objects of a packed chunk given up on before end
	blocks   [][]byte        // the body, in order
	size     int             // bytes of body in blocks
	items    []item
	rejects  []DeadLetter
	reserved int64          // bytes charged to the budget: the capacity of blocks plus the rejects
	shared   []*sharedBlock // blocks split with another request, charged to the sharedBlock
	urgent   bool           // send without waiting for more: the producer is blocked on the budget
	final    bool           // the chunk's last request; end is the final checkpoint
}

// item is one document of a request.
type item struct {
	off        int64 // the record's offset in the object
	obj        int   // the object's index in a packed chunk
	block      int   // which block holds the item
	start, doc int   // action line and document start in the block
	end        int   // end of the document's line, newline included
	// origin is where the record was first read (a replayed dead letter's original), which
	// its dead letter names; nil: the chunk's own object and offset. Charged to the request
	// that took it (Origin.bytes).
	origin *Origin
}

// blockBytes is the capacity of a block. Blocks are charged to the budget by capacity, which
// is the memory they really hold; a record larger than a block gets a block of its own size,
// and with a budget under 64 blocks every record gets a buffer of its own exact size, so that
// slack in half-filled blocks cannot eat a small budget.
const blockBytes = 256 << 10

// blockCapacity is the capacity of a block that starts with a document of size bytes.
func blockCapacity(budget *Budget, size int) int {
	if budget.Max() >= 64*blockBytes {
		return max(blockBytes, size)
	}
	return size
}

var blockPool = sync.Pool{New: func() any { b := make([]byte, 0, blockBytes); return &b }}

func getBlock(capacity int) []byte {
	if capacity == blockBytes {
		return (*blockPool.Get().(*[]byte))[:0]
	}
	return make([]byte, 0, capacity)
}

// Requests are pooled with the capacity of their slices: a block's item list would otherwise
// grow from nothing, allocation by allocation, for every block of every chunk.
var requestPool = sync.Pool{New: func() any { return new(request) }}

func newRequest(budget *Budget) *request {
	r := requestPool.Get().(*request)
	r.budget = budget
	return r
}

// charge records n more bytes the caller took from r's budget for r.
func (r *request) charge(n int64) { r.reserved += n }

// release gives r's reserved bytes back to the budget, and lets go of its shared blocks. It
// is the only way they go back, and it may be called more than once.
func (r *request) release() {
	r.budget.Release(r.reserved)
	r.reserved = 0
	r.leaveShared(false)
}

// free releases r's bytes and puts its blocks and r itself back in their pools. r must not be
// used afterwards. (After a failed send a request is only released: the HTTP transport may
// still read a body it gave up on.)
func (r *request) free() {
	r.leaveShared(true)
	r.release()
	for _, b := range r.blocks {
		if cap(b) == blockBytes {
			b = b[:0]
			blockPool.Put(&b)
		}
	}
	r.recycle()
}

// recycle puts r, emptied, in the pool without its blocks, which belong to another request
// now (see join). r must not be used afterwards.
func (r *request) recycle() {
	clear(r.blocks)
	clear(r.rejects)
	clear(r.shared)
	*r = request{ // failed is not pooled: the watermark keeps it
		blocks: r.blocks[:0], items: r.items[:0], rejects: r.rejects[:0], shared: r.shared[:0]}
	requestPool.Put(r)
}

func (r *request) empty() bool { return len(r.items) == 0 && len(r.rejects) == 0 }

// full reports whether no further document should join r.
func (r *request) full(lim Limits) bool {
	return len(r.items) >= lim.MaxOps || int64(r.size) >= lim.MaxBytes
}

// fits reports whether o's documents may join r's within the limits.
func (r *request) fits(o *request, lim Limits) bool {
	return len(r.items)+len(o.items) <= lim.MaxOps && int64(r.size+o.size) <= lim.MaxBytes
}

// join moves o's records, and the bytes they hold, to the end of r without copying bodies,
// and recycles o.
func (r *request) join(o *request) {
	shift := len(r.blocks)
	r.blocks = append(r.blocks, o.blocks...)
	for _, it := range o.items {
		it.block += shift
		r.items = append(r.items, it)
	}
	r.size += o.size
	r.rejects = append(r.rejects, o.rejects...)
	r.failed = append(r.failed, o.failed...)
	r.shared = append(r.shared, o.shared...)
	clear(o.shared) // r holds them now
	r.reserved += o.reserved
	r.advance(o.obj, o.end)
	r.urgent = r.urgent || o.urgent
	r.final = r.final || o.final
	o.recycle()
}

// headFits returns how many of o's first documents fit at the end of r within the limits
// when o as a whole does not; 0 when none do, or when o cannot be split: joinHead takes a
// request of one block of documents of one object, without refused records or failed
// objects, as the producer queues them.
func (r *request) headFits(o *request, lim Limits) int {
	if len(o.blocks) != 1 || len(o.items) < 2 || len(o.rejects) > 0 || len(o.failed) > 0 || len(o.shared) > 0 ||
		o.items[0].start != 0 || o.items[0].obj != o.obj || o.items[len(o.items)-1].obj != o.obj {
		return 0
	}
	room := lim.MaxBytes - int64(r.size)
	k := 0
	for k < len(o.items)-1 && len(r.items)+k < lim.MaxOps && int64(o.items[k].end) <= room {
		k++
	}
	return k
}

// joinHead moves o's first k documents (see headFits) to the end of r without copying: both
// requests then hold a part of o's block, which a sharedBlock owns from now on, with its
// charge. r ends where o's remaining documents start.
func (r *request) joinHead(o *request, k int) {
	blk := o.blocks[0]
	cut := o.items[k].start
	sb := sharedPool.Get().(*sharedBlock)
	sb.buf, sb.charge = blk, int64(cap(blk))
	sb.refs.Store(2)
	sb.dirty.Store(false)
	o.reserved -= sb.charge

	n := len(r.blocks)
	r.blocks = append(r.blocks, blk[:cut:cut])
	for _, it := range o.items[:k] {
		it.block = n
		r.items = append(r.items, it)
	}
	r.size += cut
	r.advance(o.obj, o.items[k].off)
	r.shared = append(r.shared, sb)

	o.blocks[0] = blk[cut:]
	rest := copy(o.items, o.items[k:])
	o.items = o.items[:rest]
	for i := range o.items {
		it := &o.items[i]
		it.start, it.doc, it.end = it.start-cut, it.doc-cut, it.end-cut
	}
	o.size -= cut
	o.shared = append(o.shared, sb)
}

// sharedBlock is a block whose documents two requests hold after joinHead. It owns the
// block's charge and gives it back when both have let go; the block goes back to the pool
// then too, unless one of them was only released (its transport may still read it).
type sharedBlock struct {
	buf    []byte
	charge int64
	refs   atomic.Int32
	dirty  atomic.Bool
}

var sharedPool = sync.Pool{New: func() any { return new(sharedBlock) }}

// leaveShared lets go of r's shared blocks; clean says r's transport is done with them.
func (r *request) leaveShared(clean bool) {
	for i, sb := range r.shared {
		r.shared[i] = nil
		if !clean {
			sb.dirty.Store(true)
		}
		if sb.refs.Add(-1) > 0 {
			continue
		}
		r.budget.Release(sb.charge)
		if !sb.dirty.Load() && cap(sb.buf) == blockBytes {
			b := sb.buf[:0]
			blockPool.Put(&b)
		}
		sb.buf = nil
		sharedPool.Put(sb)
	}
	r.shared = r.shared[:0]
}

// room returns the free space of r's last block.
func (r *request) room() int {
	if len(r.blocks) == 0 {
		return 0
	}
	last := r.blocks[len(r.blocks)-1]
	return cap(last) - len(last)
}

// addBlock appends an empty block of capacity bytes, which the caller has charged to r.
func (r *request) addBlock(capacity int) {
	r.blocks = append(r.blocks, getBlock(capacity))
	r.charge(int64(capacity))
}

// advance moves r's end to offset end of object obj, unless r already ends further.
func (r *request) advance(obj int, end int64) {
	if obj > r.obj || obj == r.obj && end > r.end {
		r.obj, r.end = obj, end
	}
}

// addDoc appends a document of object obj, its action line first, to r's last block, which
// has room.
func (r *request) addDoc(obj int, off, end int64, action, doc []byte) {
	n := len(r.blocks) - 1
	b := r.blocks[n]
	start := len(b)
	b = append(b, action...)
	docStart := len(b)
	b = append(b, doc...)
	b = append(b, '\n')
	r.blocks[n] = b
	r.size += len(b) - start
	r.obj, r.end = obj, end
	r.items = append(r.items, item{off: off, obj: obj, block: n, start: start, doc: docStart, end: len(b)})
}

// keepOrigin records o (nil: none) as the origin of r's last document, with the n bytes the
// caller charged for it to the budget (see producer.chargeOrigin). The item holds its own copy:
// a decoder's Origin is valid until its next record only.
func (r *request) keepOrigin(o *Origin, n int64) {
	if o == nil {
		return
	}
	c := *o
	r.items[len(r.items)-1].origin = &c
	r.charge(n)
}

// origin returns item i's Origin, or nil when it has none.
func (r *request) origin(i int) *Origin { return r.items[i].origin }

// wireOf appends to parts the body of the items idx (in order) as slices of r's blocks: a
// retried or split request is sent without copying a byte, so it needs no memory beyond the
// budget its request holds. Items next to each other in a block share a slice.
func (r *request) wireOf(idx []int, parts [][]byte) [][]byte {
	lastBlock, lastEnd := -1, -1
	for _, i := range idx {
		it := r.items[i]
		if it.block == lastBlock && it.start == lastEnd {
			n := len(parts) - 1
			parts[n] = parts[n][:len(parts[n])+it.end-it.start]
		} else {
			parts = append(parts, r.blocks[it.block][it.start:it.end])
		}
		lastBlock, lastEnd = it.block, it.end
	}
	return parts
}

// doc returns item i's document.
func (r *request) doc(i int) []byte {
	it := r.items[i]
	return r.blocks[it.block][it.doc : it.end-1]
}
