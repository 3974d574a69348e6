package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/workflows"
)

// TestReindexSurvivesWorkerKill starts `sluice reindex` and SIGKILLs the only worker while the
// new index loads (through a slow proxy, so that the load lasts). A new worker finishes it: the
// new index holds every record once, and the alias moved to it in exactly one swap.
func TestReindexSurvivesWorkerKill(t *testing.T) {
	e := newEnv(t)
	total := bulkObjects(t, e, rand.New(rand.NewPCG(7, 8)), "reindex/", 2, 6<<20)
	alias := uniqueName("e2e-rx")
	t.Cleanup(func() {
		_, b, _ := e.es.do(http.MethodGet, "/_cat/indices/"+alias+"-*?h=index", nil)
		for _, index := range strings.Fields(string(b)) {
			e.es.deleteIndex(index)
		}
	})
	port := freePort(t)
	e.startDev(port, filepath.Join(e.dir, "temporal"), false)
	workerArgs := []string{"--max-memory", "128MiB", "--max-concurrent-chunks", "2", "--es-url", slowProxy(t, e.es.url, 200*time.Millisecond)}
	w := e.startWorker(port, workerArgs...)

	res := e.run(time.Minute, e.procEnv(), "reindex", "--source", "s3://"+e.bucket+"/reindex/", "--alias", alias,
		"--chunk-size", "2MiB", "--concurrency", "2", "--max-ops", "250", "--heartbeat-timeout", "5s",
		"--json", "--temporal-address", temporalAddr(port))
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &started); res.code != 0 || err != nil || started.WorkflowID == "" {
		t.Fatalf("sluice reindex: exit %d, %v, stdout %q, stderr %q", res.code, err, res.stdout, res.stderr)
	}
	id := started.WorkflowID

	c := dialTemporal(t, port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		p      workflows.ReindexProgress
		atKill int64
	)
	waitFor(t, 2*time.Minute, "the reindex to write into its new index", func() bool {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.ReindexProgressQuery)
		if err != nil || v.Get(&p) != nil || p.Phase != workflows.ReindexLoading {
			return false
		}
		n, err := e.es.indexTotal(p.Index)
		atKill = n
		return err == nil && n > 0
	})
	w.kill()
	t.Logf("worker killed after %d of %d index operations into %s", atKill, total, p.Index)
	e.startWorker(port, workerArgs...)

	var out workflows.ReindexResult
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &out); err != nil {
		t.Fatalf("reindex %s: %v", id, err)
	}
	if out.Index != p.Index || out.Count != total || out.Backfill.Stats.Indexed != total {
		t.Fatalf("result: index %s, count %d, indexed %d; want %s, %d records", out.Index, out.Count, out.Backfill.Stats.Indexed, p.Index, total)
	}
	var aliases map[string]json.RawMessage
	e.es.must(t, http.MethodGet, "/_alias/"+alias, nil, &aliases)
	if len(aliases) != 1 || aliases[p.Index] == nil {
		t.Fatalf("alias %s points to %v, want %s only", alias, aliases, p.Index)
	}
	if n := e.es.count(t, alias); n != total {
		t.Fatalf("%d documents through the alias, want %d", n, total)
	}
	var swaps []string
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == activities.SwapAliasName {
			swaps = append(swaps, ev.GetEventType().String())
		}
	}
	if !slices.Equal(swaps, []string{enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED.String()}) {
		t.Fatalf("swap activities scheduled: %v, want exactly one", swaps)
	}
}
