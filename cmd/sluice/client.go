package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"go.temporal.io/api/serviceerror"
)

// describeError turns the error of a call about workflow id into a message a user can act on.
func describeError(id, namespace string, err error) error {
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("no workflow %q in namespace %s", id, namespace)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("workflow %q: Temporal did not answer in time: %w", id, err)
	}
	return fmt.Errorf("workflow %q: %w", id, err)
}

// parseArgs parses flags that may come before, between or after the positional arguments
// (`sluice status ID --json` as well as `sluice status --json ID`), and returns the positional
// ones. Everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) (pos []string, ok bool, code int) {
	for {
		if ok, code := parseFlags(fs, args, stderr); !ok {
			return nil, false, code
		}
		rest := fs.Args()
		// The flag package stops at the first non-flag argument, or after a "--" it consumes.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), true, 0
		}
		if len(rest) == 0 {
			return pos, true, 0
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
