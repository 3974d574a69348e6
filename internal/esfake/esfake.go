package esfake

import (
	"compress/gzip"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Flavor is the product a Server imitates.
type Flavor int

const (
	// Elasticsearch 8.15.0: X-Elastic-Product header, Elasticsearch GET / body.
	Elasticsearch Flavor = iota
	// OpenSearch 2.19.6: no product header, OpenSearch GET / body.
	OpenSearch
)

// DefaultMaxContentLength is Elasticsearch's default http.max_content_length.
const DefaultMaxContentLength = 100 << 20

// Options configures a Server. The zero value is a faithful Elasticsearch 8 that stores
// documents and validates them.
type Options struct {
	// Flavor is the product imitated. Defaults to Elasticsearch.
	Flavor Flavor

	// Discard keeps no documents and no per-id receipt counts, only counters: every index or
	// create is answered as created (201, version 1) and every delete as deleted (200).
	// _count then answers the number of successful writes. Defaults to false (store).
	Discard bool

	// SkipValidation skips json.Valid on document lines (the empty-line and leading '{'
	// checks stay). Defaults to false: documents are validated as a cluster does.
	SkipValidation bool

	// MaxContentLength is the largest request body in bytes (after gzip decoding); larger
	// bodies are answered 413 with an empty body and the connection closed, as
	// Elasticsearch's HTTP layer does. Defaults to 100 MiB; negative means no limit.
	MaxContentLength int64

	// Fault is the initial request fault hook (see SetFault). Defaults to none.
	Fault Fault

	// ItemFault is the initial bulk item fault hook (see SetItemFault). Defaults to none.
	ItemFault ItemFault

	// Capacity limits how fast the server indexes and how much it queues (see Capacity).
	// Defaults to no limit: every bulk request is served at once.
	Capacity Capacity
}

// Server is a fake Elasticsearch. It is an http.Handler; New also serves it on a loopback
// port. It is safe for concurrent use; Close must be called to release the port and any
// request held by a Hang fault.
type Server struct {
	opts       Options
	maxBody    int64
	fault      atomic.Pointer[Fault]
	itemFault  atomic.Pointer[ItemFault]
	idPrefix   [7]byte
	idCounter  atomic.Uint64
	productHdr []string
	ctHdr      []string

	srv *http.Server
	url string

	closeMu  sync.RWMutex
	closed   bool
	closing  chan struct{}
	inflight sync.WaitGroup

	st    stats
	store store

	capacity  *capacityQueue // nil: no capacity limit
	queueFull string         // the reason of a rejection by capacity
}

// New starts a Server on a random port of 127.0.0.1. Call Close when done.
func New(opts Options) *Server {
	s := NewHandler(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("esfake: listening on 127.0.0.1: " + err.Error())
	}
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: time.Minute}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

// NewDiscard starts the sink of `sluice bench --sink discard`: New(Options{Discard: true,
// SkipValidation: true}). Validation is off because the benchmark generates only valid
// documents, and json.Valid would multiply the sink's CPU use by about ten on cores it shares
// with the engine (see BenchmarkBulk1KiB). Items received: Stats().Items.
func NewDiscard() *Server {
	return New(Options{Discard: true, SkipValidation: true})
}

// NewHandler returns a Server that listens nowhere, for use as an http.Handler in process.
// URL returns "". Close releases requests held by Hang faults.
func NewHandler(opts Options) *Server {
	s := &Server{
		opts:    opts,
		maxBody: opts.MaxContentLength,
		closing: make(chan struct{}),
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxContentLength
	}
	if opts.Fault != nil {
		s.SetFault(opts.Fault)
	}
	if opts.ItemFault != nil {
		s.SetItemFault(opts.ItemFault)
	}
	_, _ = rand.Read(s.idPrefix[:])
	if opts.Flavor == OpenSearch {
		s.ctHdr = []string{"application/json; charset=UTF-8"}
	} else {
		s.ctHdr = []string{"application/json"}
		s.productHdr = []string{"Elasticsearch"}
	}
	s.store.init(opts.Discard)
	if s.capacity = newCapacityQueue(opts.Capacity); s.capacity != nil {
		s.queueFull = queueFullReason(int(s.capacity.queue))
	}
	return s
}

// URL is the server's base URL, such as http://127.0.0.1:41234, without a trailing slash.
func (s *Server) URL() string { return s.url }

// Close stops listening, closes every connection, releases requests held by faults and waits
// for running handlers to return. Counters and documents stay readable. It is idempotent.
func (s *Server) Close() {
	s.closeMu.Lock()
	already := s.closed
	s.closed = true
	s.closeMu.Unlock()
	if already {
		return
	}
	if s.srv != nil {
		_ = s.srv.Close()
	}
	close(s.closing)
	s.inflight.Wait()
}

// SetFault replaces the request fault hook; nil removes it. Requests already running keep
// the decision they got.
func (s *Server) SetFault(f Fault) {
	if f == nil {
		s.fault.Store(nil)
		return
	}
	s.fault.Store(&f)
}

// SetItemFault replaces the bulk item fault hook; nil removes it.
func (s *Server) SetItemFault(f ItemFault) {
	if f == nil {
		s.itemFault.Store(nil)
		return
	}
	s.itemFault.Store(&f)
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		s.writeError(w, http.StatusServiceUnavailable, "esfake_closed_exception", "esfake: server closed", nil)
		return
	}
	s.inflight.Add(1)
	s.closeMu.RUnlock()
	defer s.inflight.Done()

	start := time.Now()
	s.st.requests.Add(1)
	rt := route(r)
	req := &Request{
		Endpoint:      rt.endpoint,
		Method:        r.Method,
		Path:          r.URL.Path,
		Index:         rt.index,
		Seq:           s.st.seq[rt.endpoint].Add(1),
		ContentLength: r.ContentLength,
		Header:        r.Header,
	}
	var d Decision
	if f := s.fault.Load(); f != nil {
		d = (*f)(req)
	}

	buf := getBuf()
	defer putBuf(buf)
	if tooLarge, err := s.readBody(r, buf); err != nil {
		// The client went away or sent a broken body: nobody is listening for an answer.
		s.writeError(w, http.StatusBadRequest, "parse_exception", "esfake: reading request body: "+err.Error(), nil)
		return
	} else if tooLarge {
		w.Header()["Connection"] = []string{"close"}
		s.writeRaw(w, http.StatusRequestEntityTooLarge, nil)
		return
	}
	s.st.bodyBytes.Add(int64(len(*buf)))

	if d.Delay > 0 {
		t := time.NewTimer(d.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.closing:
		}
		t.Stop()
	}
	switch {
	case d.Hang:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		abort(w) // returning would send an implicit 200
		return
	case d.Reset:
		abort(w)
		return
	case d.Status != 0:
		s.writeFault(w, req, d)
		return
	}

	if rt.endpoint == Bulk {
		s.st.bulkRequests.Add(1)
		out := getBuf()
		defer putBuf(out)
		status := s.bulk(r, req, *buf, out, start)
		if d.LoseResponse {
			abort(w)
			return
		}
		s.writeRaw(w, status, *out)
		return
	}
	if d.LoseResponse {
		abort(w)
		return
	}
	s.serveOther(w, r, rt)
}

// readBody reads the (possibly gzipped) body into buf, up to the size limit. tooLarge reports
// a body over the limit; the rest of it has been drained so the connection stays usable.
func (s *Server) readBody(r *http.Request, buf *[]byte) (tooLarge bool, err error) {
	if s.maxBody > 0 && r.ContentLength > s.maxBody {
		_, _ = io.Copy(io.Discard, r.Body)
		return true, nil
	}
	var body io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr := gzipPool.Get().(*gzip.Reader)
		defer gzipPool.Put(zr)
		if err := zr.Reset(r.Body); err != nil {
			if err == io.EOF { // an empty body is not a gzip stream, and not an error
				return false, nil
			}
			return false, err
		}
		body = zr
	}
	b := *buf
	if n := r.ContentLength; n > 0 && int64(cap(b)) < n+1 {
		b = make([]byte, 0, n+1) // +1 so the read that sees EOF needs no growth
	}
	limit := s.maxBody
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, rerr := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if limit > 0 && int64(len(b)) > limit {
			*buf = b[:0]
			_, _ = io.Copy(io.Discard, r.Body)
			return true, nil
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			*buf = b[:0]
			return false, rerr
		}
	}
	*buf = b
	return false, nil
}

var gzipPool = sync.Pool{New: func() any { return new(gzip.Reader) }}

// abort closes the connection without an answer: a TCP reset where the connection allows it.
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // in process, or HTTP/2: the server drops the stream
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func (s *Server) setHeaders(w http.ResponseWriter) http.Header {
	h := w.Header()
	h["Content-Type"] = s.ctHdr
	if s.productHdr != nil {
		h["X-Elastic-Product"] = s.productHdr
	}
	return h
}

// writeRaw sends status and body with the product headers.
func (s *Server) writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := s.setHeaders(w)
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	s.st.countResponse(status)
	w.WriteHeader(status)
	if len(body) > 0 {
		_, _ = w.Write(body)
	}
}

// writeError sends an Elasticsearch error body:
// {"error":{"root_cause":[{"type":T,"reason":R}],"type":T,"reason":R},"status":N}.
// extra, if set, is appended inside both error objects (it must start with a comma).
func (s *Server) writeError(w http.ResponseWriter, status int, typ, reason string, extra []byte) {
	b := appendErrorBody(nil, status, typ, reason, extra)
	s.writeRaw(w, status, b)
}

func appendErrorBody(b []byte, status int, typ, reason string, extra []byte) []byte {
	b = append(b, `{"error":{"root_cause":[`...)
	b = appendCause(b, typ, reason, extra)
	b = append(b, `],"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, reason)
	b = append(b, extra...)
	b = append(b, `},"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	return append(b, '}')
}

func appendCause(b []byte, typ, reason string, extra []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, reason)
	b = append(b, extra...)
	return append(b, '}')
}

func (s *Server) writeFault(w http.ResponseWriter, req *Request, d Decision) {
	if d.Body != nil {
		if d.ContentType != "" {
			w.Header()["Content-Type"] = []string{d.ContentType}
			// writeRaw would put back JSON; write directly, keeping the product header.
			h := w.Header()
			if s.productHdr != nil {
				h["X-Elastic-Product"] = s.productHdr
			}
			h["Content-Length"] = []string{strconv.Itoa(len(d.Body))}
			s.st.countResponse(d.Status)
			w.WriteHeader(d.Status)
			_, _ = w.Write(d.Body)
			return
		}
		s.writeRaw(w, d.Status, d.Body)
		return
	}
	typ, reason := defaultError(d.Status, req)
	if d.Type != "" {
		typ = d.Type
	}
	if d.Reason != "" {
		reason = d.Reason
	}
	if d.Status == http.StatusUnauthorized {
		w.Header()["Www-Authenticate"] = []string{`Basic realm="security" charset="UTF-8"`, "ApiKey"}
	}
	s.writeError(w, d.Status, typ, reason, nil)
}

// routeInfo is what the URL names.
type routeInfo struct {
	endpoint Endpoint
	index    string // index in the path, "" if none
	op       string // for Other/IndexAdmin: the remaining path element
}

func route(r *http.Request) routeInfo {
	p := strings.TrimPrefix(r.URL.Path, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return routeInfo{endpoint: Info}
	}
	first, rest, _ := strings.Cut(p, "/")
	if rest == "" {
		switch first {
		case "_bulk":
			return routeInfo{endpoint: Bulk}
		case "_refresh":
			return routeInfo{endpoint: Refresh}
		}
		if !strings.HasPrefix(first, "_") {
			return routeInfo{endpoint: IndexAdmin, index: first}
		}
		return routeInfo{endpoint: Other, op: first}
	}
	switch {
	case first == "_cluster" && rest == "health":
		return routeInfo{endpoint: Health}
	case strings.HasPrefix(first, "_"):
		return routeInfo{endpoint: Other}
	case rest == "_bulk":
		return routeInfo{endpoint: Bulk, index: first}
	case rest == "_count":
		return routeInfo{endpoint: Count, index: first}
	case rest == "_refresh":
		return routeInfo{endpoint: Refresh, index: first}
	}
	return routeInfo{endpoint: Other, index: first, op: rest}
}

func (s *Server) serveOther(w http.ResponseWriter, r *http.Request, rt routeInfo) {
	m := r.Method
	switch rt.endpoint {
	case Info:
		if m == http.MethodGet || m == http.MethodHead {
			body := esInfo
			if s.opts.Flavor == OpenSearch {
				body = osInfo
			}
			if m == http.MethodHead {
				body = nil
			}
			s.writeRaw(w, http.StatusOK, body)
			return
		}
	case Health:
		if m == http.MethodGet {
			s.writeRaw(w, http.StatusOK, healthBody)
			return
		}
	case Refresh:
		if m == http.MethodPost || m == http.MethodGet {
			if rt.index != "" && !s.store.exists(rt.index) {
				s.writeIndexNotFound(w, rt.index)
				return
			}
			s.writeRaw(w, http.StatusOK, refreshBody)
			return
		}
	case Count:
		if m == http.MethodGet || m == http.MethodPost {
			n, ok := s.store.count(rt.index)
			if !ok {
				s.writeIndexNotFound(w, rt.index)
				return
			}
			b := append([]byte(`{"count":`), strconv.Itoa(n)...)
			b = append(b, `,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0}}`...)
			s.writeRaw(w, http.StatusOK, b)
			return
		}
	case IndexAdmin:
		s.serveIndexAdmin(w, r, rt.index)
		return
	}
	s.writeRaw(w, http.StatusBadRequest, noHandler(r))
}

func (s *Server) serveIndexAdmin(w http.ResponseWriter, r *http.Request, index string) {
	switch r.Method {
	case http.MethodPut:
		if typ, reason := checkIndexName(index); typ != "" {
			s.writeError(w, http.StatusBadRequest, typ, reason, indexExtra(index))
			return
		}
		if !s.store.create(index) {
			s.writeError(w, http.StatusBadRequest, "resource_already_exists_exception",
				"index ["+index+"/"+indexUUID+"] already exists", indexExtra(index))
			return
		}
		b := append([]byte(`{"acknowledged":true,"shards_acknowledged":true,"index":`), appendJSONString(nil, index)...)
		s.writeRaw(w, http.StatusOK, append(b, '}'))
	case http.MethodHead:
		status := http.StatusOK
		if !s.store.exists(index) {
			status = http.StatusNotFound
		}
		s.writeRaw(w, status, nil)
	case http.MethodDelete:
		if !s.store.drop(index) {
			s.writeIndexNotFound(w, index)
			return
		}
		s.writeRaw(w, http.StatusOK, []byte(`{"acknowledged":true}`))
	default:
		s.writeRaw(w, http.StatusBadRequest, noHandler(r))
	}
}

func (s *Server) writeIndexNotFound(w http.ResponseWriter, index string) {
	extra := appendJSONString([]byte(`,"index":`), index)
	extra = append(extra, `,"resource.id":`...)
	extra = appendJSONString(extra, index)
	extra = append(extra, `,"resource.type":"index_or_alias","index_uuid":"_na_"`...)
	s.writeError(w, http.StatusNotFound, "index_not_found_exception", "no such index ["+index+"]", extra)
}

func indexExtra(index string) []byte {
	b := appendJSONString([]byte(`,"index":`), index)
	return append(b, `,"index_uuid":"_na_"`...)
}

func noHandler(r *http.Request) []byte {
	b := appendJSONString([]byte(`{"error":`), "no handler found for uri ["+r.URL.RequestURI()+"] and method ["+r.Method+"]")
	return append(b, `,"status":400}`...)
}

// indexUUID is the uuid every index reports.
const indexUUID = "ZXNmYWtlLWluZGV4LXV1"

var (
	esInfo = []byte(`{"name":"esfake","cluster_name":"esfake","cluster_uuid":"ZXNmYWtlLWNsdXN0ZXIt","version":{"number":"8.15.0","build_flavor":"default","build_type":"docker","build_hash":"0000000000000000000000000000000000000000","build_date":"2024-08-05T10:05:34.233336849Z","build_snapshot":false,"lucene_version":"9.11.1","minimum_wire_compatibility_version":"7.17.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"You Know, for Search"}`)
	osInfo = []byte(`{"name":"esfake","cluster_name":"esfake","cluster_uuid":"ZXNmYWtlLWNsdXN0ZXIt","version":{"distribution":"opensearch","number":"2.19.6","build_type":"zip","build_hash":"0000000000000000000000000000000000000000","build_date":"2026-07-01T04:27:16.038403104Z","build_snapshot":false,"lucene_version":"9.12.3","minimum_wire_compatibility_version":"7.10.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"The OpenSearch Project: https://opensearch.org/"}`)

	healthBody  = []byte(`{"cluster_name":"esfake","status":"green","timed_out":false,"number_of_nodes":1,"number_of_data_nodes":1,"active_primary_shards":0,"active_shards":0,"relocating_shards":0,"initializing_shards":0,"unassigned_shards":0,"delayed_unassigned_shards":0,"number_of_pending_tasks":0,"number_of_in_flight_fetch":0,"task_max_waiting_in_queue_millis":0,"active_shards_percent_as_number":100.0}`)
	refreshBody = []byte(`{"_shards":{"total":1,"successful":1,"failed":0}}`)
)

// Buffers for request bodies and responses. Buffers that grew past maxPooledBytes are left
// to the garbage collector rather than pinned by the pool.
const maxPooledBytes = 64 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBytes {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
