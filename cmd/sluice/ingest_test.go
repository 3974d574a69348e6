package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/internal/devserver"
	"github.com/sluicehq/sluice/workflows"
)

// The client commands are tested against the embedded Temporal server with a fake Backfill
// workflow registered under the real name: no S3, no Elasticsearch. The fake's behaviour
// follows the index name:
//
//	ok…      completes: 1000 read, 1000 indexed, 7 retried
//	dl…      completes: 1000 read, 990 indexed, 10 dead-lettered
//	partial… completes with 1 chunk failed (within --allow-failed-chunks)
//	fail…    fails with ChunksFailed, two failed chunks in its details
//	can…     continues as new once, then completes as ok… does
//
// and, when the name contains "wait", its first run runs until it gets fakeFinishSignal (or is canceled),
// recording the pause, resume and set-concurrency signals in its progress and in
// fakeSignalsQuery.
const (
	fakeFinishSignal = "finish"
	fakeSignalsQuery = "signals"
)

var fakeFailed = []workflows.FailedChunk{
	{Key: "in/a.ndjson", Start: 0, End: 1024, ErrorType: activities.ErrTypeIndexNotAllowed, Error: "index is closed"},
	{Key: "in/b.ndjson.gz", Start: 0, End: -1, Resume: 512, ErrorType: "Timeout", Error: "heartbeat timeout"},
}

func fakeBackfill(ctx workflow.Context, in workflows.BackfillInput) (workflows.BackfillResult, error) {
	start := workflow.Now(ctx)
	idx := in.Source.Index
	p := workflows.Progress{
		Phase: workflows.PhaseRunning, ChunksPlanned: 4, ChunksDone: 2, ChunksRunning: 2, ListingDone: true,
		Objects: 2, Bytes: 4096, BytesDone: 2048, Stats: activities.ChunkStats{Read: 500, Indexed: 500, Bytes: 2048},
		DocsPerSecond: 123, Concurrency: in.Concurrency, Run: 1, StartTime: start,
	}
	var signals []string
	if err := workflow.SetQueryHandler(ctx, workflows.ProgressQuery, func() (workflows.Progress, error) {
		q := p
		q.Elapsed = workflow.Now(ctx).Sub(start)
		return q, nil
	}); err != nil {
		return workflows.BackfillResult{}, err
	}
	if err := workflow.SetQueryHandler(ctx, fakeSignalsQuery, func() ([]string, error) { return signals, nil }); err != nil {
		return workflows.BackfillResult{}, err
	}
	if strings.Contains(idx, "wait") && in.State == nil { // the first run only
		// A running chunk, for the progress inside running chunks: its future is never waited for.
		workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: time.Hour, HeartbeatTimeout: time.Minute,
		}), activities.IngestChunkName, activities.IngestChunkInput{})
		finished, canceled := false, false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(workflow.GetSignalChannel(ctx, workflows.PauseSignal), func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			signals = append(signals, workflows.PauseSignal)
			p.Paused, p.Phase = true, workflows.PhasePaused
		})
		sel.AddReceive(workflow.GetSignalChannel(ctx, workflows.ResumeSignal), func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			signals = append(signals, workflows.ResumeSignal)
			p.Paused, p.Phase = false, workflows.PhaseRunning
		})
		sel.AddReceive(workflow.GetSignalChannel(ctx, workflows.SetConcurrencySignal), func(c workflow.ReceiveChannel, _ bool) {
			var n int
			c.Receive(ctx, &n)
			signals = append(signals, fmt.Sprintf("%s %d", workflows.SetConcurrencySignal, n))
			p.Concurrency = n
		})
		sel.AddReceive(workflow.GetSignalChannel(ctx, fakeFinishSignal), func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			finished = true
		})
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { canceled = true })
		for !finished && !canceled {
			sel.Select(ctx)
		}
		if canceled {
			p.Phase, p.ChunksRunning = workflows.PhaseCanceled, 0
			return workflows.BackfillResult{}, ctx.Err()
		}
	}
	if strings.HasPrefix(idx, "can") && in.State == nil {
		in.State = &workflows.BackfillState{Runs: 1}
		return workflows.BackfillResult{}, workflow.NewContinueAsNewError(ctx, workflows.BackfillName, in)
	}
	res := workflows.BackfillResult{
		Stats:         activities.ChunkStats{Read: 1000, Indexed: 1000, Retried: 7, Bytes: 4096},
		ChunksPlanned: 4, ChunksDone: 4, Objects: 2, Bytes: 4096,
		Duration: workflow.Now(ctx).Sub(start), Runs: 1,
	}
	if in.State != nil {
		res.Runs += in.State.Runs
	}
	switch {
	case strings.HasPrefix(idx, "dl"):
		res.Stats.Indexed, res.Stats.DeadLettered = 990, 10
	case strings.HasPrefix(idx, "partial"):
		res.ChunksDone, res.ChunksFailed, res.Failed = 3, 1, fakeFailed[:1]
		res.Stats = activities.ChunkStats{Read: 700, Indexed: 700, Bytes: 3000}
	case strings.HasPrefix(idx, "fail"):
		res.ChunksDone, res.ChunksFailed, res.Failed = 2, 2, fakeFailed
		res.Stats = activities.ChunkStats{Read: 500, Indexed: 500, Bytes: 2048}
		p.Phase, p.ChunksDone, p.ChunksFailed, p.ChunksRunning, p.Stats = workflows.PhaseFailed, res.ChunksDone, res.ChunksFailed, 0, res.Stats
		return res, temporal.NewNonRetryableApplicationError("2 chunks failed (allowed 0)", workflows.ErrTypeChunksFailed, nil, res)
	case strings.HasPrefix(idx, "recon"):
		res.Reconciliation = &workflows.Reconciliation{Count: 990, Expected: 1000, Missing: 10, UnbalancedChunks: 1,
			Unbalanced: []workflows.Unbalanced{{Key: "in/a.ndjson", Read: 600, Indexed: 590}}}
		p.Phase = workflows.PhaseFailed
		return res, temporal.NewNonRetryableApplicationError("reconciliation failed: index recon holds 990 documents, 10 fewer than this backfill indexed",
			workflows.ErrTypeReconcileFailed, nil, res)
	default:
		res.Reconciliation = &workflows.Reconciliation{Count: res.Stats.Indexed + 5, Expected: res.Stats.Indexed, Note: "5 more"}
	}
	p.Phase, p.ChunksDone, p.ChunksFailed, p.ChunksRunning, p.Stats = workflows.PhaseCompleted, res.ChunksDone, res.ChunksFailed, 0, res.Stats
	return res, nil
}

// fakeHeartbeat is what the running chunk of the fake's "wait" runs heartbeats.
var fakeHeartbeat = activities.ChunkProgress{Checkpoint: 5000,
	Stats: activities.ChunkStats{Read: 300, Indexed: 290, DeadLettered: 10, Bytes: 5000}, SourceBytes: 1024}

// fakeIngestChunk heartbeats fakeHeartbeat until it is canceled or its workflow closes.
func fakeIngestChunk(ctx context.Context, _ activities.IngestChunkInput) (activities.ChunkProgress, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		activity.RecordHeartbeat(ctx, fakeHeartbeat)
		select {
		case <-ctx.Done():
			return activities.ChunkProgress{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// clientEnv is a Temporal server with a worker running fakeBackfill on the default task queue.
type clientEnv struct {
	t    *testing.T
	addr string
	c    client.Client
}

func newClientEnv(t *testing.T) *clientEnv {
	t.Helper()
	srv, err := devserver.Start(devserver.Options{})
	if err != nil {
		t.Fatalf("starting Temporal: %v", err)
	}
	t.Cleanup(srv.Stop)
	c := dial(t, srv.FrontendAddress(), "default")
	w := sdkworker.New(c, "sluice", sdkworker.Options{})
	w.RegisterWorkflowWithOptions(fakeBackfill, workflow.RegisterOptions{Name: workflows.BackfillName})
	w.RegisterWorkflowWithOptions(workflows.ScheduledBackfillWorkflow, workflow.RegisterOptions{Name: workflows.ScheduledBackfillName})
	w.RegisterActivityWithOptions(fakeIngestChunk, activity.RegisterOptions{Name: activities.IngestChunkName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &clientEnv{t: t, addr: srv.FrontendAddress(), c: c}
}

// sluice runs `sluice args... --temporal-address ADDR` to the end.
func (e *clientEnv) sluice(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append(args, "--temporal-address", e.addr), &out, &errOut)
	e.t.Logf("sluice %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// background is a command running in a goroutine, its output readable while it runs.
type background struct {
	cancel         context.CancelFunc
	stdout, stderr *syncBuffer
	code           chan int
}

// start runs fn with args (and the server's address) until it returns or stop is called.
func (e *clientEnv) start(fn func(context.Context, []string, io.Writer, io.Writer) int, args ...string) *background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, stdout: newSyncBuffer(), stderr: newSyncBuffer(), code: make(chan int, 1)}
	go func() { b.code <- fn(ctx, append(args, "--temporal-address", e.addr), b.stdout, b.stderr) }()
	e.t.Cleanup(cancel)
	return b
}

// exit waits for the command to return.
func (b *background) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-b.code:
		return code
	case <-time.After(time.Minute):
		t.Fatalf("command still running after a minute; stdout:\n%s\nstderr:\n%s", b.stdout, b.stderr)
		return 0
	}
}

// eventually polls cond until it holds, failing the test after 30 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 30*time.Second, what, cond)
}

// eventuallyWithin polls cond until it holds, failing the test after timeout.
func eventuallyWithin(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

func (e *clientEnv) signal(id, name string) {
	e.t.Helper()
	if err := e.c.SignalWorkflow(context.Background(), id, "", name, nil); err != nil {
		e.t.Fatalf("signal %s to %s: %v", name, id, err)
	}
}

func (e *clientEnv) signals(id string) []string {
	e.t.Helper()
	v, err := e.c.QueryWorkflow(context.Background(), id, "", fakeSignalsQuery)
	if err != nil {
		e.t.Fatal(err)
	}
	var s []string
	if err := v.Get(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *clientEnv) status(id string) string {
	e.t.Helper()
	resp, err := e.c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return statusName(resp.GetWorkflowExecutionInfo().GetStatus())
}

func decodeStatus(t *testing.T, stdout string) statusJSON {
	t.Helper()
	if n := strings.Count(strings.TrimSpace(stdout), "\n"); n != 0 {
		t.Fatalf("want one JSON line, got:\n%s", stdout)
	}
	var s statusJSON
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("%v in %q", err, stdout)
	}
	return s
}

func TestClientCommands(t *testing.T) {
	e := newClientEnv(t)

	t.Run("ingest prints the id, status shows the result", func(t *testing.T) {
		code, out, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "ok-start")
		if code != exitOK || !strings.HasPrefix(out, "started backfill sluice-ok-start-") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		id := strings.Fields(out)[2]
		if err := e.c.GetWorkflow(context.Background(), id, "").Get(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		code, out, errOut = e.sluice("status", id)
		for _, want := range []string{"completed", "1,000 read, 1,000 indexed, 0 dead-lettered, 7 retried", "s3://data/in/ -> index ok-start",
			"dead letters to index:ok-start-dead-letters", "4 done of 4 planned"} {
			if !strings.Contains(out, want) {
				t.Errorf("status: no %q in\n%s", want, out)
			}
		}
		if code != exitOK {
			t.Fatalf("status exit %d; stderr:\n%s", code, errOut)
		}
		code, out, _ = e.sluice("status", "--json", id)
		s := decodeStatus(t, out)
		if code != exitOK || s.Status != statusCompleted || s.Result == nil || s.Result.Records.Indexed != 1000 ||
			s.Index != "ok-start" || s.Source != "s3://data/in/" || s.WorkflowType != workflows.BackfillName || s.CloseTime == nil {
			t.Fatalf("status --json: exit %d, %+v", code, s)
		}
	})

	t.Run("ingest --json prints workflow_id and run_id", func(t *testing.T) {
		code, out, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "ok-json", "--workflow-id", "json-start", "--json")
		var got map[string]string
		if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK {
			t.Fatalf("exit %d, %v; stdout %q stderr %q", code, err, out, errOut)
		}
		if got["workflow_id"] != "json-start" || got["run_id"] == "" || len(got) != 2 {
			t.Fatalf("got %v", got)
		}
	})

	t.Run("ingest passes the input, without defaults lost", func(t *testing.T) {
		code, out, errOut := e.sluice("ingest", "--source", "s3://data/csv/", "--index", "ok-input", "--workflow-id", "input",
			"--format", "csv", "--compression", "gzip", "--id-field", "id", "--chunk-size", "1MiB", "--concurrency", "3",
			"--max-ops", "50", "--max-bytes", "1MiB", "--flush-interval", "250ms", "--inflight", "4", "--allow-failed-chunks", "2",
			"--heartbeat-timeout", "7s", "--dead-letter", "file:dl.ndjson", "--wait")
		if code != exitOK {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		iter := e.c.GetWorkflowHistory(context.Background(), "input", "", false, 0)
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		var in workflows.BackfillInput
		if err := converter.GetDefaultDataConverter().FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
			t.Fatal(err)
		}
		want := workflows.BackfillInput{
			Version:   workflows.BackfillVersion,
			Source:    activities.Source{URI: "s3://data/csv/", Format: "csv", Compression: "gzip", Index: "ok-input", IDField: "id", DeadLetter: "file:dl.ndjson"},
			Limits:    activities.Limits{MaxOps: 50, MaxBytes: 1 << 20, FlushInterval: 250 * time.Millisecond, Inflight: 4, RetryMaxElapsed: 5 * time.Minute},
			ChunkSize: 1 << 20, Concurrency: 3, AllowFailedChunks: 2, HeartbeatTimeout: 7 * time.Second,
		}
		if fmt.Sprintf("%+v", in) != fmt.Sprintf("%+v", want) {
			t.Fatalf("input\n got %+v\nwant %+v", in, want)
		}
	})

	t.Run("ingest --wait --json prints the summary", func(t *testing.T) {
		code, out, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "ok-summary", "--workflow-id", "wait-json", "--wait", "--json")
		if code != exitOK {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		s := decodeStatus(t, out)
		r := s.Result
		if s.WorkflowID != "wait-json" || s.Status != statusCompleted || r == nil || r.Records.Read != 1000 || r.Records.Indexed != 1000 ||
			r.Records.Retried != 7 || r.Records.DeadLettered != 0 || r.ChunksDone != 4 || r.ChunksPlanned != 4 || r.Runs != 1 {
			t.Fatalf("summary %+v (result %+v)", s, r)
		}
	})

	t.Run("failed chunks exit 1 and are listed", func(t *testing.T) {
		code, out, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "fail-text", "--wait")
		if code != exitFailed {
			t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailed, out, errOut)
		}
		for _, want := range []string{"failed chunks (2)", "in/a.ndjson [0,1024): IndexNotAllowed: index is closed",
			"in/b.ndjson.gz [0,end): Timeout: heartbeat timeout (checkpoint 512)", "500 read, 500 indexed"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in stdout:\n%s", want, out)
			}
		}
		if !strings.Contains(errOut, "2 chunks failed") {
			t.Errorf("stderr: %s", errOut)
		}
		code, out, _ = e.sluice("ingest", "--source", "s3://data/in/", "--index", "fail-json", "--wait", "--json")
		s := decodeStatus(t, out)
		if code != exitFailed || s.Status != statusFailed || s.ErrorType != workflows.ErrTypeChunksFailed || s.Result == nil ||
			len(s.Result.FailedChunks) != 2 || s.Result.FailedChunks[1].Checkpoint != 512 || s.Result.FailedChunks[1].End != -1 {
			t.Fatalf("exit %d, %+v", code, s)
		}
	})

	t.Run("reconciliation", func(t *testing.T) {
		code, out, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "ok-recon", "--wait")
		if code != exitOK || !strings.Contains(out, "reconcile    adds up: the index holds 1,005 documents, this backfill indexed 1,000") ||
			!strings.Contains(out, "5 more") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		code, out, errOut = e.sluice("ingest", "--source", "s3://data/in/", "--index", "recon", "--wait")
		for _, want := range []string{"DOES NOT ADD UP: the index holds 990 documents", "10 documents missing", "in/a.ndjson: 600 read, 590 indexed, 0 dead-lettered"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in\n%s", want, out)
			}
		}
		if code != exitFailed || !strings.Contains(errOut, "reconciliation failed: index recon holds 990 documents") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		code, out, _ = e.sluice("ingest", "--source", "s3://data/in/", "--index", "recon-json", "--wait", "--json")
		s := decodeStatus(t, out)
		if r := s.Result; code != exitFailed || r == nil || r.Reconciliation == nil || r.Reconciliation.OK || r.Reconciliation.Missing != 10 ||
			len(r.Reconciliation.Unbalanced) != 1 || s.ErrorType != workflows.ErrTypeReconcileFailed {
			t.Fatalf("exit %d: %+v", code, s)
		}
	})

	t.Run("dead letters and --fail-on-dead-letters", func(t *testing.T) {
		code, out, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "dl-ok", "--wait")
		if code != exitOK || !strings.Contains(out, "990 indexed, 10 dead-lettered") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		code, out, errOut = e.sluice("ingest", "--source", "s3://data/in/", "--index", "dl-fail", "--wait", "--fail-on-dead-letters")
		if code != exitPartial || !strings.Contains(errOut, "10 records dead-lettered (--fail-on-dead-letters)") {
			t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitPartial, out, errOut)
		}
		// Chunks failed within --allow-failed-chunks: completed, but not everything was read.
		code, out, errOut = e.sluice("ingest", "--source", "s3://data/in/", "--index", "partial", "--allow-failed-chunks", "1", "--wait")
		if code != exitPartial || !strings.Contains(errOut, "1 chunks failed") || !strings.Contains(out, "in/a.ndjson [0,1024)") {
			t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitPartial, out, errOut)
		}
	})

	t.Run("progress, interrupt, control signals, re-attach", func(t *testing.T) {
		const id = "hold"
		ing := e.start(runIngest, "--source", "s3://data/in/", "--index", "hold-wait", "--workflow-id", id, "--wait")
		eventually(t, "a progress line", func() bool {
			// With the running chunk's heartbeat (plain output: a line at most every 5s).
			out := ing.stdout.String()
			return strings.Contains(out, "running: chunks 2/4, 2 running | 790 indexed, 10 dead-lettered | ") &&
				strings.Contains(out, " docs/s | 3.0 KiB of 4.0 KiB, ")
		})
		ing.cancel() // as Ctrl-C does
		if code := ing.exit(t); code != exitInterrupted {
			t.Fatalf("exit %d after interrupt; stderr:\n%s", code, ing.stderr)
		}
		if want := "re-attach: sluice status hold --wait --temporal-address " + e.addr; !strings.Contains(ing.stderr.String(), want) {
			t.Fatalf("no %q in stderr:\n%s", want, ing.stderr)
		}
		if s := e.status(id); s != statusRunning {
			t.Fatalf("after the interrupt the workflow is %s", s)
		}

		code, out, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "hold-wait", "--workflow-id", id)
		if code != exitFailed || !strings.Contains(errOut, "already running") {
			t.Fatalf("second start: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}

		code, out, errOut = e.sluice("pause", id)
		if code != exitOK || !strings.Contains(out, "hold: paused; no new chunk starts, 2 running chunks finish") {
			t.Fatalf("pause: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		code, out, errOut = e.sluice("status", id)
		if code != exitOK || !strings.Contains(out, "paused; concurrency 8") || !strings.Contains(out, "running;") {
			t.Fatalf("status: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		code, out, errOut = e.sluice("set-concurrency", id, "3", "--json")
		var sc struct {
			Signal    string
			Arg       int
			Confirmed bool
		}
		if err := json.Unmarshal([]byte(out), &sc); err != nil || code != exitOK || !sc.Confirmed || sc.Arg != 3 || sc.Signal != workflows.SetConcurrencySignal {
			t.Fatalf("set-concurrency: exit %d, %v, %+v\nstdout:\n%s\nstderr:\n%s", code, err, sc, out, errOut)
		}
		code, out, errOut = e.sluice("resume", id)
		if code != exitOK || !strings.Contains(out, "hold: resumed; up to 3 chunks run at once") {
			t.Fatalf("resume: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if got, want := e.signals(id), []string{"pause", "set-concurrency 3", "resume"}; !slices.Equal(got, want) {
			t.Fatalf("signals %q, want %q", got, want)
		}
		// The running chunk's heartbeat is added to the finished chunks' counts.
		var s statusJSON
		eventually(t, "the running chunk's heartbeat in status --json", func() bool {
			code, out, _ = e.sluice("status", id, "--json")
			s = decodeStatus(t, out)
			return code != exitOK || s.Progress == nil || s.Progress.Running != nil && s.Progress.Running.Heartbeated > 0
		})
		if code != exitOK || s.Status != statusRunning || s.Progress == nil || s.Progress.Concurrency != 3 || s.Progress.Paused ||
			s.Progress.Finished.Indexed != 500 || s.Result != nil {
			t.Fatalf("status --json: exit %d, %+v", code, s)
		}
		pr := s.Progress
		if r := pr.Records; r.Read != 800 || r.Indexed != 790 || r.DeadLettered != 10 || r.BytesRead == nil || *r.BytesRead != 7048 {
			t.Errorf("records %+v, want 800 read, 790 indexed, 10 dead-lettered, 7048 bytes", r)
		}
		if r := pr.Running; r.Chunks != 1 || r.SourceBytes == nil || *r.SourceBytes != 1024 || r.SourceDocs != nil || r.Records.Read != 300 {
			t.Errorf("running %+v", r)
		}
		// Source bytes: 2048 finished + 1024 running of 4096; the ETA is the remaining 1024 at
		// the average rate since the start.
		if pr.SourceUnit != "bytes" || pr.BytesDone == nil || *pr.BytesDone != 3072 || *pr.Bytes != 4096 || *pr.BytesPerSecond <= 0 ||
			pr.ETASeconds == nil || math.Abs(*pr.ETASeconds - 1024 / *pr.BytesPerSecond) > 1 || pr.SourceDocs != nil {
			t.Errorf("progress %+v, want 3072 of 4096 bytes done", pr.sourceJSON)
		}
		code, out, _ = e.sluice("status", id)
		for _, want := range []string{"800 read, 790 indexed, 10 dead-lettered", "running      1 chunks, as of their last heartbeats: 300 read",
			"3.0 KiB of 4.0 KiB done (75%)", "ETA "} {
			if !strings.Contains(out, want) {
				t.Errorf("status: no %q in\n%s", want, out)
			}
		}

		// Interrupted with --json: the current state, marked detached.
		js := e.start(runStatus, id, "--wait", "--json")
		eventually(t, "a progress line on stderr", func() bool { return strings.Contains(js.stderr.String(), "running: chunks 2/4") })
		js.cancel()
		if code := js.exit(t); code != exitInterrupted {
			t.Fatalf("status --wait --json: exit %d after interrupt; stderr:\n%s", code, js.stderr)
		}
		if s := decodeStatus(t, js.stdout.String()); !s.Detached || s.Status != statusRunning || s.Progress == nil {
			t.Fatalf("status --wait --json after interrupt: %+v", s)
		}

		re := e.start(runStatus, id, "--wait")
		eventually(t, "a progress line from status --wait", func() bool { return strings.Contains(re.stdout.String(), "running: chunks 2/4") })
		e.signal(id, fakeFinishSignal)
		if code := re.exit(t); code != exitOK {
			t.Fatalf("status --wait: exit %d\nstdout:\n%s\nstderr:\n%s", code, re.stdout, re.stderr)
		}
		if !strings.Contains(re.stdout.String(), "completed;") || !strings.Contains(re.stdout.String(), "1,000 indexed") {
			t.Fatalf("status --wait stdout:\n%s", re.stdout)
		}
	})

	t.Run("cancel ends the workflow canceled and ingest --wait exits 1", func(t *testing.T) {
		const id = "to-cancel"
		ing := e.start(runIngest, "--source", "s3://data/in/", "--index", "wait-cancel", "--workflow-id", id, "--wait", "--json")
		eventually(t, "ingest --wait to follow", func() bool { return strings.Contains(ing.stderr.String(), "running: chunks 2/4") })
		code, out, errOut := e.sluice("cancel", id)
		if code != exitOK || !strings.Contains(out, "cancellation requested") {
			t.Fatalf("cancel: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if code := ing.exit(t); code != exitFailed {
			t.Fatalf("ingest --wait: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailed, ing.stdout, ing.stderr)
		}
		s := decodeStatus(t, ing.stdout.String())
		if s.Status != statusCanceled || s.Progress == nil || s.Progress.Phase != workflows.PhaseCanceled {
			t.Fatalf("ingest --wait summary %+v", s)
		}
		if !strings.Contains(ing.stderr.String(), "was canceled") {
			t.Fatalf("stderr:\n%s", ing.stderr)
		}
		if st := e.status(id); st != statusCanceled {
			t.Fatalf("workflow is %s", st)
		}
		code, out, errOut = e.sluice("cancel", id)
		if code != exitFailed || !strings.Contains(errOut, "not running: it is canceled") {
			t.Fatalf("second cancel: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		code, out, errOut = e.sluice("status", id)
		if code != exitOK || !strings.Contains(out, "canceled;") {
			t.Fatalf("status: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		code, out, errOut = e.sluice("status", id, "--wait")
		if code != exitFailed {
			t.Fatalf("status --wait of a canceled backfill: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}

		code, out, errOut = e.sluice("ingest", "--source", "s3://data/in/", "--index", "wait-cancel", "--workflow-id", "cancel-wait")
		if code != exitOK {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		code, out, errOut = e.sluice("cancel", "cancel-wait", "--wait")
		if code != exitOK || !strings.Contains(out, "canceled;") {
			t.Fatalf("cancel --wait: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("--wait follows continue-as-new", func(t *testing.T) {
		const id = "can"
		ing := e.start(runIngest, "--source", "s3://data/in/", "--index", "can-wait", "--workflow-id", id, "--wait", "--json")
		eventually(t, "ingest --wait to follow", func() bool { return strings.Contains(ing.stderr.String(), "running: chunks 2/4") })
		e.signal(id, fakeFinishSignal)
		if code := ing.exit(t); code != exitOK {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, ing.stdout, ing.stderr)
		}
		s := decodeStatus(t, ing.stdout.String())
		if s.Status != statusCompleted || s.Result == nil || s.Result.Runs != 2 || s.Result.Records.Indexed != 1000 {
			t.Fatalf("summary %+v", s)
		}
	})

	t.Run("unknown workflows", func(t *testing.T) {
		for _, args := range [][]string{
			{"status", "nope"}, {"status", "nope", "--wait"}, {"pause", "nope"}, {"resume", "nope"},
			{"cancel", "nope"}, {"set-concurrency", "nope", "2"},
		} {
			code, out, errOut := e.sluice(args...)
			if code != exitFailed || !strings.Contains(errOut, `no workflow "nope" in namespace default`) {
				t.Errorf("%q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
			}
		}
	})
}

// TestClientUsage checks that bad arguments exit 2 before any connection is tried: the
// address is one where nothing listens.
func TestClientUsage(t *testing.T) {
	expectUsageErrors(t, []usageCase{
		{[]string{"ingest", "--index", "x"}, "--source is required"},
		{[]string{"ingest", "--source", "http://b/p", "--index", "x"}, "want s3://bucket/prefix"},
		{[]string{"ingest", "--source", "s3:///p", "--index", "x"}, "missing bucket"},
		{[]string{"ingest", "--source", "s3://AKIA:secret@b/p", "--index", "x"}, "credentials never go in the URI"},
		{[]string{"ingest", "--source", "s3://b/p"}, "--index is required"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "Logs"}, "lowercase"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "a,b"}, "must not contain"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "_x"}, "must not start"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--format", "parquet"}, "--format"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--compression", "lz4"}, "--compression"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--dead-letter", "s3://x/a/../b"}, "--dead-letter"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--dead-letter", "s3:x"}, "--dead-letter"},
		{[]string{"dead-letters", "replay", "--index", "x"}, "SOURCE is required"},
		{[]string{"dead-letters", "replay", "index:legacy/x-dead-letters", "--index", "x"}, "not an index name of the workers' cluster"},
		{[]string{"dead-letters", "replay", "s3://b/p"}, "--index is required"},
		{[]string{"dead-letters", "replay", "s3://b/p", "s3://b/q", "--index", "x"}, "unexpected arguments"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--dead-letter", "file:/etc/profile"}, "--dead-letter"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--dead-letter", "file:../x"}, "--dead-letter"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--concurrency", "0"}, "--concurrency"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--concurrency", "5000"}, "--concurrency"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--max-ops", "0"}, "--max-ops"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--chunk-size", "lots"}, "invalid size"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--allow-failed-chunks", "-1"}, "--allow-failed-chunks"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "extra"}, "unexpected arguments"},
		{[]string{"ingest", "--bogus"}, "bogus"},
		{[]string{"ingest", "--source", "es://", "--index", "x"}, "no index"},
		{[]string{"ingest", "--source", "es://user:pw@host/logs", "--index", "x"}, "addresses and credentials never go in the source"},
		{[]string{"ingest", "--source", "es://old", "--index", "x", "--id-field", "id"}, "--id-field does not apply to an es:// source"},
		{[]string{"ingest", "--source", "es://old", "--index", "x", "--format", "csv"}, "--format does not apply"},
		{[]string{"ingest", "--source", "es://old", "--index", "x", "--compression", "gzip"}, "--compression does not apply"},
		{[]string{"ingest", "--source", "es://old", "--index", "x", "--query", "/nonexistent/q.json"}, "no such file"},
		{[]string{"ingest", "--source", "s3://b/p", "--index", "x", "--query", writeFile(t, "q.json", `{"match_all":{}}`)}, "--query applies to es:// sources only"},
		{[]string{"ingest", "--source", "es://old", "--index", "x", "--query", writeFile(t, "wrapped.json", `{"query":{"match_all":{}}}`)}, "without the outer"},
		{[]string{"ingest", "--source", "es://old", "--index", "x", "--query", writeFile(t, "bad.json", `{"match_all":`)}, "not valid JSON"},
		{[]string{"ingest", "--source", "es://old", "--index", "x", "--query", writeFile(t, "big.json", `{"match_all":{},"x":"`+strings.Repeat("y", 64<<10)+`"}`)}, "larger than 64 KiB"},
		{[]string{"reindex", "--source", "es://old", "--alias", "a", "--id-field", "id"}, "--id-field does not apply to an es:// source"},
		{[]string{"status"}, "want one workflow id"},
		{[]string{"status", "a", "b"}, "want one workflow id"},
		{[]string{"pause"}, "want one workflow id"},
		{[]string{"resume", "a", "b"}, "want one workflow id"},
		{[]string{"cancel", "--wait"}, "want one workflow id"},
		{[]string{"set-concurrency", "a"}, "want a workflow id and a number"},
		{[]string{"set-concurrency", "a", "many"}, "whole number"},
		{[]string{"set-concurrency", "a", "0"}, "whole number"},
	})
	// Flags are parsed wherever they are; a connection error is exit 1.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"status", "--json", "some-id", "--temporal-address", "127.0.0.1:1"}, &stdout, &stderr); code != exitFailed ||
		!strings.Contains(stderr.String(), "connecting to Temporal at 127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"id"}, []string{"id"}, false},
		{[]string{"--json", "id"}, []string{"id"}, true},
		{[]string{"id", "--json"}, []string{"id"}, true},
		{[]string{"id", "--json", "3"}, []string{"id", "3"}, true},
		{[]string{"id", "--", "--json"}, []string{"id", "--json"}, false},
		{[]string{"--", "-x"}, []string{"-x"}, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		j := fs.Bool("json", false, "")
		pos, ok, _ := parseArgs(fs, tc.args, io.Discard)
		if !ok || !slices.Equal(pos, tc.pos) || *j != tc.json {
			t.Errorf("%q: %q %v %v; want %q %v", tc.args, pos, *j, ok, tc.pos, tc.json)
		}
	}
}

func TestProgressPrinter(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	wp := &workflows.Progress{
		Phase: workflows.PhaseRunning, ChunksPlanned: 40, ChunksDone: 12, ChunksRunning: 3, ChunksFailed: 1,
		Stats: activities.ChunkStats{Indexed: 1234567, DeadLettered: 12, Bytes: 5 << 30}, Bytes: 10 << 30, BytesDone: 2 << 30,
		StartTime: start, Elapsed: time.Minute,
	}
	run := &runningChunks{Chunks: 3, Heartbeated: 2, Stats: activities.ChunkStats{Indexed: 100}, SourceBytes: 1 << 30}
	// Elapsed is the clock's, not the workflow's last task; no ETA while the listing goes on.
	p := newSnapshot(wp, run, unitBytes, start.Add(100*time.Second), nil)
	want := "running: chunks 12/40+, 3 running, 1 failed | 1,234,667 indexed, 12 dead-lettered | 12,347 docs/s | 3.0 GiB of 10.0 GiB, 30.7 MiB/s | 1m40s"
	if got := progressLine(p); got != want {
		t.Fatalf("progressLine\n got %q\nwant %q", got, want)
	}
	wp.ListingDone = true
	if got := newSnapshot(wp, run, unitBytes, start.Add(100*time.Second), nil).ETA.Round(time.Second); got != 233*time.Second {
		t.Fatalf("ETA %v, want 233s: 7 GiB at 3 GiB per 100s", got)
	}
	// Source bytes done never pass the planned bytes, whatever the heartbeats say.
	if got := newSnapshot(wp, &runningChunks{SourceBytes: 20 << 30}, unitBytes, start, nil).BytesDone; got != wp.Bytes {
		t.Fatalf("BytesDone %d, want at most %d", got, wp.Bytes)
	}
	wp.ListingDone = false

	var b bytes.Buffer
	tty := &progressPrinter{w: &b, tty: true, width: 40}
	tty.show(p, nil, time.Now())
	tty.show(p, nil, time.Now())
	tty.end()
	if got := b.String(); got != strings.Repeat("\r\033[K"+want[:39], 2)+"\n" {
		t.Fatalf("terminal output %q", got)
	}

	b.Reset()
	plain := &progressPrinter{w: &b}
	t0 := time.Now()
	plain.show(p, nil, t0)                     // first: printed
	plain.show(p, nil, t0.Add(time.Second))    // too soon
	plain.show(p, nil, t0.Add(10*time.Second)) // nothing changed
	qp := *p.Progress
	qp.ChunksDone++
	q := *p
	q.Progress = &qp
	plain.show(&q, nil, t0.Add(11*time.Second))                                        // changed
	plain.show(&q, nil, t0.Add(11*time.Second+plainProgressQuiet))                     // unchanged, but quiet for long
	plain.show(nil, fmt.Errorf("deadline"), t0.Add(12*time.Second))                    // too soon
	plain.show(nil, fmt.Errorf("deadline"), t0.Add(20*time.Second+plainProgressQuiet)) // says so
	plain.end()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "running: chunks 13/40+") || !strings.HasPrefix(lines[3], "waiting for the progress query") {
		t.Fatalf("plain output:\n%s", b.String())
	}
	(&progressPrinter{}).show(p, nil, t0) // no writer: no output, no panic
}

func TestRateMeter(t *testing.T) {
	var m rateMeter
	t0 := time.Now()
	m.add(t0, 0, 0)
	if _, _, ok := m.rates(); ok {
		t.Fatal("a rate from one sample")
	}
	m.add(t0.Add(time.Second), 10, 100)
	if _, _, ok := m.rates(); ok {
		t.Fatal("a rate over one second")
	}
	// 100 docs/s for a minute, then 10 docs/s: the window forgets the fast minute.
	for i := 2; i <= 60; i++ {
		m.add(t0.Add(time.Duration(i)*time.Second), int64(i)*100, int64(i)*1000)
	}
	if docs, bytes, ok := m.rates(); !ok || docs != 100 || bytes != 1000 {
		t.Fatalf("rates %v %v %v, want 100 and 1000", docs, bytes, ok)
	}
	for i := 61; i <= 120; i++ {
		m.add(t0.Add(time.Duration(i)*time.Second), 6000+int64(i-60)*10, 60000+int64(i-60)*100)
	}
	if docs, bytes, ok := m.rates(); !ok || docs != 10 || bytes != 100 {
		t.Fatalf("rates %v %v %v, want 10 and 100", docs, bytes, ok)
	}
	if len(m.samples) > 40 {
		t.Fatalf("%d samples kept", len(m.samples))
	}
}

func TestVerdict(t *testing.T) {
	done := func(read, indexed, dl, failed int64) *report {
		return &report{WorkflowID: "w", Status: statusCompleted, Result: &workflows.BackfillResult{
			Stats: activities.ChunkStats{Read: read, Indexed: indexed, DeadLettered: dl}, ChunksFailed: failed}}
	}
	for _, tc := range []struct {
		r      *report
		failDL bool
		code   int
	}{
		{done(10, 10, 0, 0), true, exitOK},
		{done(10, 8, 2, 0), false, exitOK},
		{done(10, 8, 2, 0), true, exitPartial},
		{done(10, 8, 0, 0), false, exitPartial}, // records unaccounted for
		{done(10, 10, 0, 1), false, exitPartial},
		{&report{Status: statusFailed, Error: "x"}, false, exitFailed},
		{&report{Status: statusCanceled}, false, exitFailed},
		{&report{Status: statusTerminated}, false, exitFailed},
		{&report{Status: statusTimedOut}, false, exitFailed},
	} {
		if code, why := tc.r.verdict(tc.failDL); code != tc.code || (code != exitOK) != (why != "") {
			t.Errorf("%+v %v: %d %q, want %d", tc.r.Result, tc.r.Status, code, why, tc.code)
		}
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 100000: "100,000"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	at := time.Date(2025, 11, 25, 23, 34, 12, 123e6, time.FixedZone("x", 3600))
	if got := defaultWorkflowID("logs", at); got != "sluice-logs-20251125T223412.123Z" {
		t.Errorf("defaultWorkflowID = %q", got)
	}
}

// writeFile writes content to a file named name in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
