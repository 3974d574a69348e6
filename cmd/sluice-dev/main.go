// Command sluice-dev is `sluice dev`: a Temporal server for development (SQLite, file-backed)
// and a sluice worker in the same process. `sluice dev` runs it; it is a binary of its own so
// that the sluice binary, which production workers run, does not carry the Temporal server.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicehq/sluice/internal/devcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := devcmd.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
