package sluiceapi

import (
	"encoding/json"
	"time"

	"go.temporal.io/sdk/workflow"
)

// ReindexVersion is the version of ReindexInput this package writes.
const ReindexVersion = 1

// ReindexInput is the input of ReindexWorkflow: build a new index for Alias, fill it with a
// backfill, verify it, and move Alias to it in one _aliases call. It never holds a secret.
type ReindexInput struct {
	// Version of this shape: ReindexVersion. 0 means 1.
	Version int
	// Alias readers use. After a successful reindex it points to the new index only, as its
	// write index. It may not exist yet; it may not be the name of a concrete index. The new
	// index is named <Alias>-<start time>.
	Alias string
	// IndexConfig is the JSON of the new index's settings and mappings
	// ({"settings":…,"mappings":…}), at most 256 KiB; empty: the engine's defaults.
	IndexConfig json.RawMessage
	// Backfill loads the new index. Its Source.Index is ignored (the new index's name goes
	// there); Source.DeadLetter "" or "index" means "index:<Alias>-dead-letters". Its Version
	// is sent as BackfillVersion when zero.
	Backfill BackfillInput
	// KeepOld, when set, keeps that many indices of the alias's naming scheme older than the
	// new one and deletes the rest after the swap; nil keeps them all.
	KeepOld *int
	// KeepFailed keeps the new index when the reindex fails or is canceled before the swap
	// (default: it is deleted).
	KeepFailed bool
}

// ReindexResult is the result of a reindex, and the details of an ErrTypeVerifyFailed error.
type ReindexResult struct {
	Alias    string
	Index    string         // the new index, which the alias now points to
	Previous []string       // the indices the alias pointed to before the swap
	Deleted  []string       // older indices deleted under KeepOld
	Count    int64          // documents in the new index after its refresh
	Backfill BackfillResult // the load's result
	Duration time.Duration
	// PruneError says why deleting older indices (KeepOld) failed after the swap; "" when it
	// did not fail or was not asked for. The alias has moved all the same.
	PruneError string
}

// ReindexChildOptions are the child workflow options ExecuteReindex starts with: the same
// defaults as BackfillChildOptions (sluice's task queue, REQUEST_CANCEL, waiting for
// cancellation), with the backfill's source and the alias as the memo.
//
// The reindex runs its load as its own child, with the workflow id <reindex id>-load: give the
// reindex a readable WorkflowID and `sluice status <id>` follows the load.
func ReindexChildOptions(ctx workflow.Context, in ReindexInput) workflow.ChildWorkflowOptions {
	return childOptions(ctx, in.Backfill.Source.URI, in.Alias)
}

// ExecuteReindex starts ReindexWorkflow as a child of the calling workflow, with
// ReindexChildOptions, and returns its future: Get gives the ReindexResult, or an error. Until
// the swap a failed or canceled reindex leaves the alias where it was; VerifyFailed and
// ChunksFailed read the result of one that loaded but did not pass. Zero versions are sent as
// ReindexVersion and BackfillVersion.
func ExecuteReindex(ctx workflow.Context, in ReindexInput) workflow.ChildWorkflowFuture {
	if in.Version == 0 {
		in.Version = ReindexVersion
	}
	if in.Backfill.Version == 0 {
		in.Backfill.Version = BackfillVersion
	}
	ctx = workflow.WithChildOptions(ctx, ReindexChildOptions(ctx, in))
	return workflow.ExecuteChildWorkflow(ctx, ReindexWorkflow, in)
}

// VerifyFailed reports whether err is a reindex that loaded its new index but found it did not
// hold what the backfill indexed (ErrTypeVerifyFailed), and returns its result. The alias did
// not move.
func VerifyFailed(err error) (ReindexResult, bool) {
	return failedWith[ReindexResult](err, ErrTypeVerifyFailed)
}
