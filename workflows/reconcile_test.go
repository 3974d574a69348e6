package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/activities"
)

// countAsIndexed is a Reconcile whose index holds exactly what the backfill indexed.
func countAsIndexed(_ context.Context, in activities.ReconcileInput) (activities.ReconcileOutput, error) {
	return activities.ReconcileOutput{Count: in.Indexed, Expected: in.Indexed}, nil
}

func TestBackfillReconciles(t *testing.T) {
	const objects = 6
	// Reconcile gets the totals of the chunks, and the run completes with its answer.
	env := newEnv(&fakeSource{objects: objects}, newFakeIngest(t, objects))
	var got activities.ReconcileInput
	env.OnActivity(activities.ReconcileName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReconcileInput) (activities.ReconcileOutput, error) {
			got = in
			return activities.ReconcileOutput{Count: in.Indexed + 3, Expected: in.Indexed, Note: "3 more"}, nil
		})
	env.ExecuteWorkflow(BackfillName, testInput())
	res := result(t, env)
	if got.Indexed != objects*chunkStats.Indexed || got.DeadLettered != objects*chunkStats.DeadLettered || got.Source.Index != "logs" {
		t.Errorf("Reconcile input %+v", got)
	}
	if r := res.Reconciliation; r == nil || !r.OK() || r.Count != objects*chunkStats.Indexed+3 || r.Note != "3 more" {
		t.Errorf("reconciliation %+v", res.Reconciliation)
	}
	if p := query(t, env); p.BytesDone != objects*objectSize || p.BytesDone != p.Bytes {
		t.Errorf("bytes done %d of %d, want all %d", p.BytesDone, p.Bytes, objects*objectSize)
	}
}

func TestBackfillReconcileFails(t *testing.T) {
	const objects = 4
	unbalanced := objectKey(2)
	for _, tc := range []struct {
		name    string
		missing int64
		chunk   activities.ChunkStats // of the object unbalanced
		want    []string
	}{
		{"documents missing", 5, chunkStats, []string{"index logs holds 31 documents, 5 fewer than this backfill indexed"}},
		{"records unaccounted for", 0, activities.ChunkStats{Read: 10, Indexed: 7, DeadLettered: 1},
			[]string{"1 chunks read records neither indexed nor dead-lettered: obj-0000002 (10 read, 7 indexed, 1 dead-lettered)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(&fakeSource{objects: objects}, newFakeIngest(t, objects))
			env.OnActivity(activities.IngestChunkName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.IngestChunkInput) (activities.ChunkProgress, error) {
					if in.Chunk.Key == unbalanced {
						return activities.ChunkProgress{Checkpoint: in.Chunk.End, Stats: tc.chunk}, nil
					}
					return activities.ChunkProgress{Checkpoint: in.Chunk.End, Stats: chunkStats}, nil
				})
			env.OnActivity(activities.ReconcileName, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.ReconcileInput) (activities.ReconcileOutput, error) {
					return activities.ReconcileOutput{Count: in.Indexed - tc.missing, Expected: in.Indexed, Missing: tc.missing}, nil
				})
			env.ExecuteWorkflow(BackfillName, testInput())
			err := env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != ErrTypeReconcileFailed {
				t.Fatalf("workflow error %v, want %s", err, ErrTypeReconcileFailed)
			}
			for _, w := range tc.want {
				if !strings.Contains(appErr.Message(), w) {
					t.Errorf("message %q lacks %q", appErr.Message(), w)
				}
			}
			var res BackfillResult
			if err := appErr.Details(&res); err != nil || res.Reconciliation == nil || res.Reconciliation.OK() || res.ChunksDone != objects {
				t.Fatalf("details %+v, %v", res, err)
			}
			if p := query(t, env); p.Phase != PhaseFailed {
				t.Errorf("phase %s", p.Phase)
			}
		})
	}
}
