//go:build record

package workflows

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/internal/devserver"
)

// TestRecordReindexHistory runs ReindexWorkflow (with BackfillWorkflow as its child, fake
// activities) on the embedded Temporal server and writes the history that
// TestReplayReindexHistory replays:
//
//	go test -tags record -run TestRecordReindexHistory ./workflows/
func TestRecordReindexHistory(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	srv, err := devserver.Start(devserver.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("starting the dev server: %v", err)
	}
	defer srv.Stop()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Logger: log.NewStructuredLogger(quiet)})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()

	const objects = 4
	r := &recorder{t: t, c: c}
	r.setup(t, objects)
	w := worker.New(c, recordTaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(ReindexWorkflow, workflow.RegisterOptions{Name: ReindexName})
	w.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
	w.RegisterActivityWithOptions(r.src.PlanPage, activity.RegisterOptions{Name: activities.PlanPageName})
	w.RegisterActivityWithOptions(r.ing.IngestChunk, activity.RegisterOptions{Name: activities.IngestChunkName})
	admin := &fakeAdmin{count: objects * chunkStats.Indexed}
	admin.register(w)
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	defer w.Stop()

	in := ReindexInput{Alias: "logs", IndexConfig: []byte(`{"settings":{"number_of_shards":1}}`), Backfill: testInput()}
	keep := 1
	in.KeepOld = &keep
	const id = recordedReindexID
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: recordTaskQueue}, ReindexName, in)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var res ReindexResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("reindex: %v", err)
	}
	if res.Count != objects*chunkStats.Indexed || res.Backfill.ChunksDone != objects || len(res.Deleted) != 1 {
		t.Fatalf("result %+v", res)
	}
	r.ctx = ctx
	r.writeHistory(id, run.GetRunID(), "reindex_history.json")
}
