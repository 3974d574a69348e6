// Command sluice-bench is `sluice bench`: it runs generated documents through sluice's engine
// and, with --compare, through go-elasticsearch's esutil.BulkIndexer and a raw sender, into an
// in-process fake Elasticsearch (the discard sink) or a real cluster. `sluice bench` runs it; it
// is a binary of its own so that the sluice binary, which production workers run, carries
// neither the benchmark engines, esutil nor the fake Elasticsearch.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, as internal/cli's (not imported: it links the Temporal SDK, which would count in
// the engine's peak RSS).
const (
	exitOK     = 0
	exitFailed = 1
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runBench(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
