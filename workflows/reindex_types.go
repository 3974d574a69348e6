package workflows

import (
	"encoding/json"
	"time"
)

// Names of the reindex workflow. Its types below are its wire format: fields are only ever
// added, so that running and recorded reindexes replay.
const (
	// ReindexName is the name ReindexWorkflow is registered under.
	ReindexName = "Reindex"
	// ReindexProgressQuery returns a ReindexProgress. It is ProgressQuery's name: a client that
	// asks any sluice workflow for its progress gets at least its phase.
	ReindexProgressQuery = ProgressQuery

	// ErrTypeVerifyFailed is the type of the application error a reindex fails with when the new
	// index does not hold what the backfill indexed (see ReindexWorkflow). Its details hold the
	// ReindexResult.
	ErrTypeVerifyFailed = "VerifyFailed"
	// ErrTypeLoadFailed: the backfill child failed or was canceled; its error is the cause.
	ErrTypeLoadFailed = "LoadFailed"

	// ReindexChildSuffix makes the backfill child's workflow id: <reindex id>ReindexChildSuffix.
	ReindexChildSuffix = "-load"
)

// Phases reported by ReindexProgress.Phase.
const (
	ReindexCreating  = "creating"  // checking the alias, creating the new index
	ReindexLoading   = "loading"   // the backfill child runs
	ReindexVerifying = "verifying" // restoring settings, refreshing, counting
	ReindexSwapping  = "swapping"  // the _aliases call
	ReindexPruning   = "pruning"   // deleting older indices (--keep-old)
	ReindexCleaning  = "cleaning"  // failed or canceled before the swap: deleting the new index
	ReindexDone      = "done"
	ReindexFailed    = "failed"
)

// ReindexInput is the input of ReindexWorkflow. It never holds a secret.
type ReindexInput struct {
	// Version of this shape: ReindexVersion. 0 means 1; a higher one fails with BadInput.
	Version int
	// Alias readers use. After a successful reindex it points to the new index only, as its
	// write index. It may not exist yet; it may not be the name of a concrete index.
	Alias string
	// IndexConfig is the JSON of the new index's settings and mappings
	// ({"settings":…,"mappings":…}), at most activities.MaxIndexConfigBytes; empty: defaults.
	IndexConfig json.RawMessage
	// Backfill loads the new index. Its Source.Index is ignored (the new index's name goes
	// there); Source.DeadLetter "" or "index" means "index:<Alias>-dead-letters", so that
	// dead letters of every reindex of an alias land in one index.
	Backfill BackfillInput
	// KeepOld, when set, keeps that many indices of the alias's naming scheme older than the
	// new one and deletes the rest after the swap; nil keeps them all.
	KeepOld *int
	// KeepFailed keeps the new index when the reindex fails or is canceled before the swap
	// (default: it is deleted).
	KeepFailed bool
}

// ReindexProgress is the answer to ReindexProgressQuery. The loading's own progress is the
// backfill child's ProgressQuery, at workflow id BackfillID.
type ReindexProgress struct {
	Phase      string // Reindex... phase constants
	Alias      string
	Index      string   // the new index
	Previous   []string // what the alias pointed to when the reindex started (then at the swap)
	BackfillID string   // workflow id of the backfill child
	Count      int64    // documents in the new index after the refresh; 0 before
	Elapsed    time.Duration
	Error      string // why the reindex failed, once Phase is ReindexFailed
}

// ReindexResult is the result of a reindex, and the details of an ErrTypeVerifyFailed error.
type ReindexResult struct {
	Alias    string
	Index    string         // the new index, which the alias now points to
	Previous []string       // the indices the alias pointed to before the swap
	Deleted  []string       // older indices deleted under KeepOld
	Count    int64          // documents in the new index
	Backfill BackfillResult // the child's result
	Duration time.Duration
	// PruneError says why deleting older indices (KeepOld) failed after the swap; "" when it
	// did not fail or was not asked for.
	PruneError string
}
