// Package devcmd is `sluice dev`: an embedded Temporal server and a worker in one process. It
// lives in its own binary, sluice-dev, so that the sluice binary that workers run does not
// carry the Temporal server (about 115 MiB of resident executable pages at start-up).
package devcmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/sluicehq/sluice/internal/cli"
	"github.com/sluicehq/sluice/internal/devserver"
	"github.com/sluicehq/sluice/worker"
)

// Summary is the one-line description of the command.
const Summary = "run a local Temporal server (file-backed) with a worker in the same process"

// options are the parsed flags of `sluice dev`.
type options struct {
	server     devserver.Options
	withWorker bool
	worker     worker.Config // when withWorker
}

// Run runs the embedded Temporal server and, unless --worker=false, a worker on it, until ctx
// is done (SIGINT or SIGTERM). Workflows survive a restart on the same --data-dir.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, ok, code := parseFlags(args, stderr)
	if !ok {
		return code
	}
	srv, err := devserver.Start(opts.server)
	if err != nil {
		fmt.Fprintf(stderr, "sluice dev: starting the Temporal server: %v\n", err)
		return cli.ExitFailed
	}
	defer srv.Stop() // after the worker has stopped
	where := "in memory"
	if opts.server.DataDir != "" {
		where = filepath.Join(opts.server.DataDir, devserver.DatabaseFileName)
	}
	fmt.Fprintf(stdout, "sluice dev: Temporal server listening on %s (namespace %q, data %s)\n", srv.FrontendAddress(), opts.server.Namespace, where)
	if !opts.withWorker {
		fmt.Fprintln(stdout, "sluice dev: running; press Ctrl-C to stop")
		<-ctx.Done()
		fmt.Fprintln(stdout, "sluice dev: stopping")
		return cli.ExitOK
	}
	return runWorker(ctx, opts.worker, srv.FrontendAddress(), opts.server.Namespace, stdout, stderr)
}

// parseFlags parses the flags of `sluice dev`; ok false means exit with code.
func parseFlags(args []string, stderr io.Writer) (opts options, ok bool, code int) {
	fs := flag.NewFlagSet("sluice dev", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice dev [flags]

Runs a Temporal server for development (SQLite in --data-dir; --data-dir "" keeps it in
memory) and a sluice worker on it, until interrupted. Point other commands at it with
TEMPORAL_ADDRESS or --temporal-address. Worker flags override the environment, as for
'sluice worker'; the worker talks to this server whatever TEMPORAL_* say.

`)
		fs.PrintDefaults()
	}
	port := fs.Int("port", devserver.DefaultPort, "frontend gRPC port (0: any free port)")
	ip := fs.String("ip", "127.0.0.1", "address the server binds to")
	dataDir := fs.String("data-dir", filepath.Join(".sluice", "dev"), `directory of the server's database ("": in memory)`)
	withWorker := fs.Bool("worker", true, "also run a worker in this process")
	namespace := fs.String("namespace", worker.DefaultNamespace, "namespace to create and use")
	serverLog := fs.String("server-log-level", "warn", "lowest level of the Temporal server's own logs")
	wf := cli.AddWorkerFlags(fs, false)
	if ok, code := cli.ParseFlags(fs, args, stderr); !ok {
		return options{}, false, code
	}
	if fs.NArg() > 0 {
		return options{}, false, cli.UsageError(stderr, "dev", fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	serverLevel, err := cli.ParseLevel(*serverLog)
	if err != nil {
		return options{}, false, cli.UsageError(stderr, "dev", fmt.Errorf("--server-log-level: %w", err))
	}
	opts = options{withWorker: *withWorker, server: devserver.Options{
		DataDir: *dataDir, IP: *ip, Port: *port, Namespace: *namespace,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)), LogLevel: serverLevel,
	}}
	if *withWorker {
		if opts.worker, err = wf.Config(stderr); err != nil {
			return options{}, false, cli.UsageError(stderr, "dev", err)
		}
	}
	return opts, true, 0
}

// runWorker runs a worker on the server at address until ctx is done.
func runWorker(ctx context.Context, cfg worker.Config, address, namespace string, stdout, stderr io.Writer) int {
	// Plaintext, on the server's namespace, whatever TEMPORAL_* say.
	cfg.Temporal = worker.TemporalConn{Address: address, Namespace: namespace}
	// The server shares the process: a Go memory limit sized for the worker alone would make
	// the collector fight the server's memory. The byte budget still holds.
	cfg.MemoryLimit = -1
	err := worker.Run(ctx, cfg, worker.RunEvents{
		Ready: func(cfg worker.Config) {
			fmt.Fprintf(stdout, "sluice dev: worker polling task queue %q\n", cfg.TaskQueue)
			fmt.Fprintln(stdout, "sluice dev: running; press Ctrl-C to stop")
		},
		Stopping: func() { fmt.Fprintln(stdout, "sluice dev: stopping") },
	})
	if err != nil {
		fmt.Fprintf(stderr, "sluice dev: starting the worker: %v\n(run with --worker=false to serve Temporal alone)\n", err)
		return cli.ExitFailed
	}
	return cli.ExitOK
}
