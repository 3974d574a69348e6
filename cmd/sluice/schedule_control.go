package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

const (
	schedulePauseUsage = `usage: sluice schedule pause SCHEDULE-ID [--note TEXT] [flags]

Stops the schedule from starting runs until 'sluice schedule unpause'. Runs already started go
on (pause or cancel one with 'sluice pause|cancel ID-backfill'); 'trigger' and 'backfill' still
start runs while it is paused.

`
	scheduleUnpauseUsage = `usage: sluice schedule unpause SCHEDULE-ID [--note TEXT] [flags]

Lets a paused schedule start runs again, from its next time on; the times it missed while
paused are not run (use 'sluice schedule backfill' for them).

`
	scheduleTriggerUsage = `usage: sluice schedule trigger SCHEDULE-ID [--overlap POLICY] [flags]

Starts one run now: the source template is filled for the current time. The schedule's overlap
policy applies unless --overlap says otherwise: with skip, nothing starts while a run is going.

`
	scheduleDeleteUsage = `usage: sluice schedule delete SCHEDULE-ID [flags]

Deletes the schedule. Runs already started go on.

`
	scheduleBackfillUsage = `usage: sluice schedule backfill SCHEDULE-ID --from TIME --to TIME [--overlap POLICY] [flags]

Runs the periods the schedule would have run between --from and --to (both included), through
the schedule's own backfill: each run gets the time it would have had, and the source template
is filled for that time. For a nightly schedule with --source 's3://logs/{yesterday:2006/01/02}/',
--from 2026-11-02 --to 2026-11-04 loads the 1st, 2nd and 3rd of November.

TIME is RFC 3339 (2026-11-02T02:00:00Z) or a date in UTC; a date as --to means the end of that
day. The runs go one after another by default (--overlap buffer-all); the command returns once
the schedule has them ('sluice schedule describe' shows them).

`
)

func runSchedulePause(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return setSchedulePaused(ctx, args, stdout, stderr, true)
}

func runScheduleUnpause(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return setSchedulePaused(ctx, args, stdout, stderr, false)
}

// setSchedulePaused is `schedule pause` (paused) or `schedule unpause`.
func setSchedulePaused(ctx context.Context, args []string, stdout, stderr io.Writer, paused bool) int {
	name, usage, did := "schedule unpause", scheduleUnpauseUsage, "unpaused"
	if paused {
		name, usage, did = "schedule pause", schedulePauseUsage, "paused"
	}
	k := newControl(name, usage, stdout, stderr)
	note := k.fs.String("note", did+" with sluice", "why; describe shows it")
	return k.scheduleDo(ctx, args, func(h client.ScheduleHandle, out *scheduleActionJSON) error {
		out.Action, out.message = did, did
		if paused {
			out.message += "; runs already started go on"
			return h.Pause(ctx, client.SchedulePauseOptions{Note: *note})
		}
		return h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: *note})
	})
}

func runScheduleDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("schedule delete", scheduleDeleteUsage, stdout, stderr)
	return k.scheduleDo(ctx, args, func(h client.ScheduleHandle, out *scheduleActionJSON) error {
		out.Action, out.message = "deleted", "deleted; runs already started go on"
		return h.Delete(ctx)
	})
}

func runScheduleTrigger(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("schedule trigger", scheduleTriggerUsage, stdout, stderr)
	overlap := k.fs.String("overlap", "", "override the schedule's overlap policy for this run: "+overlapHelp)
	var policy enumspb.ScheduleOverlapPolicy
	return k.scheduleDoChecked(ctx, args, func() error {
		if *overlap == "" {
			return nil
		}
		var err error
		policy, err = parseOverlap(*overlap)
		return err
	}, func(h client.ScheduleHandle, out *scheduleActionJSON) error {
		out.Action, out.Overlap = "triggered", *overlap
		out.message = fmt.Sprintf("triggered: a run for now starts unless the overlap policy skips it; see 'sluice schedule describe %s%s'", out.ScheduleID, k.tf.HintArgs())
		return h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: policy})
	})
}

func runScheduleBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("schedule backfill", scheduleBackfillUsage, stdout, stderr)
	fromFlag := k.fs.String("from", "", "first time to run (RFC 3339, or a date: its start, UTC); required")
	toFlag := k.fs.String("to", "", "last time to run (RFC 3339, or a date: its end, UTC); required")
	overlap := k.fs.String("overlap", "buffer-all", "how the runs overlap each other and a running one: "+overlapHelp)
	var b client.ScheduleBackfill
	return k.scheduleDoChecked(ctx, args, func() error {
		var err error
		if b.Overlap, err = parseOverlap(*overlap); err != nil {
			return err
		}
		b.Start, b.End, err = parseBackfillRange(*fromFlag, *toFlag)
		return err
	}, func(h client.ScheduleHandle, out *scheduleActionJSON) error {
		out.Action, out.Overlap, out.From, out.To = "backfill", *overlap, &b.Start, &b.End
		out.message = fmt.Sprintf("backfill of the times from %s to %s requested (overlap %s); its runs show in 'sluice schedule describe %s%s'",
			b.Start.Format(time.RFC3339Nano), b.End.Format(time.RFC3339Nano), *overlap, out.ScheduleID, k.tf.HintArgs())
		return h.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{b}})
	})
}

// parseBackfillRange parses --from and --to.
func parseBackfillRange(from, to string) (start, end time.Time, err error) {
	if from == "" || to == "" {
		return start, end, errors.New("--from and --to are required")
	}
	if start, err = parseTimeFlag("--from", from, false); err != nil {
		return start, end, err
	}
	if end, err = parseTimeFlag("--to", to, true); err != nil {
		return start, end, err
	}
	if end.Before(start) {
		return start, end, fmt.Errorf("--to %s is before --from %s", to, from)
	}
	return start, end, nil
}

// parseTimeFlag parses RFC 3339, or a date in UTC: its first instant, or with endOfDay its last.
func parseTimeFlag(name, s string, endOfDay bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want RFC 3339 (2026-11-02T02:00:00Z) or a date (2026-11-02)", name, s)
	}
	if endOfDay {
		return d.AddDate(0, 0, 1).Add(-time.Nanosecond), nil
	}
	return d, nil
}

// scheduleDo runs do on the handle of the schedule named by the one positional argument, and
// reports what was done: do fills in the answer.
func (k *control) scheduleDo(ctx context.Context, args []string, do func(client.ScheduleHandle, *scheduleActionJSON) error) int {
	return k.scheduleDoChecked(ctx, args, func() error { return nil }, do)
}

// scheduleDoChecked is scheduleDo with check run on the parsed flags first: its error is a
// usage error.
func (k *control) scheduleDoChecked(ctx context.Context, args []string, check func() error, do func(client.ScheduleHandle, *scheduleActionJSON) error) int {
	if ok, code := k.parse(args, 1, "one schedule id"); !ok {
		return code
	}
	if err := check(); err != nil {
		return usageError(k.stderr, k.name, err)
	}
	id := k.pos[0]
	c, h, _, err := k.scheduleHandle(ctx, id)
	if err != nil {
		return k.fail(err)
	}
	defer c.Close()
	out := scheduleActionJSON{ScheduleID: id}
	if err := do(h, &out); err != nil {
		return k.fail(k.scheduleError(id, err))
	}
	if *k.asJSON {
		return writeJSON(k.stdout, k.stderr, out)
	}
	fmt.Fprintf(k.stdout, "schedule %s: %s\n", id, out.message)
	return exitOK
}
