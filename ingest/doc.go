// Package ingest is sluice's engine: it streams the records of one byte range of one object
// through a queue bounded in bytes into a bulk consumer that sends Elasticsearch _bulk requests
// capped by operations and bytes, and reports a checkpoint: the offset before which every
// record has been acknowledged (indexed, or dead-lettered for good).
//
// The pieces, in data-path order:
//
//   - Budget: one byte budget per process, shared by every chunk running in it. Queued
//     records, requests being built and request bodies in flight all draw from it.
//   - open.go: where reading starts (readFrom) and decompression, trusting the chunk's
//     compression; decoders: NDJSON and CSV, with the record-ownership rule for ranges (a
//     chunk owns the records that start in [start, end)).
//   - pipeline.go: the producer writes documents into blocks (256 KiB) of small requests and
//     queues them (queue.go, bounded in bytes); the batcher joins them into full _bulk
//     requests (request.go: a request owns its budget bytes and releases them); send.go sends.
//   - Bulk: the _bulk client (Elasticsearch 8 or OpenSearch 2) with per-item results.
//   - watermark.go: the checkpoint over requests finished out of order; Progress and Stats.
//   - Engine.Ingest: runs one chunk end to end into the dead-letter sink it is given and calls
//     back with Progress.
//
// Nothing in this package imports Temporal; the activities package wraps it.
package ingest
