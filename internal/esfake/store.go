package esfake

import (
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of a Server's counters.
type Stats struct {
	Requests     int64 // HTTP requests of any kind, faulted ones included
	BulkRequests int64 // bulk requests that were served (not answered by a fault or a 413)

	// Responses counts answers sent by HTTP status, every endpoint. Requests answered by no
	// response (Hang, Reset, LoseResponse) are not in it.
	Responses map[int]int64

	// Items counts the bulk items of served requests; ItemStatuses splits them by the status
	// in the response. Requests rejected whole (fault, 413, malformed body) add nothing.
	Items        int64
	ItemStatuses map[int]int64

	// BodyBytes counts request body bytes read, after gzip decoding.
	BodyBytes int64

	// Duplicates counts item receipts of an index and id that had been received before,
	// whatever became of either: a resend after a 429 counts, so does a replay after a
	// resume. Always 0 with Options.Discard.
	Duplicates int64
}

// stats holds the live counters; all atomic, so Stats never blocks a request.
type stats struct {
	requests     atomic.Int64
	bulkRequests atomic.Int64
	items        atomic.Int64
	bodyBytes    atomic.Int64
	duplicates   atomic.Int64
	responses    [600]atomic.Int64
	itemStatuses [600]atomic.Int64
	seq          [numEndpoints]atomic.Int64
}

func (st *stats) countResponse(status int) {
	if status >= 0 && status < len(st.responses) {
		st.responses[status].Add(1)
	}
}

func (st *stats) countItems(status int, n int64) {
	if n > 0 && status >= 0 && status < len(st.itemStatuses) {
		st.itemStatuses[status].Add(n)
	}
}

// Stats returns a snapshot of the counters. Each counter is read atomically; counters updated
// by requests running during the call may be mutually inconsistent.
func (s *Server) Stats() Stats {
	st := &s.st
	out := Stats{
		Requests:     st.requests.Load(),
		BulkRequests: st.bulkRequests.Load(),
		Items:        st.items.Load(),
		BodyBytes:    st.bodyBytes.Load(),
		Duplicates:   st.duplicates.Load(),
		Responses:    map[int]int64{},
		ItemStatuses: map[int]int64{},
	}
	for i := range st.responses {
		if n := st.responses[i].Load(); n != 0 {
			out.Responses[i] = n
		}
		if n := st.itemStatuses[i].Load(); n != 0 {
			out.ItemStatuses[i] = n
		}
	}
	return out
}

// store holds the indices and, unless discarding, their documents.
type store struct {
	discard bool
	mu      sync.RWMutex
	indices map[string]*index
}

type index struct {
	name   string
	seqNo  atomic.Int64 // next _seq_no
	writes atomic.Int64 // successful index and create operations (the count when discarding)
	docs   map[string]*doc
	live   int // documents in docs that exist (guarded by store.mu)
}

type doc struct {
	body     []byte // nil when deleted or never indexed
	version  int64
	received int
}

func (st *store) init(discard bool) {
	st.discard = discard
	st.indices = map[string]*index{}
}

// lookupLocked returns the index, creating it when create is set. mu must be held for writing
// when create is set, for reading otherwise.
func (st *store) lookupLocked(name []byte, create bool) *index {
	if ix := st.indices[string(name)]; ix != nil || !create {
		return ix
	}
	ix := &index{name: string(name)}
	if !st.discard {
		ix.docs = map[string]*doc{}
	}
	st.indices[ix.name] = ix
	return ix
}

// get returns the index, auto-creating it as a bulk write does.
func (st *store) get(name []byte) *index {
	st.mu.RLock()
	ix := st.indices[string(name)]
	st.mu.RUnlock()
	if ix != nil {
		return ix
	}
	st.mu.Lock()
	ix = st.lookupLocked(name, true)
	st.mu.Unlock()
	return ix
}

func (st *store) exists(name string) bool {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.indices[name] != nil
}

// create makes an empty index; false if it exists.
func (st *store) create(name string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.indices[name] != nil {
		return false
	}
	st.lookupLocked([]byte(name), true)
	return true
}

// drop deletes an index and its documents; false if it did not exist.
func (st *store) drop(name string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.indices[name] == nil {
		return false
	}
	delete(st.indices, name)
	return true
}

func (st *store) count(name string) (int, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	ix := st.indices[name]
	if ix == nil {
		return 0, false
	}
	if st.discard {
		return int(ix.writes.Load()), true
	}
	return ix.live, true
}

// Count is the number of documents in index (successful writes with Options.Discard); 0 when
// the index does not exist.
func (s *Server) Count(index string) int {
	n, _ := s.store.count(index)
	return n
}

// Doc returns a copy of the stored document, and whether it exists.
func (s *Server) Doc(index, id string) ([]byte, bool) {
	st := &s.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	ix := st.indices[index]
	if ix == nil || ix.docs == nil {
		return nil, false
	}
	d := ix.docs[id]
	if d == nil || d.body == nil {
		return nil, false
	}
	return append([]byte(nil), d.body...), true
}

// Docs returns a copy of every document of index, by id.
func (s *Server) Docs(index string) map[string][]byte {
	st := &s.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := map[string][]byte{}
	ix := st.indices[index]
	if ix == nil {
		return out
	}
	for id, d := range ix.docs {
		if d.body != nil {
			out[id] = append([]byte(nil), d.body...)
		}
	}
	return out
}

// Received is how many times an item with this index and id was received, whatever its
// outcome. Always 0 with Options.Discard.
func (s *Server) Received(index, id string) int {
	st := &s.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	ix := st.indices[index]
	if ix == nil || ix.docs == nil {
		return 0
	}
	if d := ix.docs[id]; d != nil {
		return d.received
	}
	return 0
}

// Indices lists the names of the existing indices.
func (s *Server) Indices() []string {
	st := &s.store
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]string, 0, len(st.indices))
	for name := range st.indices {
		out = append(out, name)
	}
	return out
}
