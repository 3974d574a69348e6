package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

func init() {
	register("dev", "run a local Temporal server (file-backed) with a worker in the same process", runDev)
}

// devBinary is the program that serves `sluice dev`. The Temporal server lives there, not in
// this binary: linking it would add about 115 MiB of resident pages to every worker.
const devBinary = "sluice-dev"

// runDev replaces this process with sluice-dev, found next to this executable or on PATH, so
// that signals and the exit code are its own.
func runDev(_ context.Context, args []string, _, stderr io.Writer) int {
	path, err := findDevBinary()
	if err != nil {
		fmt.Fprintf(stderr, "sluice dev: %v\n(build it with `make build`, or `go install ./cmd/sluice-dev`)\n", err)
		return exitFailed
	}
	err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
	fmt.Fprintf(stderr, "sluice dev: running %s: %v\n", path, err)
	return exitFailed
}

func findDevBinary() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), devBinary)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath(devBinary)
}
