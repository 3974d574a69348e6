// Package objbench holds the end-to-end benchmark of many small objects (and, beside it, of a
// few large ones): it generates the objects, uploads them to a real S3 server (versitygw),
// and runs the real Backfill workflow on an in-process Temporal server and sluice worker, as
// `sluice dev` does, into a fake Elasticsearch that discards what it is sent. It reports
// objects/s, MB/s and history events per object (every run of the workflow, continue-as-new
// included).
//
//	SLUICE_BENCH_OBJECTS=100000 go test ./internal/objbench -run '^$' -bench . -benchtime 1x -timeout 60m
//
// The package has no code of its own: it is a benchmark, and sluice's binaries do not link it.
package objbench
