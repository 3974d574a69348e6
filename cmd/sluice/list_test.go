package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
