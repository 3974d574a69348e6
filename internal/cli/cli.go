// Package cli holds what the sluice, sluice-dev and sluice-bench commands share: exit codes,
// flag parsing, the worker flags of `sluice worker` and `sluice dev`, and the Temporal
// connection flags laid over the environment (temporal.go).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// ParseLevel parses a log level: debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// UsageError reports a bad flag value the way the flag package does, and returns ExitUsage.
func UsageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "sluice %s: %v\n", cmd, err)
	return ExitUsage
}

// Exit codes of every command.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the job ran and did not fully succeed, or a runtime error
	ExitUsage   = 2 // bad flags or arguments
	ExitPartial = 3 // completed with dead letters and --fail-on-dead-letters
	// ExitInterrupted: --wait stopped following on Ctrl-C or SIGTERM; the workflow goes on.
	ExitInterrupted = 130
)

// ParseFlags parses args and reports whether the command should go on; code is the exit code
// otherwise (0 for -h).
func ParseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (ok bool, code int) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, ExitOK
		}
		return false, ExitUsage
	}
	return true, 0
}
