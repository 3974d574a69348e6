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
