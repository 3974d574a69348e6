package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
)

// binDir holds the binaries built from ./cmd/... by TestMain; empty when the tests will skip.
var binDir string

// buildTimeout bounds building the binaries. A cold build of the Temporal server takes about
// ten minutes on two cores; with the build cache warm it takes seconds.
const buildTimeout = 20 * time.Minute

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	noEngine := os.Getenv(testenv.EnvOpenSearchURL) == "" && os.Getenv(testenv.EnvElasticsearchURL) == ""
	if testing.Short() || (noEngine && !testenv.Required()) {
		return m.Run() // every test skips (or fails, when required) on its own
	}
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = filepath.Join(dir, "bin")
	if err := buildBinaries(binDir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// buildBinaries builds every command under cmd/ into dir, as `go build -o dir/ ./cmd/...`, so
// that a command that execs another one (sluice dev might run a sluice-dev binary) finds it on
// PATH.
func buildBinaries(dir string) error {
	root, err := filepath.Abs("..")
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("module root not found above the e2e directory: %w", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd/... failed after %s: %v\n%s", time.Since(start).Round(time.Second), err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "sluice")); err != nil {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return fmt.Errorf("go build ./cmd/... made no sluice binary (got %s)", strings.Join(names, ", "))
	}
	return nil
}
