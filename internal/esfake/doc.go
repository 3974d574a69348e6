// Package esfake is a fake Elasticsearch 8.x HTTP server for fault injection in tests and as
// the discard sink of `sluice bench`.
//
// It answers the parts of the REST API that sluice uses, in the shapes a real cluster sends.
// TestConformanceOpenSearch (run by `make test`) sends the same bulk requests to a real
// OpenSearch 2.19 node and to esfake and compares statuses, error types, item order, ids,
// results, versions, sequence numbers and counts.
//
//	GET|HEAD /                       cluster info (Elasticsearch 8.15.0, or OpenSearch 2.19.6)
//	POST|PUT /_bulk, /{index}/_bulk  index, create and delete actions; per-item results
//	GET|POST /{index}/_count         {"count":N,...}
//	POST|GET /_refresh, /{index}/_refresh
//	PUT|HEAD|DELETE /{index}         create, test, delete an index
//	GET /_cluster/health             always green
//
// Every response carries Content-Type: application/json and, unless the server imitates
// OpenSearch, X-Elastic-Product: Elasticsearch (go-elasticsearch refuses servers without it).
//
// # Bulk
//
// The bulk body is scanned, never decoded: newlines are found with bytes.IndexByte, the action
// line is read by a small scanner that picks out _index and _id, and buffers come from pools.
// What a real cluster rejects, esfake rejects the same way:
//
//   - for the whole request: an empty body, a body not ending in a newline, an action line
//     that is not JSON (400 x_content_parse_exception) or not an action object, an unknown
//     action or metadata parameter such as _type (400 illegal_argument_exception), an action
//     with no index or a delete with no id (400 action_request_validation_exception), an
//     unknown URL parameter (400), a Content-Type that is not JSON (406);
//   - per item (HTTP 200, "errors":true): a document line that is empty (400
//     mapper_parsing_exception "failed to parse, document is empty"), not an object or not
//     valid JSON (400 mapper_parsing_exception "failed to parse"), an invalid index name (400
//     invalid_index_name_exception), an empty _id (400 illegal_argument_exception), create of
//     an existing id (409 version_conflict_engine_exception). A delete of a missing id is 404
//     "not_found" without an error, as in Elasticsearch.
//
// Elasticsearch 8.8 and later name the document parse error document_parsing_exception;
// esfake says mapper_parsing_exception as OpenSearch and older versions do. Clients must
// decide on the status, never on the type.
//
// An action line without its document line at the very end of the body is ignored, and so is
// anything after the action object on its line, as Elasticsearch does. update actions are not supported (the request fails with 400 and a
// reason that says so). filter_path and the other known URL parameters are accepted and
// ignored: the full response is always sent. Request bodies may be gzip-compressed
// (Content-Encoding: gzip); responses are never compressed.
//
// Document validation (json.Valid on every document line) is on by default because that is
// what a cluster does; Options.SkipValidation turns it off for throughput runs, where it costs
// about nine times as much CPU as everything else the server does (BenchmarkBulk1KiB on the
// 2-core dev machine: about 4 GB/s of bulk body per core without it, 450 MB/s with it). NewDiscard, the benchmark sink, skips it:
// the engine has already checked every line.
//
// # Storage
//
// By default the server keeps every document (index -> id -> raw bytes, overwritten on the
// same id, with versions and sequence numbers as a cluster reports them) and counts how often
// each id was received, so tests can check contents, counts and duplicates. Options.Discard
// keeps neither: each write is answered as created and only counters are kept, which is what
// the benchmark's discard sink wants.
//
// # Faults
//
// A Fault hook decides per request: answer a status with an Elasticsearch-like error body, a
// custom body, wait, hang until the client gives up, reset the connection, or index the
// request and lose the response. An ItemFault hook decides per bulk item: reject it with a
// status, error type and reason. Options.MaxContentLength answers 413 to large bodies as
// http.max_content_length does.
//
// # Capacity
//
// Options.Capacity makes the server a node of fixed throughput: documents are indexed at
// DocsPerSecond one request after another, each bulk answer waits for its documents' turn and
// service time, and a request that finds the queue (QueueDocs) full gets every item rejected
// with 429 es_rejected_execution_exception inside a 200, as a full write thread pool answers.
// It is what the adaptive concurrency benchmark of internal/bench runs against.
//
// # Concurrency
//
// A Server is safe for concurrent use. Hooks are called from the request goroutines and must
// be safe for concurrent use themselves. Every counter and stored document that a request
// changes is updated before its response is written, so a test that has read a response sees
// its effects in Stats, Count and Doc.
package esfake
