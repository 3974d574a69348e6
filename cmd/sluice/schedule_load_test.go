package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/teststack"
)

// TestScheduleLoadsThePeriods runs a schedule end to end on the real servers: the in-process
// Temporal server, a sluice worker, versitygw and OpenSearch. Objects lie under one prefix per
// day; a backfill over two past days must load exactly those two days, and a trigger exactly
// the day it runs for.
func TestScheduleLoadsThePeriods(t *testing.T) {
	st := teststack.Start(t, "sluice-sched")
	st.S3.CreateBucket(t, "logs")
	perDay := map[string]int{}
	put := func(day string, n int) {
		st.PutLines(t, "logs", day+"a.ndjson", n)
		st.PutLines(t, "logs", day+"b/c.ndjson", n/2)
		perDay[day] = n + n/2
	}
	put("2026/11/20/", 40)
	put("2026/11/21/", 70)
	put("2026/11/22/", 100) // after the backfill's range: must not load
	// The trigger runs for now: its day, or the next one if the test crosses midnight.
	now := time.Now().UTC()
	for i, d := range []time.Time{now, now.AddDate(0, 0, 1)} {
		put(d.Format("2006/01/02/"), 10+i)
	}
	index := st.UniqueIndex(t, "sluice-sched")
	e := &clientEnv{t: t, addr: st.Address(), c: st.Client()}

	code, _, _ := e.sluice("schedule", "create", "daily", "--cron", "0 0 * * *", "--index", index, "--task-queue", st.TaskQueue,
		"--source", `s3://logs/{{ .ScheduledTime.Format "2006/01/02" }}/`, "--chunk-size", "1KiB")
	if code != exitOK {
		t.Fatalf("create: exit %d", code)
	}
	if code, _, _ := e.sluice("schedule", "backfill", "daily", "--from", "2026-11-20", "--to", "2026-11-21"); code != exitOK {
		t.Fatalf("backfill: exit %d", code)
	}
	runs := e.waitScheduleRunsWithin("daily", 2, 2*time.Minute)
	for i, want := range []string{"2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"} {
		if got := runs[i].ScheduledTime.Format(time.RFC3339); got != want {
			t.Fatalf("run %d is for %s, want %s", i, got, want)
		}
	}
	for day, want := range map[string]int{"2026/11/20/": perDay["2026/11/20/"], "2026/11/21/": perDay["2026/11/21/"], "2026/11/22/": 0} {
		if n := st.CountQuery(t, index, day); n != int64(want) {
			t.Errorf("%d documents from s3://logs/%s, want %d", n, day, want)
		}
	}
	loaded := int64(perDay["2026/11/20/"] + perDay["2026/11/21/"])
	if n := st.Count(t, index); n != loaded {
		t.Fatalf("%d documents in %s, want %d: the two days and nothing else", n, index, loaded)
	}

	if code, _, _ := e.sluice("schedule", "trigger", "daily"); code != exitOK {
		t.Fatalf("trigger: exit %d", code)
	}
	runs = e.waitScheduleRunsWithin("daily", 3, 2*time.Minute)
	day := runs[2].ScheduledTime.UTC().Format("2006/01/02/")
	if perDay[day] == 0 {
		t.Fatalf("the triggered run is for %s, not today or tomorrow", runs[2].ScheduledTime)
	}
	if n := st.CountQuery(t, index, day); n != int64(perDay[day]) {
		t.Errorf("%d documents from s3://logs/%s, want %d", n, day, perDay[day])
	}
	if n := st.Count(t, index); n != loaded+int64(perDay[day]) {
		t.Fatalf("%d documents in %s after the trigger, want %d", n, index, loaded+int64(perDay[day]))
	}
	code, out, _ := e.sluice("status", runs[2].BackfillWorkflowID)
	if code != exitOK || !strings.Contains(out, "s3://logs/"+day+" -> index "+index) {
		t.Fatalf("status of the triggered backfill: exit %d\n%s", code, out)
	}
	// The run's own id, which list and describe --json print, shows its backfill: its counts.
	code, out, errOut := e.sluice("status", runs[2].WorkflowID, "--json")
	if st := decodeStatus(t, out); code != exitOK || st.WorkflowID != runs[2].BackfillWorkflowID || st.Result == nil ||
		st.Result.Records.Indexed != int64(perDay[day]) || !strings.Contains(errOut, "showing its backfill "+runs[2].BackfillWorkflowID) {
		t.Fatalf("status of the triggered run %s: exit %d, %+v; want its backfill's %d documents", runs[2].WorkflowID, code, st, perDay[day])
	}
	if code, out, _ := e.sluice("status", runs[2].WorkflowID, "--wait"); code != exitOK || !strings.Contains(out, commas(int64(perDay[day]))+" indexed") {
		t.Fatalf("status --wait of the triggered run: exit %d\n%s", code, out)
	}
}

// TestScheduleReindex runs a reindex schedule end to end on the real servers: each run builds a
// new index from the prefix its time names, with the configured mapping, and moves the alias
// to it; --keep-old 0 deletes the index of the run before. The run's id is the reindex:
// `sluice status` of it shows the alias, the new index and the load's counts.
func TestScheduleReindex(t *testing.T) {
	st := teststack.Start(t, "sluice-sched-rx")
	st.S3.CreateBucket(t, "shop")
	perDay := map[string]int{}
	put := func(day string, n int) {
		st.PutLines(t, "shop", "catalog/"+day+"/a.ndjson", n)
		st.PutLines(t, "shop", "catalog/"+day+"/b.ndjson", n+3)
		perDay[day] = 2*n + 3
	}
	put("2026-11-20", 30)
	put("2026-11-21", 50) // not run: must not load
	now := time.Now().UTC()
	for i, d := range []time.Time{now, now.AddDate(0, 0, 1)} {
		put(d.Format(time.DateOnly), 10+i)
	}
	alias := st.UniqueAlias(t, "sluice-sched-rx")
	config := filepath.Join(t.TempDir(), "mapping.json")
	if err := os.WriteFile(config, []byte(`{"mappings":{"properties":{"key":{"type":"keyword"},"n":{"type":"integer"}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &clientEnv{t: t, addr: st.Address(), c: st.Client()}
	tmpl := "s3://shop/catalog/{scheduled:2006-01-02}/"

	code, out, _ := e.sluice("schedule", "create", "catalog", "--job", "reindex", "--alias", alias, "--index-config", config,
		"--keep-old", "0", "--cron", "0 0 * * *", "--task-queue", st.TaskQueue, "--source", tmpl, "--chunk-size", "1KiB")
	if code != exitOK || !strings.Contains(out, tmpl+" -> a new index for alias "+alias) {
		t.Fatalf("create: exit %d\n%s", code, out)
	}
	if s := e.describeSchedule("catalog"); s.Job != jobReindex || s.Source != tmpl || s.Index != alias {
		t.Fatalf("describe: %+v", s)
	}

	if code, _, _ := e.sluice("schedule", "backfill", "catalog", "--from", "2026-11-20", "--to", "2026-11-20"); code != exitOK {
		t.Fatalf("backfill: exit %d", code)
	}
	runs := e.waitScheduleRunsWithin("catalog", 1, 2*time.Minute)
	first := checkScheduledReindex(t, e, st, alias, runs[0], perDay["2026-11-20"])
	if first.Backfill.Records.Indexed != int64(perDay["2026-11-20"]) || len(first.Previous) != 0 {
		t.Fatalf("first run: %+v", first)
	}

	if code, _, _ := e.sluice("schedule", "trigger", "catalog"); code != exitOK {
		t.Fatalf("trigger: exit %d", code)
	}
	runs = e.waitScheduleRunsWithin("catalog", 2, 2*time.Minute)
	day := runs[1].ScheduledTime.UTC().Format(time.DateOnly)
	if perDay[day] == 0 || day == "2026-11-20" {
		t.Fatalf("the triggered run is for %s, not today or tomorrow", runs[1].ScheduledTime)
	}
	second := checkScheduledReindex(t, e, st, alias, runs[1], perDay[day])
	if len(second.Previous) != 1 || second.Previous[0] != first.Index || len(second.Deleted) != 1 || second.Deleted[0] != first.Index {
		t.Fatalf("second run moved the alias from %v and deleted %v; want %s both", second.Previous, second.Deleted, first.Index)
	}
	if got := st.Indices(t, alias+"-*"); len(got) != 1 || got[0] != second.Index {
		t.Fatalf("indices of %s: %v, want %s only (--keep-old 0)", alias, got, second.Index)
	}
	if n := st.CountQuery(t, alias, "catalog/2026-11-20/"); n != 0 {
		t.Fatalf("%d documents of the first run's day behind the alias", n)
	}
	code, out, _ = e.sluice("schedule", "describe", "catalog")
	for _, want := range []string{"schedule catalog (reindex), active", "-> a new index for alias " + alias, "completed  " + runs[1].WorkflowID} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("describe: no %q in\n%s", want, out)
		}
	}
	if code, out, _ := e.sluice("schedule", "list"); code != exitOK || !strings.Contains(out, "reindex") {
		t.Errorf("list: exit %d, no job in\n%s", code, out)
	}
}

// checkScheduledReindex checks run of a reindex schedule: `sluice status` of its id shows a
// completed reindex of alias from the prefix of its time whose load indexed want documents, and the alias points to its
// new index only, which holds them with the configured mapping.
func checkScheduledReindex(t *testing.T, e *clientEnv, st *teststack.Stack, alias string, run scheduleRunJSON, want int) reindexJSON {
	t.Helper()
	code, out, _ := e.sluice("status", run.WorkflowID, "--json")
	r := decodeReindex(t, out)
	source := "s3://shop/catalog/" + run.ScheduledTime.UTC().Format(time.DateOnly) + "/"
	if code != exitOK || r.Status != statusCompleted || r.Alias != alias || r.Count != int64(want) || r.Backfill == nil || r.Source != source ||
		r.Backfill.Records.Indexed != int64(want) || !strings.HasPrefix(r.Index, alias+"-") {
		t.Fatalf("status of %s: exit %d, %+v; want a reindex of %s with %d documents", run.WorkflowID, code, r, alias, want)
	}
	if got := st.AliasIndices(t, alias); len(got) != 1 || got[0] != r.Index {
		t.Fatalf("alias %s points to %v, want %s", alias, got, r.Index)
	}
	if n := st.Count(t, alias); n != int64(want) {
		t.Fatalf("%d documents behind %s, want %d", n, alias, want)
	}
	if m := string(st.Get(t, "/"+r.Index+"/_mapping")); !strings.Contains(m, `"key":{"type":"keyword"}`) {
		t.Fatalf("mapping of %s: %s, want --index-config's", r.Index, m)
	}
	return r
}

// TestScheduleFromAnIndex runs an ingest schedule whose source is an es:// template on the
// real servers: one index per day in OpenSearch, `--source 'es://NAME-{{ ... }}'`; a backfill
// over one past day must migrate exactly that day's index, and `sluice status` of the run
// counts its documents as documents.
func TestScheduleFromAnIndex(t *testing.T) {
	st := teststack.Start(t, "sluice-sched-es")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := es.New(ctx, es.Config{Addresses: []string{st.SearchURL}})
	if err != nil {
		t.Fatal(err)
	}
	prefix := st.UniqueIndex(t, "sluice-sched-es-src")
	perDay := map[string]int{"2026.11.20": 120, "2026.11.21": 75} // the second must not load
	first := 0
	for day, n := range perDay {
		testenv.CreateIndex(ctx, t, c, prefix+"-"+day, 2)
		testenv.LoadDocs(ctx, t, c, prefix+"-"+day, first, n)
		first += n
	}
	target := st.UniqueIndex(t, "sluice-sched-es")
	e := &clientEnv{t: t, addr: st.Address(), c: st.Client()}
	tmpl := "es://" + prefix + `-{{ .ScheduledTime.Format "2006.01.02" }}`
	code, out, errOut := e.sluice("schedule", "create", "daily-es", "--cron", "0 0 * * *", "--index", target, "--task-queue", st.TaskQueue,
		"--source", tmpl)
	if code != exitOK || !strings.Contains(out, tmpl+" -> index "+target) {
		t.Fatalf("create: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if code, _, _ := e.sluice("schedule", "backfill", "daily-es", "--from", "2026-11-20", "--to", "2026-11-20"); code != exitOK {
		t.Fatalf("backfill: exit %d", code)
	}
	runs := e.waitScheduleRunsWithin("daily-es", 1, 2*time.Minute)
	want := int64(perDay["2026.11.20"])
	if n := st.Count(t, target); n != want {
		t.Fatalf("%d documents in %s, want the %d of %s-2026.11.20 and nothing else", n, target, want, prefix)
	}
	code, out, _ = e.sluice("status", runs[0].WorkflowID, "--json")
	s := decodeStatus(t, out)
	if r := s.Result; code != exitOK || s.Source != "es://"+prefix+"-2026.11.20" || r == nil || r.Records.Indexed != want ||
		r.SourceUnit != "documents" || r.SourceDocs == nil || *r.SourceDocs != want || r.Objects != 1 || r.ChunksDone != 2 {
		t.Fatalf("status of the run: exit %d, %+v (result %+v)", code, s, s.Result)
	}
	code, out, _ = e.sluice("status", runs[0].WorkflowID)
	if code != exitOK || !strings.Contains(out, "1 indices, "+commas(want)+" docs") {
		t.Fatalf("status of the run: exit %d\n%s", code, out)
	}
}
