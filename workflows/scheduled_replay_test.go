package workflows

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayScheduledHistory replays the histories of a ScheduledBackfillWorkflow and a
// ScheduledReindexWorkflow that a real Temporal Schedule started (the scheduled time read from
// the search attribute the server set, the template filled, the child started under its id).
// It fails when a change would break the scheduled runs already running. To record them again:
//
//	go test -tags record -run 'TestRecordScheduled(Reindex)?History' ./workflows/
func TestReplayScheduledHistory(t *testing.T) {
	for _, tc := range []struct{ file, id string }{
		{"scheduled_history.json", "nightly-2026-11-29T02:00:00Z"},
		{"scheduled_reindex_history.json", "catalog-2026-11-29T03:00:00Z"},
	} {
		f, err := os.Open(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		history, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("reading %s: %v", tc.file, err)
		}
		replayer := worker.NewWorkflowReplayer()
		replayer.RegisterWorkflowWithOptions(ScheduledBackfillWorkflow, workflow.RegisterOptions{Name: ScheduledBackfillName})
		replayer.RegisterWorkflowWithOptions(ScheduledReindexWorkflow, workflow.RegisterOptions{Name: ScheduledReindexName})
		// The child's id derives from the workflow's own, which the replayer must be told.
		opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: tc.id}}
		if err := replayer.ReplayWorkflowHistoryWithOptions(log.NewStructuredLogger(slog.New(slog.DiscardHandler)), history, opts); err != nil {
			t.Fatalf("replaying %s: %v", tc.file, err)
		}
	}
}
