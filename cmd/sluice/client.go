package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/worker"
)

// dialTimeout bounds connecting to Temporal, so that a wrong address fails in seconds instead
// of hanging.
const dialTimeout = 15 * time.Second

// temporalFlags are the Temporal connection flags of the client commands (ingest, status,
// pause, resume, cancel, set-concurrency). Each overrides the environment only when given,
// like the worker's flags in flags.go; the defaults are the worker's.
type temporalFlags struct {
	fs        *flag.FlagSet
	address   string
	namespace string
}

func addTemporalFlags(fs *flag.FlagSet) *temporalFlags {
	f := &temporalFlags{fs: fs}
	fs.StringVar(&f.address, "temporal-address", worker.DefaultTemporalAddress, "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	fs.StringVar(&f.namespace, "namespace", worker.DefaultNamespace, "Temporal namespace (env TEMPORAL_NAMESPACE)")
	return f
}

// resolve returns the address and namespace in force: the flag when given, else the
// environment, else the default.
func (f *temporalFlags) resolve() (address, namespace string) {
	address, namespace = os.Getenv("TEMPORAL_ADDRESS"), os.Getenv("TEMPORAL_NAMESPACE")
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "temporal-address":
			address = f.address
		case "namespace":
			namespace = f.namespace
		}
	})
	if address == "" {
		address = worker.DefaultTemporalAddress
	}
	if namespace == "" {
		namespace = worker.DefaultNamespace
	}
	return address, namespace
}

// hintArgs are the connection flags the user gave, to repeat in a suggested command line.
func (f *temporalFlags) hintArgs() string {
	var b strings.Builder
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "temporal-address" || fl.Name == "namespace" {
			fmt.Fprintf(&b, " --%s %s", fl.Name, fl.Value.String())
		}
	})
	return b.String()
}

// dial connects to Temporal. The SDK's own logs go to stderr at warn and above.
func (f *temporalFlags) dial(ctx context.Context, stderr io.Writer) (client.Client, error) {
	address, namespace := f.resolve()
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	opts := client.Options{
		HostPort:  address,
		Namespace: namespace,
		Logger:    worker.SDKLogger(slog.New(slog.NewTextHandler(stderr, nil)), slog.LevelWarn),
	}
	if err := worker.TemporalSecurity(&opts); err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to Temporal at %s (namespace %s): %w", address, namespace, err)
	}
	return c, nil
}

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
