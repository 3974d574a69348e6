// Package ingest is sluice's engine: it streams the records of one byte range of one object
// through a queue bounded in bytes into a bulk consumer that sends Elasticsearch _bulk requests
// capped by operations and bytes, and reports a checkpoint: the offset before which every
// record has been acknowledged (indexed, or dead-lettered for good).
//
// The pieces, in data-path order:
//
//   - Budget: one byte budget per process, shared by every chunk running in it. Queued
//     records, batches being built and request bodies in flight all draw from it.
//   - MemQueue: a blocking queue bounded in bytes that draws from a Budget.
//   - decoders: NDJSON and CSV, plain, gzip or zstd, with the record-ownership rule for ranges
//     (a chunk owns the records that start in [start, end)).
//   - Bulk: the _bulk client (Elasticsearch 8 or OpenSearch 2) with per-item results.
//   - Engine.Ingest: runs one chunk end to end and calls back with Progress.
//
// Nothing in this package imports Temporal; the activities package wraps it.
package ingest
