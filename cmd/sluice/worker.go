package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/worker"
)

func init() {
	register("worker", "run a worker: poll a Temporal task queue and run backfills", runWorker)
}

// runWorker runs a worker until SIGINT or SIGTERM; running chunks stop at a checkpoint and
// are resumed by another worker.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice worker", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice worker [flags]

Polls a Temporal task queue and runs sluice's workflows and activities until interrupted.
Flags override the environment (TEMPORAL_*, ELASTICSEARCH_*, AWS_*).
Secrets come from the environment or files only: TEMPORAL_API_KEY, TEMPORAL_TLS_KEY (a file),
ELASTICSEARCH_API_KEY or --es-api-key-file, ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD, and
the AWS SDK's credential chain.

`)
		fs.PrintDefaults()
	}
	wf := addWorkerFlags(fs, true)
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "worker", fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	cfg, err := wf.Config(stderr)
	if err != nil {
		return usageError(stderr, "worker", err)
	}
	err = worker.Run(ctx, cfg, worker.RunEvents{
		Ready: func(cfg worker.Config) {
			fmt.Fprintf(stdout, "sluice worker: polling task queue %q of namespace %q at %s\n", cfg.TaskQueue, cfg.Temporal.Namespace, cfg.Temporal.Address)
		},
		Stopping: func() { fmt.Fprintln(stdout, "sluice worker: stopping; running chunks stop at a checkpoint") },
	})
	if err != nil {
		fmt.Fprintf(stderr, "sluice worker: %v\n", err)
		return exitFailed
	}
	return exitOK
}
