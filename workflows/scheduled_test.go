package workflows

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
)

func TestRenderSource(t *testing.T) {
	at := time.Date(2026, 3, 1, 2, 30, 0, 0, time.UTC) // yesterday crosses a month
	for _, tc := range []struct{ tmpl, want string }{
		{`s3://logs/{{ .ScheduledTime.Format "2006/01/02" }}/`, "s3://logs/2026/03/01/"},
		{`s3://logs/{{ .Yesterday.Format "2006/01/02" }}/`, "s3://logs/2026/02/28/"},
		{`s3://logs/{{ (.ScheduledTime.Add -3600000000000).Format "2006/01/02/15" }}/`, "s3://logs/2026/03/01/01/"},
		{`s3://logs/{yesterday:2006/01/02}/`, "s3://logs/2026/02/28/"},
		{`s3://logs/{scheduled:2006-01-02T15}/{yesterday:Jan}/`, "s3://logs/2026-03-01T02/Feb/"},
		{`s3://logs/static/`, "s3://logs/static/"},
		{`s3://logs/{other:2006}/`, "s3://logs/{other:2006}/"}, // not a shorthand: kept
		// es:// sources: an index (or pattern) per period, of the workers' or another cluster.
		{`es://logs-{yesterday:2006.01.02}`, "es://logs-2026.02.28"},
		{`es://legacy/logs-{{ .ScheduledTime.Format "2006.01" }}-*`, "es://legacy/logs-2026.03-*"},
	} {
		got, err := RenderSource(tc.tmpl, at)
		if err != nil || got != tc.want {
			t.Errorf("RenderSource(%q) = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
	// A time in another zone renders in UTC.
	if got, _ := RenderSource(`{scheduled:2006-01-02 15}`, at.In(time.FixedZone("X", -5*3600))); got != "2026-03-01 02" {
		t.Errorf("zone: got %q", got)
	}
	for _, tc := range []struct{ tmpl, want string }{
		{`s3://logs/{{ .ScheduledTime.Format "2006" }`, "unexpected"},
		{`s3://logs/{{ .Today }}/`, "can't evaluate field Today"},
		{`s3://logs/{{ .ScheduledTime.Bogus }}/`, "Bogus"},
		{`{{ if false }}x{{ end }}`, "renders to nothing"},
	} {
		_, err := RenderSource(tc.tmpl, at)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "source template") {
			t.Errorf("RenderSource(%q): err %v, want one naming the template and %q", tc.tmpl, err, tc.want)
		}
	}
}

// TestScheduledBackfill runs ScheduledBackfillWorkflow with the search attribute a schedule
// sets, and a Backfill child that records its input.
func TestScheduledBackfill(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var got BackfillInput
	var childID string
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in BackfillInput) (BackfillResult, error) {
		got, childID = in, workflow.GetInfo(ctx).WorkflowExecution.ID
		return BackfillResult{Stats: activities.ChunkStats{Read: 7, Indexed: 7}, Objects: 1}, nil
	}, workflow.RegisterOptions{Name: BackfillName})
	env.RegisterWorkflowWithOptions(ScheduledBackfillWorkflow, workflow.RegisterOptions{Name: ScheduledBackfillName})
	at := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	if err := env.SetSearchAttributesOnStart(map[string]any{ScheduledStartTimeAttribute: at}); err != nil {
		t.Fatal(err)
	}
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "nightly-2026-11-29T00:00:00Z"})
	env.ExecuteWorkflow(ScheduledBackfillName, ScheduledBackfillInput{
		Version:        ScheduledBackfillVersion,
		SourceTemplate: "s3://logs/{yesterday:2006/01/02}/",
		Backfill:       BackfillInput{Source: activities.Source{Index: "logs", Format: "ndjson"}, Concurrency: 3},
	})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Stats.Indexed != 7 {
		t.Fatalf("result %+v, %v: want the child's", res, err)
	}
	if got.Source.URI != "s3://logs/2026/11/28/" || got.Source.Index != "logs" || got.Concurrency != 3 {
		t.Fatalf("child input %+v", got)
	}
	if childID != "nightly-2026-11-29T00:00:00Z-backfill" {
		t.Fatalf("child id %q", childID)
	}
}

func TestScheduledBackfillRefuses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		scheduled bool
		in        ScheduledBackfillInput
		errType   string
	}{
		{"not started by a schedule", false, ScheduledBackfillInput{SourceTemplate: "s3://b/p/"}, ErrTypeNotScheduled},
		{"a newer input", true, ScheduledBackfillInput{Version: ScheduledBackfillVersion + 1, SourceTemplate: "s3://b/p/"}, activities.ErrTypeBadInput},
		{"a broken template", true, ScheduledBackfillInput{SourceTemplate: "s3://b/{{ .Nope }}/"}, activities.ErrTypeBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.RegisterWorkflowWithOptions(ScheduledBackfillWorkflow, workflow.RegisterOptions{Name: ScheduledBackfillName})
			if tc.scheduled {
				if err := env.SetSearchAttributesOnStart(map[string]any{ScheduledStartTimeAttribute: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			env.ExecuteWorkflow(ScheduledBackfillName, tc.in)
			var appErr *temporal.ApplicationError
			if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != tc.errType || !appErr.NonRetryable() {
				t.Fatalf("err %v, want a non-retryable %s", err, tc.errType)
			}
		})
	}
}

// TestScheduledReindex runs ScheduledReindexWorkflow with the search attribute a schedule
// sets: the reindex loads the rendered source into the new index, moves the alias, and the run
// answers the reindex's progress query itself.
func TestScheduledReindex(t *testing.T) {
	var source, loadID string
	env, f := newReindexEnv(t, func(ctx workflow.Context, in BackfillInput) (BackfillResult, error) {
		source, loadID = in.Source.URI, workflow.GetInfo(ctx).WorkflowExecution.ID
		return indexedTen(ctx, in)
	})
	env.RegisterWorkflowWithOptions(ScheduledReindexWorkflow, workflow.RegisterOptions{Name: ScheduledReindexName})
	if err := env.SetSearchAttributesOnStart(map[string]any{ScheduledStartTimeAttribute: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "nightly-2026-11-29T00:00:00Z"})
	in := reindexTestInput()
	in.Backfill.Source.URI = ""
	env.ExecuteWorkflow(ScheduledReindexName, ScheduledReindexInput{
		Version: ScheduledReindexVersion, SourceTemplate: "s3://b/{yesterday:2006/01/02}/", Reindex: in,
	})
	var res ReindexResult
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if err := env.GetWorkflowResult(&res); err != nil || res.Alias != "logs" || res.Count != 10 || !slices.Contains(f.calls, "swap") {
		t.Fatalf("result %+v, %v, activities %v; want the alias moved to 10 documents", res, err, f.calls)
	}
	if source != "s3://b/2026/11/28/" || loadID != "nightly-2026-11-29T00:00:00Z"+ReindexChildSuffix {
		t.Fatalf("load %s read %q, want s3://b/2026/11/28/ as nightly-…-load", loadID, source)
	}
	v, err := env.QueryWorkflow(ReindexProgressQuery)
	var p ReindexProgress
	if err != nil || v.Get(&p) != nil || p.Phase != ReindexDone || p.Index != res.Index {
		t.Fatalf("progress %+v, %v", p, err)
	}

	env, _ = newReindexEnv(t, indexedTen)
	env.RegisterWorkflowWithOptions(ScheduledReindexWorkflow, workflow.RegisterOptions{Name: ScheduledReindexName})
	env.ExecuteWorkflow(ScheduledReindexName, ScheduledReindexInput{SourceTemplate: "s3://b/p/", Reindex: reindexTestInput()})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeNotScheduled {
		t.Fatalf("started without a schedule: %v, want %s", err, ErrTypeNotScheduled)
	}
}
