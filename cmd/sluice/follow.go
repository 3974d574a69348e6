package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/internal/cli"
	"github.com/sluicehq/sluice/workflows"
)

// Timings of following a workflow. The progress poll refreshes the display; closing is
// detected by a long poll on the workflow's result, not by the poll.
const (
	progressPollEvery  = time.Second
	plainProgressEvery = 5 * time.Second  // plain (not a terminal) progress lines, at most this often...
	plainProgressQuiet = time.Minute      // ...and, while nothing changes, only this often
	queryTimeout       = 5 * time.Second  // a running workflow's progress query
	closedQueryTimeout = 3 * time.Second  // a closed one's: a worker must replay it, and may be gone
	detachTimeout      = 10 * time.Second // describing the workflow after an interrupt
)

// follow shows the progress of workflow id, whose source's sizes count unit, on pp until it
// closes, then inspects it. runID "" follows the latest run; continue-as-new is followed
// either way. It returns ctx's error when ctx is done first.
func follow(ctx context.Context, c client.Client, id, runID string, unit sourceUnit, pp *progressPrinter) (*report, error) {
	closed := make(chan error, 1)
	go func() { closed <- c.GetWorkflow(ctx, id, runID).Get(ctx, nil) }()
	tick := time.NewTicker(progressPollEvery)
	defer tick.Stop()
	var last *workflows.Progress
	poll := func() {
		p, run, err := queryLive(ctx, c, id)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		var s *snapshot
		if p != nil {
			last = p
			s = newSnapshot(p, run, unit, now, &pp.meter)
		}
		pp.show(s, err, now)
	}
	poll()
	for {
		select {
		case <-ctx.Done():
			pp.end()
			return nil, ctx.Err()
		case err := <-closed:
			pp.end()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var wee *temporal.WorkflowExecutionError
			if err != nil && !errors.As(err, &wee) {
				return nil, err // a failed call, not the workflow's outcome
			}
			r, err := inspect(ctx, c, id, "")
			if err != nil {
				return nil, err
			}
			if r.Progress == nil && r.Result == nil {
				r.Progress = last
			}
			return r, nil
		case <-tick.C:
			poll()
		}
	}
}

// waitAndReport follows workflow id to its end, prints the report and returns the exit code;
// `sluice ingest --wait` and `sluice status --wait` share it. On SIGINT/SIGTERM it stops
// following, leaves the workflow running, and says how to re-attach.
func waitAndReport(ctx context.Context, c client.Client, tf *cli.TemporalFlags, cmd, id, runID string,
	asJSON, failOnDeadLetters bool, stdout, stderr io.Writer) int {
	r, code := awaitClose(ctx, c, tf, cmd, id, runID, asJSON, stdout, stderr)
	if r == nil {
		return code
	}
	code, why := r.verdict(failOnDeadLetters)
	if asJSON {
		if c := writeJSON(stdout, stderr, r.toJSON()); c != exitOK {
			return c
		}
	} else {
		r.writeText(stdout)
	}
	if why != "" {
		fmt.Fprintf(stderr, "sluice %s: %s\n", cmd, why)
	}
	for _, warning := range r.warnings() {
		fmt.Fprintf(stderr, "sluice %s: %s\n", cmd, warning)
	}
	return code
}

// awaitClose follows workflow id, showing its progress, until it closes, and returns its
// report; or nil and the exit code when following failed or was interrupted (said on stderr).
func awaitClose(ctx context.Context, c client.Client, tf *cli.TemporalFlags, cmd, id, runID string,
	asJSON bool, stdout, stderr io.Writer) (*report, int) {
	progressOut := stdout
	if asJSON {
		progressOut = stderr // stdout holds the JSON object only
	}
	// Describe first: an unknown id fails at once, and a closed workflow needs no following.
	// The latest run, not runID: a backfill that continued as new is still running.
	r, err := inspect(ctx, c, id, "")
	if err == nil && r.Status == statusRunning {
		pp := newProgressPrinter(progressOut)
		pp.taskQueue = r.TaskQueue
		r, err = follow(ctx, c, id, runID, r.unit(), pp)
	}
	if err != nil && ctx.Err() != nil {
		detach(ctx, c, tf, cmd, id, runID, asJSON, stdout, stderr)
		return nil, exitInterrupted
	}
	if err != nil {
		ns := tf.Namespace()
		fmt.Fprintf(stderr, "sluice %s: %v\n", cmd, describeError(id, ns, err))
		return nil, exitFailed
	}
	return r, exitOK
}

// detach says that following stopped and how to re-attach or cancel; with --json it prints the
// workflow's state as it stands, marked detached.
func detach(ctx context.Context, c client.Client, tf *cli.TemporalFlags, cmd, id, runID string,
	asJSON bool, stdout, stderr io.Writer) {
	printDetached(stderr, tf, cmd, id)
	if !asJSON {
		return
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
	defer cancel()
	r, err := inspect(bg, c, id, "")
	if err != nil {
		r = &report{WorkflowID: id, RunID: runID, Status: statusRunning}
	}
	r.Detached = true
	writeJSON(stdout, stderr, r.toJSON())
}

// printDetached says that following workflow id stopped, and how to re-attach or cancel.
func printDetached(stderr io.Writer, tf *cli.TemporalFlags, cmd, id string) {
	fmt.Fprintf(stderr, "sluice %s: stopped following; workflow %s keeps running (it was not canceled)\n", cmd, id)
	fmt.Fprintf(stderr, "  re-attach: sluice status %s --wait%s\n", id, tf.HintArgs())
	fmt.Fprintf(stderr, "  cancel:    sluice cancel %s%s\n", id, tf.HintArgs())
}
