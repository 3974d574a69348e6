//go:build record

package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
)

// TestRecordScheduledHistory has a real Temporal Schedule start ScheduledBackfillWorkflow for a
// past time (the schedule's backfill), with a Backfill child that completes at once, and writes
// the history that TestReplayScheduledHistory replays:
//
//	go test -tags record -run TestRecordScheduledHistory ./workflows/
func TestRecordScheduledHistory(t *testing.T) {
	c := startRecordServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	w := worker.New(c, recordTaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(ScheduledBackfillWorkflow, workflow.RegisterOptions{Name: ScheduledBackfillName})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, in BackfillInput) (BackfillResult, error) {
		return BackfillResult{Stats: activities.ChunkStats{Read: 3, Indexed: 3}, Objects: 1, ChunksPlanned: 1, ChunksDone: 1, Runs: 1}, nil
	}, workflow.RegisterOptions{Name: BackfillName})
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	defer w.Stop()

	h, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   "nightly",
		Spec: client.ScheduleSpec{CronExpressions: []string{"0 2 * * *"}},
		Action: &client.ScheduleWorkflowAction{
			ID: "nightly", Workflow: ScheduledBackfillName, TaskQueue: recordTaskQueue,
			Args: []any{ScheduledBackfillInput{
				Version:        ScheduledBackfillVersion,
				SourceTemplate: "s3://logs/{yesterday:2006/01/02}/",
				Backfill:       BackfillInput{Source: activities.Source{Index: "logs", Format: ingest.FormatNDJSON}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	id := recordScheduledRun(ctx, t, c, h, at, &BackfillResult{})
	r := &recorder{t: t, c: c, ctx: ctx}
	r.writeHistory(id, "", "scheduled_history.json")
}

// TestRecordScheduledReindexHistory has a real Temporal Schedule start ScheduledReindexWorkflow
// for a past time, with fake index admin activities and a Backfill child that completes at
// once, and writes the history TestReplayScheduledHistory replays:
//
//	go test -tags record -run TestRecordScheduledReindexHistory ./workflows/
func TestRecordScheduledReindexHistory(t *testing.T) {
	c := startRecordServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	w := worker.New(c, recordTaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(ScheduledReindexWorkflow, workflow.RegisterOptions{Name: ScheduledReindexName})
	w.RegisterWorkflowWithOptions(indexedTen, workflow.RegisterOptions{Name: BackfillName})
	(&fakeAdmin{count: 10}).register(w)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	defer w.Stop()

	h, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   "catalog",
		Spec: client.ScheduleSpec{CronExpressions: []string{"0 3 * * *"}},
		Action: &client.ScheduleWorkflowAction{
			ID: "catalog", Workflow: ScheduledReindexName, TaskQueue: recordTaskQueue,
			Args: []any{ScheduledReindexInput{
				Version:        ScheduledReindexVersion,
				SourceTemplate: "s3://shop/catalog/{yesterday:2006-01-02}/",
				Reindex: ReindexInput{Version: ReindexVersion, Alias: "logs", IndexConfig: []byte(`{"settings":{"number_of_shards":1}}`),
					Backfill: BackfillInput{Version: BackfillVersion, Source: activities.Source{Format: ingest.FormatNDJSON}}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var res ReindexResult
	id := recordScheduledRun(ctx, t, c, h, time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC), &res)
	if res.Count != 10 || res.Alias != "logs" {
		t.Fatalf("result %+v", res)
	}
	r := &recorder{t: t, c: c, ctx: ctx}
	r.writeHistory(id, "", "scheduled_reindex_history.json")
}

// recordScheduledRun has schedule h run the time at (its backfill), waits for the run to
// close, decodes its result into res and returns the run's workflow id.
func recordScheduledRun(ctx context.Context, t *testing.T, c client.Client, h client.ScheduleHandle, at time.Time, res any) string {
	t.Helper()
	if err := h.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{{Start: at, End: at}}}); err != nil {
		t.Fatal(err)
	}
	id := h.GetID() + "-" + at.Format(time.RFC3339)
	for {
		err := c.GetWorkflow(ctx, id, "").Get(ctx, res)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			select {
			case <-ctx.Done():
				t.Fatalf("the schedule did not start %s", id)
			case <-time.After(50 * time.Millisecond): // polling for the start, not waiting for time to pass
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return id
	}
}
