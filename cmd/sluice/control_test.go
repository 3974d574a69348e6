package main

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/workflows"
)

// TestProgressLineOfDocuments: an es:// source's sizes are documents, and read as such.
func TestProgressLineOfDocuments(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	wp := &workflows.Progress{Phase: workflows.PhaseRunning, ChunksPlanned: 6, ChunksDone: 2, ChunksRunning: 4, ListingDone: true,
		Stats: activities.ChunkStats{Read: 12000, Indexed: 12000, Bytes: 12000}, Bytes: 200_000, BytesDone: 12000, StartTime: start}
	run := &runningChunks{Chunks: 4, Heartbeated: 4, Stats: activities.ChunkStats{Indexed: 345}, SourceBytes: 345}
	p := newSnapshot(wp, run, unitDocs, start.Add(100*time.Second), nil)
	want := "running: chunks 2/6, 4 running | 12,345 indexed | 12,345 of 200,000 docs, 123 docs/s, ETA 25m20s | 1m40s"
	if got := progressLine(p); got != want {
		t.Fatalf("progressLine\n got %q\nwant %q", got, want)
	}
}

// TestStatusOfAnIndexSource: the progress and the result of a backfill from an es:// source
// count documents, in text and in JSON (under names that say so), whether the source comes
// from the memo (sluice ingest) or only from the input (a child started without it).
func TestStatusOfAnIndexSource(t *testing.T) {
	e := newClientEnv(t)
	const id = "hold-es"
	if code, out, errOut := e.sluice("ingest", "--source", "es://old-logs", "--index", "wait-es", "--workflow-id", id); code != exitOK {
		t.Fatalf("ingest: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var raw map[string]any
	eventually(t, "the running chunk's heartbeat in status --json", func() bool {
		code, out, _ := e.sluice("status", id, "--json")
		raw = nil
		if code != exitOK || json.Unmarshal([]byte(out), &raw) != nil {
			return false
		}
		p, _ := raw["progress"].(map[string]any)
		r, _ := p["running"].(map[string]any)
		return r != nil && r["heartbeated"] == 1.0
	})
	p := raw["progress"].(map[string]any)
	// 2048 documents finished and 1024 behind the running chunk's checkpoint, of 4096.
	for k, want := range map[string]any{"source_unit": "documents", "source_docs": 4096.0, "source_docs_done": 3072.0} {
		if p[k] != want {
			t.Errorf("progress.%s = %v, want %v", k, p[k], want)
		}
	}
	rate, _ := p["source_docs_per_second"].(float64)
	eta, _ := p["eta_seconds"].(float64)
	if rate <= 0 || math.Abs(eta-1024/rate) > 1 {
		t.Errorf("source_docs_per_second %v, eta_seconds %v: want the 1024 documents left at that rate", p["source_docs_per_second"], p["eta_seconds"])
	}
	for _, k := range []string{"bytes", "bytes_done", "bytes_per_second"} {
		if v, ok := p[k]; ok {
			t.Errorf("progress.%s = %v: documents under a name of bytes", k, v)
		}
	}
	if r := p["running"].(map[string]any); r["source_docs"] != 1024.0 || r["source_bytes"] != nil {
		t.Errorf("progress.running = %v, want source_docs 1024 and no source_bytes", r)
	}
	if rec := p["records"].(map[string]any); rec["bytes_read"] != nil {
		t.Errorf("progress.records.bytes_read = %v: an es:// source's hits counted as bytes", rec["bytes_read"])
	}

	code, out, _ := e.sluice("status", id)
	for _, want := range []string{"2 indices, 4,096 docs", "documents    3,072 of 4,096 docs done (75%), ", " docs/s; ETA "} {
		if !strings.Contains(out, want) {
			t.Errorf("status: no %q in\n%s", want, out)
		}
	}
	if code != exitOK || strings.Contains(out, "KiB") || strings.Contains(out, "after decompression") {
		t.Errorf("status: exit %d, bytes in\n%s", code, out)
	}

	re := e.start(runStatus, id, "--wait")
	eventually(t, "a progress line in documents", func() bool {
		return strings.Contains(re.stdout.String(), "| 790 indexed, 10 dead-lettered | 3,072 of 4,096 docs, ")
	})
	e.signal(id, fakeFinishSignal)
	if code := re.exit(t); code != exitOK || !strings.Contains(re.stdout.String(), "2 indices, 4,096 docs") {
		t.Fatalf("status --wait: exit %d\nstdout:\n%s", code, re.stdout)
	}

	// Without the memo, the unit comes from the input.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "es-no-memo", TaskQueue: "sluice"}, workflows.BackfillName,
		workflows.BackfillInput{Source: activities.Source{URI: "es://legacy/logs", Index: "ok-es"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	code, out, _ = e.sluice("status", "es-no-memo", "--json")
	s := decodeStatus(t, out)
	if r := s.Result; code != exitOK || s.Source != "es://legacy/logs" || r == nil || r.SourceUnit != "documents" || r.SourceDocs == nil ||
		*r.SourceDocs != 4096 || r.Bytes != nil || r.Records.BytesRead != nil {
		t.Fatalf("status --json of a backfill without memo: exit %d, %+v (result %+v)", code, s, s.Result)
	}
}

// fakeReindex answers the reindex progress query in its first phase until it is canceled.
func fakeReindex(ctx workflow.Context, in workflows.ReindexInput) (workflows.ReindexResult, error) {
	if err := workflow.SetQueryHandler(ctx, workflows.ReindexProgressQuery, func() (workflows.ReindexProgress, error) {
		return workflows.ReindexProgress{Phase: workflows.ReindexCreating, Alias: in.Alias}, nil
	}); err != nil {
		return workflows.ReindexResult{}, err
	}
	return workflows.ReindexResult{}, workflow.Await(ctx, func() bool { return false })
}

// TestControlOfScheduledRuns: pause, resume, set-concurrency and cancel take a scheduled
// ingest run's id and act on its backfill, saying so; a reindex says which signals it does not
// take, and cancel ends it.
func TestControlOfScheduledRuns(t *testing.T) {
	e := newClientEnv(t)
	// The fake backfill of an index named …wait… runs until it is told to finish or canceled.
	code, out, errOut := e.sluice("schedule", "create", "held", "--every", "24h", "--paused", "--trigger", "--index", "sched-wait",
		"--source", `es://legacy/logs-{{ .ScheduledTime.Format "2006.01.02" }}`)
	if code != exitOK {
		t.Fatalf("create: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var runID string
	eventually(t, "the triggered run", func() bool {
		if s := e.describeSchedule("held"); len(s.RecentRuns) == 1 {
			runID = s.RecentRuns[0].WorkflowID
		}
		return runID != ""
	})
	child := workflows.ScheduledBackfillChildID(runID)
	resolved := "is a scheduled run; acting on its backfill " + child

	code, out, errOut = e.sluice("pause", runID)
	if code != exitOK || !strings.Contains(out, child+": paused;") || !strings.Contains(errOut, "sluice pause: "+runID+" "+resolved) {
		t.Fatalf("pause: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = e.sluice("set-concurrency", runID, "5", "--json")
	var sc struct {
		WorkflowID   string `json:"workflow_id"`
		ScheduledRun string `json:"scheduled_run"`
		Confirmed    bool
		Progress     progressJSON
	}
	if err := json.Unmarshal([]byte(out), &sc); err != nil || code != exitOK || !sc.Confirmed || sc.WorkflowID != child ||
		sc.ScheduledRun != runID || sc.Progress.SourceUnit != "documents" || !strings.Contains(errOut, resolved) {
		t.Fatalf("set-concurrency: exit %d, %v, %+v\nstdout:\n%s\nstderr:\n%s", code, err, sc, out, errOut)
	}
	if code, out, errOut = e.sluice("resume", runID); code != exitOK || !strings.Contains(out, child+": resumed; up to 5 chunks") {
		t.Fatalf("resume: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got, want := e.signals(child), []string{"pause", "set-concurrency 5", "resume"}; !slices.Equal(got, want) {
		t.Fatalf("signals of the backfill %q, want %q", got, want)
	}
	// Its source, rendered from the template, is an index: the status counts documents.
	code, out, errOut = e.sluice("status", runID)
	if code != exitOK || !strings.Contains(out, "es://legacy/logs-") || !strings.Contains(out, " docs done (") || !strings.Contains(errOut, "showing its backfill "+child) {
		t.Fatalf("status: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// Cancel cancels the run, and with it its backfill; both close canceled.
	code, out, errOut = e.sluice("cancel", runID, "--wait")
	if code != exitOK || !strings.Contains(out, "canceled;") || !strings.Contains(errOut, runID+" is a scheduled run; canceling it cancels its backfill "+child) {
		t.Fatalf("cancel --wait: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	eventually(t, "the run to close canceled", func() bool { return e.status(runID) == statusCanceled })
	if s := e.status(child); s != statusCanceled {
		t.Fatalf("the backfill is %s", s)
	}

	// A reindex takes no signal but cancel.
	w := sdkworker.New(e.c, "sluice-rx", sdkworker.Options{})
	w.RegisterWorkflowWithOptions(fakeReindex, workflow.RegisterOptions{Name: workflows.ReindexName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "rx", TaskQueue: "sluice-rx"}, workflows.ReindexName,
		workflows.ReindexInput{Alias: "catalog"}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"pause", "rx"}, {"resume", "rx"}, {"set-concurrency", "rx", "2"}} {
		code, out, errOut := e.sluice(args...)
		if code != exitFailed || !strings.Contains(errOut, `workflow "rx" is a reindex (Reindex), which takes no pause, resume or set-concurrency signal, only cancel`) ||
			!strings.Contains(errOut, "sluice "+args[0]+" rx-load") {
			t.Errorf("%q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		}
	}
	code, out, errOut = e.sluice("cancel", "rx", "--wait")
	if code != exitOK || !strings.Contains(out, "canceled") || e.status("rx") != statusCanceled {
		t.Fatalf("cancel --wait of a reindex: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestJSONFieldsBySourceUnit: an s3:// source's progress and result keep every field they had
// (source_unit is the only addition); an es:// source's carry its sizes under source_docs*.
func TestJSONFieldsBySourceUnit(t *testing.T) {
	wp := &workflows.Progress{Phase: workflows.PhaseRunning, ChunksPlanned: 2, ListingDone: true, Bytes: 100, BytesDone: 10, Elapsed: time.Second}
	run := &runningChunks{Chunks: 1, Heartbeated: 1, SourceBytes: 5}
	res := &workflows.BackfillResult{Bytes: 100}
	keys := func(v any) (top []string, nested map[string][]string) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		nested = map[string][]string{}
		for k, v := range m {
			top = append(top, k)
			if sub, ok := v.(map[string]any); ok {
				for sk := range sub {
					nested[k] = append(nested[k], sk)
				}
				slices.Sort(nested[k])
			}
		}
		slices.Sort(top)
		return top, nested
	}
	for _, tc := range []struct {
		unit                  sourceUnit
		progress, result, run []string
		records               []string
	}{
		{unitBytes,
			[]string{"bytes", "bytes_done", "bytes_per_second", "chunks_done", "chunks_failed", "chunks_pending", "chunks_planned", "chunks_running",
				"concurrency", "docs_per_second", "elapsed_seconds", "eta_seconds", "finished", "listing_done", "objects", "objects_failed", "paused", "phase", "records",
				"run", "running", "source_unit"},
			[]string{"bytes", "chunks_done", "chunks_failed", "chunks_planned", "docs_per_second", "duration_seconds", "objects", "objects_failed", "records", "runs", "source_unit"},
			[]string{"chunks", "heartbeated", "records", "source_bytes"},
			[]string{"bytes_read", "dead_lettered", "indexed", "read", "retried"}},
		{unitDocs,
			[]string{"chunks_done", "chunks_failed", "chunks_pending", "chunks_planned", "chunks_running", "concurrency", "docs_per_second",
				"elapsed_seconds", "eta_seconds", "finished", "listing_done", "objects", "objects_failed", "paused", "phase", "records", "run", "running",
				"source_docs", "source_docs_done", "source_docs_per_second", "source_unit"},
			[]string{"chunks_done", "chunks_failed", "chunks_planned", "docs_per_second", "duration_seconds", "objects", "objects_failed", "records", "runs", "source_docs", "source_unit"},
			[]string{"chunks", "heartbeated", "records", "source_docs"},
			[]string{"dead_lettered", "indexed", "read", "retried"}},
	} {
		p, pn := keys(progressOf(newSnapshot(wp, run, tc.unit, wp.StartTime.Add(time.Second), nil)))
		r, rn := keys(resultOf(res, tc.unit))
		if !slices.Equal(p, tc.progress) || !slices.Equal(r, tc.result) {
			t.Errorf("%s: progress %q\nwant %q\nresult %q\nwant %q", tc.unit, p, tc.progress, r, tc.result)
		}
		if run, _ := keys(progressOf(newSnapshot(wp, run, tc.unit, wp.StartTime.Add(time.Second), nil)).Running); !slices.Equal(run, tc.run) {
			t.Errorf("%s: running %q, want %q", tc.unit, run, tc.run)
		}
		if !slices.Equal(pn["records"], tc.records) || !slices.Equal(pn["finished"], tc.records) || !slices.Equal(rn["records"], tc.records) {
			t.Errorf("%s: records %q, finished %q, result records %q; want %q", tc.unit, pn["records"], pn["finished"], rn["records"], tc.records)
		}
	}
}
