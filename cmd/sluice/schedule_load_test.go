package main

import (
	"strings"
	"testing"
	"time"

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
}
