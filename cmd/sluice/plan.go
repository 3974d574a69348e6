package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/internal/cli"
	"github.com/sluicehq/sluice/workflows"
)

// planTimeout bounds a plan: the listing of a very large prefix, a page at a time.
const planTimeout = time.Hour

// runPlan is `sluice ingest --plan`: it runs PlanWorkflow on the workers (which hold the S3
// credentials) and prints what a backfill of in would load, without loading anything.
func runPlan(ctx context.Context, c client.Client, tf *cli.TemporalFlags, in workflows.BackfillInput, id, taskQueue string,
	asJSON bool, stdout, stderr io.Writer) int {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                taskQueue,
		WorkflowExecutionTimeout: planTimeout,
		Memo:                     map[string]any{memoSource: in.Source.URI, memoIndex: in.Source.Index},
	}, workflows.PlanName, workflows.PlanInput{Backfill: in})
	if err != nil {
		fmt.Fprintf(stderr, "sluice ingest --plan: starting the plan: %v\n", err)
		return exitFailed
	}
	warnNoWorker(ctx, c, taskQueue, stderr)
	var p workflows.PlanResult
	if err := run.Get(ctx, &p); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "sluice ingest --plan: interrupted; the plan %s stops within %s%s\n", id, planTimeout, tf.HintArgs())
			return exitInterrupted
		}
		fmt.Fprintf(stderr, "sluice ingest --plan: %v\n", describeError(id, tf.Namespace(), err))
		return exitFailed
	}
	est := workflows.EstimateOf(in, p)
	if asJSON {
		return writeJSON(stdout, stderr, planOf(in, p, est))
	}
	writePlan(stdout, in, p, est)
	return exitOK
}

// writePlan prints a plan for a person.
func writePlan(w io.Writer, in workflows.BackfillInput, p workflows.PlanResult, est workflows.Estimate) {
	line := textLine(func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-12s %s\n", label, fmt.Sprintf(format, args...))
	})
	line("plan", "%s -> index %s (nothing was loaded)", in.Source.URI, in.Source.Index)
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
	line("estimate", "%s activities; %s waves of %d chunks at once (--concurrency); %s workflow runs (continue-as-new)",
		commas(est.Activities), commas(est.Waves), in.Concurrency, commas(est.Runs))
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

func planOf(in workflows.BackfillInput, p workflows.PlanResult, est workflows.Estimate) planJSON {
	j := planJSON{
		Source: in.Source.URI, Index: in.Source.Index, Objects: p.Objects, EmptyObjects: p.Empty, Chunks: p.Chunks,
		Bytes: p.Bytes, Format: p.Format, ChunkSize: p.ChunkSize, ByCompression: map[string]planGroupJSON{},
		Largest:  []plannedObjectJSON{},
		Estimate: estimateJSON{Activities: est.Activities, Waves: est.Waves, Concurrency: in.Concurrency, Runs: est.Runs},
	}
	for k, g := range p.ByCompression {
		j.ByCompression[k] = planGroupJSON{Objects: g.Objects, Chunks: g.Chunks, Bytes: g.Bytes}
	}
	for _, o := range p.Largest {
		j.Largest = append(j.Largest, plannedObjectJSON{Key: o.Key, Size: o.Size, Chunks: o.Chunks, Compression: o.Compression})
	}
	return j
}
