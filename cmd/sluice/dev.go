package main

import (
	"context"
	"io"
)

func init() {
	register("dev", "run a local Temporal server (file-backed) with a worker in the same process", runDev)
}

// runDev runs sluice-dev (internal/devcmd), which holds the Temporal server.
func runDev(_ context.Context, args []string, _, stderr io.Writer) int {
	return execCompanion("dev", devBinary, args, stderr)
}
