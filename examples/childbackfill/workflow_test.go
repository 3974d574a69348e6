package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/internal/teststack"
	"github.com/sluicehq/sluice/sluiceapi"
)

// TestDailyLoad runs the example on the real servers: the in-process Temporal server, a
// sluice worker on sluice's task queue (as `sluice worker` runs), versitygw and OpenSearch, and
// this example's own worker on its own task queue. DailyLoad does its step, loads its day
// through a sluice child workflow, and hands on the child's counts, which must be the
// documents of that day and no other.
func TestDailyLoad(t *testing.T) {
	st := teststack.Start(t, sluiceapi.TaskQueue)
	st.S3.CreateBucket(t, "exports")
	st.PutLines(t, "exports", "2026/11/27/a.ndjson", 25) // the day before: not loaded
	st.PutLines(t, "exports", "2026/11/28/a.ndjson", 120)
	st.PutLines(t, "exports", "2026/11/28/b.ndjson", 80)
	st.S3.Put(t, "exports", "2026/11/28/c.ndjson", []byte("{\"key\":\"2026/11/28/c.ndjson\"}\nnot json\n"))
	index := st.UniqueIndex(t, "example-daily")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := startDailyLoad(t, ctx, st, "daily-load-test", DailyLoadInput{Bucket: "exports", Day: "2026-11-28", Index: index})
	var out DailyLoadOutput
	if err := run.Get(ctx, &out); err != nil {
		logHistory(t, st.Client(), "daily-load-test")
		logHistory(t, st.Client(), "daily-load-test-backfill")
		t.Fatalf("DailyLoad: %v", err)
	}
	if out.Source != "s3://exports/2026/11/28/" || out.Indexed != 201 || out.DeadLettered != 1 ||
		!strings.Contains(out.Summary, "201 documents into "+index+" (1 dead letters) from 3 objects") {
		t.Fatalf("output %+v", out)
	}
	if n := st.Count(t, index); n != out.Indexed {
		t.Fatalf("%d documents in %s, the backfill reported %d", n, index, out.Indexed)
	}
	if n := st.CountQuery(t, index, "2026/11/27/"); n != 0 {
		t.Fatalf("%d documents of the day before", n)
	}

	// The child ran on sluice's task queue under the id DailyLoad gave it, with the memo
	// `sluice status` shows.
	desc, err := st.Client().DescribeWorkflowExecution(ctx, "daily-load-test-backfill", "")
	if err != nil {
		t.Fatal(err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != sluiceapi.BackfillWorkflow || info.GetTaskQueue() != sluiceapi.TaskQueue ||
		info.GetParentExecution().GetWorkflowId() != "daily-load-test" || len(info.GetMemo().GetFields()) != 2 {
		t.Fatalf("child: %v", info)
	}
}

// TestDailyLoadLostChunks has the backfill run into a closed index: every chunk fails for good,
// the child fails with ChunksFailed, and DailyLoad reads its result through
// sluiceapi.ChunksFailed.
func TestDailyLoadLostChunks(t *testing.T) {
	st := teststack.Start(t, sluiceapi.TaskQueue)
	st.S3.CreateBucket(t, "exports")
	st.PutLines(t, "exports", "2026/11/28/a.ndjson", 10)
	st.PutLines(t, "exports", "2026/11/28/b.ndjson", 10)
	index := st.UniqueIndex(t, "example-closed")
	st.CloseIndex(t, index)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := startDailyLoad(t, ctx, st, "daily-load-closed", DailyLoadInput{Bucket: "exports", Day: "2026-11-28", Index: index})
	err := run.Get(ctx, nil)
	// The two small objects are packed into one chunk, which fails for good.
	if err == nil || !strings.Contains(err.Error(), "loading s3://exports/2026/11/28/: 1 of 1 chunks failed after 0 documents") {
		logHistory(t, st.Client(), "daily-load-closed-backfill")
		t.Fatalf("DailyLoad: %v, want the lost chunks counted", err)
	}
}

// startDailyLoad starts this example's worker (your worker, on your task queue) and DailyLoad.
func startDailyLoad(t *testing.T, ctx context.Context, st *teststack.Stack, id string, in DailyLoadInput) client.WorkflowRun {
	t.Helper()
	w := newWorker(st.Client())
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	run, err := st.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: TaskQueue}, DailyLoad, in)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// logHistory logs the events of workflow id, to see where it stands when the test fails.
func logHistory(t *testing.T, c client.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, id, "", false, 0)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Logf("%s: %v", id, err)
			return
		}
		t.Logf("%s: %v %v", id, e.GetEventType(), e.GetAttributes())
	}
}
