package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Commands served by companion binaries, built beside sluice by `make build`. What they link
// stays out of the binary that production workers run: the Temporal server (about 115 MiB of
// resident pages) in sluice-dev, the benchmark engines, esutil and the fake Elasticsearch in
// sluice-bench.
const (
	devBinary   = "sluice-dev"
	benchBinary = "sluice-bench"
)

// execCompanion replaces this process with the companion binary name, found next to this
// executable or on PATH, so that signals and the exit code are its own. It returns only on
// failure, after one line on stderr.
func execCompanion(cmd, name string, args []string, stderr io.Writer) int {
	path, err := findCompanion(name)
	if err != nil {
		fmt.Fprintf(stderr, "sluice %s: %s not found beside sluice or on PATH; build it with `make build` (or `go install ./cmd/%s`)\n", cmd, name, name)
		return exitFailed
	}
	err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
	fmt.Fprintf(stderr, "sluice %s: running %s: %v\n", cmd, path, err)
	return exitFailed
}

func findCompanion(name string) (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return exec.LookPath(name)
}
