package esfake

import (
	"net/http"
	"time"
)

// Endpoint is the API a request addressed.
type Endpoint int

const (
	Other      Endpoint = iota // anything not below (answered 400 "no handler found")
	Info                       // GET|HEAD /
	Bulk                       // /_bulk, /{index}/_bulk
	Count                      // /{index}/_count
	Refresh                    // /_refresh, /{index}/_refresh
	IndexAdmin                 // PUT|HEAD|DELETE /{index}
	Health                     // GET /_cluster/health
	numEndpoints
)

var endpointNames = [numEndpoints]string{"other", "info", "bulk", "count", "refresh", "index", "health"}

func (e Endpoint) String() string {
	if e < 0 || e >= numEndpoints {
		return "unknown"
	}
	return endpointNames[e]
}

// Request describes a request to a Fault hook. The hook runs before the body is read.
type Request struct {
	Endpoint      Endpoint
	Method        string
	Path          string      // URL path, such as /logs/_bulk
	Index         string      // index named in the path, "" if none
	Seq           int64       // 1 for the first request to this Endpoint, 2 for the next, ...
	ContentLength int64       // as declared by the client; -1 when unknown (chunked)
	Header        http.Header // request headers; read only
}

// Decision is a Fault hook's answer. The zero Decision serves the request normally. The body
// is always read first (so the client is waiting for an answer, not still writing); then the
// fields apply in this order: Delay, Hang, Reset, Status, LoseResponse.
type Decision struct {
	// Delay waits this long before going on, or until the client goes away or the server
	// closes. The request is then served as decided: like a real cluster, esfake indexes a
	// bulk whose client has given up, which is how timeouts turn into duplicate sends.
	Delay time.Duration

	// Hang never answers and processes nothing: the handler waits until the client goes
	// away or the server closes.
	Hang bool

	// Reset closes the connection without an answer (a TCP reset) and processes nothing.
	Reset bool

	// Status answers with this HTTP status instead of serving the request, with an
	// Elasticsearch error body {"error":{"root_cause":[...],"type":..,"reason":..},"status":N}
	// whose type and reason suit the status (401 security_exception, 429
	// es_rejected_execution_exception, 503 cluster_block_exception, ...). Nothing is indexed.
	Status int

	// Type and Reason replace the default error type and reason of Status.
	Type, Reason string

	// Body, when non-nil, is sent as is instead of the error body (an empty non-nil slice
	// sends no body), with ContentType if set (such as "text/html" for a proxy's page).
	Body        []byte
	ContentType string

	// LoseResponse serves the request (documents are indexed, counters move) and then
	// closes the connection without sending the answer, as when a node dies after indexing.
	LoseResponse bool
}

// Fault decides how to treat a request. It runs on the request's goroutine and must be safe
// for concurrent use.
type Fault func(*Request) Decision

// Item describes one bulk item to an ItemFault hook.
type Item struct {
	Action string // "index", "create" or "delete"
	Index  string
	ID     string // the generated id when the action line had none
	// Attempt is how many times this index and id have been received, this time included:
	// 1 on the first send, 2 on the first resend. Always 0 with Options.Discard.
	Attempt int
	Doc     []byte // the document line; nil for delete. Valid only during the call
	Seq     int64  // the bulk request's Request.Seq
	Pos     int    // position of the item in its request, from 0
}

// ItemError is a per-item failure. The zero ItemError lets the item through.
type ItemError struct {
	Status int    // HTTP status of the item, such as 429
	Type   string // error type, such as "es_rejected_execution_exception"
	Reason string
}

// ItemFault decides the fate of one bulk item. Items that already failed (bad document,
// bad index name) are not offered. It must be safe for concurrent use.
type ItemFault func(*Item) ItemError

// Rejected is the 429 a cluster answers when its write queue or indexing pressure is full.
func Rejected() ItemError {
	return ItemError{
		Status: http.StatusTooManyRequests,
		Type:   "es_rejected_execution_exception",
		Reason: "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=1024, max_coordinating_and_primary_bytes=107374182]",
	}
}

// MapperParsing is the 400 a cluster answers when a document does not fit the mapping.
func MapperParsing(reason string) ItemError {
	if reason == "" {
		reason = "failed to parse"
	}
	return ItemError{Status: http.StatusBadRequest, Type: "mapper_parsing_exception", Reason: reason}
}

// Unavailable is the 503 a cluster answers when the item's primary shard is not active.
func Unavailable() ItemError {
	return ItemError{
		Status: http.StatusServiceUnavailable,
		Type:   "unavailable_shards_exception",
		Reason: "[0] primary shard is not active Timeout: [1m]",
	}
}

// defaultError is the error type and reason a cluster (or its security layer) sends with a
// request-level status.
func defaultError(status int, r *Request) (typ, reason string) {
	switch status {
	case http.StatusBadRequest:
		return "illegal_argument_exception", "esfake: injected bad request"
	case http.StatusUnauthorized:
		return "security_exception", "missing authentication credentials for REST request [" + r.Path + "]"
	case http.StatusForbidden:
		return "security_exception", "action [indices:data/write/bulk] is unauthorized for user [esfake] with effective roles [viewer]"
	case http.StatusNotFound:
		return "index_not_found_exception", "no such index [" + r.Index + "]"
	case http.StatusRequestEntityTooLarge:
		return "content_too_long_exception", "request content exceeds http.max_content_length"
	case http.StatusTooManyRequests:
		return "es_rejected_execution_exception", "rejected execution of coordinating operation [esfake injected]"
	case http.StatusInternalServerError:
		return "exception", "esfake: injected internal error"
	case http.StatusServiceUnavailable:
		return "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"
	case http.StatusGatewayTimeout:
		return "timeout_exception", "esfake: injected gateway timeout"
	}
	return "esfake_injected_exception", http.StatusText(status)
}
