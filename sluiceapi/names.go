package sluiceapi

// TaskQueue is the task queue sluice workers poll unless started with --task-queue. The
// children ExecuteBackfill starts go there, whatever task queue your own workflow runs on.
const TaskQueue = "sluice"

// Workflow type names the sluice worker registers.
const (
	// BackfillWorkflow loads every object under an S3 prefix into an index. Input
	// BackfillInput, result BackfillResult.
	BackfillWorkflow = "Backfill"
)

// Error types of the application errors a backfill fails with (temporal.ApplicationError.Type).
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
)

// Memo keys `sluice status` shows as the source and index of a workflow. ExecuteBackfill sets
// them on the children it starts.
const (
	MemoSource = "source"
	MemoIndex  = "index"
)
