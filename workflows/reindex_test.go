package workflows

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
)

func TestVerifyCount(t *testing.T) {
	done := func(indexed int64) BackfillResult {
		return BackfillResult{Stats: activities.ChunkStats{Read: indexed + 1, Indexed: indexed, DeadLettered: 1}}
	}
	partial := func(indexed int64) BackfillResult { r := done(indexed); r.ChunksFailed = 1; return r }
	for _, tc := range []struct {
		name    string
		count   int64
		res     BackfillResult
		idField bool
		ok      bool
	}{
		{"exact", 100, done(100), false, true},
		{"fewer", 99, done(100), false, false},
		{"more", 101, done(100), false, false},
		{"nothing indexed", 0, done(0), false, false},
		{"nothing indexed, id field", 0, done(0), true, false},
		{"failed chunk: records past its checkpoint", 120, partial(100), false, true},
		{"failed chunk: fewer", 99, partial(100), false, false},
		{"id field: duplicates collapse", 40, done(100), true, true},
		{"id field: all distinct", 100, done(100), true, true},
		{"id field: more than indexed", 101, done(100), true, false},
		{"id field: empty index", 0, done(100), true, false},
		{"id field, failed chunk: more", 150, partial(100), true, true},
	} {
		err := verifyCount(tc.count, tc.res, tc.idField)
		if (err == nil) != tc.ok {
			t.Errorf("%s: count %d, indexed %d: err = %v, want ok %v", tc.name, tc.count, tc.res.Stats.Indexed, err, tc.ok)
		}
	}
}

// fakeAdmin records the admin activities the workflow runs, in order.
type fakeAdmin struct {
	mu           sync.Mutex
	calls        []string
	count        int64
	swapErr      error
	childEnded   func() bool // reports whether the child has returned, checked by DeleteIndex
	deletedEarly bool
}

func (f *fakeAdmin) record(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func (f *fakeAdmin) register(env interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}) {
	reg := func(name string, fn any) { env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg(activities.CheckAliasName, func(context.Context, activities.AliasInput) (activities.AliasState, error) {
		f.record("check")
		return activities.AliasState{Indices: []string{"logs-old"}}, nil
	})
	reg(activities.CreateIndexName, func(context.Context, activities.CreateIndexInput) (activities.CreateIndexOutput, error) {
		f.record("create")
		return activities.CreateIndexOutput{Restore: []byte(`{"index.refresh_interval":null}`)}, nil
	})
	reg(activities.PutSettingsName, func(context.Context, activities.IndexSettingsInput) error { f.record("settings"); return nil })
	reg(activities.RefreshCountName, func(context.Context, activities.IndexInput) (activities.CountOutput, error) {
		f.record("count")
		return activities.CountOutput{Count: f.count}, nil
	})
	reg(activities.SwapAliasName, func(context.Context, activities.SwapAliasInput) (activities.SwapAliasOutput, error) {
		f.record("swap")
		return activities.SwapAliasOutput{Previous: []string{"logs-old"}}, f.swapErr
	})
	reg(activities.DeleteIndexName, func(_ context.Context, in activities.DeleteIndexInput) error {
		f.record("delete " + in.UnlessAlias)
		return nil
	})
	reg(activities.PruneIndicesName, func(context.Context, activities.PruneIndicesInput) (activities.PruneIndicesOutput, error) {
		f.record("prune")
		return activities.PruneIndicesOutput{Deleted: []string{"logs-a"}}, nil
	})
}

func reindexTestInput() ReindexInput {
	return ReindexInput{Alias: "logs", Backfill: BackfillInput{Source: activities.Source{URI: "s3://b/p/"}, MaxAttempts: 1}}
}

func newReindexEnv(t *testing.T, child func(workflow.Context, BackfillInput) (BackfillResult, error)) (*testsuite.TestWorkflowEnvironment, *fakeAdmin) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(ReindexWorkflow, workflow.RegisterOptions{Name: ReindexName})
	env.RegisterWorkflowWithOptions(child, workflow.RegisterOptions{Name: BackfillName})
	f := &fakeAdmin{count: 10}
	f.register(env)
	return env, f
}

func indexedTen(_ workflow.Context, in BackfillInput) (BackfillResult, error) {
	if !strings.HasPrefix(in.Source.Index, "logs-") || in.Source.DeadLetter != "index:logs-dead-letters" {
		return BackfillResult{}, errors.New("unexpected child input: " + in.Source.Index + " " + in.Source.DeadLetter)
	}
	return BackfillResult{Stats: activities.ChunkStats{Read: 10, Indexed: 10}}, nil
}

func TestReindexHappyPath(t *testing.T) {
	env, f := newReindexEnv(t, indexedTen)
	in := reindexTestInput()
	keep := 1
	in.KeepOld = &keep
	env.ExecuteWorkflow(ReindexName, in)
	var res ReindexResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if want := []string{"check", "create", "settings", "count", "swap", "prune"}; !slices.Equal(f.calls, want) {
		t.Fatalf("activities %v, want %v", f.calls, want)
	}
	if res.Count != 10 || !slices.Equal(res.Previous, []string{"logs-old"}) || !slices.Equal(res.Deleted, []string{"logs-a"}) ||
		!strings.HasPrefix(res.Index, "logs-") {
		t.Fatalf("result %+v", res)
	}
}

// TestReindexFailuresBeforeTheSwap: a failed verification, a failed swap and a cancellation
// during the load each delete the new index (asking DeleteIndex to spare it if the alias points
// to it) and never prune; KeepFailed keeps it.
func TestReindexFailuresBeforeTheSwap(t *testing.T) {
	t.Run("verification", func(t *testing.T) {
		env, f := newReindexEnv(t, indexedTen)
		f.count = 9
		env.ExecuteWorkflow(ReindexName, reindexTestInput())
		var appErr *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeVerifyFailed {
			t.Fatalf("err = %v, want %s", err, ErrTypeVerifyFailed)
		}
		if want := []string{"check", "create", "settings", "count", "delete logs"}; !slices.Equal(f.calls, want) {
			t.Fatalf("activities %v, want %v", f.calls, want)
		}
	})
	t.Run("load", func(t *testing.T) {
		// The load's error reads as the backfill's own message, not the chain of Temporal
		// wrappers (child workflow, activity, types) around it.
		env, f := newReindexEnv(t, func(workflow.Context, BackfillInput) (BackfillResult, error) {
			return BackfillResult{}, temporal.NewNonRetryableApplicationError("planning es://x: no such index [x]", activities.ErrTypeNotFound, nil)
		})
		env.ExecuteWorkflow(ReindexName, reindexTestInput())
		var appErr *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeLoadFailed {
			t.Fatalf("err = %v, want %s", err, ErrTypeLoadFailed)
		}
		if msg := appErr.Message(); !strings.HasPrefix(msg, "loading index logs-") || !strings.HasSuffix(msg, ": planning es://x: no such index [x]") {
			t.Fatalf("message %q, want the load's own", msg)
		}
		if want := []string{"check", "create", "delete logs"}; !slices.Equal(f.calls, want) {
			t.Fatalf("activities %v, want %v", f.calls, want)
		}
	})
	for _, keep := range []bool{false, true} {
		t.Run("swap", func(t *testing.T) {
			env, f := newReindexEnv(t, indexedTen)
			f.swapErr = temporal.NewNonRetryableApplicationError("blocked", activities.ErrTypeUnauthorized, nil)
			in := reindexTestInput()
			in.KeepFailed = keep
			env.ExecuteWorkflow(ReindexName, in)
			if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "blocked") {
				t.Fatalf("err = %v, want the swap's", err)
			}
			want := []string{"check", "create", "settings", "count", "swap", "delete logs"}
			if keep {
				want = want[:5]
			}
			if !slices.Equal(f.calls, want) {
				t.Fatalf("keep-failed %v: activities %v, want %v", keep, f.calls, want)
			}
		})
	}
	t.Run("cancel during the load", func(t *testing.T) {
		env, f := newReindexEnv(t, func(ctx workflow.Context, in BackfillInput) (BackfillResult, error) {
			ctx.Done().Receive(ctx, nil)
			return BackfillResult{}, workflow.ErrCanceled
		})
		env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
		env.ExecuteWorkflow(ReindexName, reindexTestInput())
		var canceled *temporal.CanceledError
		if err := env.GetWorkflowError(); !errors.As(err, &canceled) {
			t.Fatalf("err = %v, want canceled", err)
		}
		if want := []string{"check", "create", "delete logs"}; !slices.Equal(f.calls, want) {
			t.Fatalf("activities %v, want %v", f.calls, want)
		}
	})
}

func TestReindexBadInput(t *testing.T) {
	neg := -1
	for _, in := range []ReindexInput{
		{Backfill: BackfillInput{Source: activities.Source{URI: "s3://b/p/"}}},
		{Alias: "logs"},
		{Alias: "logs", Backfill: BackfillInput{Source: activities.Source{URI: "s3://b/p/"}}, KeepOld: &neg},
	} {
		env, f := newReindexEnv(t, indexedTen)
		env.ExecuteWorkflow(ReindexName, in)
		var appErr *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeBadInput || len(f.calls) > 0 {
			t.Errorf("%+v: err = %v, activities %v; want %s and none", in, err, f.calls, activities.ErrTypeBadInput)
		}
	}
}

// TestReplayReindexHistory replays a history that a real run of ReindexWorkflow wrote on a real
// Temporal server (record it again with: go test -tags record -run TestRecordReindexHistory
// ./workflows/).
func TestReplayReindexHistory(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "reindex_history*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded reindex history in testdata (%v); record it with: go test -tags record -run TestRecordReindexHistory ./workflows/", err)
	}
	for _, file := range files {
		replayer := worker.NewWorkflowReplayer()
		replayer.RegisterWorkflowWithOptions(ReindexWorkflow, workflow.RegisterOptions{Name: ReindexName})
		replayer.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillName})
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		history, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		// The child's workflow id derives from the reindex's: replay under the recorded id.
		logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
		if err := replayer.ReplayWorkflowHistoryWithOptions(logger, history, worker.ReplayWorkflowHistoryOptions{
			OriginalExecution: workflow.Execution{ID: recordedReindexID},
		}); err != nil {
			t.Fatalf("replaying %s: %v", file, err)
		}
	}
}

// recordedReindexID is the workflow id of the recorded reindex history.
const recordedReindexID = "record-reindex"
