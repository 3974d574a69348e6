package workflows

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/sluiceapi"
)

const (
	// ScheduledBackfillName is the name ScheduledBackfillWorkflow is registered under: the
	// workflow a `sluice schedule` starts for each scheduled time.
	ScheduledBackfillName = "ScheduledBackfill"
	// ScheduledBackfillVersion is the version of ScheduledBackfillInput this code writes and
	// the newest it reads. Schedules keep their input for as long as they live, so the shape
	// only grows (see package sluiceapi): new fields whose zero value means the old behaviour.
	ScheduledBackfillVersion = 1

	// ScheduledReindexName is the name ScheduledReindexWorkflow is registered under: the
	// workflow a `sluice schedule create --job reindex` starts for each scheduled time.
	ScheduledReindexName = "ScheduledReindex"
	// ScheduledReindexVersion is the version of ScheduledReindexInput this code writes and the
	// newest it reads.
	ScheduledReindexVersion = 1

	// ScheduledStartTimeAttribute is the search attribute a Temporal Schedule sets on each
	// workflow it starts: the nominal time of the action (a backfilled time for a backfill,
	// the moment of the trigger for a trigger), in UTC, without jitter.
	ScheduledStartTimeAttribute = "TemporalScheduledStartTime"

	// ErrTypeNotScheduled is the type of the error ScheduledBackfillWorkflow fails with when
	// it was not started by a schedule (no ScheduledStartTimeAttribute).
	ErrTypeNotScheduled = "NotScheduled"
)

// ScheduledBackfillInput is the input a schedule hands to ScheduledBackfillWorkflow at every
// scheduled time. It is stored in the schedule: never a secret in it.
type ScheduledBackfillInput struct {
	// Version of this shape: ScheduledBackfillVersion. 0 means 1.
	Version int
	// SourceTemplate is rendered with the scheduled time (RenderSource) into the source of
	// the backfill.
	SourceTemplate string
	// Backfill is the backfill to run; its Source.URI is replaced by the rendered template.
	Backfill BackfillInput
}

// ScheduledBackfillWorkflow runs one scheduled backfill: it reads the time the schedule
// started it for (ScheduledStartTimeAttribute, recorded in its start event, so replay sees the
// same value), renders the source template with it, and runs BackfillWorkflow as a child with
// that source, on the same task queue, under the id ScheduledBackfillChildID. It returns the
// child's result, or its error.
//
// Canceling it (a schedule's cancel-other overlap policy, `sluice cancel`) cancels the child,
// whose running chunks stop at a checkpoint, and waits for it; so does closing it any other way
// (parent close policy REQUEST_CANCEL).
func ScheduledBackfillWorkflow(ctx workflow.Context, in ScheduledBackfillInput) (BackfillResult, error) {
	if err := checkVersion("scheduled backfill", in.Version, ScheduledBackfillVersion); err != nil {
		return BackfillResult{}, badInput(err.Error())
	}
	uri, at, err := scheduledSource(ctx, in.SourceTemplate)
	if err != nil {
		return BackfillResult{}, err
	}
	bf := in.Backfill
	bf.Source.URI = uri
	workflow.GetLogger(ctx).Info("scheduled backfill", "scheduledTime", at, "source", uri, "index", bf.Source.Index)

	info := workflow.GetInfo(ctx)
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:          ScheduledBackfillChildID(info.WorkflowExecution.ID),
		TaskQueue:           info.TaskQueueName,
		ParentClosePolicy:   enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WaitForCancellation: true,
		Memo:                map[string]any{sluiceapi.MemoSource: uri, sluiceapi.MemoIndex: bf.Source.Index},
	})
	var res BackfillResult
	err = workflow.ExecuteChildWorkflow(ctx, BackfillName, bf).Get(ctx, &res)
	return res, err
}

// ScheduledReindexInput is the input a schedule hands to ScheduledReindexWorkflow at every
// scheduled time. It is stored in the schedule: never a secret in it.
type ScheduledReindexInput struct {
	// Version of this shape: ScheduledReindexVersion. 0 means 1.
	Version int
	// SourceTemplate is rendered with the scheduled time (RenderSource) into the source of
	// the reindex's backfill.
	SourceTemplate string
	// Reindex is the reindex to run; its Backfill.Source.URI is replaced by the rendered
	// template.
	Reindex ReindexInput
}

// ScheduledReindexWorkflow runs one scheduled reindex: it renders the source template with the
// time the schedule started it for, as ScheduledBackfillWorkflow does, and then is that
// reindex (ReindexWorkflow's code runs in this workflow, not as a child): it answers
// ReindexProgressQuery, runs the load as <its id>-load, and returns the ReindexResult. Its memo's
// source becomes the rendered one. So a
// nightly schedule rebuilds an index from the day's export and moves the alias to it, and
// `sluice status <run id>` follows it like any reindex.
func ScheduledReindexWorkflow(ctx workflow.Context, in ScheduledReindexInput) (ReindexResult, error) {
	if err := checkVersion("scheduled reindex", in.Version, ScheduledReindexVersion); err != nil {
		return ReindexResult{}, badInput(err.Error())
	}
	uri, at, err := scheduledSource(ctx, in.SourceTemplate)
	if err != nil {
		return ReindexResult{}, err
	}
	rx := in.Reindex
	rx.Backfill.Source.URI = uri
	workflow.GetLogger(ctx).Info("scheduled reindex", "scheduledTime", at, "source", uri, "alias", rx.Alias)
	// The schedule set the template as the memo's source; `sluice status` shows this run's.
	if err := workflow.UpsertMemo(ctx, map[string]any{sluiceapi.MemoSource: uri}); err != nil {
		return ReindexResult{}, err
	}
	return ReindexWorkflow(ctx, rx)
}

// scheduledSource reads the time the schedule started the workflow for
// (ScheduledStartTimeAttribute, recorded in its start event, so replay sees the same value) and
// renders the source template with it. Its errors are the workflow's: ErrTypeNotScheduled, or
// BadInput for a template that does not render.
func scheduledSource(ctx workflow.Context, tmpl string) (uri string, at time.Time, err error) {
	at, err = scheduledTime(workflow.GetInfo(ctx))
	if err != nil {
		return "", at, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotScheduled, nil)
	}
	if uri, err = RenderSource(tmpl, at); err != nil {
		return "", at, badInput(err.Error())
	}
	return uri, at, nil
}

// ScheduledBackfillChildID is the workflow id of the backfill a ScheduledBackfillWorkflow with
// id parentID runs: `sluice status` of it shows the progress.
func ScheduledBackfillChildID(parentID string) string { return parentID + "-backfill" }

func badInput(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, activities.ErrTypeBadInput, nil)
}

// scheduledTime reads ScheduledStartTimeAttribute from the search attributes the workflow was
// started with. The raw payload is decoded rather than the typed attribute, whose decoding
// needs type metadata that the scheduler's payload does not carry.
func scheduledTime(info *workflow.Info) (time.Time, error) {
	p, ok := info.SearchAttributes.GetIndexedFields()[ScheduledStartTimeAttribute]
	if !ok {
		return time.Time{}, fmt.Errorf("no %s search attribute: a scheduled backfill runs when a schedule starts it ('sluice schedule create', 'trigger' or 'backfill')", ScheduledStartTimeAttribute)
	}
	var t time.Time
	if err := converter.GetDefaultDataConverter().FromPayload(p, &t); err != nil {
		return time.Time{}, fmt.Errorf("decoding the %s search attribute: %w", ScheduledStartTimeAttribute, err)
	}
	if t.IsZero() {
		return time.Time{}, fmt.Errorf("the %s search attribute is empty", ScheduledStartTimeAttribute)
	}
	return t.UTC(), nil
}

// SourceData is what a source template sees. Times are in UTC.
type SourceData struct {
	// ScheduledTime is the time the schedule started the backfill for.
	ScheduledTime time.Time
	// Yesterday is ScheduledTime one calendar day earlier: the day a nightly load reads.
	Yesterday time.Time
}

// shorthand matches the simple form of a source template: {scheduled:LAYOUT} or
// {yesterday:LAYOUT}, LAYOUT a Go time layout without braces.
var shorthand = regexp.MustCompile(`\{(scheduled|yesterday):([^{}]+)\}`)

// RenderSource fills a source template with the scheduled time at, in UTC. A template is a
// Go text/template over SourceData, such as
//
//	s3://logs/{{ .ScheduledTime.Format "2006/01/02" }}/
//	s3://logs/{{ .Yesterday.Format "2006-01-02" }}/
//
// or the simple form {scheduled:LAYOUT} / {yesterday:LAYOUT}, LAYOUT a Go time layout:
//
//	s3://logs/{yesterday:2006/01/02}/
//
// A source without either is used as it is. The result depends on the template and at only
// (templates have no functions that read the clock, the environment or files), which is what
// lets workflow code render it. Use the time's Format, AddDate, Add and Truncate methods; not
// Local or In, which depend on the worker's time zone data.
func RenderSource(tmpl string, at time.Time) (string, error) {
	t, err := parseSource(tmpl)
	if err != nil {
		return "", err
	}
	at = at.UTC()
	var b strings.Builder
	if err := t.Execute(&b, SourceData{ScheduledTime: at, Yesterday: at.AddDate(0, 0, -1)}); err != nil {
		return "", fmt.Errorf("source template %q: %w", tmpl, err)
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("source template %q renders to nothing", tmpl)
	}
	return b.String(), nil
}

// parseSource parses a source template, the simple form turned into the Go template it stands
// for.
func parseSource(tmpl string) (*template.Template, error) {
	expanded := shorthand.ReplaceAllStringFunc(tmpl, func(m string) string {
		sub := shorthand.FindStringSubmatch(m)
		field := map[string]string{"scheduled": "ScheduledTime", "yesterday": "Yesterday"}[sub[1]]
		return "{{ ." + field + ".Format " + strconv.Quote(sub[2]) + " }}"
	})
	t, err := template.New("source").Option("missingkey=error").Parse(expanded)
	if err != nil {
		return nil, fmt.Errorf("source template %q: %w", tmpl, err)
	}
	return t, nil
}
