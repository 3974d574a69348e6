package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/sluiceapi"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

const scheduleCreateUsage = `usage: sluice schedule create SCHEDULE-ID --source TEMPLATE --index NAME (--cron EXPR | --every DURATION) [flags]
       sluice schedule create SCHEDULE-ID --job reindex --source TEMPLATE --alias NAME [--index-config FILE] (--cron EXPR | --every DURATION) [flags]

Creates a schedule that starts a job every time it fires, until it is paused or deleted:
--job ingest (the default) loads the source into --index, as 'sluice ingest'; --job reindex
builds a new index <alias>-<time> from the source (--index-config, --keep-old, --keep-failed as
in 'sluice reindex'), checks its count and moves --alias to it, so that a nightly schedule
rebuilds an index from the day's export. Workers ('sluice worker', 'sluice dev') on the task
queue run the jobs with their own credentials; the schedule holds the source, the index or
alias, the index configuration and the tuning only.

When: --cron takes a cron expression in UTC ("0 2 * * *": every day at 02:00; 5 fields, or 6-7
with seconds and years, or @daily, @hourly), --every an interval (1h, 30m, 24h, counted from the
Unix epoch in UTC).

What: --source is an s3:// prefix that may hold a template, filled in UTC from the time the run
is for (the time the schedule fired; for 'backfill', each past time; for 'trigger', now):
  {yesterday:LAYOUT}   that time one day earlier, as a Go time layout: {yesterday:2006/01/02}
  {scheduled:LAYOUT}   that time itself:                              {scheduled:2006-01-02T15}
  {{ .ScheduledTime.Format "2006/01/02" }}, {{ .Yesterday.Format "2006-01-02" }}
                       the same as a Go text/template (any method of time.Time but Local/In)
The template is checked now (parsed and filled for the current time); a broken one is an
error here, not at 2 a.m.

Every other flag is a flag of 'sluice ingest' (or 'sluice reindex') and means the same. Each
run is a workflow SCHEDULE-ID-<time>: an ingest run runs the backfill
SCHEDULE-ID-<time>-backfill, a reindex run is the reindex (its load: SCHEDULE-ID-<time>-load).
'sluice status SCHEDULE-ID-<time>' follows either.

Examples:
  sluice schedule create nightly-logs --cron "0 2 * * *" --index logs \
      --source 's3://logs/{yesterday:2006/01/02}/'
  sluice schedule create hourly-events --every 1h --index events --overlap buffer-one \
      --source 's3://events/{{ .ScheduledTime.Format "2006/01/02/15" }}/'
  sluice schedule create nightly-catalog --cron "0 3 * * *" --job reindex --alias catalog \
      --index-config catalog-mapping.json --keep-old 2 --source 's3://shop/catalog/{yesterday:2006-01-02}/'

Exit codes: 0 created, 1 not created (exists already, refused by the server, no connection),
2 bad flags (nothing is contacted).

`

// scheduleSpec is when a schedule fires, from --cron or --every.
type scheduleSpec struct {
	cron  string
	every time.Duration
}

func (s scheduleSpec) validate() error {
	switch {
	case s.cron == "" && s.every == 0:
		return errors.New("say when: --cron EXPR or --every DURATION")
	case s.cron != "" && s.every != 0:
		return errors.New("--cron and --every: give one of them")
	case s.every < 0 || s.every > 0 && s.every < time.Second:
		return fmt.Errorf("--every %s: want at least 1s", s.every)
	case s.cron != "" && strings.TrimSpace(s.cron) == "":
		return errors.New("--cron is blank")
	}
	return nil
}

func (s scheduleSpec) temporal() client.ScheduleSpec {
	if s.every != 0 {
		return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.every}}}
	}
	return client.ScheduleSpec{CronExpressions: []string{s.cron}}
}

// String is the spec as a user wrote it, kept in the schedule's memo for list and describe.
func (s scheduleSpec) String() string {
	if s.every != 0 {
		return "every " + s.every.String()
	}
	return "cron " + s.cron
}

// scheduleCreate is what `schedule create` parsed: the schedule to create.
type scheduleCreate struct {
	id        string
	spec      scheduleSpec
	overlap   enumspb.ScheduleOverlapPolicy
	taskQueue string
	paused    bool
	note      string
	trigger   bool

	job      string // jobIngest or jobReindex
	template string // the source template
	target   string // the index (ingest) or the alias (reindex)
	workflow string // the workflow each run is: ScheduledBackfillName or ScheduledReindexName
	input    any    // its input: ScheduledBackfillInput or ScheduledReindexInput
}

func runScheduleCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("schedule create", scheduleCreateUsage, stdout, stderr)
	bf := addBackfillFlags(k.fs, "objects to load: an s3:// prefix, a template filled from the scheduled time (see above; required)")
	index := k.fs.String("index", "", "target index or alias (required with --job ingest)")
	rx := addReindexFlags(k.fs)
	cron := k.fs.String("cron", "", `when to run: a cron expression in UTC, such as "0 2 * * *"`)
	every := k.fs.Duration("every", 0, "when to run: every this long (1h, 24h), from the Unix epoch in UTC")
	overlap := k.fs.String("overlap", "skip", overlapHelp)
	job := k.fs.String("job", jobIngest, "what each run does: ingest (a backfill into --index, as 'sluice ingest') or reindex (a new index for --alias, as 'sluice reindex')")
	taskQueue := k.fs.String("task-queue", worker.DefaultTaskQueue, "task queue the workers poll")
	paused := k.fs.Bool("paused", false, "create it paused ('sluice schedule unpause' starts it)")
	note := k.fs.String("note", "", "a note shown by describe (why it exists, who owns it)")
	trigger := k.fs.Bool("trigger", false, "also start one run now")
	if ok, code := k.parse(args, 1, "one schedule id"); !ok {
		return code
	}
	sc := scheduleCreate{
		id: k.pos[0], spec: scheduleSpec{cron: *cron, every: *every}, taskQueue: *taskQueue,
		paused: *paused, note: *note, trigger: *trigger, job: *job, template: *bf.source,
	}
	var err error
	if sc.overlap, err = parseOverlap(*overlap); err != nil {
		return usageError(stderr, k.name, err)
	}
	now := time.Now()
	if err := sc.validate(); err != nil {
		return usageError(stderr, k.name, err)
	}
	if err := sc.buildJob(bf, *index, rx, now); err != nil {
		return usageError(stderr, k.name, err)
	}
	return k.create(ctx, sc)
}

// validate checks what every schedule needs before anything is contacted.
func (sc scheduleCreate) validate() error {
	switch {
	case sc.job != jobIngest && sc.job != jobReindex:
		return fmt.Errorf("--job %q: want %s or %s", sc.job, jobIngest, jobReindex)
	case strings.TrimSpace(sc.id) == "":
		return errors.New("the schedule id is empty")
	case sc.taskQueue == "":
		return errors.New("--task-queue is empty")
	}
	return sc.spec.validate()
}

// buildJob builds the input of the workflow each run is, checked as `sluice ingest` or
// `sluice reindex` checks its flags, with the source template filled for now.
func (sc *scheduleCreate) buildJob(bf *backfillFlags, index string, rx *reindexFlags, now time.Time) error {
	check := func(b workflows.BackfillInput) error { return validateScheduledSource(sc.template, b, now) }
	if sc.job == jobReindex {
		if index != "" {
			return errors.New("--index is for --job ingest: a reindex builds <alias>-<time> and moves --alias to it")
		}
		in, err := rx.input(bf, check)
		if err != nil {
			return err
		}
		sc.target, sc.workflow = in.Alias, workflows.ScheduledReindexName
		sc.input = workflows.ScheduledReindexInput{Version: workflows.ScheduledReindexVersion, SourceTemplate: sc.template, Reindex: in}
		return nil
	}
	if *rx.alias != "" || *rx.indexConfig != "" || *rx.keepOld >= 0 || *rx.keepFailed {
		return errors.New("--alias, --index-config, --keep-old and --keep-failed are for --job reindex")
	}
	in := workflows.ScheduledBackfillInput{Version: workflows.ScheduledBackfillVersion, SourceTemplate: sc.template, Backfill: bf.input(index)}
	if err := check(in.Backfill); err != nil {
		return err
	}
	sc.target, sc.workflow, sc.input = index, workflows.ScheduledBackfillName, in
	return nil
}

// validateScheduledSource fills the source template for at and validates the backfill it
// gives. The rendered source is not echoed: a mistyped credential in it must not reach a
// terminal log.
func validateScheduledSource(tmpl string, bf workflows.BackfillInput, at time.Time) error {
	if tmpl == "" {
		return errors.New("--source is required (s3://bucket/prefix, may hold a template)")
	}
	uri, err := workflows.RenderSource(tmpl, at)
	if err != nil {
		return fmt.Errorf("--source: %w", err)
	}
	bf.Source.URI = uri
	if err := validateIngest(bf); err != nil {
		if uri != tmpl {
			return fmt.Errorf("%w (with the template filled for %s)", err, at.UTC().Format(time.RFC3339))
		}
		return err
	}
	return nil
}

func (k *control) create(ctx context.Context, sc scheduleCreate) int {
	c, err := k.tf.Dial(ctx, k.stderr)
	if err != nil {
		return k.fail(err)
	}
	defer c.Close()
	h, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   sc.id,
		Spec: sc.spec.temporal(),
		Action: &client.ScheduleWorkflowAction{
			ID:        sc.id, // each run: <id>-<time>
			Workflow:  sc.workflow,
			Args:      []any{sc.input},
			TaskQueue: sc.taskQueue,
			Memo:      map[string]any{sluiceapi.MemoSource: sc.template, sluiceapi.MemoIndex: sc.target},
		},
		Overlap:            sc.overlap,
		Paused:             sc.paused,
		Note:               sc.note,
		TriggerImmediately: sc.trigger,
		Memo: map[string]any{
			memoJob: sc.job, memoSpec: sc.spec.String(),
			sluiceapi.MemoSource: sc.template, sluiceapi.MemoIndex: sc.target,
		},
	})
	var invalid *serviceerror.InvalidArgument
	switch {
	case errors.Is(err, temporal.ErrScheduleAlreadyRunning):
		return k.fail(fmt.Errorf("a schedule with id %q exists already; see 'sluice schedule describe %s%s', or delete it first", sc.id, sc.id, k.tf.HintArgs()))
	case errors.As(err, &invalid):
		return k.fail(fmt.Errorf("the server refused the schedule (check --cron): %s", invalid.Message))
	case err != nil:
		return k.fail(fmt.Errorf("creating schedule %q: %w", sc.id, err))
	}
	warnNoWorker(ctx, c, sc.taskQueue, "the backfill", k.stderr)
	if *k.asJSON {
		return writeJSON(k.stdout, k.stderr, scheduleActionJSON{ScheduleID: h.GetID(), Action: "created", Overlap: overlapName(sc.overlap)})
	}
	fmt.Fprintf(k.stdout, "created schedule %s: %s, overlap %s%s\n", h.GetID(), sc.spec, overlapName(sc.overlap), map[bool]string{true: ", paused"}[sc.paused])
	fmt.Fprintf(k.stdout, "  %s -> %s, task queue %s\n", sc.template, targetWords(sc.job, sc.target), sc.taskQueue)
	fmt.Fprintf(k.stdout, "  next runs: sluice schedule describe %s%s\n", h.GetID(), k.tf.HintArgs())
	fmt.Fprintf(k.stdout, "  past periods: sluice schedule backfill %s --from DATE --to DATE%s\n", h.GetID(), k.tf.HintArgs())
	return exitOK
}

// scheduleActionJSON is the --json answer of the subcommands that change a schedule.
type scheduleActionJSON struct {
	ScheduleID string     `json:"schedule_id"`
	Action     string     `json:"action"` // created, paused, unpaused, triggered, deleted, backfill
	Overlap    string     `json:"overlap,omitempty"`
	From       *time.Time `json:"from,omitempty"`
	To         *time.Time `json:"to,omitempty"`
	message    string     // the text answer
}
