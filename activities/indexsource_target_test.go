package activities_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestPlanIndexRefusesASourceHoldingItsTarget plans es:// sources of the worker's own cluster
// against each real engine: a pattern that also matches the target index (as `sluice reindex
// --source es://ALIAS-*` does, the new index existing before planning) would read the
// target's shards while the other slices write into them, so planning refuses it naming
// both; the target alone (a copy onto itself) and a pattern without it plan.
func TestPlanIndexRefusesASourceHoldingItsTarget(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx, client, env := onNode(t, e, func(a *activities.Activities) any { return a.PlanPage })
		base := fmt.Sprintf("sluice-plantarget-%d", time.Now().UnixNano())
		old, target := base+"-a", base+"-b"
		testenv.CreateIndex(ctx, t, client, old, 1)
		testenv.CreateIndex(ctx, t, client, target, 2)
		plan := func(uri string) (activities.PlanPageOutput, error) {
			var out activities.PlanPageOutput
			v, err := env.ExecuteActivity(activities.PlanPageName, activities.PlanPageInput{Source: activities.Source{URI: uri, Index: target}})
			if err == nil {
				err = v.Get(&out)
			}
			return out, err
		}
		_, err := plan("es://" + base + "-*")
		checkAppError(t, err, activities.ErrTypeBadInput)
		if msg := err.Error(); !strings.Contains(msg, "es://"+base+"-*") || !strings.Contains(msg, "target index "+target) {
			t.Errorf("error does not name the source and the target: %v", err)
		}
		for uri, chunks := range map[string]int{"es://" + target: 2, "es://" + old: 1, "es://" + base + "-a*": 1} {
			out, err := plan(uri)
			if err != nil || len(out.Chunks) != chunks {
				t.Errorf("%s: %d chunks, %v; want %d", uri, len(out.Chunks), err, chunks)
			}
		}
	})
}
