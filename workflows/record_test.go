//go:build record

// The recorder runs BackfillWorkflow on the embedded Temporal server and writes the histories
// that TestReplayRecordedHistories replays. It sits behind a build tag because linking the
// server into the test binary costs minutes and gigabytes that the ordinary tests do not need:
//
//	go test -tags record -run TestRecordHistories ./workflows/

package workflows

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/internal/devserver"
)

const recordTaskQueue = "sluice-record"

type recorder struct {
	t      *testing.T
	c      client.Client
	src    *fakeSource
	ing    *fakeIngest
	ctx    context.Context
	cancel context.CancelFunc
}

// startRecordServer starts an embedded Temporal server for the test and dials it.
func startRecordServer(t *testing.T) client.Client {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	srv, err := devserver.Start(devserver.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("starting the dev server: %v", err)
	}
	t.Cleanup(srv.Stop)
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Logger: log.NewStructuredLogger(quiet)})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRecordHistories(t *testing.T) {
	c := startRecordServer(t)

	// One worker for both scenarios; each scenario swaps the fakes' behaviour.
	r := &recorder{t: t, c: c}
	w := worker.New(c, recordTaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
	w.RegisterActivityWithOptions(func(ctx context.Context, in activities.PlanPageInput) (activities.PlanPageOutput, error) {
		return r.src.PlanPage(ctx, in)
	}, activity.RegisterOptions{Name: activities.PlanPageName})
	w.RegisterActivityWithOptions(func(ctx context.Context, in activities.IngestChunkInput) (activities.ChunkProgress, error) {
		return r.ing.IngestChunk(ctx, in)
	}, activity.RegisterOptions{Name: activities.IngestChunkName})
	w.RegisterActivityWithOptions(countAsIndexed, activity.RegisterOptions{Name: activities.ReconcileName})
	if err := w.Start(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	defer w.Stop()

	t.Run("signals, a failed chunk, continue-as-new", r.recordContinueAsNew)
	t.Run("canceled", r.recordCanceled)
}

func (r *recorder) setup(t *testing.T, objects int) {
	r.t = t
	r.src = &fakeSource{objects: objects}
	r.ing = newFakeIngest(t, objects)
	r.ctx, r.cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(r.cancel)
}

// recordContinueAsNew pauses the first run while two chunks run, raises the concurrency,
// resumes, fails one chunk for good (allowed), and crosses a small history bound: the first
// and the last run of the chain are recorded.
func (r *recorder) recordContinueAsNew(t *testing.T) {
	const objects = 12
	r.setup(t, objects)
	failing := objectKey(3)
	gate := make(chan struct{})
	held := make(chan string, objects)
	var n atomic.Int32
	r.ing.hook = func(ctx context.Context, in activities.IngestChunkInput) error {
		if in.Chunk.Key == failing {
			return temporal.NewNonRetryableApplicationError("etag changed", activities.ErrTypeObjectChanged, nil,
				activities.ChunkProgress{Checkpoint: 40, Stats: activities.ChunkStats{Read: 4, Indexed: 4, Bytes: 40}})
		}
		if n.Add(1) <= 2 {
			held <- in.Chunk.Key
			<-gate
		}
		activity.RecordHeartbeat(ctx, activities.ChunkProgress{Checkpoint: in.Chunk.End, Stats: chunkStats})
		return nil
	}

	in := testInput()
	in.PageSize = 5
	in.Concurrency = 2
	in.AllowFailedChunks = 1
	in.MaxHistoryEvents = 60
	const id = "record-backfill"
	run, err := r.c.ExecuteWorkflow(r.ctx, client.StartWorkflowOptions{ID: id, TaskQueue: recordTaskQueue}, BackfillName, in)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	first := run.GetRunID() // Get below moves the run along the chain
	r.wait(held, 2)
	r.signal(id, PauseSignal, nil)
	r.signal(id, SetConcurrencySignal, 3)
	r.eventually(id, "paused", func(p Progress) bool { return p.Paused })
	close(gate)
	r.eventually(id, "paused and idle", func(p Progress) bool {
		return p.Phase == PhasePaused && p.ChunksRunning == 0 && p.ChunksDone == 2 && p.Concurrency == 3
	})
	r.signal(id, ResumeSignal, nil)

	var res BackfillResult
	if err := run.Get(r.ctx, &res); err != nil { // follows continue-as-new to the last run
		t.Fatalf("workflow: %v", err)
	}
	if res.ChunksDone != objects-1 || res.ChunksFailed != 1 || res.Failed[0].Key != failing || res.Runs < 2 {
		t.Fatalf("result = %+v", res)
	}
	r.ing.checkExactlyOnce(t, failing)

	desc, err := r.c.DescribeWorkflowExecution(r.ctx, id, "")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	last := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	if last == first {
		t.Fatal("the workflow did not continue as new")
	}
	r.writeHistory(id, first, "backfill_history.json")
	r.writeHistory(id, last, "backfill_history_continued.json")
}

// recordCanceled cancels a run while two chunks run. The chunks stop at a checkpoint and say
// so; the workflow waits for them before it closes as canceled.
func (r *recorder) recordCanceled(t *testing.T) {
	const objects = 6
	r.setup(t, objects)
	held := make(chan string, objects)
	stopped := activities.ChunkProgress{Checkpoint: 40, Stats: activities.ChunkStats{Read: 4, Indexed: 4, Bytes: 40}}
	r.ing.hook = func(ctx context.Context, in activities.IngestChunkInput) error {
		held <- in.Chunk.Key
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			activity.RecordHeartbeat(ctx, stopped)
			select {
			case <-ctx.Done():
				return temporal.NewCanceledError(stopped)
			case <-tick.C:
			}
		}
	}

	in := testInput()
	in.Concurrency = 2
	in.HeartbeatTimeout = 2 * time.Second // heartbeats go out every 1.6s: cancellation arrives quickly
	const id = "record-backfill-canceled"
	run, err := r.c.ExecuteWorkflow(r.ctx, client.StartWorkflowOptions{ID: id, TaskQueue: recordTaskQueue}, BackfillName, in)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	r.wait(held, 2)
	if err := r.c.CancelWorkflow(r.ctx, id, ""); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if err := run.Get(r.ctx, nil); !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	p := r.query(id)
	want := activities.ChunkStats{}
	want.Add(stopped.Stats)
	want.Add(stopped.Stats)
	if p.Phase != PhaseCanceled || p.ChunksRunning != 0 || p.ChunksDone != 0 || p.ChunksPending != objects || p.Stats != want {
		t.Fatalf("progress after cancel = %+v", p)
	}

	// The workflow waited: both chunks' cancellations are in the history before its own.
	events := r.history(id, run.GetRunID())
	canceledChunks := 0
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			canceledChunks++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
			if canceledChunks != 2 {
				t.Fatalf("workflow closed after %d chunk cancellations, want 2", canceledChunks)
			}
		}
	}
	r.writeHistory(id, run.GetRunID(), "backfill_history_canceled.json")
}

func (r *recorder) signal(id, name string, arg any) {
	r.t.Helper()
	if err := r.c.SignalWorkflow(r.ctx, id, "", name, arg); err != nil {
		r.t.Fatalf("signal %s: %v", name, err)
	}
}

func (r *recorder) query(id string) Progress {
	r.t.Helper()
	v, err := r.c.QueryWorkflow(r.ctx, id, "", ProgressQuery)
	if err != nil {
		r.t.Fatalf("query: %v", err)
	}
	var p Progress
	if err := v.Get(&p); err != nil {
		r.t.Fatalf("decode progress: %v", err)
	}
	return p
}

// eventually polls the progress query until cond holds. A real server offers nothing to wait
// on for a signal having been applied; the query is how a user would see it.
func (r *recorder) eventually(id, what string, cond func(Progress) bool) {
	r.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var p Progress
	for {
		if p = r.query(id); cond(p) {
			return
		}
		select {
		case <-r.ctx.Done():
			r.t.Fatalf("never %s; last progress %+v", what, p)
		case <-tick.C:
		}
	}
}

func (r *recorder) wait(held <-chan string, n int) {
	r.t.Helper()
	for range n {
		select {
		case <-held:
		case <-r.ctx.Done():
			r.t.Fatalf("chunks did not start")
		}
	}
}

func (r *recorder) history(id, runID string) []*historypb.HistoryEvent {
	r.t.Helper()
	var events []*historypb.HistoryEvent
	it := r.c.GetWorkflowHistory(r.ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			r.t.Fatalf("history of %s/%s: %v", id, runID, err)
		}
		events = append(events, e)
	}
	return events
}

func (r *recorder) writeHistory(id, runID, name string) {
	r.t.Helper()
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: r.history(id, runID)})
	if err != nil {
		r.t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("wrote %s (%d bytes)", path, len(b))
}
