package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/activities"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/workertest"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

// TestMigrateBetweenNodes migrates an index from the Elasticsearch node to the OpenSearch node
// with a real worker whose destination is OpenSearch and which knows the Elasticsearch node
// only as the source cluster "old-es" (SLUICE_CLUSTER_OLD_ES_URL): every document arrives with
// its _id, _routing and contents, a query filters the source, the reconciliation holds, a
// reindex from an index of the worker's own cluster swaps its alias, and a cluster the worker
// has no variables for fails planning naming the variable.
func TestMigrateBetweenNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	osURL, esURL := testenv.OpenSearchURL(t), testenv.ElasticsearchURL(t)
	source, err := esclient.New(ctx, esclient.Config{Addresses: []string{esURL}})
	if err != nil {
		t.Fatal(err)
	}
	dest, err := esclient.New(ctx, esclient.Config{Addresses: []string{osURL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_REGION", "us-east-1")
	env := map[string]string{"SLUICE_CLUSTER_OLD_ES_URL": esURL}
	w := workertest.Start(t, ctx, worker.Config{TaskQueue: "sluice-migrate", ES: esclient.Config{Addresses: []string{osURL}},
		SourceEnv: func(k string) string { return env[k] }})
	base := fmt.Sprintf("sluice-migrate-%d", time.Now().UnixNano())
	const docs = 4000
	src := base + "-src"
	testenv.CreateIndex(ctx, t, source, src, 3)
	testenv.LoadDocs(ctx, t, source, src, 0, docs)

	backfill := func(in workflows.BackfillInput) (workflows.BackfillResult, error) {
		in.Limits = activities.Limits{MaxOps: 200, MaxBytes: 256 << 10}
		run, err := w.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.Source.Index + "-" + time.Now().Format("150405.000000"), TaskQueue: "sluice-migrate"},
			workflows.BackfillName, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.BackfillResult
		return res, run.Get(ctx, &res)
	}

	t.Run("all documents", func(t *testing.T) {
		target := base + "-all"
		t.Cleanup(func() { _ = dest.DeleteIndex(context.Background(), target) })
		res, err := backfill(workflows.BackfillInput{Source: activities.Source{URI: "es://old-es/" + src, Index: target}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stats.Indexed != docs || res.ChunksPlanned != 3 || res.ChunksDone != 3 || res.Bytes != docs || res.Reconciliation == nil || res.Reconciliation.Count != docs || res.Reconciliation.Missing != 0 {
			t.Fatalf("result %+v (reconciliation %+v), want %d documents in 3 slices", res, res.Reconciliation, docs)
		}
		if a, b := testenv.IndexDigest(ctx, t, source, src), testenv.IndexDigest(ctx, t, dest, target); a != b {
			t.Fatalf("source %s, copy %s", a, b)
		}
	})

	t.Run("query", func(t *testing.T) {
		target := base + "-query"
		t.Cleanup(func() { _ = dest.DeleteIndex(context.Background(), target) })
		query := json.RawMessage(`{"range":{"n":{"lt":1000}}}`)
		res, err := backfill(workflows.BackfillInput{Source: activities.Source{URI: "es://old-es/" + src, Index: target, Query: query}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stats.Indexed != 1000 || res.Bytes != 1000 {
			t.Fatalf("result %+v, want the 1000 documents the query matches", res)
		}
	})

	t.Run("unknown cluster", func(t *testing.T) {
		_, err := backfill(workflows.BackfillInput{Source: activities.Source{URI: "es://elsewhere/" + src, Index: base + "-none"}})
		if err == nil || !strings.Contains(err.Error(), "SLUICE_CLUSTER_ELSEWHERE_URL") || !strings.Contains(err.Error(), activities.ErrTypeBadConfig) {
			t.Fatalf("backfill from a cluster the worker has no variables for: %v, want BadConfig naming SLUICE_CLUSTER_ELSEWHERE_URL", err)
		}
	})

	t.Run("reindex from an index", func(t *testing.T) {
		local := base + "-local"
		testenv.CreateIndex(ctx, t, dest, local, 2)
		testenv.LoadDocs(ctx, t, dest, local, 0, 500)
		alias := base + "-alias"
		in := workflows.ReindexInput{Alias: alias, IndexConfig: json.RawMessage(`{"settings":{"index":{"number_of_shards":1}},"mappings":{"properties":{"n":{"type":"long"}}}}`),
			Backfill: workflows.BackfillInput{Source: activities.Source{URI: "es://" + local}}}
		run, err := w.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: alias, TaskQueue: "sluice-migrate"}, workflows.ReindexName, in)
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.ReindexResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = dest.DeleteIndex(context.Background(), res.Index) })
		if res.Count != 500 || res.Backfill.Stats.Indexed != 500 {
			t.Fatalf("reindex result %+v, want 500 documents", res)
		}
		if indices, _, err := dest.AliasIndices(ctx, alias); err != nil || len(indices) != 1 || indices[0] != res.Index {
			t.Fatalf("alias on %v (%v), want [%s]", indices, err, res.Index)
		}
		if a, b := testenv.IndexDigest(ctx, t, dest, local), testenv.IndexDigest(ctx, t, dest, alias); a != b {
			t.Fatalf("source %s, new index %s", a, b)
		}
	})
}
