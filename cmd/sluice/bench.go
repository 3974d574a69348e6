package main

import (
	"context"
	"io"
)

func init() {
	register("bench", "measure the engine (and, with --compare, esutil.BulkIndexer and a raw sender)", runBench)
}

// runBench runs sluice-bench (cmd/sluice-bench), which holds the benchmark engines and the fake
// Elasticsearch of the discard sink.
func runBench(_ context.Context, args []string, _, stderr io.Writer) int {
	return execCompanion("bench", benchBinary, args, stderr)
}
