package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/sluiceapi"
)

// DailyLoadInput says which day of an export to load, and where.
type DailyLoadInput struct {
	Bucket string // the export lands under s3://<Bucket>/<yyyy>/<mm>/<dd>/
	Day    string // yyyy-mm-dd
	Index  string
}

// DailyLoadOutput is what DailyLoad hands on: its own use of the backfill's result.
type DailyLoadOutput struct {
	Source       string
	Indexed      int64
	DeadLettered int64
	Summary      string
}

// DailyLoad is a workflow of yours. It does its own step first (ExportReady, an activity of
// yours), then has sluice load the day into an index as a child workflow, which runs on the
// sluice workers' task queue with their credentials, waits for it, and uses its result.
func DailyLoad(ctx workflow.Context, in DailyLoadInput) (DailyLoadOutput, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var source string
	if err := workflow.ExecuteActivity(actx, ExportReady, in).Get(ctx, &source); err != nil {
		return DailyLoadOutput{}, err
	}

	// A readable child id, so that `sluice status <id>-backfill` follows the load.
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID + "-backfill",
	})
	var res sluiceapi.BackfillResult
	err := sluiceapi.ExecuteBackfill(cctx, sluiceapi.BackfillInput{
		Version:     sluiceapi.BackfillVersion,
		Source:      sluiceapi.Source{URI: source, Index: in.Index},
		Concurrency: 4,
	}).Get(ctx, &res)
	if partial, ok := sluiceapi.ChunksFailed(err); ok {
		// The backfill ran to its end but lost chunks: what it did load is in partial.
		return DailyLoadOutput{}, fmt.Errorf("loading %s: %d of %d chunks failed after %d documents: %w",
			source, partial.ChunksFailed, partial.ChunksPlanned, partial.Stats.Indexed, err)
	}
	if err != nil {
		return DailyLoadOutput{}, fmt.Errorf("loading %s: %w", source, err)
	}
	return DailyLoadOutput{
		Source: source, Indexed: res.Stats.Indexed, DeadLettered: res.Stats.DeadLettered,
		Summary: fmt.Sprintf("%s: %d documents into %s (%d dead letters) from %d objects", in.Day, res.Stats.Indexed, in.Index, res.Stats.DeadLettered, res.Objects),
	}, nil
}

// ExportReady is the step of yours before the load. Here it only turns the day into the prefix
// its export lands under; yours might wait for an upstream job or check a manifest.
func ExportReady(_ context.Context, in DailyLoadInput) (string, error) {
	day, err := time.Parse(time.DateOnly, in.Day)
	if err != nil {
		return "", fmt.Errorf("day %q: want yyyy-mm-dd", in.Day)
	}
	if in.Bucket == "" || strings.ContainsAny(in.Bucket, "/@:") {
		return "", fmt.Errorf("bucket %q: want a bucket name", in.Bucket)
	}
	return "s3://" + in.Bucket + "/" + day.Format("2006/01/02") + "/", nil
}
