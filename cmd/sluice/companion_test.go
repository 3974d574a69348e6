package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestCompanionMissing: `sluice bench` and `sluice dev` without their companion binary fail
// with one line that names the binary and how to build it.
func TestCompanionMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // and nothing beside the test binary is called sluice-*
	for _, tc := range []struct {
		run  func(context.Context, []string, io.Writer, io.Writer) int
		want string
	}{
		{runBench, "sluice bench: sluice-bench not found beside sluice or on PATH; build it with `make build`"},
		{runDev, "sluice dev: sluice-dev not found beside sluice or on PATH; build it with `make build`"},
	} {
		var stderr strings.Builder
		code := tc.run(context.Background(), []string{"--docs", "1"}, io.Discard, &stderr)
		if code != exitFailed || !strings.HasPrefix(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("exit %d, stderr %q; want %d and one line starting %q", code, stderr.String(), exitFailed, tc.want)
		}
	}
}
