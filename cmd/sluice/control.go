package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/internal/cli"
	"github.com/sluicehq/sluice/workflows"
)

func init() {
	register("pause", "stop starting chunks of a backfill (running chunks finish)", runPause)
	register("resume", "start chunks of a paused backfill again", runResume)
	register("cancel", "cancel a backfill: running chunks stop at a checkpoint", runCancel)
	register("set-concurrency", "change how many chunks of a backfill run at once", runSetConcurrency)
}

// confirmTimeout bounds how long a signal command watches the progress query for the change it
// asked for. Not seeing it is not an error: the signal is recorded in the history and the
// workflow applies it on its next workflow task, which may wait for a worker.
const confirmTimeout = 5 * time.Second

// control is what the control commands share: flags, the workflow id, a client.
type control struct {
	name   string // command name
	fs     *flag.FlagSet
	tf     *cli.TemporalFlags
	asJSON *bool
	pos    []string
	stdout io.Writer
	stderr io.Writer
}

func newControl(name, usage string, stdout, stderr io.Writer) *control {
	fs := flag.NewFlagSet("sluice "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return &control{
		name: name, fs: fs, tf: addTemporalFlags(fs),
		asJSON: fs.Bool("json", false, "print one JSON object instead of text"),
		stdout: stdout, stderr: stderr,
	}
}

// parse parses args, which must hold nargs positional arguments.
func (k *control) parse(args []string, nargs int, what string) (ok bool, code int) {
	pos, ok, code := parseArgs(k.fs, args, k.stderr)
	if !ok {
		return false, code
	}
	if len(pos) != nargs {
		return false, usageError(k.stderr, k.name, fmt.Errorf("want %s, got %d arguments (see sluice %s -h)", what, len(pos), k.name))
	}
	k.pos = pos
	return true, 0
}

func (k *control) fail(err error) int {
	fmt.Fprintf(k.stderr, "sluice %s: %v\n", k.name, err)
	return exitFailed
}

// running connects and checks that id is a running backfill, so that a typo or a finished
// workflow is an error rather than a signal into the void.
func (k *control) running(ctx context.Context, id string) (client.Client, error) {
	c, err := k.tf.Dial(ctx, k.stderr)
	if err != nil {
		return nil, err
	}
	resp, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		c.Close()
		ns := k.tf.Namespace()
		return nil, describeError(id, ns, err)
	}
	info := resp.GetWorkflowExecutionInfo()
	if t := info.GetType().GetName(); t != workflows.BackfillName {
		c.Close()
		return nil, fmt.Errorf("workflow %q is a %s, not a %s", id, t, workflows.BackfillName)
	}
	if s := statusName(info.GetStatus()); s != statusRunning {
		c.Close()
		return nil, fmt.Errorf("backfill %q is not running: it is %s", id, s)
	}
	return c, nil
}

// signal sends a signal with arg to the latest run of backfill id, then watches the progress
// query up to confirmTimeout until done(progress) holds, and reports.
func (k *control) signal(ctx context.Context, id, signal string, arg any, done func(*workflows.Progress) bool,
	did, pending func(*workflows.Progress) string) int {
	c, err := k.running(ctx, id)
	if err != nil {
		return k.fail(err)
	}
	defer c.Close()
	if err := c.SignalWorkflow(ctx, id, "", signal, arg); err != nil {
		ns := k.tf.Namespace()
		return k.fail(describeError(id, ns, err))
	}
	p := confirm(ctx, c, id, done)
	confirmed := p != nil && done(p)
	if *k.asJSON {
		out := struct {
			WorkflowID string        `json:"workflow_id"`
			Signal     string        `json:"signal"`
			Arg        any           `json:"arg,omitempty"`
			Confirmed  bool          `json:"confirmed"` // the progress query showed the change
			Progress   *progressJSON `json:"progress,omitempty"`
		}{WorkflowID: id, Signal: signal, Arg: arg, Confirmed: confirmed}
		if p != nil {
			out.Progress = (&report{Progress: p}).toJSON().Progress
		}
		return writeJSON(k.stdout, k.stderr, out)
	}
	if confirmed {
		fmt.Fprintf(k.stdout, "%s: %s\n", id, did(p))
	} else {
		fmt.Fprintf(k.stdout, "%s: %s\n", id, pending(p))
	}
	return exitOK
}

// confirm polls the progress query until done holds or confirmTimeout passes, and returns the
// last answer (nil if none).
func confirm(ctx context.Context, c client.Client, id string, done func(*workflows.Progress) bool) *workflows.Progress {
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	var last *workflows.Progress
	for {
		if p, err := queryProgress(ctx, c, id, "", confirmTimeout); err == nil {
			last = p
			if done(p) {
				return p
			}
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func runPause(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("pause", `usage: sluice pause WORKFLOW-ID [flags]

Pauses a backfill: no new chunk starts; running chunks finish. Undo with 'sluice resume'.

`, stdout, stderr)
	if ok, code := k.parse(args, 1, "one workflow id"); !ok {
		return code
	}
	id := k.pos[0]
	return k.signal(ctx, id, workflows.PauseSignal, nil,
		func(p *workflows.Progress) bool { return p.Paused },
		func(p *workflows.Progress) string {
			return fmt.Sprintf("paused; no new chunk starts, %d running chunks finish. Resume with: sluice resume %s%s", p.ChunksRunning, id, k.tf.HintArgs())
		},
		func(*workflows.Progress) string {
			return "pause requested; the workflow applies it on its next task (check with: sluice status " + id + k.tf.HintArgs() + ")"
		})
}

func runResume(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("resume", `usage: sluice resume WORKFLOW-ID [flags]

Resumes a paused backfill: chunks start again, up to its concurrency.

`, stdout, stderr)
	if ok, code := k.parse(args, 1, "one workflow id"); !ok {
		return code
	}
	id := k.pos[0]
	return k.signal(ctx, id, workflows.ResumeSignal, nil,
		func(p *workflows.Progress) bool { return !p.Paused },
		func(p *workflows.Progress) string {
			return fmt.Sprintf("resumed; up to %d chunks run at once", p.Concurrency)
		},
		func(*workflows.Progress) string {
			return "resume requested; the workflow applies it on its next task (check with: sluice status " + id + k.tf.HintArgs() + ")"
		})
}

func runSetConcurrency(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("set-concurrency", fmt.Sprintf(`usage: sluice set-concurrency WORKFLOW-ID N [flags]

Sets how many chunks of a backfill run at once (1 to %d). Lowering it stops nothing: the
window shrinks as running chunks finish.

`, workflows.MaxConcurrency), stdout, stderr)
	if ok, code := k.parse(args, 2, "a workflow id and a number"); !ok {
		return code
	}
	id := k.pos[0]
	n, err := strconv.Atoi(k.pos[1])
	if err != nil || n < 1 || n > workflows.MaxConcurrency {
		return usageError(stderr, k.name, fmt.Errorf("concurrency %q: want a whole number from 1 to %d", k.pos[1], workflows.MaxConcurrency))
	}
	return k.signal(ctx, id, workflows.SetConcurrencySignal, n,
		func(p *workflows.Progress) bool { return p.Concurrency == n },
		func(p *workflows.Progress) string {
			return fmt.Sprintf("concurrency set to %d (%d chunks running now)", n, p.ChunksRunning)
		},
		func(*workflows.Progress) string {
			return fmt.Sprintf("concurrency %d requested; the workflow applies it on its next task (check with: sluice status %s%s)", n, id, k.tf.HintArgs())
		})
}

// runCancel requests cancellation: the backfill stops starting chunks, cancels the running
// ones (they stop at a checkpoint) and closes as canceled. With --wait it follows the backfill
// until it has closed, and exits 0 only if it closed as canceled.
func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("cancel", `usage: sluice cancel WORKFLOW-ID [flags]

Cancels a backfill: no new chunk starts and running chunks stop at a checkpoint; then the
workflow closes as canceled. Records indexed so far stay indexed. With --wait, follows it
until it has closed; exits 0 if it closed as canceled, 1 otherwise (for example when it
completed first).

`, stdout, stderr)
	wait := k.fs.Bool("wait", false, "wait until the backfill has closed")
	if ok, code := k.parse(args, 1, "one workflow id"); !ok {
		return code
	}
	id := k.pos[0]
	c, err := k.running(ctx, id)
	if err != nil {
		return k.fail(err)
	}
	defer c.Close()
	if err := c.CancelWorkflow(ctx, id, ""); err != nil {
		ns := k.tf.Namespace()
		return k.fail(describeError(id, ns, err))
	}
	if !*wait {
		if *k.asJSON {
			return writeJSON(stdout, stderr, struct {
				WorkflowID string `json:"workflow_id"`
				Canceled   string `json:"cancel"`
			}{id, "requested"})
		}
		fmt.Fprintf(stdout, "%s: cancellation requested; running chunks stop at a checkpoint, then it closes as canceled (follow with: sluice status %s --wait%s)\n",
			id, id, k.tf.HintArgs())
		return exitOK
	}
	if !*k.asJSON {
		fmt.Fprintf(stdout, "%s: cancellation requested; waiting for running chunks to stop\n", id)
	}
	progressOut := stdout
	if *k.asJSON {
		progressOut = stderr
	}
	r, err := follow(ctx, c, id, "", newProgressPrinter(progressOut))
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "sluice cancel: stopped waiting; the cancellation stands (follow with: sluice status %s --wait%s)\n", id, k.tf.HintArgs())
			return exitInterrupted
		}
		ns := k.tf.Namespace()
		return k.fail(describeError(id, ns, err))
	}
	if *k.asJSON {
		if code := writeJSON(stdout, stderr, r.toJSON()); code != exitOK {
			return code
		}
	} else {
		r.writeText(stdout)
	}
	if r.Status != statusCanceled {
		return k.fail(errors.New("backfill " + id + " closed as " + r.Status + " before the cancellation took effect"))
	}
	return exitOK
}
