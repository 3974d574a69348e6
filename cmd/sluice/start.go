package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.temporal.io/api/serviceerror"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/internal/cli"
)

// startRequest is a workflow that `sluice ingest` or `sluice reindex` starts.
type startRequest struct {
	cmd, kind string // the command and what it starts ("ingest", "backfill")
	opts      client.StartWorkflowOptions
	workflow  string // workflow type name
	input     any
	detail    string // one line on what it moves, such as "s3://b/p -> index logs"
	wait      bool
	asJSON    bool
}

// startWorkflow starts req's workflow and says so. done is true when the command ends here,
// with code: the start failed, or the command does not wait. A running workflow with the same
// id is an error, not something to attach to silently.
func startWorkflow(ctx context.Context, c client.Client, tf *cli.TemporalFlags, req startRequest, stdout, stderr io.Writer) (run client.WorkflowRun, code int, done bool) {
	req.opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	run, err := executeWithSearchAttributes(ctx, c, req, stderr)
	if err != nil {
		id := req.opts.ID
		if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			fmt.Fprintf(stderr, "sluice %s: a workflow with id %q is already running; follow it with 'sluice status %s --wait%s' or choose another --workflow-id\n",
				req.cmd, id, id, tf.HintArgs())
			return nil, exitFailed, true
		}
		fmt.Fprintf(stderr, "sluice %s: starting the %s: %v\n", req.cmd, req.kind, err)
		return nil, exitFailed, true
	}
	warnNoWorker(ctx, c, req.opts.TaskQueue, "the backfill", stderr)
	switch {
	case !req.wait && req.asJSON:
		return run, writeJSON(stdout, stderr, struct {
			WorkflowID string `json:"workflow_id"`
			RunID      string `json:"run_id"`
		}{run.GetID(), run.GetRunID()}), true
	case !req.wait:
		fmt.Fprintf(stdout, "started %s %s (run %s)\n", req.kind, run.GetID(), run.GetRunID())
		fmt.Fprintf(stdout, "  %s, task queue %s\n", req.detail, req.opts.TaskQueue)
		fmt.Fprintf(stdout, "  follow: sluice status %s --wait%s\n", run.GetID(), tf.HintArgs())
		fmt.Fprintf(stdout, "  cancel: sluice cancel %s%s\n", run.GetID(), tf.HintArgs())
		return run, exitOK, true
	case !req.asJSON:
		fmt.Fprintf(stdout, "started %s %s (run %s); Ctrl-C stops following, not the %s\n", req.kind, run.GetID(), run.GetRunID(), req.kind)
	}
	return run, exitOK, false
}

// executeWithSearchAttributes starts req's workflow with its search attributes, or, when the
// namespace does not know them (no sluice worker registered them yet), without, saying so.
func executeWithSearchAttributes(ctx context.Context, c client.Client, req startRequest, stderr io.Writer) (client.WorkflowRun, error) {
	run, err := c.ExecuteWorkflow(ctx, req.opts, req.workflow, req.input)
	var inv *serviceerror.InvalidArgument
	if err == nil || req.opts.TypedSearchAttributes.Size() == 0 || !errors.As(err, &inv) ||
		!strings.Contains(strings.ToLower(inv.Error()), "search attribute") {
		return run, err
	}
	fmt.Fprintf(stderr, "sluice %s: warning: starting without search attributes (%v); 'sluice list --index' will not find this %s\n", req.cmd, err, req.kind)
	opts := req.opts
	opts.TypedSearchAttributes = temporal.NewSearchAttributes()
	return c.ExecuteWorkflow(ctx, opts, req.workflow, req.input)
}
