package sluiceapi

import (
	"errors"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// childOptions are the child workflow options of every job this package starts: those set on
// ctx, with sluice's defaults for the fields left empty (see BackfillChildOptions), the memo
// naming source and index.
func childOptions(ctx workflow.Context, source, index string) workflow.ChildWorkflowOptions {
	o := workflow.GetChildWorkflowOptions(ctx)
	// The SDK fills an unset child task queue with the parent's, so "unset" reads as "the
	// caller's own queue", where no sluice worker polls.
	if o.TaskQueue == "" || o.TaskQueue == workflow.GetInfo(ctx).TaskQueueName {
		o.TaskQueue = TaskQueue
	}
	if o.ParentClosePolicy == enumspb.PARENT_CLOSE_POLICY_UNSPECIFIED {
		o.ParentClosePolicy = enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL
	}
	o.WaitForCancellation = true
	if o.Memo == nil {
		o.Memo = map[string]any{MemoSource: source, MemoIndex: index}
	}
	return o
}

// failedWith looks along err's chain of causes for an application error of type errType and
// decodes its details into a T. ok is true when such an error is there, even if its details do
// not decode (then res is zero). Following the causes matters for a reindex, whose LoadFailed
// error carries the backfill's ChunksFailed as its cause.
func failedWith[T any](err error, errType string) (res T, ok bool) {
	var appErr *temporal.ApplicationError
	for errors.As(err, &appErr) {
		if appErr.Type() == errType {
			if !appErr.HasDetails() || appErr.Details(&res) != nil {
				var zero T
				return zero, true
			}
			return res, true
		}
		err = appErr.Unwrap()
	}
	return res, false
}
