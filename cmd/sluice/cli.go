package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/sluicehq/sluice/internal/cli"
)

// Exit codes (see internal/cli).
const (
	exitOK          = cli.ExitOK
	exitFailed      = cli.ExitFailed
	exitUsage       = cli.ExitUsage
	exitPartial     = cli.ExitPartial
	exitInterrupted = cli.ExitInterrupted
)

// Shared with sluice-dev, in internal/cli.
var (
	parseFlags       = cli.ParseFlags
	usageError       = cli.UsageError
	addWorkerFlags   = cli.AddWorkerFlags
	addTemporalFlags = cli.AddTemporalFlags
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) int) {
	commands[name] = command{summary, run}
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd, ok, code := pick(commands, args, "sluice: unknown command", usage, stderr)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cmd.run(ctx, args[1:], stdout, stderr)
}

// pick returns the command of cmds that args[0] names. Without one (no arguments, help, an
// unknown name) it prints usage and returns false with the exit code.
func pick(cmds map[string]command, args []string, unknown string, usage func(io.Writer), stderr io.Writer) (command, bool, int) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return command{}, false, exitUsage
		}
		return command{}, false, exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s %q\n\n", unknown, args[0])
		usage(stderr)
		return command{}, false, exitUsage
	}
	return cmd, true, 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sluice <command> [flags]\n\ncommands:")
	listCommands(w, commands, 16)
	fmt.Fprintln(w, "\nRun 'sluice <command> -h' for the flags of a command.")
}

// listCommands prints the names and summaries of cmds, sorted, the names padded to width.
func listCommands(w io.Writer, cmds map[string]command, width int) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s %s\n", width, n, cmds[n].summary)
	}
}
