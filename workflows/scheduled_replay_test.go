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

// TestReplayScheduledHistory replays the history of a ScheduledBackfillWorkflow that a real
// Temporal Schedule started (the scheduled time read from the search attribute the server set,
// the template filled, the child started under its id). It fails when a change would break the
// scheduled backfills already running. To record it again:
//
//	go test -tags record -run TestRecordScheduledHistory ./workflows/
func TestReplayScheduledHistory(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "scheduled_history.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	history, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(ScheduledBackfillWorkflow, workflow.RegisterOptions{Name: ScheduledBackfillName})
	// The child's id derives from the workflow's own, which the replayer must be told.
	opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: "nightly-2026-11-29T02:00:00Z"}}
	if err := replayer.ReplayWorkflowHistoryWithOptions(log.NewStructuredLogger(slog.New(slog.DiscardHandler)), history, opts); err != nil {
		t.Fatalf("replaying: %v", err)
	}
}
