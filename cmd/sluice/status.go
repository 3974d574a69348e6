package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/workflows"
)

func init() {
	register("status", "show a backfill: progress while it runs, result or failure once closed", runStatus)
}

// runStatus prints what is known of one workflow. Without --wait it exits 0 whenever it could
// say (the outcome is in the output); with --wait it follows the workflow to its end and exits
// with its outcome, exactly like `sluice ingest --wait`, of which it is the re-attach.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice status", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice status WORKFLOW-ID [flags]

Shows a backfill or a reindex: its progress while it runs (the progress query), its result or
its failure once closed. With --wait, follows it until it closes and exits with its outcome,
as 'sluice ingest --wait' does: 0 success, 1 failed/canceled/terminated, 3 partial, 130 when
interrupted (the workflow keeps running).

The id of a schedule's run ('sluice schedule describe' lists them) shows the run's backfill
(<id>-backfill, said on stderr) or, for a reindex schedule, the reindex and its load.

`)
		fs.PrintDefaults()
	}
	tf := addTemporalFlags(fs)
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	wait := fs.Bool("wait", false, "follow the backfill until it closes, showing progress, and exit with its outcome")
	failOnDL := fs.Bool("fail-on-dead-letters", false, "with --wait: exit 3 when records were dead-lettered")
	pos, ok, code := parseArgs(fs, args, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, "status", fmt.Errorf("want one workflow id, got %d arguments (see sluice status -h)", len(pos)))
	}
	id := pos[0]
	c, err := tf.Dial(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice status: %v\n", err)
		return exitFailed
	}
	defer c.Close()
	id, _ = resolveRun(ctx, c, "status", id, "showing", stderr)
	if code, ok := statusReindex(ctx, c, tf, id, *wait, *asJSON, *failOnDL, stdout, stderr); ok {
		return code
	}
	if *wait {
		return waitAndReport(ctx, c, tf, "status", id, "", *asJSON, *failOnDL, stdout, stderr)
	}
	r, err := inspect(ctx, c, id, "")
	if err != nil {
		ns := tf.Namespace()
		fmt.Fprintf(stderr, "sluice status: %v\n", describeError(id, ns, err))
		return exitFailed
	}
	if *asJSON {
		return writeJSON(stdout, stderr, r.toJSON())
	}
	r.writeText(stdout)
	return exitOK
}

// childWaitTimeout bounds how long a command waits for a running scheduled run to start its
// backfill (it does so in its first workflow task, so only a worker backlog delays it).
const childWaitTimeout = 10 * time.Second

// resolveRun is the one place that turns the id a user gave into the workflow a command acts
// on: for a scheduled ingest run (ScheduledBackfill), the backfill it runs
// (ScheduledBackfillChildID), which answers the progress query, holds the counts and takes the
// signals; id itself otherwise (a scheduled reindex run is the reindex), or when that run has
// no backfill (it failed before starting it). When it resolves, it says so on stderr:
// "sluice CMD: ID is a scheduled run; DOING its backfill CHILD". scheduled reports whether id
// is a scheduled ingest run.
func resolveRun(ctx context.Context, c client.Client, cmd, id, doing string, stderr io.Writer) (target string, scheduled bool) {
	resp, err := c.DescribeWorkflowExecution(ctx, id, "")
	info := resp.GetWorkflowExecutionInfo()
	if err != nil || info.GetType().GetName() != workflows.ScheduledBackfillName {
		return id, false
	}
	child := workflows.ScheduledBackfillChildID(id)
	wait := time.NewTimer(childWaitTimeout)
	defer wait.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := c.DescribeWorkflowExecution(ctx, child, ""); err == nil {
			fmt.Fprintf(stderr, "sluice %s: %s is a scheduled run; %s its backfill %s\n", cmd, id, doing, child)
			return child, true
		}
		if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return id, true
		}
		select {
		case <-ctx.Done():
			return id, true
		case <-wait.C:
			return id, true
		case <-tick.C:
		}
	}
}
