package sluiceapi

// TaskQueue is the task queue sluice workers poll unless started with --task-queue. The
// children ExecuteBackfill and ExecuteReindex start go there, whatever task queue your own
// workflow runs on.
const TaskQueue = "sluice"

// Workflow type names the sluice worker registers.
const (
	// BackfillWorkflow loads every object under an S3 prefix into an index. Input
	// BackfillInput, result BackfillResult.
	BackfillWorkflow = "Backfill"
	// ReindexWorkflow builds a new index for an alias with a backfill, verifies its count and
	// moves the alias to it. Input ReindexInput, result ReindexResult.
	ReindexWorkflow = "Reindex"
)

// Error types of the application errors a backfill or a reindex fails with (temporal.ApplicationError.Type).
const (
	// ErrTypeChunksFailed: more chunks failed for good than AllowFailedChunks allows. The
	// error's details hold the BackfillResult; ChunksFailed reads it.
	ErrTypeChunksFailed = "ChunksFailed"
	// ErrTypePlanFailed: a page of the listing could not be planned (bucket missing, access
	// denied). Its cause is the planning activity's error.
	ErrTypePlanFailed = "PlanFailed"
	// ErrTypeBadInput: the input cannot work (empty source, negative limits, an unknown
	// Version).
	ErrTypeBadInput = "BadInput"

	// ErrTypeLoadFailed: the reindex's backfill failed; its cause is the backfill's error
	// (ChunksFailed reads it through). The alias did not move.
	ErrTypeLoadFailed = "LoadFailed"
	// ErrTypeVerifyFailed: the reindex's new index does not hold what its backfill indexed.
	// The error's details hold the ReindexResult; VerifyFailed reads it. The alias did not move.
	ErrTypeVerifyFailed = "VerifyFailed"
	// ErrTypeIndexExists: the reindex's new index name was taken (another reindex of the same
	// alias started in the same millisecond); nothing was changed.
	ErrTypeIndexExists = "IndexExists"
)

// Memo keys `sluice status` shows as the source and index of a workflow. ExecuteBackfill and
// ExecuteReindex (the alias as the index) set them on the children they start.
const (
	MemoSource = "source"
	MemoIndex  = "index"
)
