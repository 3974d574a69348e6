package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/sluiceapi"
	"github.com/sluicehq/sluice/workflows"
)

// The report model: what sluice knows of one backfill workflow, read from Temporal, and the
// exit code it earns. status.go, follow.go and the renderers (render_text.go, render_json.go)
// share it.

// Statuses of a workflow as sluice prints them (text and JSON).
const (
	statusRunning        = "running"
	statusCompleted      = "completed"
	statusFailed         = "failed"
	statusCanceled       = "canceled"
	statusTerminated     = "terminated"
	statusTimedOut       = "timed_out"
	statusContinuedAsNew = "continued_as_new"
)

// Memo keys `sluice ingest` sets on the workflows it starts, so that status can say what a
// backfill reads and writes. The memo is in the history: it never holds a secret. Source and
// index are public (package sluiceapi), so that children started from users' workflows and
// scheduled backfills show them too.
const (
	memoSource     = sluiceapi.MemoSource
	memoIndex      = sluiceapi.MemoIndex
	memoDeadLetter = "dead_letter"
)

// report is what sluice knows of one backfill workflow.
type report struct {
	WorkflowID string
	RunID      string
	Type       string
	TaskQueue  string
	Status     string // status... constants
	Start      time.Time
	Close      time.Time // zero while running

	Source, Index, DeadLetter string // from the memo of `sluice ingest`; empty otherwise

	// Progress is the answer to the progress query: while running, and for a closed workflow
	// without a result (canceled, terminated) its final state, when a worker answered.
	Progress *workflows.Progress
	// ProgressErr says why there is no Progress while running.
	ProgressErr error
	// Running is what the heartbeats of the running chunks say; nil when not known.
	Running *runningChunks
	// At is when Progress and Running were read: rates and the ETA are as of then.
	At time.Time
	// Result is the result of a completed backfill, or of one that failed with ChunksFailed.
	Result *workflows.BackfillResult
	// ErrorType and Error describe a failure (application error type and message).
	ErrorType, Error string
	// Detached: --wait stopped following before the workflow closed.
	Detached bool
}

// inspect describes workflow id (runID "": its latest run) and adds the progress query while it
// runs, or its outcome once closed.
func inspect(ctx context.Context, c client.Client, id, runID string) (*report, error) {
	resp, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return nil, err
	}
	info := resp.GetWorkflowExecutionInfo()
	r := &report{
		WorkflowID: id,
		RunID:      info.GetExecution().GetRunId(),
		Type:       info.GetType().GetName(),
		TaskQueue:  info.GetTaskQueue(),
		Status:     statusName(info.GetStatus()),
		Start:      info.GetStartTime().AsTime(),
	}
	if info.GetCloseTime() != nil {
		r.Close = info.GetCloseTime().AsTime()
	}
	r.readMemo(info.GetMemo())
	if r.Type != workflows.BackfillName {
		return r, nil // not ours: status only
	}
	if r.Source == "" {
		r.readInput(ctx, c) // a child started without sluiceapi's memo
	}
	if r.Status == statusRunning {
		r.Progress, r.Running, r.ProgressErr = queryLive(ctx, c, id)
		r.At = time.Now()
		return r, nil
	}
	if err := r.readOutcome(ctx, c); err != nil {
		return nil, err
	}
	return r, nil
}

// readMemo reads what `sluice ingest` noted on the workflow; other memo fields are skipped.
func (r *report) readMemo(memo *commonpb.Memo) {
	m := memoStrings(memo)
	r.Source, r.Index, r.DeadLetter = m[memoSource], m[memoIndex], m[memoDeadLetter]
}

// readInput takes the source and index from the input of the run, when the memo does not
// have them: the source's unit decides how its progress reads. Best effort: without them the
// sizes are shown as bytes, as before es:// sources.
func (r *report) readInput(ctx context.Context, c client.Client) {
	ev, err := c.GetWorkflowHistory(ctx, r.WorkflowID, r.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Next()
	if err != nil {
		return
	}
	var in workflows.BackfillInput
	if converter.GetDefaultDataConverter().FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in) != nil {
		return
	}
	r.Source = in.Source.URI
	if r.Index == "" {
		r.Index = in.Source.Index
	}
}

// unit is what the sizes of the backfill's source count.
func (r *report) unit() sourceUnit { return unitOf(r.Source) }

// warnings are what a run that succeeds should still tell: a source with nothing in it (an
// empty day of a schedule, or a mistyped prefix), which completes like any other.
func (r *report) warnings() []string {
	empty := r.Result != nil && r.Result.Objects == 0 && r.Result.ChunksFailed == 0 ||
		r.Result == nil && r.Progress != nil && r.Progress.ListingDone && r.Progress.Objects == 0
	if !empty {
		return nil
	}
	source := r.Source
	if source == "" {
		source = "the source"
	}
	if r.unit() == unitDocs {
		return []string{"no indices found for " + source + "; nothing was loaded"}
	}
	return []string{"no objects found under " + source + "; nothing was loaded"}
}

// readOutcome adds a closed backfill's result or failure, and, without a result, its final
// progress.
func (r *report) readOutcome(ctx context.Context, c client.Client) error {
	var res workflows.BackfillResult
	err := c.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, &res)
	var wee *temporal.WorkflowExecutionError
	switch {
	case err == nil:
		r.Result = &res
	case errors.As(err, &wee):
		r.setFailure(wee.Unwrap())
	default:
		return fmt.Errorf("getting the result: %w", err)
	}
	if r.Result == nil {
		// Canceled, terminated or failed without a result: the final progress, if a worker
		// replays the run to answer.
		r.Progress, _ = queryProgress(ctx, c, r.WorkflowID, r.RunID, closedQueryTimeout)
		r.At = r.Close
	}
	return nil
}

// setFailure records why a closed workflow did not complete.
func (r *report) setFailure(cause error) {
	var (
		appErr      *temporal.ApplicationError
		canceledErr *temporal.CanceledError
	)
	switch {
	case errors.As(cause, &canceledErr):
		// The status says it all.
	case errors.As(cause, &appErr):
		r.ErrorType = appErr.Type()
		r.Error = appErr.Message() // the workflow's messages carry their cause's

		if (appErr.Type() == workflows.ErrTypeChunksFailed || appErr.Type() == workflows.ErrTypeReconcileFailed) && appErr.HasDetails() {
			var res workflows.BackfillResult
			if appErr.Details(&res) == nil {
				r.Result = &res
			}
		}
	case cause != nil:
		r.Error = cause.Error()
	}
}

// snapshot is the progress to show, nil without one.
func (r *report) snapshot() *snapshot {
	if r.Progress == nil {
		return nil
	}
	return newSnapshot(r.Progress, r.Running, r.unit(), r.At, nil)
}

func queryProgress(ctx context.Context, c client.Client, id, runID string, timeout time.Duration) (*workflows.Progress, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := c.QueryWorkflow(ctx, id, runID, workflows.ProgressQuery)
	if err != nil {
		return nil, err
	}
	var p workflows.Progress
	if err := v.Get(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return statusRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return statusCompleted
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return statusFailed
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return statusCanceled
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return statusTerminated
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return statusTimedOut
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return statusContinuedAsNew
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "WorkflowExecutionStatus"))
}

// verdict is the exit code of a --wait on a closed workflow, and, when it is not 0, why.
//
// 0: completed, and every record read was indexed or dead-lettered (with --fail-on-dead-letters,
// none dead-lettered). 3 (exitPartial): completed with records dead-lettered under
// --fail-on-dead-letters, or with chunks failed within --allow-failed-chunks (the records
// after their checkpoints were not read). 1: failed, canceled, terminated or timed out.
func (r *report) verdict(failOnDeadLetters bool) (code int, why string) {
	switch r.Status {
	case statusCompleted:
		if r.Result == nil {
			return exitOK, ""
		}
		s := r.Result.Stats
		switch {
		case r.Result.ChunksFailed > 0:
			return exitPartial, fmt.Sprintf("backfill %s completed, but %s (within --allow-failed-chunks): their records after the checkpoint were not indexed",
				r.WorkflowID, workflows.DescribeFailures(r.Result.ChunksFailed, r.Result.ObjectsFailed))
		case s.Read != s.Indexed+s.DeadLettered:
			return exitPartial, fmt.Sprintf("backfill %s completed, but %d of %d records read were neither indexed nor dead-lettered",
				r.WorkflowID, s.Read-s.Indexed-s.DeadLettered, s.Read)
		case failOnDeadLetters && s.DeadLettered > 0:
			return exitPartial, fmt.Sprintf("backfill %s completed with %d records dead-lettered (--fail-on-dead-letters)", r.WorkflowID, s.DeadLettered)
		}
		return exitOK, ""
	case statusFailed:
		if r.ErrorType == workflows.ErrTypeChunksFailed && r.Result != nil {
			return exitFailed, fmt.Sprintf("backfill %s failed: %s", r.WorkflowID, workflows.DescribeFailures(r.Result.ChunksFailed, r.Result.ObjectsFailed))
		}
		return exitFailed, fmt.Sprintf("backfill %s failed: %s", r.WorkflowID, r.Error)
	case statusCanceled, statusTerminated:
		return exitFailed, fmt.Sprintf("backfill %s was %s", r.WorkflowID, r.Status)
	case statusTimedOut:
		return exitFailed, fmt.Sprintf("backfill %s timed out", r.WorkflowID)
	}
	return exitFailed, fmt.Sprintf("workflow %s is %s", r.WorkflowID, r.Status)
}
