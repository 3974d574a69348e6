package workflows

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/activities"
)

// TestBackfillPackedChunkFailedObjects: objects of a packed chunk that changed or vanished
// after planning are counted and listed as failed chunks of their own; the chunk is done.
func TestBackfillPackedChunkFailedObjects(t *testing.T) {
	packed := activities.Chunk{Size: 30, End: -1, Objects: []activities.PackedObject{
		{Key: "a", Size: 10}, {Key: "b", Size: 10}, {Key: "c", Size: 10}}}
	single := activities.Chunk{Key: "d", Size: 10, End: -1}
	stats := activities.ChunkStats{Read: 7, Indexed: 7, Bytes: 20}
	plan := func(context.Context, activities.PlanPageInput) (activities.PlanPageOutput, error) {
		return activities.PlanPageOutput{Chunks: []activities.Chunk{packed, single}, Objects: 4, Bytes: 40}, nil
	}
	ingestChunk := func(_ context.Context, in activities.IngestChunkInput) (activities.ChunkProgress, error) {
		if len(in.Chunk.Objects) == 0 {
			return activities.ChunkProgress{Checkpoint: 10, Stats: stats}, nil
		}
		return activities.ChunkProgress{Object: 2, Checkpoint: 10, Stats: stats, Failed: []activities.FailedObject{
			{Key: "b", Offset: 0, ErrorType: activities.ErrTypeNotFound, Error: "gone"}}}, nil
	}
	env := newEnv(&fakeSource{}, newFakeIngest(t, 0))
	env.RegisterActivityWithOptions(plan, activity.RegisterOptions{Name: activities.PlanPageName})
	env.RegisterActivityWithOptions(ingestChunk, activity.RegisterOptions{Name: activities.IngestChunkName})
	in := testInput()
	in.AllowFailedChunks = 1
	env.ExecuteWorkflow(BackfillName, in)
	res := result(t, env)
	want := []FailedChunk{{Key: "b", End: -1, ErrorType: activities.ErrTypeNotFound, Error: "gone", Object: true}}
	if res.ChunksDone != 2 || res.ChunksFailed != 1 || res.ObjectsFailed != 1 || !reflect.DeepEqual(res.Failed, want) || res.Stats.Read != 14 {
		t.Errorf("result %+v, want 2 chunks done and object b failed", res)
	}
}

func TestReachedPackedChunk(t *testing.T) {
	c := activities.Chunk{End: -1, Objects: make([]activities.PackedObject, 10), ResumeObject: 3, Resume: 100}
	for _, tc := range []struct {
		hb activities.ChunkProgress
		ok bool
	}{
		{activities.ChunkProgress{Object: 4, Checkpoint: 10}, true},
		{activities.ChunkProgress{Object: 3, Checkpoint: 101}, true},
		{activities.ChunkProgress{Object: 3, Checkpoint: 100}, false},
		{activities.ChunkProgress{Object: 2, Checkpoint: 500}, false},
	} {
		_, ok := reached(c, temporal.NewCanceledError(tc.hb))
		if ok != tc.ok {
			t.Errorf("reached(%+v) = %v, want %v", tc.hb, ok, tc.ok)
		}
	}
	if _, ok := reached(c, errors.New("x")); ok {
		t.Error("reached without details")
	}
}
