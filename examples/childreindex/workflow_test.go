package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/sluicehq/sluice/internal/teststack"
	"github.com/sluicehq/sluice/sluiceapi"
)

// TestCatalogRefresh runs the example on the real servers: the in-process Temporal server, a
// sluice worker on sluice's task queue (as `sluice worker` runs), versitygw and OpenSearch, and
// this example's own worker on its own task queue. Two refreshes each build an index from
// their export with the example's mapping and move the alias to it, the second deleting the
// first (KeepOld 0); a third, from an export with nothing in it, fails verification, which
// CatalogRefresh reads through sluiceapi.VerifyFailed, and leaves the alias where it was.
func TestCatalogRefresh(t *testing.T) {
	st := teststack.Start(t, sluiceapi.TaskQueue)
	st.S3.CreateBucket(t, "shop")
	st.PutLines(t, "shop", "catalog/2026-11-27/a.ndjson", 30)
	st.PutLines(t, "shop", "catalog/2026-11-27/b.ndjson", 20)
	st.PutLines(t, "shop", "catalog/2026-11-28/a.ndjson", 40)
	st.PutLines(t, "shop", "catalog/2026-11-28/b.ndjson", 35)
	st.PutLines(t, "shop", "catalog/2026-11-28/c/d.ndjson", 5)
	alias := st.UniqueAlias(t, "example-catalog")
	w := newWorker(st.Client())
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	first, err := refreshCatalog(ctx, st.Client(), "refresh-1", CatalogRefreshInput{Bucket: "shop", Export: "2026-11-27", Alias: alias})
	if err != nil || first.Documents != 50 || len(first.Replaced) != 0 || !strings.HasPrefix(first.Index, alias+"-") {
		t.Fatalf("first refresh: %+v, %v; want 50 documents in a new %s-<time>", first, err, alias)
	}
	if got := st.AliasIndices(t, alias); !slices.Equal(got, []string{first.Index}) {
		t.Fatalf("alias %s points to %v after the first refresh, want %s", alias, got, first.Index)
	}

	second, err := refreshCatalog(ctx, st.Client(), "refresh-2", CatalogRefreshInput{Bucket: "shop", Export: "2026-11-28", Alias: alias})
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	want := CatalogRefreshOutput{
		Index: second.Index, Replaced: []string{first.Index}, Deleted: []string{first.Index}, Documents: 80,
		Summary: alias + " now points to " + second.Index + ": 80 documents from s3://shop/catalog/2026-11-28/ (was " + first.Index + ")",
	}
	if second.Index <= first.Index || !equalOutput(second, want) {
		t.Fatalf("second refresh: %+v\nwant %+v", second, want)
	}
	if got := st.AliasIndices(t, alias); !slices.Equal(got, []string{second.Index}) {
		t.Fatalf("alias %s points to %v, want %s only", alias, got, second.Index)
	}
	if n, old := st.Count(t, alias), st.CountQuery(t, alias, "catalog/2026-11-27/"); n != 80 || old != 0 {
		t.Fatalf("alias %s: %d documents, %d of the first export; want 80 and 0", alias, n, old)
	}
	if got := st.Indices(t, alias+"-*"); !slices.Equal(got, []string{second.Index}) {
		t.Fatalf("indices %s-*: %v, want the first deleted (KeepOld 0)", alias, got)
	}
	var mapping map[string]struct {
		Mappings struct {
			Properties map[string]struct{ Type string }
		}
	}
	if err := json.Unmarshal(st.Get(t, "/"+second.Index+"/_mapping"), &mapping); err != nil ||
		mapping[second.Index].Mappings.Properties["key"].Type != "keyword" {
		t.Fatalf("mapping of %s: %+v, %v; want the example's (key: keyword)", second.Index, mapping, err)
	}

	// The reindex ran on sluice's task queue under the id CatalogRefresh gave it.
	desc, err := st.Client().DescribeWorkflowExecution(ctx, "refresh-2-reindex", "")
	if err != nil {
		t.Fatal(err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != sluiceapi.ReindexWorkflow || info.GetTaskQueue() != sluiceapi.TaskQueue ||
		info.GetParentExecution().GetWorkflowId() != "refresh-2" || len(info.GetMemo().GetFields()) != 2 {
		t.Fatalf("child: %v", info)
	}
	// Its load, a backfill, carries the memo `sluice list` shows (source -> index).
	load, err := st.Client().DescribeWorkflowExecution(ctx, "refresh-2-reindex-load", "")
	if err != nil {
		t.Fatal(err)
	}
	var loadIndex string
	if f := load.GetWorkflowExecutionInfo().GetMemo().GetFields(); len(f) != 2 ||
		converter.GetDefaultDataConverter().FromPayload(f[sluiceapi.MemoIndex], &loadIndex) != nil || loadIndex != second.Index {
		t.Fatalf("load's memo: %v, want source and index %s", f, second.Index)
	}

	_, err = refreshCatalog(ctx, st.Client(), "refresh-3", CatalogRefreshInput{Bucket: "shop", Export: "2026-11-29", Alias: alias})
	if err == nil || !strings.Contains(err.Error(), "holds 0 documents after 0 indexed; alias "+alias+" not moved") {
		t.Fatalf("refresh of an empty export: %v, want a failed verification read through sluiceapi.VerifyFailed", err)
	}
	if got := st.AliasIndices(t, alias); !slices.Equal(got, []string{second.Index}) {
		t.Fatalf("alias %s points to %v after a failed refresh, want %s still", alias, got, second.Index)
	}
	if got := st.Indices(t, alias+"-*"); !slices.Equal(got, []string{second.Index}) {
		t.Fatalf("indices %s-*: %v, want the failed refresh's deleted", alias, got)
	}
}

func refreshCatalog(ctx context.Context, c client.Client, id string, in CatalogRefreshInput) (CatalogRefreshOutput, error) {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: TaskQueue}, CatalogRefresh, in)
	if err != nil {
		return CatalogRefreshOutput{}, err
	}
	var out CatalogRefreshOutput
	err = run.Get(ctx, &out)
	return out, err
}

func equalOutput(a, b CatalogRefreshOutput) bool {
	return a.Index == b.Index && slices.Equal(a.Replaced, b.Replaced) && slices.Equal(a.Deleted, b.Deleted) &&
		a.Documents == b.Documents && a.Summary == b.Summary
}
