package workflows

import (
	"testing"

	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
)

func TestPlanWorkflowSumsPages(t *testing.T) {
	const objects, pageSize = 25, 10
	src := &fakeSource{objects: objects}
	ing := newFakeIngest(t, objects)
	env := newEnv(src, ing)
	env.RegisterWorkflowWithOptions(PlanWorkflow, workflow.RegisterOptions{Name: PlanName})
	in := testInput()
	in.PageSize = pageSize
	env.ExecuteWorkflow(PlanName, PlanInput{Backfill: in})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var p PlanResult
	if err := env.GetWorkflowResult(&p); err != nil {
		t.Fatal(err)
	}
	if p.Objects != objects || p.Chunks != objects || p.Bytes != objects*objectSize || p.Pages != 3 || p.Empty != 0 {
		t.Errorf("plan %+v", p)
	}
	if g := p.ByCompression["auto"]; g.Objects != objects || g.Chunks != objects || len(p.ByCompression) != 1 {
		t.Errorf("by compression %+v", p.ByCompression)
	}
	if len(p.Largest) != planLargestListed {
		t.Errorf("largest %+v", p.Largest)
	}
	ing.checkExactlyOnce(t, allKeys(objects)...) // nothing ingested
	if est := EstimateOf(in, p); est.Activities != objects+3+1 || est.Waves != 4 || est.Runs != 1 {
		t.Errorf("estimate %+v", est)
	}
}

func TestPlanResultGroupsChunksByObject(t *testing.T) {
	p := PlanResult{ByCompression: map[string]PlanGroup{}}
	p.add(activities.PlanPageOutput{Objects: 4, Bytes: 350, Chunks: []activities.Chunk{
		{Key: "a", Size: 300, Start: 0, End: 100, Compression: "none"},
		{Key: "a", Size: 300, Start: 100, End: 200, Compression: "none"},
		{Key: "a", Size: 300, Start: 200, End: -1, Compression: "none"},
		{Key: "b.gz", Size: 50, End: -1, Compression: "gzip"},
	}})
	if p.Objects != 4 || p.Empty != 2 || p.Chunks != 4 ||
		p.ByCompression["none"] != (PlanGroup{Objects: 1, Chunks: 3, Bytes: 300}) || p.ByCompression["gzip"] != (PlanGroup{Objects: 1, Chunks: 1, Bytes: 50}) {
		t.Errorf("%+v", p)
	}
	if len(p.Largest) != 2 || p.Largest[0].Key != "a" || p.Largest[0].Chunks != 3 {
		t.Errorf("largest %+v", p.Largest)
	}
}

func allKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = objectKey(i)
	}
	return keys
}

// TestPlanResultListsSlices: the slices of an es:// source are summed as documents, not bytes,
// listed in plan order up to planSlicesListed and counted past it.
func TestPlanResultListsSlices(t *testing.T) {
	p := PlanResult{ByCompression: map[string]PlanGroup{}}
	page := func(index string, shards int) activities.PlanPageOutput {
		out := activities.PlanPageOutput{Objects: 1, Bytes: int64(shards) * 10}
		for shard := range shards {
			out.Chunks = append(out.Chunks, activities.Chunk{Slice: &activities.Slice{Index: index, Shard: shard}, Size: 10, End: -1})
		}
		return out
	}
	p.add(page("a", 2))
	p.add(page("b", planSlicesListed))
	if p.Objects != 2 || p.Chunks != planSlicesListed+2 || p.Documents != 10*(planSlicesListed+2) || p.Bytes != 0 || len(p.ByCompression) != 0 || len(p.Largest) != 0 {
		t.Fatalf("plan %+v", p)
	}
	if len(p.Slices) != planSlicesListed || p.SlicesLeftOut != 2 || p.Slices[1] != (PlannedSlice{Index: "a", Shard: 1, Documents: 10}) || p.Slices[2].Index != "b" {
		t.Fatalf("%d slices listed (%+v...), %d left out", len(p.Slices), p.Slices[:3], p.SlicesLeftOut)
	}
}
