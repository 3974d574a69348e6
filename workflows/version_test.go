package workflows

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
)

// TestNewerInputVersionRefused: an input written by a newer sluice fails the workflow before
// it does anything, non-retryable, with a message that says which version and why; versions up
// to the worker's, and 0 (callers that predate the field), run.
func TestNewerInputVersionRefused(t *testing.T) {
	newerBackfill := testInput()
	newerBackfill.Version = BackfillVersion + 1
	newerReindex := reindexTestInput()
	newerReindex.Version = ReindexVersion + 1
	newerLoad := reindexTestInput()
	newerLoad.Backfill.Version = BackfillVersion + 1
	for _, tc := range []struct {
		name, workflow string
		in             any
		want           string
	}{
		{"backfill", BackfillName, newerBackfill, "backfill input written by a newer sluice: version 2, this worker understands up to 1"},
		{"reindex", ReindexName, newerReindex, "reindex input written by a newer sluice: version 2, this worker understands up to 1"},
		{"reindex's backfill", ReindexName, newerLoad, "backfill input written by a newer sluice: version 2, this worker understands up to 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, ing := &fakeSource{objects: 3}, newFakeIngest(t, 3)
			env := newEnv(src, ing)
			env.RegisterWorkflowWithOptions(ReindexWorkflow, workflow.RegisterOptions{Name: ReindexName})
			f := &fakeAdmin{count: 10}
			f.register(env)
			env.ExecuteWorkflow(tc.workflow, tc.in)
			var appErr *temporal.ApplicationError
			err := env.GetWorkflowError()
			if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeBadInput || !appErr.NonRetryable() ||
				!strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want a non-retryable %s saying %q", err, activities.ErrTypeBadInput, tc.want)
			}
			if len(f.calls) > 0 || src.calls.Load() > 0 {
				t.Fatalf("a refused input ran activities: %v", f.calls)
			}
		})
	}

	for _, v := range []int{0, 1} {
		in := reindexTestInput()
		in.Version, in.Backfill.Version = v, v
		if err := in.validate(); err != nil {
			t.Errorf("version %d refused: %v", v, err)
		}
	}
}
