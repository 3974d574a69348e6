package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

// TestListAndSearchAttributes: ingest starts without its search attributes while the namespace
// lacks them (and says so), with them once a worker registered them; list finds backfills,
// running or closed, and filters by index through the search attribute.
func TestListAndSearchAttributes(t *testing.T) {
	e := newClientEnv(t)
	code, _, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "ok-before", "--workflow-id", "before")
	if code != exitOK || !strings.Contains(errOut, "warning: starting without search attributes") {
		t.Fatalf("ingest before registration: exit %d\nstderr:\n%s", code, errOut)
	}
	if err := worker.RegisterSearchAttributes(context.Background(), e.c, "default"); err != nil {
		t.Fatal(err)
	}
	if err := worker.RegisterSearchAttributes(context.Background(), e.c, "default"); err != nil {
		t.Fatalf("registering again: %v", err)
	}
	code, _, errOut = e.sluice("ingest", "--source", "s3://data/other/", "--index", "ok-after", "--workflow-id", "after")
	if code != exitOK || strings.Contains(errOut, "warning") {
		t.Fatalf("ingest after registration: exit %d\nstderr:\n%s", code, errOut)
	}
	code, _, errOut = e.sluice("ingest", "--source", "s3://data/in/", "--index", "wait-list", "--workflow-id", "still-running")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut)
	}
	desc, err := e.c.DescribeWorkflowExecution(context.Background(), "after", "")
	if err != nil {
		t.Fatal(err)
	}
	var idx string
	if p := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.SearchAttributeIndex.GetName()]; p == nil ||
		json.Unmarshal(p.GetData(), &idx) != nil || idx != "ok-after" {
		t.Fatalf("search attribute %s = %q", workflows.SearchAttributeIndex.GetName(), idx)
	}

	var out string
	eventually(t, "list to show the three backfills", func() bool {
		_, out, _ = e.sluice("list")
		return strings.Contains(out, "before") && strings.Contains(out, "after") && strings.Contains(out, "still-running")
	})
	if !strings.Contains(out, "s3://data/other/ -> ok-after") || !strings.HasPrefix(out, "WORKFLOW ID") {
		t.Errorf("list:\n%s", out)
	}
	eventually(t, "list --index to find the backfill by its search attribute", func() bool {
		_, out, _ = e.sluice("list", "--index", "ok-after", "--json")
		var l struct{ Backfills []statusJSON }
		return json.Unmarshal([]byte(out), &l) == nil && len(l.Backfills) == 1 && l.Backfills[0].WorkflowID == "after" &&
			l.Backfills[0].Source == "s3://data/other/"
	})
	eventually(t, "list --running to show only the running one", func() bool {
		_, out, _ = e.sluice("list", "--running")
		return strings.Contains(out, "still-running") && !strings.Contains(out, "before ") && !strings.Contains(out, "after ")
	})
	if code, _, errOut := e.sluice("list", "--limit", "0"); code != exitUsage || !strings.Contains(errOut, "--limit") {
		t.Errorf("list --limit 0: exit %d, %s", code, errOut)
	}
}

// TestWriteListAligns: an id longer than the usual (a reindex's load, <reindex id>-load) widens
// the id column instead of pushing its row's other columns out of line.
func TestWriteListAligns(t *testing.T) {
	start := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	end := start.Add(time.Second)
	rows := []statusJSON{
		{WorkflowID: "sluice-reindex-catalog-20261201T030053.627Z-load", Status: "completed", StartTime: &start, CloseTime: &end,
			Source: "s3://b/p/", Index: "catalog-20261201t030053.690z"},
		{WorkflowID: "short", Status: "running", StartTime: &start, Source: "s3://b/q/", Index: "q"},
	}
	var b strings.Builder
	writeList(&b, rows, end)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("list:\n%s", b.String())
	}
	col := strings.Index(lines[0], "STATUS")
	for i, status := range []string{"completed", "running"} {
		if got := strings.Index(lines[i+1], status); got != col {
			t.Errorf("row %d: status at column %d, header at %d:\n%s", i, got, col, b.String())
		}
	}
}
