package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// usageCase is a command line that must exit 2 with want in its stderr.
type usageCase struct {
	args []string
	want string
}

// expectUsageErrors checks that each command line exits 2 before any connection is tried (the
// address is one where nothing listens), saying what is wrong and never echoing "secret".
func expectUsageErrors(t *testing.T, cases []usageCase) {
	t.Helper()
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := run(append(tc.args, "--temporal-address", "127.0.0.1:1"), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), exitUsage, tc.want)
		}
		if strings.Contains(stderr.String(), "secret") {
			t.Errorf("%q: stderr echoes the secret: %q", tc.args, stderr.String())
		}
	}
}

func TestScheduleUsage(t *testing.T) {
	create := func(extra ...string) []string {
		return append([]string{"schedule", "create", "nightly", "--index", "logs", "--source", "s3://logs/{yesterday:2006/01/02}/", "--cron", "0 2 * * *"}, extra...)
	}
	expectUsageErrors(t, []usageCase{
		{[]string{"schedule"}, "usage: sluice schedule"},
		{[]string{"schedule", "frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"schedule", "create", "--index", "logs", "--source", "s3://b/p/", "--cron", "@daily"}, "want one schedule id"},
		{[]string{"schedule", "create", "a", "b", "--index", "logs", "--source", "s3://b/p/", "--cron", "@daily"}, "want one schedule id"},
		{[]string{"schedule", "create", "nightly", "--index", "logs", "--source", "s3://b/p/"}, "--cron EXPR or --every DURATION"},
		{create("--every", "1h"), "--cron and --every: give one of them"},
		{[]string{"schedule", "create", "n", "--index", "logs", "--source", "s3://b/p/", "--every", "10ms"}, "want at least 1s"},
		{[]string{"schedule", "create", "n", "--index", "logs", "--cron", "@daily"}, "--source is required"},
		{[]string{"schedule", "create", "n", "--index", "logs", "--cron", "@daily", "--source", `s3://b/{{ .ScheduledTime.Format "2006" }`}, "--source: source template"},
		{[]string{"schedule", "create", "n", "--index", "logs", "--cron", "@daily", "--source", `s3://b/{{ .Today }}/`}, "can't evaluate field Today"},
		{[]string{"schedule", "create", "n", "--index", "logs", "--cron", "@daily", "--source", `{scheduled:2006}/x`}, "want s3://bucket/prefix (with the template filled for"},
		{[]string{"schedule", "create", "n", "--index", "logs", "--cron", "@daily", "--source", `s3://AKIA:secret@b/{yesterday:2006}/`}, "credentials never go in the URI"},
		{create("--overlap", "sometimes"), `--overlap "sometimes": want skip, buffer-one, buffer-all, allow-all, cancel-other, terminate-other`},
		{create("--job", "nightly"), `--job "nightly": want ingest or reindex`},
		{create("--job", "reindex"), "--index is for --job ingest"},
		{create("--alias", "logs-read"), "--alias, --index-config, --keep-old and --keep-failed are for --job reindex"},
		{create("--keep-old", "2"), "are for --job reindex"},
		{[]string{"schedule", "create", "n", "--job", "reindex", "--source", "s3://b/{yesterday:2006}/", "--cron", "@daily"}, "--alias is required"},
		{[]string{"schedule", "create", "n", "--index", "logs", "--cron", "@daily", "--source", "es://old-{yesterday:2006.01.02}", "--id-field", "id"}, "--id-field does not apply to an es:// source"},
		{[]string{"schedule", "create", "n", "--index", "logs", "--cron", "@daily", "--source", "es://user:secret@host/old-{yesterday:2006}"}, "addresses and credentials never go in the source"},
		{[]string{"schedule", "create", "n", "--index", "logs", "--cron", "@daily", "--source", "es://{{ if false }}x{{ end }}"}, "no index (with the template filled for"},
		{[]string{"schedule", "create", "n", "--job", "reindex", "--alias", "Bad", "--source", "s3://b/p/", "--cron", "@daily"}, "--alias"},
		{[]string{"schedule", "create", "n", "--job", "reindex", "--alias", "cat", "--source", `s3://AKIA:secret@b/{yesterday:2006}/`, "--cron", "@daily"}, "credentials never go in the URI"},
		{[]string{"schedule", "create", "n", "--job", "reindex", "--alias", "cat", "--source", "s3://b/p/", "--cron", "@daily", "--index-config", "/nonexistent/mapping.json"}, "--index-config"},
		{create("--format", "parquet"), "--format"},
		{create("--concurrency", "0"), "--concurrency"},
		{create("--task-queue", ""), "--task-queue is empty"},
		{[]string{"schedule", "create", "n", "--source", "s3://b/p/", "--cron", "@daily"}, "--index is required"},
		{[]string{"schedule", "describe"}, "want one schedule id"},
		{[]string{"schedule", "list", "extra"}, "want no arguments"},
		{[]string{"schedule", "pause", "a", "b"}, "want one schedule id"},
		{[]string{"schedule", "trigger", "a", "--overlap", "never"}, "--overlap"},
		{[]string{"schedule", "backfill", "a", "--from", "2026-11-01"}, "--from and --to are required"},
		{[]string{"schedule", "backfill", "a", "--from", "yesterday", "--to", "2026-11-02"}, `--from "yesterday": want RFC 3339`},
		{[]string{"schedule", "backfill", "a", "--from", "2026-11-03", "--to", "2026-11-02"}, "is before --from"},
		{[]string{"schedule", "backfill", "a", "--from", "2026-11-01", "--to", "2026-11-02", "--overlap", "x"}, "--overlap"},
	})
}

func TestParseBackfillRange(t *testing.T) {
	for _, tc := range []struct{ from, to, start, end string }{
		{"2026-11-28", "2026-11-29", "2026-11-28T00:00:00Z", "2026-11-29T23:59:59.999999999Z"},
		{"2026-11-28T02:00:00Z", "2026-11-28T02:00:00Z", "2026-11-28T02:00:00Z", "2026-11-28T02:00:00Z"},
		{"2026-11-28T03:00:00+01:00", "2026-11-28", "2026-11-28T02:00:00Z", "2026-11-28T23:59:59.999999999Z"},
	} {
		start, end, err := parseBackfillRange(tc.from, tc.to)
		if err != nil || start.Format(time.RFC3339Nano) != tc.start || end.Format(time.RFC3339Nano) != tc.end {
			t.Errorf("%s..%s: %s..%s, %v; want %s..%s", tc.from, tc.to, start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), err, tc.start, tc.end)
		}
	}
}

// TestScheduleCommands runs every subcommand against the embedded Temporal server, whose
// worker runs the real ScheduledBackfill workflow and the fake Backfill of ingest_test.go.
func TestScheduleCommands(t *testing.T) {
	e := newClientEnv(t)
	tmpl := `s3://logs/{{ .ScheduledTime.Format "2006/01/02" }}/`

	code, out, _ := e.sluice("schedule", "create", "nightly", "--cron", "0 2 * * *", "--index", "ok-sched", "--source", tmpl, "--note", "team search")
	if code != exitOK || !strings.Contains(out, "created schedule nightly: cron 0 2 * * *, overlap skip") {
		t.Fatalf("create: exit %d\n%s", code, out)
	}
	if code, _, errOut := e.sluice("schedule", "create", "nightly", "--every", "1h", "--index", "ok-sched", "--source", tmpl); code != exitFailed ||
		!strings.Contains(errOut, `a schedule with id "nightly" exists already`) {
		t.Fatalf("create again: exit %d, %q", code, errOut)
	}
	if code, _, errOut := e.sluice("schedule", "create", "bad-cron", "--cron", "99 * * * *", "--index", "ok-sched", "--source", tmpl); code != exitFailed ||
		!strings.Contains(errOut, "the server refused the schedule") {
		t.Fatalf("create with a bad cron: exit %d, %q", code, errOut)
	}

	s := e.describeSchedule("nightly")
	if s.Job != jobIngest || s.Source != tmpl || s.Index != "ok-sched" || s.TaskQueue != "sluice" || s.Spec != "cron 0 2 * * *" ||
		s.Overlap != "skip" || s.Paused || s.Note != "team search" || len(s.NextRuns) == 0 || s.NextRuns[0].Hour() != 2 {
		t.Fatalf("describe: %+v", s)
	}

	eventually(t, "the schedule in the list", func() bool {
		code, out, _ := e.sluice("schedule", "list", "--json")
		var l struct{ Schedules []scheduleJSON }
		if code != exitOK || json.Unmarshal([]byte(out), &l) != nil {
			return false
		}
		return slices.ContainsFunc(l.Schedules, func(s scheduleJSON) bool {
			return s.ScheduleID == "nightly" && s.Source == tmpl && s.Index == "ok-sched" && s.Spec == "cron 0 2 * * *"
		})
	})

	if code, out, _ := e.sluice("schedule", "pause", "nightly", "--note", "holiday", "--json"); code != exitOK || !strings.Contains(out, `"action":"paused"`) {
		t.Fatalf("pause: exit %d, %s", code, out)
	}
	if s := e.describeSchedule("nightly"); !s.Paused || s.Note != "holiday" {
		t.Fatalf("paused: %+v", s)
	}
	if code, _, _ := e.sluice("schedule", "unpause", "nightly"); code != exitOK || e.describeSchedule("nightly").Paused {
		t.Fatalf("unpause: exit %d", code)
	}

	// A backfill over two days runs the two times the schedule would have fired, one after
	// the other, each filling the template with its own day.
	code, out, _ = e.sluice("schedule", "backfill", "nightly", "--from", "2026-11-28", "--to", "2026-11-29")
	if code != exitOK || !strings.Contains(out, "backfill of the times from 2026-11-28T00:00:00Z to 2026-11-29T23:59:59.999999999Z requested (overlap buffer-all)") {
		t.Fatalf("backfill: exit %d\n%s", code, out)
	}
	runs := e.waitScheduleRuns("nightly", 2)
	for i, day := range []string{"2026-11-28", "2026-11-29"} {
		r := runs[i]
		want := day + "T02:00:00Z"
		if r.ScheduledTime.Format(time.RFC3339) != want || r.WorkflowID != "nightly-"+want || r.BackfillWorkflowID != "nightly-"+want+"-backfill" {
			t.Fatalf("run %d: %+v, want the one of %s", i, r, want)
		}
		code, out, _ := e.sluice("status", r.BackfillWorkflowID, "--json")
		st := decodeStatus(t, out)
		if code != exitOK || st.Status != statusCompleted || st.Source != "s3://logs/"+strings.ReplaceAll(day, "-", "/")+"/" || st.Index != "ok-sched" {
			t.Fatalf("status of %s: exit %d, %+v", r.BackfillWorkflowID, code, st)
		}
	}

	// A trigger runs once, for now.
	before := time.Now().UTC().Truncate(time.Second)
	if code, out, _ := e.sluice("schedule", "trigger", "nightly"); code != exitOK || !strings.Contains(out, "triggered") {
		t.Fatalf("trigger: exit %d, %s", code, out)
	}
	runs = e.waitScheduleRuns("nightly", 3)
	if at := runs[2].ScheduledTime; at.Before(before) || at.After(time.Now()) {
		t.Fatalf("the triggered run is for %s, want a time from %s on", at, before)
	}
	code, out, _ = e.sluice("schedule", "describe", "nightly")
	for _, want := range []string{"schedule nightly (ingest), active", "source:    " + tmpl + " -> index ok-sched, task queue sluice",
		"when:      cron 0 2 * * * (UTC), overlap skip", "runs:      3 started", "2026-11-28T02:00:00Z  completed  nightly-2026-11-28T02:00:00Z-backfill"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("describe: no %q in\n%s", want, out)
		}
	}

	// An interval schedule created paused, with one run now; list shows both schedules.
	code, out, _ = e.sluice("schedule", "create", "hourly", "--every", "1h", "--paused", "--trigger", "--overlap", "buffer-one",
		"--index", "ok-hourly", "--source", "s3://events/{scheduled:2006/01/02/15}/", "--json")
	if code != exitOK || strings.TrimSpace(out) != `{"schedule_id":"hourly","action":"created","overlap":"buffer-one"}` {
		t.Fatalf("create hourly: exit %d, %s", code, out)
	}
	if s := e.describeSchedule("hourly"); !s.Paused || s.Spec != "every 1h0m0s" || s.Overlap != "buffer-one" || s.NextRuns[0].Minute() != 0 {
		t.Fatalf("hourly: %+v", s)
	}
	runs = e.waitScheduleRuns("hourly", 1)
	if code, out, _ := e.sluice("status", runs[0].BackfillWorkflowID, "--json"); code != exitOK ||
		decodeStatus(t, out).Source != "s3://events/"+runs[0].ScheduledTime.Format("2006/01/02/15")+"/" {
		t.Fatalf("status of the hourly run: exit %d, %s", code, out)
	}
	eventually(t, "both schedules in the list", func() bool {
		code, out, _ := e.sluice("schedule", "list")
		return code == exitOK && strings.Contains(out, "hourly ") && strings.Contains(out, "paused  ingest  every 1h0m0s") && strings.Contains(out, "nightly ")
	})

	if code, _, _ := e.sluice("schedule", "delete", "nightly"); code != exitOK {
		t.Fatalf("delete: exit %d", code)
	}
	for _, sub := range []string{"describe", "pause", "trigger", "delete"} {
		if code, _, errOut := e.sluice("schedule", sub, "nightly"); code != exitFailed || !strings.Contains(errOut, `no schedule "nightly" in namespace default`) {
			t.Errorf("%s after delete: exit %d, %q", sub, code, errOut)
		}
	}
}

func (e *clientEnv) describeSchedule(id string) scheduleJSON {
	e.t.Helper()
	code, out, _ := e.sluice("schedule", "describe", id, "--json")
	var s scheduleJSON
	if err := json.Unmarshal([]byte(out), &s); code != exitOK || err != nil {
		e.t.Fatalf("describe %s: exit %d, %v", id, code, err)
	}
	return s
}

// waitScheduleRuns waits up to 30 seconds until schedule id has started n runs and every one
// has closed, checks that they completed, and returns them, oldest first.
func (e *clientEnv) waitScheduleRuns(id string, n int) []scheduleRunJSON {
	e.t.Helper()
	return e.waitScheduleRunsWithin(id, n, 30*time.Second)
}

func (e *clientEnv) waitScheduleRunsWithin(id string, n int, timeout time.Duration) []scheduleRunJSON {
	e.t.Helper()
	var s scheduleJSON
	eventuallyWithin(e.t, timeout, "the runs of "+id, func() bool {
		s = e.describeSchedule(id)
		return len(s.RecentRuns) == n && !slices.ContainsFunc(s.RecentRuns, func(r scheduleRunJSON) bool { return r.Status == statusRunning })
	})
	for _, r := range s.RecentRuns {
		if r.Status != statusCompleted {
			e.t.Fatalf("run %s is %s", r.WorkflowID, r.Status)
		}
	}
	return s.RecentRuns
}
