package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
)

// chunkStats is what every fake chunk reports.
var chunkStats = activities.ChunkStats{Read: 10, Indexed: 9, Retried: 2, DeadLettered: 1, Bytes: 100}

const objectSize = 100 // bytes of every fake object

func objectKey(i int) string { return fmt.Sprintf("obj-%07d", i) }

func objectIndex(t testing.TB, key string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(key, "obj-"))
	if err != nil {
		t.Errorf("unexpected key %q", key)
	}
	return i
}

// fakeSource is a PlanPage that lists objects synthetic objects, one chunk each. The cursor
// is the index of the next object.
type fakeSource struct {
	objects int
	calls   atomic.Int64
}

func (f *fakeSource) PlanPage(_ context.Context, in activities.PlanPageInput) (activities.PlanPageOutput, error) {
	f.calls.Add(1)
	start := 0
	if in.Cursor != "" {
		var err error
		if start, err = strconv.Atoi(in.Cursor); err != nil {
			return activities.PlanPageOutput{}, temporal.NewNonRetryableApplicationError("bad cursor", activities.ErrTypeBadInput, err)
		}
	}
	end := min(start+in.PageSize, f.objects)
	out := activities.PlanPageOutput{
		Chunks:  make([]activities.Chunk, 0, end-start),
		Objects: end - start,
		Bytes:   int64(end-start) * objectSize,
	}
	for i := start; i < end; i++ {
		out.Chunks = append(out.Chunks, activities.Chunk{Key: objectKey(i), Size: objectSize, End: objectSize})
	}
	if end < f.objects {
		out.Next = strconv.Itoa(end)
	}
	return out, nil
}

// fakeIngest is an IngestChunk that counts the chunks it completes per object and the
// activities running at once.
type fakeIngest struct {
	t    testing.TB
	done []atomic.Int32 // completions per object index

	// hook, when set, runs first; a non-nil error fails the attempt.
	hook func(ctx context.Context, in activities.IngestChunkInput) error

	// window, when > 0, holds every chunk until window chunks are running at once (or the last
	// chunk of total has started), then calls full, which must call release (once the test
	// has looked at the workflow, say). It proves the workflow fills its window, and gives the
	// test a moment at which the window is full to check that it is not more than full.
	window, total int
	full          func(release func())

	mu         sync.Mutex
	cond       *sync.Cond
	running    int
	maxRunning int
	started    int
	gen        int
	attempts   map[string]int
}

func newFakeIngest(t testing.TB, objects int) *fakeIngest {
	f := &fakeIngest{t: t, done: make([]atomic.Int32, objects), attempts: map[string]int{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *fakeIngest) IngestChunk(ctx context.Context, in activities.IngestChunkInput) (activities.ChunkProgress, error) {
	f.enter(in.Chunk.Key)
	defer f.leave()
	if f.hook != nil {
		if err := f.hook(ctx, in); err != nil {
			return activities.ChunkProgress{}, err
		}
	}
	f.done[objectIndex(f.t, in.Chunk.Key)].Add(1)
	return activities.ChunkProgress{Stats: chunkStats, Checkpoint: in.Chunk.End}, nil
}

func (f *fakeIngest) enter(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running++
	f.started++
	f.attempts[key]++
	f.maxRunning = max(f.maxRunning, f.running)
	if f.window == 0 {
		return
	}
	g := f.gen
	if f.running >= f.window || f.started >= f.total {
		f.mu.Unlock()
		if f.full != nil {
			f.full(f.release)
		} else {
			f.release()
		}
		f.mu.Lock()
	}
	for g == f.gen {
		f.cond.Wait()
	}
}

// release lets the chunks held by the window go.
func (f *fakeIngest) release() {
	f.mu.Lock()
	f.gen++
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *fakeIngest) leave() {
	f.mu.Lock()
	f.running--
	f.mu.Unlock()
}

func (f *fakeIngest) max() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxRunning
}

func (f *fakeIngest) attemptsOf(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[key]
}

// checkExactlyOnce fails unless every object's chunk completed exactly once, but those of
// the keys in failed, which must not have completed.
func (f *fakeIngest) checkExactlyOnce(t testing.TB, failed ...string) {
	t.Helper()
	bad := 0
	for i := range f.done {
		want := int32(1)
		if slices.Contains(failed, objectKey(i)) {
			want = 0
		}
		if n := f.done[i].Load(); n != want {
			if bad < 5 {
				t.Errorf("%s completed %d times, want %d", objectKey(i), n, want)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d objects completed the wrong number of times", bad)
	}
}

func newEnv(src *fakeSource, ing *fakeIngest) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	// The deadlock detector measures wall time (1s by default); on a loaded two-core machine a
	// workflow task can be descheduled that long without being stuck.
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: 20 * time.Second})
	env.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
	env.RegisterActivityWithOptions(src.PlanPage, activity.RegisterOptions{Name: activities.PlanPageName})
	env.RegisterActivityWithOptions(ing.IngestChunk, activity.RegisterOptions{Name: activities.IngestChunkName})
	env.RegisterActivityWithOptions(countAsIndexed, activity.RegisterOptions{Name: activities.ReconcileName})
	return env
}

func testInput() BackfillInput {
	return BackfillInput{
		Source: activities.Source{URI: "s3://bucket/prefix/", Format: ingest.FormatNDJSON, Index: "logs"},
	}
}

func query(t testing.TB, env *testsuite.TestWorkflowEnvironment) Progress {
	t.Helper()
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil {
		t.Fatalf("query %s: %v", ProgressQuery, err)
	}
	var p Progress
	if err := v.Get(&p); err != nil {
		t.Fatalf("decode progress: %v", err)
	}
	return p
}

func result(t testing.TB, env *testsuite.TestWorkflowEnvironment) BackfillResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("decode result: %v", err)
	}
	return res
}

// continuedInput returns the input of the next run when err is a continue-as-new.
func continuedInput(t testing.TB, err error) (BackfillInput, bool) {
	t.Helper()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		return BackfillInput{}, false
	}
	if can.WorkflowType.Name != BackfillName {
		t.Fatalf("continue-as-new to %q, want %q", can.WorkflowType.Name, BackfillName)
	}
	var next BackfillInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatalf("decode continue-as-new input: %v", err)
	}
	if next.State == nil {
		t.Fatal("continue-as-new input carries no State")
	}
	return next, true
}

func wantTotals(t testing.TB, got BackfillResult, chunks int64) {
	t.Helper()
	want := activities.ChunkStats{
		Read:         chunkStats.Read * chunks,
		Indexed:      chunkStats.Indexed * chunks,
		Retried:      chunkStats.Retried * chunks,
		DeadLettered: chunkStats.DeadLettered * chunks,
		Bytes:        chunkStats.Bytes * chunks,
	}
	if got.Stats != want {
		t.Errorf("stats = %+v, want %+v", got.Stats, want)
	}
	if got.ChunksPlanned != chunks || got.ChunksDone != chunks || got.Objects != chunks || got.Bytes != chunks*objectSize {
		t.Errorf("planned %d, done %d, objects %d, bytes %d; want %d chunks of %d bytes",
			got.ChunksPlanned, got.ChunksDone, got.Objects, got.Bytes, chunks, objectSize)
	}
}

func TestBackfillHappyPath(t *testing.T) {
	const objects, pageSize, concurrency = 30, 10, 4
	src := &fakeSource{objects: objects}
	ing := newFakeIngest(t, objects)
	ing.window, ing.total = concurrency, objects
	env := newEnv(src, ing)
	fills := 0
	ing.full = func(release func()) {
		// On the test environment's main loop, between workflow tasks: the workflow's own count.
		env.RegisterDelayedCallback(func() {
			fills++
			if p := query(t, env); p.ChunksRunning > concurrency {
				t.Errorf("workflow runs %d chunks at once, want at most %d", p.ChunksRunning, concurrency)
			}
			release()
		}, 0)
	}

	in := testInput()
	in.PageSize = pageSize
	in.Concurrency = concurrency
	env.ExecuteWorkflow(BackfillName, in)

	res := result(t, env)
	wantTotals(t, res, objects)
	ing.checkExactlyOnce(t)
	if res.ChunksFailed != 0 || len(res.Failed) != 0 || res.Runs != 1 {
		t.Errorf("failed %d %v, runs %d", res.ChunksFailed, res.Failed, res.Runs)
	}
	if got := src.calls.Load(); got != objects/pageSize {
		t.Errorf("PlanPage called %d times, want %d", got, objects/pageSize)
	}
	if got := ing.max(); got != concurrency {
		t.Errorf("at most %d chunks ran at once, want exactly %d", got, concurrency)
	}
	if fills < objects/concurrency {
		t.Errorf("the window filled %d times, want at least %d", fills, objects/concurrency)
	}
	p := query(t, env)
	if p.Phase != PhaseCompleted || p.ChunksDone != objects || p.ChunksRunning != 0 || !p.ListingDone {
		t.Errorf("final progress = %+v", p)
	}
}

func TestBackfillChunkFailures(t *testing.T) {
	const objects = 12
	failing := objectKey(5)
	// What IngestChunk puts in the details of its non-retryable errors: how far it got.
	partial := activities.ChunkProgress{Checkpoint: 40, Stats: activities.ChunkStats{Read: 4, Indexed: 4, Bytes: 40}}
	for _, tc := range []struct {
		name  string
		allow int
		err   error
	}{
		{"non-retryable error fails the workflow", 0,
			temporal.NewNonRetryableApplicationError("etag changed", activities.ErrTypeObjectChanged, nil, partial)},
		{"non-retryable type in the retry policy", 0,
			temporal.NewApplicationError("403 from S3", activities.ErrTypeAccessDenied)},
		{"allowed failure completes", 1,
			temporal.NewNonRetryableApplicationError("etag changed", activities.ErrTypeObjectChanged, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeSource{objects: objects}
			ing := newFakeIngest(t, objects)
			ing.hook = func(_ context.Context, in activities.IngestChunkInput) error {
				if in.Chunk.Key == failing {
					return tc.err
				}
				return nil
			}
			env := newEnv(src, ing)
			in := testInput()
			in.PageSize = 5
			in.Concurrency = 3
			in.AllowFailedChunks = tc.allow
			env.ExecuteWorkflow(BackfillName, in)

			ing.checkExactlyOnce(t, failing)
			if got := ing.attemptsOf(failing); got != 1 {
				t.Errorf("failing chunk attempted %d times, want 1", got)
			}
			var res BackfillResult
			if tc.allow == 0 {
				err := env.GetWorkflowError()
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) || appErr.Type() != ErrTypeChunksFailed {
					t.Fatalf("workflow error = %v, want %s", err, ErrTypeChunksFailed)
				}
				if !strings.Contains(appErr.Message(), "1 chunks failed") || !strings.Contains(appErr.Message(), failing) {
					t.Errorf("error message %q does not name the count and the key", appErr.Message())
				}
				if err := appErr.Details(&res); err != nil {
					t.Fatalf("ChunksFailed details: %v", err)
				}
			} else {
				res = result(t, env)
			}
			if res.ChunksFailed != 1 || res.ChunksDone != objects-1 || len(res.Failed) != 1 {
				t.Fatalf("result = %+v", res)
			}
			fc := res.Failed[0]
			if fc.Key != failing || fc.Start != 0 || fc.End != objectSize || fc.ErrorType == "" || fc.Error == "" {
				t.Errorf("failed chunk = %+v", fc)
			}
			wantStats := activities.ChunkStats{}
			for range objects - 1 {
				wantStats.Add(chunkStats)
			}
			wantResume := int64(0)
			var appErr *temporal.ApplicationError
			if errors.As(tc.err, &appErr) && appErr.HasDetails() {
				wantStats.Add(partial.Stats)
				wantResume = partial.Checkpoint
			}
			if fc.Resume != wantResume || res.Stats != wantStats {
				t.Errorf("resume %d, stats %+v; want %d, %+v", fc.Resume, res.Stats, wantResume, wantStats)
			}
		})
	}
}

func TestBackfillRetriesThenFails(t *testing.T) {
	const objects = 3
	src := &fakeSource{objects: objects}
	ing := newFakeIngest(t, objects)
	ing.hook = func(_ context.Context, in activities.IngestChunkInput) error {
		if in.Chunk.Key == objectKey(1) {
			return errors.New("connection reset")
		}
		return nil
	}
	env := newEnv(src, ing)
	in := testInput()
	in.MaxAttempts = 3
	in.AllowFailedChunks = 1
	env.ExecuteWorkflow(BackfillName, in)

	res := result(t, env)
	if got := ing.attemptsOf(objectKey(1)); got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
	if res.ChunksFailed != 1 || res.ChunksDone != objects-1 || res.Failed[0].Error != "connection reset" {
		t.Errorf("result = %+v", res)
	}
}

// TestBackfillSignalsAndQuery pauses a run while two chunks are running, raises the
// concurrency while paused, checks the progress query at each step, and resumes.
func TestBackfillSignalsAndQuery(t *testing.T) {
	const objects = 12
	src := &fakeSource{objects: objects}
	ing := newFakeIngest(t, objects)
	env := newEnv(src, ing)

	// The hook holds the chunks of a phase on its gate; the chunk that completes the expected
	// window posts the phase's step to the test environment's main loop.
	var phase atomic.Int32
	gates := []chan struct{}{make(chan struct{}), make(chan struct{})}
	var arrived [2]atomic.Int32
	check := func(cond bool, format string, args ...any) {
		if !cond {
			t.Errorf(format, args...)
		}
	}
	steps := []struct {
		window int32
		step   func()
	}{
		{2, func() {
			p := query(t, env)
			check(p.Phase == PhaseRunning && p.ChunksRunning == 2 && p.ChunksDone == 0 && p.Concurrency == 2,
				"progress with 2 running = %+v", p)
			env.SignalWorkflow(PauseSignal, nil)
			env.SignalWorkflow(SetConcurrencySignal, 4)
			close(gates[0])
		}},
		{4, func() {
			p := query(t, env)
			check(p.Phase == PhaseRunning && p.ChunksRunning == 4 && p.ChunksDone == 2 && p.Concurrency == 4,
				"progress after resume = %+v", p)
			phase.Store(2)
			close(gates[1])
		}},
	}
	ing.hook = func(_ context.Context, _ activities.IngestChunkInput) error {
		ph := phase.Load()
		if ph >= 2 {
			return nil
		}
		if arrived[ph].Add(1) == steps[ph].window {
			env.RegisterDelayedCallback(steps[ph].step, 0)
		}
		<-gates[ph]
		return nil
	}
	// Runs once the paused workflow is idle: the test clock only moves then.
	env.RegisterDelayedCallback(func() {
		p := query(t, env)
		check(p.Phase == PhasePaused && p.Paused && p.ChunksRunning == 0 && p.ChunksDone == 2 && p.Concurrency == 4,
			"progress while paused = %+v", p)
		phase.Store(1)
		env.SignalWorkflow(ResumeSignal, nil)
	}, time.Hour)

	in := testInput()
	in.PageSize = 5
	in.Concurrency = 2
	env.ExecuteWorkflow(BackfillName, in)

	res := result(t, env)
	wantTotals(t, res, objects)
	ing.checkExactlyOnce(t)
	if got := ing.max(); got > 4 {
		t.Errorf("%d chunks ran at once, want at most 4", got)
	}
	p := query(t, env)
	if p.Phase != PhaseCompleted || p.Paused || p.Concurrency != 4 || p.Stats != res.Stats {
		t.Errorf("final progress = %+v", p)
	}
	if p.Elapsed < time.Hour || p.DocsPerSecond <= 0 {
		t.Errorf("elapsed %v, docs/s %v: want the paused hour counted", p.Elapsed, p.DocsPerSecond)
	}
}

// withinBound reports whether a run that scheduled activities stayed within maxEvents: it may
// schedule the activity that crosses the bound, no more.
func withinBound(activities, maxEvents int) bool {
	return eventsPerRun+eventsPerActivity*(activities-1) <= maxEvents
}

// runChain runs the workflow from in, following continue-as-new, and returns the last run's
// environment and the number of runs. perRun, when set, sees every run's environment.
func runChain(t testing.TB, in BackfillInput, src *fakeSource, ing *fakeIngest, maxRuns int,
	perRun func(run int, env *testsuite.TestWorkflowEnvironment)) (*testsuite.TestWorkflowEnvironment, int) {
	t.Helper()
	for run := 1; run <= maxRuns; run++ {
		env := newEnv(src, ing)
		env.ExecuteWorkflow(BackfillName, in)
		if !env.IsWorkflowCompleted() {
			t.Fatalf("run %d did not complete", run)
		}
		if perRun != nil {
			perRun(run, env)
		}
		next, ok := continuedInput(t, env.GetWorkflowError())
		if !ok {
			return env, run
		}
		if next.State.Runs != run {
			t.Fatalf("run %d carried Runs=%d", run, next.State.Runs)
		}
		in = next
	}
	t.Fatalf("not finished after %d runs", maxRuns)
	return nil, 0
}

func TestBackfillContinueAsNew(t *testing.T) {
	const objects, pageSize, concurrency = 40, 7, 3
	src := &fakeSource{objects: objects}
	ing := newFakeIngest(t, objects)
	in := testInput()
	in.PageSize = pageSize
	in.Concurrency = concurrency
	in.MaxHistoryEvents = 60 // about ten activities per run

	var first *BackfillState
	env, runs := runChain(t, in, src, ing, 50, func(run int, env *testsuite.TestWorkflowEnvironment) {
		next, ok := continuedInput(t, env.GetWorkflowError())
		if !ok {
			return
		}
		st := next.State
		if run == 1 {
			first = st
		}
		// Nothing is running across the boundary: what is planned is done, failed or pending.
		if st.ChunksPlanned != st.ChunksDone+st.ChunksFailed+int64(len(st.Pending)) {
			t.Errorf("run %d: planned %d != done %d + failed %d + pending %d",
				run, st.ChunksPlanned, st.ChunksDone, st.ChunksFailed, len(st.Pending))
		}
		if len(st.Pending) >= pageSize+concurrency {
			t.Errorf("run %d carried %d pending chunks", run, len(st.Pending))
		}
		var done int64
		for i := range ing.done {
			done += int64(ing.done[i].Load())
		}
		if done != st.ChunksDone {
			t.Errorf("run %d: state says %d done, the activity saw %d", run, st.ChunksDone, done)
		}
		p := query(t, env)
		if p.Phase != PhaseContinued || !withinBound(p.ActivitiesThisRun, in.MaxHistoryEvents) {
			t.Errorf("run %d progress = %+v", run, p)
		}
	})
	if first == nil || first.ListingDone || first.Cursor == "" || first.StartTime.IsZero() {
		t.Fatalf("first continue-as-new state = %+v", first)
	}
	if runs < 3 {
		t.Errorf("finished in %d runs; the threshold should have forced more", runs)
	}
	res := result(t, env)
	wantTotals(t, res, objects)
	ing.checkExactlyOnce(t)
	if res.Runs != runs {
		t.Errorf("result says %d runs, ran %d", res.Runs, runs)
	}
	t.Logf("%d objects in %d runs", objects, runs)
}

// TestBackfillSignalAcrossContinueAsNew sends a signal that the workflow has not received when
// continue-as-new becomes due; the next run must carry it.
func TestBackfillSignalAcrossContinueAsNew(t *testing.T) {
	const objects = 10
	src := &fakeSource{objects: objects}
	ing := newFakeIngest(t, objects)
	env := newEnv(src, ing)
	gate := make(chan struct{})
	var arrived atomic.Int32
	ing.hook = func(context.Context, activities.IngestChunkInput) error {
		if arrived.Add(1) == 2 {
			env.RegisterDelayedCallback(func() {
				env.SignalWorkflowSkippingWorkflowTask(SetConcurrencySignal, 7)
				close(gate)
			}, 0)
		}
		<-gate
		return nil
	}
	in := testInput()
	in.Concurrency = 2
	in.MaxHistoryEvents = eventsPerRun + 3*eventsPerActivity - 1 // due once the first two chunks are out
	env.ExecuteWorkflow(BackfillName, in)

	next, ok := continuedInput(t, env.GetWorkflowError())
	if !ok {
		t.Fatalf("workflow error = %v, want continue-as-new", env.GetWorkflowError())
	}
	if next.State.Concurrency != 7 || next.State.ChunksDone != 2 || len(next.State.Pending) != objects-2 {
		t.Errorf("carried state = %+v", next.State)
	}
}

func TestBackfillCancel(t *testing.T) {
	const objects, concurrency = 10, 3
	src := &fakeSource{objects: objects}
	ing := newFakeIngest(t, objects)
	env := newEnv(src, ing)

	var started atomic.Int32
	observed := make(chan string, objects)
	ing.hook = func(ctx context.Context, in activities.IngestChunkInput) error {
		if started.Add(1) == concurrency {
			env.RegisterDelayedCallback(env.CancelWorkflow, 0)
		}
		// A chunk that heartbeats until it is told to stop. The test environment tells it
		// through a refused heartbeat, like a server does.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			activity.RecordHeartbeat(ctx, activities.ChunkProgress{Checkpoint: 42})
			select {
			case <-ctx.Done():
				observed <- in.Chunk.Key
				return temporal.NewCanceledError(activities.ChunkProgress{Checkpoint: 42})
			case <-tick.C:
			}
		}
	}
	in := testInput()
	in.Concurrency = concurrency
	in.HeartbeatTimeout = time.Second // throttles heartbeats to 0.8s, so cancellation shows quickly
	env.ExecuteWorkflow(BackfillName, in)

	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	p := query(t, env)
	if p.Phase != PhaseCanceled || p.ChunksRunning != 0 || p.ChunksDone != 0 || p.ChunksPending != objects {
		t.Errorf("progress after cancel = %+v", p)
	}
	timeout := time.After(30 * time.Second)
	for range concurrency {
		select {
		case <-observed:
		case <-timeout:
			t.Fatal("running chunks did not observe the cancellation")
		}
	}
}

func TestBackfillBadInput(t *testing.T) {
	env := newEnv(&fakeSource{}, newFakeIngest(t, 0))
	env.ExecuteWorkflow(BackfillName, BackfillInput{})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeBadInput {
		t.Fatalf("workflow error = %v, want %s", err, activities.ErrTypeBadInput)
	}
}

// TestBackfillMillionObjects runs a listing of 1,000,000 objects (one chunk each) through
// continue-as-new at the default history bound, and checks that every run stays far below
// Temporal's history limits and that every chunk completes exactly once overall.
func TestBackfillMillionObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("a million activities in the test environment take a while")
	}
	// The test environment allocates a lot per activity; collecting less often saves about a
	// third of the CPU time.
	defer debug.SetGCPercent(debug.SetGCPercent(400))

	const objects = 1_000_000
	src := &fakeSource{objects: objects}
	ing := newFakeIngest(t, objects)
	in := testInput()
	in.PageSize = 1000
	in.Concurrency = 64

	// The server refuses histories of 51,200 events; stay well below.
	const maxEvents = 51_200 / 4
	start := time.Now()
	maxActivities := 0
	env, runs := runChain(t, in, src, ing, 10_000, func(run int, env *testsuite.TestWorkflowEnvironment) {
		p := query(t, env)
		maxActivities = max(maxActivities, p.ActivitiesThisRun)
		events := eventsPerRun + eventsPerActivity*p.ActivitiesThisRun
		if !withinBound(p.ActivitiesThisRun, DefaultMaxHistoryEvents) || events > maxEvents {
			t.Fatalf("run %d scheduled %d activities, about %d events", run, p.ActivitiesThisRun, events)
		}
	})
	res := result(t, env)
	wantTotals(t, res, objects)
	ing.checkExactlyOnce(t)
	if got := src.calls.Load(); got != objects/1000 {
		t.Errorf("PlanPage called %d times, want %d", got, objects/1000)
	}
	t.Logf("%d objects in %d runs, at most %d activities per run (default bound %d events), %v",
		objects, runs, maxActivities, DefaultMaxHistoryEvents, time.Since(start))
}

func TestReached(t *testing.T) {
	c := activities.Chunk{Key: "k", Start: 100, End: 200}
	hb := activities.ChunkProgress{Checkpoint: 150, Stats: activities.ChunkStats{Read: 5, Indexed: 5}}
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"canceled with details", temporal.NewCanceledError(hb), true},
		{"canceled without details", temporal.NewCanceledError(), false},
		{"application error with details", temporal.NewNonRetryableApplicationError("x", activities.ErrTypeObjectChanged, nil, hb), true},
		{"checkpoint not past the start", temporal.NewCanceledError(activities.ChunkProgress{Checkpoint: 100}), false},
		{"plain error", errors.New("x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := reached(c, fmt.Errorf("wrapped: %w", tc.err))
			if ok != tc.ok || (ok && !reflect.DeepEqual(got, hb)) {
				t.Errorf("reached = %+v, %v; want %v", got, ok, tc.ok)
			}
		})
	}
}

// TestBackfillStopsOnConfigError: a chunk that fails for a reason every chunk would meet (a
// target that takes no writes) stops the backfill: nothing more starts, and the workflow fails
// with that reason instead of failing the dataset chunk by chunk. A chunk-specific failure
// (TestBackfillChunkFailures) does not stop it.
func TestBackfillStopsOnConfigError(t *testing.T) {
	const objects = 12
	failing := objectKey(2)
	for _, typ := range []string{activities.ErrTypeIndexNotAllowed, activities.ErrTypeBadConfig, activities.ErrTypeUnauthorized} {
		t.Run(typ, func(t *testing.T) {
			src := &fakeSource{objects: objects}
			ing := newFakeIngest(t, objects)
			ing.hook = func(_ context.Context, in activities.IngestChunkInput) error {
				if in.Chunk.Key == failing {
					return temporal.NewNonRetryableApplicationError("all 100 documents of a request were refused", typ, nil)
				}
				return nil
			}
			env := newEnv(src, ing)
			in := testInput()
			in.PageSize = 5
			in.Concurrency = 1
			env.ExecuteWorkflow(BackfillName, in)

			var appErr *temporal.ApplicationError
			if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeChunksFailed {
				t.Fatalf("workflow error = %v, want %s", err, ErrTypeChunksFailed)
			}
			if msg := appErr.Message(); !strings.Contains(msg, "stopped") || !strings.Contains(msg, failing) || !strings.Contains(msg, typ) {
				t.Errorf("error message %q does not say it stopped, on which chunk, and why", msg)
			}
			var res BackfillResult
			if err := appErr.Details(&res); err != nil {
				t.Fatal(err)
			}
			if res.ChunksDone != 2 || res.ChunksFailed != 1 || len(res.Failed) != 1 || res.Failed[0].Key != failing {
				t.Fatalf("result %+v: want 2 chunks done, then the failing one, then nothing", res)
			}
			if got := ing.attemptsOf(objectKey(3)); got != 0 {
				t.Errorf("a chunk after the stop ran %d times", got)
			}
		})
	}
}
