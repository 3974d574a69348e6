package workflows

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"

	"github.com/sluicehq/sluice/activities"
)

func TestRateCapsAreShared(t *testing.T) {
	const objects = 6
	env := newEnv(&fakeSource{objects: objects}, newFakeIngest(t, objects))
	var mu sync.Mutex
	var got []activities.Limits
	env.OnActivity(activities.IngestChunkName, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.IngestChunkInput) (activities.ChunkProgress, error) {
			mu.Lock()
			got = append(got, in.Limits)
			mu.Unlock()
			return activities.ChunkProgress{Checkpoint: in.Chunk.End, Stats: chunkStats}, nil
		})
	in := testInput()
	in.Concurrency = 4
	in.MaxDocsPerSecond, in.MaxBytesPerSecond = 1000, 8<<20
	in.Limits.MaxOps = 77
	env.ExecuteWorkflow(BackfillName, in)
	result(t, env)
	if len(got) != objects {
		t.Fatalf("%d chunks ran", len(got))
	}
	for _, l := range got {
		if l.MaxDocsPerSecond != 250 || l.MaxBytesPerSecond != 2<<20 || l.MaxOps != 77 {
			t.Errorf("chunk limits %+v, want a quarter of the caps", l)
		}
	}
}
