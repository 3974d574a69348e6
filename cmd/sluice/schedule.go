package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

func init() {
	register("schedule", "run backfills or reindexes on a schedule: create, list, describe, pause, unpause, trigger, delete, backfill", runSchedule)
}

// scheduleCommands are the subcommands of `sluice schedule`, each in the file named for it.
var scheduleCommands = map[string]command{
	"create":   {"create a schedule that runs a backfill or a reindex at every time it fires (cron or interval)", runScheduleCreate},
	"list":     {"list the schedules of the namespace", runScheduleList},
	"describe": {"show a schedule: what it loads, when, its next and recent runs", runScheduleDescribe},
	"pause":    {"stop a schedule from starting runs (running backfills go on)", runSchedulePause},
	"unpause":  {"let a paused schedule start runs again", runScheduleUnpause},
	"trigger":  {"start one run now, for the current time", runScheduleTrigger},
	"delete":   {"delete a schedule (running backfills go on)", runScheduleDelete},
	"backfill": {"run the periods between --from and --to that the schedule would have run", runScheduleBackfill},
}

// scheduleHelp is the help of `sluice schedule` itself.
const scheduleHelp = `usage: sluice schedule <subcommand> [flags]

A schedule (a Temporal Schedule) starts a backfill (or, with --job reindex, a reindex that
moves an alias) at every time it fires: on a cron expression (--cron "0 2 * * *") or an
interval (--every 1h), in UTC. The source is a template filled from the time the run is for,
so that a nightly schedule loads the day before:

  sluice schedule create nightly-logs --cron "0 2 * * *" --index logs \
      --source 's3://logs/{yesterday:2006/01/02}/'
  sluice schedule backfill nightly-logs --from 2026-11-01 --to 2026-11-27   # the past periods
  sluice schedule describe nightly-logs                                      # next and recent runs

Every run is a workflow <schedule-id>-<time>; follow it with 'sluice status ID --wait' (an
ingest run's progress is that of its backfill <schedule-id>-<time>-backfill, which status
shows). Reindex schedules need workers of this version or newer.

subcommands:
`

func runSchedule(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub, ok, code := pick(scheduleCommands, args, "sluice schedule: unknown subcommand", scheduleUsage, stderr)
	if !ok {
		return code
	}
	return sub.run(ctx, args[1:], stdout, stderr)
}

func scheduleUsage(w io.Writer) {
	fmt.Fprint(w, scheduleHelp)
	listCommands(w, scheduleCommands, 10)
	fmt.Fprintln(w, "\nRun 'sluice schedule <subcommand> -h' for its flags.")
}

// The jobs a schedule runs (--job): each run is a ScheduledBackfill workflow (ingest) or a
// ScheduledReindex workflow (reindex).
const (
	jobIngest  = "ingest"
	jobReindex = "reindex"
)

// targetWords says where a schedule's job writes: "index NAME" or "a new index for alias NAME".
func targetWords(job, target string) string {
	if job == jobReindex {
		return "a new index for alias " + target
	}
	return "index " + target
}

// Memo keys of a schedule, read by list (the schedule's action is not in a list entry).
const (
	memoJob  = "job"
	memoSpec = "spec"
)

// overlapPolicies are the names of --overlap, Temporal's overlap policies.
var overlapPolicies = []struct {
	name   string
	policy enumspb.ScheduleOverlapPolicy
}{
	{"skip", enumspb.SCHEDULE_OVERLAP_POLICY_SKIP},
	{"buffer-one", enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE},
	{"buffer-all", enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL},
	{"allow-all", enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL},
	{"cancel-other", enumspb.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER},
	{"terminate-other", enumspb.SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER},
}

// overlapHelp explains --overlap.
const overlapHelp = `when a run is due while the previous one still runs: skip it (skip), run it after (buffer-one: at most one waiting; buffer-all: every one), run both (allow-all), or cancel (cancel-other: its chunks stop at a checkpoint) or terminate (terminate-other) the previous one`

func parseOverlap(s string) (enumspb.ScheduleOverlapPolicy, error) {
	names := make([]string, len(overlapPolicies))
	for i, p := range overlapPolicies {
		if p.name == s {
			return p.policy, nil
		}
		names[i] = p.name
	}
	return 0, fmt.Errorf("--overlap %q: want %s", s, strings.Join(names, ", "))
}

func overlapName(p enumspb.ScheduleOverlapPolicy) string {
	for _, o := range overlapPolicies {
		if o.policy == p {
			return o.name
		}
	}
	if p == enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED {
		return "skip" // the server's default
	}
	return p.String()
}

// scheduleHandle connects and returns the handle of schedule id, after checking that it
// exists (the SDK's handle does not), so that a typo is an error rather than a silent no-op.
func (k *control) scheduleHandle(ctx context.Context, id string) (client.Client, client.ScheduleHandle, *client.ScheduleDescription, error) {
	c, err := k.tf.Dial(ctx, k.stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	h := c.ScheduleClient().GetHandle(ctx, id)
	desc, err := h.Describe(ctx)
	if err != nil {
		c.Close()
		return nil, nil, nil, k.scheduleError(id, err)
	}
	return c, h, desc, nil
}

// scheduleError turns the error of a call about schedule id into a message a user can act on.
func (k *control) scheduleError(id string, err error) error {
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("no schedule %q in namespace %s (see 'sluice schedule list%s')", id, k.tf.Namespace(), k.tf.HintArgs())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("schedule %q: Temporal did not answer in time: %w", id, err)
	}
	return fmt.Errorf("schedule %q: %w", id, err)
}
