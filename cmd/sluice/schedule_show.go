package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/sluicehq/sluice/sluiceapi"
	"github.com/sluicehq/sluice/workflows"
)

// scheduleJSON is a schedule in --json output (describe: all of it; list: what a list entry
// holds).
type scheduleJSON struct {
	ScheduleID     string            `json:"schedule_id"`
	Job            string            `json:"job,omitempty"`
	Source         string            `json:"source,omitempty"` // the template
	Index          string            `json:"index,omitempty"`
	TaskQueue      string            `json:"task_queue,omitempty"`
	Spec           string            `json:"spec,omitempty"` // "cron 0 2 * * *", "every 1h0m0s"
	Overlap        string            `json:"overlap,omitempty"`
	Paused         bool              `json:"paused"`
	Note           string            `json:"note,omitempty"`
	NextRuns       []time.Time       `json:"next_runs"`
	RecentRuns     []scheduleRunJSON `json:"recent_runs"`
	Actions        int               `json:"actions,omitempty"`         // runs started so far
	SkippedOverlap int               `json:"skipped_overlap,omitempty"` // runs skipped by the overlap policy
}

// scheduleRunJSON is one run a schedule started.
type scheduleRunJSON struct {
	ScheduledTime      time.Time `json:"scheduled_time"` // the time the source template was filled for
	StartedTime        time.Time `json:"started_time"`
	WorkflowID         string    `json:"workflow_id"`
	BackfillWorkflowID string    `json:"backfill_workflow_id"` // 'sluice status' this one
	Status             string    `json:"status,omitempty"`     // of the run: running, completed, failed, ...
}

const scheduleListUsage = `usage: sluice schedule list [flags]

Lists the schedules of the namespace: id, state, job (ingest or reindex), when, what. The
list comes from Temporal's visibility store, which may lag a second behind a create or delete.

`

func runScheduleList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("schedule list", scheduleListUsage, stdout, stderr)
	if ok, code := k.parse(args, 0, "no arguments"); !ok {
		return code
	}
	c, err := k.tf.Dial(ctx, stderr)
	if err != nil {
		return k.fail(err)
	}
	defer c.Close()
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return k.fail(fmt.Errorf("listing schedules: %w", err))
	}
	list := []scheduleJSON{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return k.fail(fmt.Errorf("listing schedules: %w", err))
		}
		list = append(list, listEntry(e))
	}
	if *k.asJSON {
		return writeJSON(stdout, stderr, struct {
			Schedules []scheduleJSON `json:"schedules"`
		}{list})
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no schedules (create one with 'sluice schedule create')")
	}
	for _, s := range list {
		next := "-"
		if len(s.NextRuns) > 0 {
			next = s.NextRuns[0].Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%-24s %-7s %-7s %-18s next %-20s %s -> %s\n", s.ScheduleID, pausedWord(s.Paused), s.Job, s.Spec, next, s.Source, targetWords(s.Job, s.Index))
	}
	return exitOK
}

func listEntry(e *client.ScheduleListEntry) scheduleJSON {
	memo := memoStrings(e.Memo)
	s := scheduleJSON{
		ScheduleID: e.ID, Paused: e.Paused, Note: e.Note, NextRuns: e.NextActionTimes,
		Job: memo[memoJob], Spec: memo[memoSpec], Source: memo[sluiceapi.MemoSource], Index: memo[sluiceapi.MemoIndex],
	}
	s.RecentRuns = runsJSON(s.Job, e.RecentActions)
	return s
}

const scheduleDescribeUsage = `usage: sluice schedule describe SCHEDULE-ID [flags]

Shows a schedule: what it loads (the source template, the index), when (the spec, the next
runs), its overlap policy and state, and its recent runs with their status and the id of the
backfill each ran ('sluice status ID' shows one). Exit 1 when there is no such schedule.

`

func runScheduleDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	k := newControl("schedule describe", scheduleDescribeUsage, stdout, stderr)
	if ok, code := k.parse(args, 1, "one schedule id"); !ok {
		return code
	}
	c, _, desc, err := k.scheduleHandle(ctx, k.pos[0])
	if err != nil {
		return k.fail(err)
	}
	defer c.Close()
	s := describeJSON(k.pos[0], desc)
	for i := range s.RecentRuns {
		s.RecentRuns[i].Status = workflowStatus(ctx, c, s.RecentRuns[i].WorkflowID)
	}
	if *k.asJSON {
		return writeJSON(stdout, stderr, s)
	}
	writeScheduleText(stdout, s)
	return exitOK
}

func describeJSON(id string, d *client.ScheduleDescription) scheduleJSON {
	memo := memoStrings(d.Memo)
	s := scheduleJSON{
		ScheduleID: id, Job: memo[memoJob], Spec: memo[memoSpec],
		NextRuns: d.Info.NextActionTimes, RecentRuns: runsJSON(memo[memoJob], d.Info.RecentActions),
		Actions: d.Info.NumActions, SkippedOverlap: d.Info.NumActionsSkippedOverlap,
	}
	if p := d.Schedule.Policy; p != nil {
		s.Overlap = overlapName(p.Overlap)
	}
	if st := d.Schedule.State; st != nil {
		s.Paused, s.Note = st.Paused, st.Note
	}
	if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		s.TaskQueue = a.TaskQueue
		if len(a.Args) == 1 {
			name, _ := a.Workflow.(string) // a described action carries the type name
			s.Source, s.Index = actionTarget(name, a.Args[0])
		}
	}
	return s
}

// actionTarget reads the source template and the index (ingest) or alias (reindex) from the
// input of a schedule's action, workflow; empty when it does not decode.
func actionTarget(workflow string, arg any) (source, target string) {
	if workflow == workflows.ScheduledReindexName {
		var in workflows.ScheduledReindexInput
		if decodePayload(arg, &in) {
			return in.SourceTemplate, in.Reindex.Alias
		}
		return "", ""
	}
	var in workflows.ScheduledBackfillInput
	if decodePayload(arg, &in) {
		return in.SourceTemplate, in.Backfill.Source.Index
	}
	return "", ""
}

// runsJSON lists the runs a schedule of job started, each with the id of the backfill it runs:
// the child <run>-backfill of an ingest run, the load <run>-load of a reindex.
func runsJSON(job string, actions []client.ScheduleActionResult) []scheduleRunJSON {
	runs := []scheduleRunJSON{}
	for _, a := range actions {
		if a.StartWorkflowResult == nil {
			continue
		}
		id := a.StartWorkflowResult.WorkflowID
		runs = append(runs, scheduleRunJSON{
			ScheduledTime: a.ScheduleTime.UTC(), StartedTime: a.ActualTime.UTC(),
			WorkflowID: id, BackfillWorkflowID: backfillID(job, id),
		})
	}
	return runs
}

// backfillID is the id of the backfill that run id of a schedule of job runs.
func backfillID(job, id string) string {
	if job == jobReindex {
		return id + workflows.ReindexChildSuffix
	}
	return workflows.ScheduledBackfillChildID(id)
}

// workflowStatus is the status of the latest run of workflow id; "unknown" when it cannot be read
// (describe still answers).
func workflowStatus(ctx context.Context, c client.Client, id string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return "unknown"
	}
	return statusName(resp.GetWorkflowExecutionInfo().GetStatus())
}

func writeScheduleText(w io.Writer, s scheduleJSON) {
	fmt.Fprintf(w, "schedule %s (%s), %s\n", s.ScheduleID, s.Job, pausedWord(s.Paused))
	if s.Note != "" {
		fmt.Fprintf(w, "  note:      %s\n", s.Note)
	}
	fmt.Fprintf(w, "  source:    %s -> %s, task queue %s\n", s.Source, targetWords(s.Job, s.Index), s.TaskQueue)
	fmt.Fprintf(w, "  when:      %s (UTC), overlap %s\n", s.Spec, s.Overlap)
	fmt.Fprintf(w, "  runs:      %d started, %d skipped by the overlap policy\n", s.Actions, s.SkippedOverlap)
	next := make([]string, 0, 3)
	for _, t := range s.NextRuns[:min(3, len(s.NextRuns))] {
		next = append(next, t.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "  next:      %s\n", strings.Join(next, ", "))
	if len(s.RecentRuns) > 0 {
		fmt.Fprintln(w, "  recent runs (scheduled time, status, workflow; 'sluice status' one):")
	}
	for _, r := range s.RecentRuns {
		id := r.BackfillWorkflowID
		if s.Job == jobReindex {
			id = r.WorkflowID // the reindex itself, which status follows into its load
		}
		fmt.Fprintf(w, "    %s  %-10s %s\n", r.ScheduledTime.Format(time.RFC3339), r.Status, id)
	}
}

func pausedWord(paused bool) string {
	if paused {
		return "paused"
	}
	return "active"
}

// memoStrings decodes the string fields of a memo; fields of other types are skipped.
func memoStrings(memo *commonpb.Memo) map[string]string {
	out := map[string]string{}
	for k, p := range memo.GetFields() {
		var s string
		if decodePayload(p, &s) {
			out[k] = s
		}
	}
	return out
}

// decodePayload decodes a payload the SDK handed over as any (*commonpb.Payload).
func decodePayload(v any, out any) bool {
	p, ok := v.(*commonpb.Payload)
	return ok && converter.GetDefaultDataConverter().FromPayload(p, out) == nil
}
