package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicehq/sluice/ingest/essource"
	"github.com/sluicehq/sluice/internal/cli"
	"github.com/sluicehq/sluice/workflows"
)

// planTimeout bounds a plan: the listing of a very large prefix, a page at a time.
const planTimeout = time.Hour

// defaultPlanWait is how long `ingest --plan` waits for the plan (--plan-wait).
const defaultPlanWait = 5 * time.Minute

// planRequest is one `ingest --plan`: the backfill to plan, the plan workflow's id and task
// queue, and how long to wait for it.
type planRequest struct {
	in        workflows.BackfillInput
	id        string
	taskQueue string
	wait      time.Duration
}

// runPlan is `sluice ingest --plan`: it runs PlanWorkflow on the workers (which hold the S3
// credentials) and prints what a backfill of in would load, without loading anything.
func runPlan(ctx context.Context, c client.Client, tf *cli.TemporalFlags, req planRequest, asJSON bool, stdout, stderr io.Writer) int {
	in := req.in
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       req.id,
		TaskQueue:                req.taskQueue,
		WorkflowExecutionTimeout: planTimeout,
		Memo:                     map[string]any{memoSource: in.Source.URI, memoIndex: in.Source.Index},
	}, workflows.PlanName, workflows.PlanInput{Backfill: in})
	if err != nil {
		fmt.Fprintf(stderr, "sluice ingest --plan: starting the plan: %v\n", err)
		return exitFailed
	}
	warnNoWorker(ctx, c, req.taskQueue, "the plan", stderr)
	p, err := awaitPlan(ctx, c, run, req.wait)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			fmt.Fprintf(stderr, "sluice ingest --plan: interrupted; the plan %s stops within %s%s\n", req.id, planTimeout, tf.HintArgs())
			return exitInterrupted
		case errors.Is(err, errPlanNotTaken):
			fmt.Fprintf(stderr, "sluice ingest --plan: no worker took up the plan in %s; canceled it: %s\n", req.wait, workerHint(req.taskQueue))
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Fprintf(stderr, "sluice ingest --plan: the plan still lists the source after %s; canceled it (wait longer with --plan-wait)\n", req.wait)
		default:
			fmt.Fprintf(stderr, "sluice ingest --plan: %v\n", describeError(req.id, tf.Namespace(), err))
		}
		return exitFailed
	}
	est := workflows.EstimateOf(in, p)
	switch {
	case essource.Is(in.Source.URI) && asJSON:
		return writeJSON(stdout, stderr, indexPlanOf(in, p, est))
	case essource.Is(in.Source.URI):
		writeIndexPlan(stdout, in, p, est)
	case asJSON:
		return writeJSON(stdout, stderr, planOf(in, p, est))
	default:
		writePlan(stdout, in, p, est)
	}
	return exitOK
}

// errPlanNotTaken: the wait for a plan ran out before any worker took its first task.
var errPlanNotTaken = errors.New("no worker took up the plan")

// awaitPlan waits at most wait for run's plan. When the wait runs out it cancels the plan (it
// would only run on, for nobody), and returns errPlanNotTaken when no worker took it up, else
// context.DeadlineExceeded.
func awaitPlan(ctx context.Context, c client.Client, run client.WorkflowRun, wait time.Duration) (workflows.PlanResult, error) {
	var p workflows.PlanResult
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := run.Get(waitCtx, &p)
	if err == nil || ctx.Err() != nil || !waitRanOut(waitCtx, err) {
		return p, err
	}
	bg, cancelBg := context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
	defer cancelBg()
	resp, derr := c.DescribeWorkflowExecution(bg, run.GetID(), run.GetRunID())
	_ = c.CancelWorkflow(bg, run.GetID(), run.GetRunID())
	// A plan no worker took has two events: started, and its first task scheduled.
	if derr == nil && resp.GetWorkflowExecutionInfo().GetHistoryLength() <= 2 {
		return p, errPlanNotTaken
	}
	return p, context.DeadlineExceeded
}

// waitRanOut reports whether err ended a call made with waitCtx because its deadline passed.
// The server can answer DEADLINE_EXCEEDED a moment before the local context marks itself done
// (gRPC sends the time left, which the server counts from its receipt), so its code counts too.
func waitRanOut(waitCtx context.Context, err error) bool {
	var dl *serviceerror.DeadlineExceeded
	return waitCtx.Err() != nil || errors.As(err, &dl) || status.Code(err) == codes.DeadlineExceeded
}

// writePlan prints a plan for a person.
func writePlan(w io.Writer, in workflows.BackfillInput, p workflows.PlanResult, est workflows.Estimate) {
	line := planLines(w, in)
	line("objects", "%s (%s empty), %s, format %s", commas(p.Objects), commas(p.Empty), humanBytes(p.Bytes), p.Format)
	line("chunks", "%s (chunk size %s; compressed objects are one chunk each)", commas(p.Chunks), humanBytes(p.ChunkSize))
	for _, comp := range slices.Sorted(maps.Keys(p.ByCompression)) {
		g := p.ByCompression[comp]
		line("  "+comp, "%s objects, %s chunks, %s", commas(g.Objects), commas(g.Chunks), humanBytes(g.Bytes))
	}
	for i, o := range p.Largest {
		label := ""
		if i == 0 {
			label = "largest"
		}
		line(label, "%s: %s, %s chunks, %s", o.Key, humanBytes(o.Size), commas(o.Chunks), o.Compression)
	}
	writeEstimate(line, in, est)
}

// planLines returns the line printer of a plan, after printing its first line.
func planLines(w io.Writer, in workflows.BackfillInput) textLine {
	line := textLine(func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-12s %s\n", label, fmt.Sprintf(format, args...))
	})
	line("plan", "%s -> index %s (nothing was loaded)", in.Source.URI, in.Source.Index)
	return line
}

// writeEstimate prints the estimate line of a plan.
func writeEstimate(line textLine, in workflows.BackfillInput, est workflows.Estimate) {
	line("estimate", "%s activities; %s waves of %d chunks at once (--concurrency); %s workflow runs (continue-as-new)",
		commas(est.Activities), commas(est.Waves), in.Concurrency, commas(est.Runs))
}

// writeIndexPlan prints the plan of an es:// source for a person: its slices (one chunk per
// primary shard of each concrete index) and their documents.
func writeIndexPlan(w io.Writer, in workflows.BackfillInput, p workflows.PlanResult, est workflows.Estimate) {
	line := planLines(w, in)
	query := "every document"
	if len(in.Source.Query) > 0 {
		query = "those --query matches"
	}
	line("indices", "%s concrete, %s slices (one chunk per primary shard)", commas(p.Objects), commas(p.Chunks))
	line("documents", "%s (%s)", commas(p.Documents), query)
	for i, s := range p.Slices {
		label := ""
		if i == 0 {
			label = "slices"
		}
		line(label, "%s shard %d: %s documents", s.Index, s.Shard, commas(s.Documents))
	}
	if p.SlicesLeftOut > 0 {
		line("", "and %s more slices", commas(p.SlicesLeftOut))
	}
	writeEstimate(line, in, est)
}

type (
	planJSON struct {
		Source        string                   `json:"source"`
		Index         string                   `json:"index"`
		Objects       int64                    `json:"objects"`
		EmptyObjects  int64                    `json:"empty_objects"`
		Chunks        int64                    `json:"chunks"`
		Bytes         int64                    `json:"bytes"`
		Format        string                   `json:"format"`
		ChunkSize     int64                    `json:"chunk_size"`
		ByCompression map[string]planGroupJSON `json:"by_compression"`
		Largest       []plannedObjectJSON      `json:"largest"`
		Estimate      estimateJSON             `json:"estimate"`
	}
	planGroupJSON struct {
		Objects int64 `json:"objects"`
		Chunks  int64 `json:"chunks"`
		Bytes   int64 `json:"bytes"`
	}
	plannedObjectJSON struct {
		Key         string `json:"key"`
		Size        int64  `json:"size"`
		Chunks      int64  `json:"chunks"`
		Compression string `json:"compression"`
	}
	estimateJSON struct {
		Activities  int64 `json:"activities"`
		Waves       int64 `json:"waves"`
		Concurrency int   `json:"concurrency"`
		Runs        int64 `json:"workflow_runs"`
	}
)

type (
	indexPlanJSON struct {
		Source        string          `json:"source"`
		Index         string          `json:"index"`
		Indices       int64           `json:"indices"`
		Chunks        int64           `json:"chunks"`
		Documents     int64           `json:"documents"`
		Slices        []planSliceJSON `json:"slices"`
		SlicesLeftOut int64           `json:"slices_left_out"`
		Estimate      estimateJSON    `json:"estimate"`
	}
	planSliceJSON struct {
		Index     string `json:"index"`
		Shard     int    `json:"shard"`
		Documents int64  `json:"documents"`
	}
)

// indexPlanOf is the --json plan of an es:// source.
func indexPlanOf(in workflows.BackfillInput, p workflows.PlanResult, est workflows.Estimate) indexPlanJSON {
	j := indexPlanJSON{
		Source: in.Source.URI, Index: in.Source.Index, Indices: p.Objects, Chunks: p.Chunks, Documents: p.Documents,
		Slices: []planSliceJSON{}, SlicesLeftOut: p.SlicesLeftOut, Estimate: estimateOf(in, est),
	}
	for _, s := range p.Slices {
		j.Slices = append(j.Slices, planSliceJSON{Index: s.Index, Shard: s.Shard, Documents: s.Documents})
	}
	return j
}

func estimateOf(in workflows.BackfillInput, est workflows.Estimate) estimateJSON {
	return estimateJSON{Activities: est.Activities, Waves: est.Waves, Concurrency: in.Concurrency, Runs: est.Runs}
}

func planOf(in workflows.BackfillInput, p workflows.PlanResult, est workflows.Estimate) planJSON {
	j := planJSON{
		Source: in.Source.URI, Index: in.Source.Index, Objects: p.Objects, EmptyObjects: p.Empty, Chunks: p.Chunks,
		Bytes: p.Bytes, Format: p.Format, ChunkSize: p.ChunkSize, ByCompression: map[string]planGroupJSON{},
		Largest:  []plannedObjectJSON{},
		Estimate: estimateOf(in, est),
	}
	for k, g := range p.ByCompression {
		j.ByCompression[k] = planGroupJSON{Objects: g.Objects, Chunks: g.Chunks, Bytes: g.Bytes}
	}
	for _, o := range p.Largest {
		j.Largest = append(j.Largest, plannedObjectJSON{Key: o.Key, Size: o.Size, Chunks: o.Chunks, Compression: o.Compression})
	}
	return j
}
