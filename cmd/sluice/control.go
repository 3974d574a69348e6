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

// runIDUsage ends the usage of pause, resume, set-concurrency and cancel.
const runIDUsage = `The id of a schedule's run ('sluice schedule describe' lists them) works too: for an ingest
run the command acts on its backfill <id>-backfill (said on stderr); cancel cancels the run,
and with it its backfill. A reindex (a reindex schedule's run is one) takes cancel only.

`

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

// target is the workflow a control command acts on (resolveRun's answer).
type target struct {
	id     string // the workflow signaled, canceled or followed
	run    string // the scheduled ingest run the user named, which runs backfill id; "" when none
	typ    string // id's workflow type
	source string // id's memo's source: the unit of its progress
}

// running connects, resolves id (resolveRun: a scheduled ingest run's backfill), and checks
// that the workflow is running and that accept takes its type, so that a typo or a finished
// workflow is an error rather than a signal into the void.
func (k *control) running(ctx context.Context, id string, accept func(t target) error) (client.Client, target, error) {
	c, err := k.tf.Dial(ctx, k.stderr)
	if err != nil {
		return nil, target{}, err
	}
	t, err := k.describe(ctx, c, id, accept)
	if err != nil {
		c.Close()
		return nil, target{}, err
	}
	return c, t, nil
}

func (k *control) describe(ctx context.Context, c client.Client, id string, accept func(t target) error) (target, error) {
	doing := "acting on"
	if k.name == "cancel" {
		doing = "canceling it cancels"
	}
	t := target{}
	var scheduled bool
	t.id, scheduled = resolveRun(ctx, c, k.name, id, doing, k.stderr)
	if scheduled && t.id != id {
		t.run = id
	}
	resp, err := c.DescribeWorkflowExecution(ctx, t.id, "")
	if err != nil {
		return t, describeError(t.id, k.tf.Namespace(), err)
	}
	info := resp.GetWorkflowExecutionInfo()
	t.typ, t.source = info.GetType().GetName(), memoStrings(info.GetMemo())[memoSource]
	if err := accept(t); err != nil {
		return t, err
	}
	if s := statusName(info.GetStatus()); s != statusRunning {
		return t, fmt.Errorf("%s %q is not running: it is %s", kindOf(t.typ), t.id, s)
	}
	return t, nil
}

// kindOf names a workflow type for a person.
func kindOf(typ string) string {
	switch {
	case typ == workflows.BackfillName:
		return "backfill"
	case isReindex(typ):
		return "reindex"
	case typ == workflows.ScheduledBackfillName:
		return "scheduled run"
	}
	return "workflow"
}

// takesSignals accepts a backfill: the only workflow with pause, resume and set-concurrency
// signals. A reindex (a scheduled reindex run is one) takes none of them; its load does.
func (k *control) takesSignals(t target) error {
	switch {
	case t.typ == workflows.BackfillName:
		return nil
	case isReindex(t.typ):
		load := t.id + workflows.ReindexChildSuffix
		if k.name == "set-concurrency" {
			load += " N"
		}
		return fmt.Errorf("workflow %q is a reindex (%s), which takes no pause, resume or set-concurrency signal, only cancel; "+
			"while it loads, its backfill does: sluice %s %s%s", t.id, t.typ, k.name, load, k.tf.HintArgs())
	}
	return fmt.Errorf("workflow %q is a %s, not a %s", t.id, t.typ, workflows.BackfillName)
}

// cancelable accepts a backfill, a reindex, and a scheduled ingest run that has not started
// its backfill.
func cancelable(t target) error {
	if t.typ == workflows.BackfillName || isReindex(t.typ) || t.typ == workflows.ScheduledBackfillName {
		return nil
	}
	return fmt.Errorf("workflow %q is a %s, not a %s or a reindex", t.id, t.typ, workflows.BackfillName)
}

// signal sends a signal with arg to the latest run of the backfill id names, then watches the
// progress query up to confirmTimeout until done(progress) holds, and reports.
func (k *control) signal(ctx context.Context, id, signal string, arg any, done func(*workflows.Progress) bool,
	did, pending func(*workflows.Progress) string) int {
	c, t, err := k.running(ctx, id, k.takesSignals)
	if err != nil {
		return k.fail(err)
	}
	defer c.Close()
	if err := c.SignalWorkflow(ctx, t.id, "", signal, arg); err != nil {
		ns := k.tf.Namespace()
		return k.fail(describeError(t.id, ns, err))
	}
	p := confirm(ctx, c, t.id, done)
	confirmed := p != nil && done(p)
	if *k.asJSON {
		out := struct {
			WorkflowID   string        `json:"workflow_id"`             // the backfill signaled
			ScheduledRun string        `json:"scheduled_run,omitempty"` // the scheduled run named, which runs it
			Signal       string        `json:"signal"`
			Arg          any           `json:"arg,omitempty"`
			Confirmed    bool          `json:"confirmed"` // the progress query showed the change
			Progress     *progressJSON `json:"progress,omitempty"`
		}{WorkflowID: t.id, ScheduledRun: t.run, Signal: signal, Arg: arg, Confirmed: confirmed}
		if p != nil {
			out.Progress = (&report{Progress: p, Source: t.source}).toJSON().Progress
		}
		return writeJSON(k.stdout, k.stderr, out)
	}
	if confirmed {
		fmt.Fprintf(k.stdout, "%s: %s\n", t.id, did(p))
	} else {
		fmt.Fprintf(k.stdout, "%s: %s\n", t.id, pending(p))
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

`+runIDUsage, stdout, stderr)
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

`+runIDUsage, stdout, stderr)
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

`, workflows.MaxConcurrency)+runIDUsage, stdout, stderr)
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
// ones (they stop at a checkpoint) and closes as canceled; a scheduled run's id cancels the run
// and its backfill; a reindex before its swap closes canceled with the alias untouched. With
// --wait it follows the backfill (or reindex) until it has closed, and exits 0 only if it
// closed as canceled.
func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("cancel", `usage: sluice cancel WORKFLOW-ID [flags]

Cancels a backfill: no new chunk starts and running chunks stop at a checkpoint; then the
workflow closes as canceled. Records indexed so far stay indexed. With --wait, follows it
until it has closed; exits 0 if it closed as canceled, 1 otherwise (for example when it
completed first).

`+runIDUsage, stdout, stderr)
	wait := k.fs.Bool("wait", false, "wait until the backfill has closed")
	if ok, code := k.parse(args, 1, "one workflow id"); !ok {
		return code
	}
	id := k.pos[0]
	c, t, err := k.running(ctx, id, cancelable)
	if err != nil {
		return k.fail(err)
	}
	defer c.Close()
	canceled := t.id
	if t.run != "" {
		canceled = t.run // its backfill with it, and the run closes canceled rather than failed
	}
	if err := c.CancelWorkflow(ctx, canceled, ""); err != nil {
		ns := k.tf.Namespace()
		return k.fail(describeError(canceled, ns, err))
	}
	if !*wait {
		if *k.asJSON {
			backfill := ""
			if t.run != "" {
				backfill = t.id
			}
			return writeJSON(stdout, stderr, struct {
				WorkflowID string `json:"workflow_id"`
				Canceled   string `json:"cancel"`
				Backfill   string `json:"backfill_workflow_id,omitempty"` // a scheduled run's backfill, canceled with it
			}{canceled, "requested", backfill})
		}
		fmt.Fprintf(stdout, "%s: cancellation requested; running chunks stop at a checkpoint, then it closes as canceled (follow with: sluice status %s --wait%s)\n",
			canceled, id, k.tf.HintArgs())
		return exitOK
	}
	if !*k.asJSON {
		fmt.Fprintf(stdout, "%s: cancellation requested; waiting for running chunks to stop\n", canceled)
	}
	progressOut := stdout
	if *k.asJSON {
		progressOut = stderr
	}
	status, err := k.followCanceled(ctx, c, t, newProgressPrinter(progressOut))
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "sluice cancel: stopped waiting; the cancellation stands (follow with: sluice status %s --wait%s)\n", id, k.tf.HintArgs())
			return exitInterrupted
		}
		ns := k.tf.Namespace()
		return k.fail(describeError(t.id, ns, err))
	}
	if status != statusCanceled {
		return k.fail(fmt.Errorf("%s %s closed as %s before the cancellation took effect", kindOf(t.typ), t.id, status))
	}
	return exitOK
}

// followCanceled follows t (a backfill or a reindex) until it closes, prints its report and
// returns its status.
func (k *control) followCanceled(ctx context.Context, c client.Client, t target, pp *progressPrinter) (string, error) {
	if isReindex(t.typ) {
		r, err := followReindex(ctx, c, t.id, pp)
		if err != nil {
			return "", err
		}
		if code := r.write(k.stdout, k.stderr, *k.asJSON); code != exitOK {
			return "", errors.New("writing the report failed")
		}
		return r.Status, nil
	}
	var r *report
	var err error
	if t.typ == workflows.BackfillName {
		r, err = follow(ctx, c, t.id, "", unitOf(t.source), pp)
	} else { // a scheduled run that has not started its backfill: no progress to show
		if err = c.GetWorkflow(ctx, t.id, "").Get(ctx, nil); ctx.Err() == nil {
			r, err = inspect(ctx, c, t.id, "")
		}
	}
	if err != nil {
		return "", err
	}
	if *k.asJSON {
		if code := writeJSON(k.stdout, k.stderr, r.toJSON()); code != exitOK {
			return "", errors.New("writing the report failed")
		}
	} else {
		r.writeText(k.stdout)
	}
	return r.Status, nil
}
