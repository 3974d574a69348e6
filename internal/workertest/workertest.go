// Package workertest starts a real sluice worker on an in-process Temporal server, for tests
// that run workflows end to end. It is a test kit: the sluice binary does not link it.
package workertest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/sluicehq/sluice/internal/devserver"
	"github.com/sluicehq/sluice/worker"
)

// Start starts an in-memory Temporal server and a worker configured by cfg on it, both
// stopped when the test ends. cfg.Temporal.Address is the server's; zero fields default for a
// test: a 64 MiB budget, the Go memory limit left alone, logs discarded.
func Start(t testing.TB, ctx context.Context, cfg worker.Config) *worker.Worker {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	srv, err := devserver.Start(devserver.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("starting Temporal: %v", err)
	}
	t.Cleanup(srv.Stop)
	cfg.Temporal.Address = srv.FrontendAddress()
	if cfg.MaxMemory == 0 {
		cfg.MaxMemory = 64 << 20
	}
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = -1
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	w, err := worker.New(ctx, cfg)
	if err != nil {
		t.Fatalf("starting the worker: %v", err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}
