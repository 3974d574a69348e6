package sluiceapi

import (
	"encoding/json"
	"time"

	"go.temporal.io/sdk/workflow"
)

// BackfillVersion is the version of BackfillInput this package writes.
const BackfillVersion = 1

// BackfillInput is the input of BackfillWorkflow. Zero values mean the worker's default. It
// never holds a secret: the workers read credentials from their own environment.
type BackfillInput struct {
	// Version of this shape: BackfillVersion. 0 means 1.
	Version int
	Source  Source
	Limits  Limits
	// ChunkSize cuts uncompressed objects into byte ranges of this size, one activity each.
	// Defaults to 64 MiB.
	ChunkSize int64
	// PageSize is the number of objects listed per planning step. Defaults to 1000.
	PageSize int
	// Concurrency is the number of chunks running at once across all workers. Defaults to 8,
	// at most 1000.
	Concurrency int
	// AllowFailedChunks is how many chunks may fail for good before the backfill fails with
	// ErrTypeChunksFailed. Defaults to 0.
	AllowFailedChunks int
	// HeartbeatTimeout: a chunk whose worker is silent this long resumes elsewhere from its
	// checkpoint. Defaults to 30s.
	HeartbeatTimeout time.Duration
	// ChunkTimeout bounds one attempt of one chunk. Defaults to 24h.
	ChunkTimeout time.Duration
	// MaxAttempts bounds the attempts of each chunk, the first included. Defaults to 10.
	MaxAttempts int32
	// MaxHistoryEvents: the backfill continues-as-new past this many history events.
	// Defaults to 10,000.
	MaxHistoryEvents int
	// MaxDocsPerSecond and MaxBytesPerSecond cap the whole run (documents, _bulk body bytes
	// per second) across all workers; each running chunk gets 1/Concurrency. 0: no cap.
	MaxDocsPerSecond  float64
	MaxBytesPerSecond float64
}

// Source says what to read and where to write it.
type Source struct {
	// URI is what to read; required: s3://bucket/prefix, or an existing index to copy,
	// es://INDEX on the workers' own cluster or es://CLUSTER/INDEX on a cluster each worker
	// has SLUICE_CLUSTER_<CLUSTER>_URL (and credentials) for.
	URI         string
	Format      string // "ndjson" (default) or "csv"
	Compression string // "auto" (default: from the name, then the magic bytes), "none", "gzip", "zstd"
	Index       string // target index or alias; required
	IDField     string // top-level field (CSV: column) whose value becomes _id; default: a hash of bucket, key and offset
	// DeadLetter is where records Elasticsearch refuses for good go: "index" (default:
	// <index>-dead-letters), "index:NAME", "file:NAME" (a relative name, under each
	// worker's --dead-letter-dir), or "s3://bucket/prefix" (NDJSON objects, under a location
	// the workers allow with --dead-letter-s3).
	DeadLetter string
	Pipeline   string // ingest pipeline every document goes through; empty: the index's default
	// Query is a query clause (JSON, at most 64 KiB) selecting the documents of an es://
	// source to copy; nil: all of them.
	Query json.RawMessage `json:"Query,omitempty"`
}

// Limits tune the bulk requests of each chunk. Zero means the default.
type Limits struct {
	MaxOps         int           // documents per _bulk request; default 1000
	MaxBytes       int64         // bytes per _bulk request body; default 5 MiB
	FlushInterval  time.Duration // send a partial batch after this long; default 1s
	Inflight       int           // _bulk requests in flight per chunk; default 2
	RetryMaxElapse time.Duration // stop retrying 429/5xx items of one batch after this long; default 5m
	// MaxDocsPerSecond and MaxBytesPerSecond cap one chunk's sending; 0: no cap. The backfill
	// sets them to each chunk's share of BackfillInput's caps.
	MaxDocsPerSecond  float64
	MaxBytesPerSecond float64
}

// BackfillResult is the result of a finished backfill, and the details of an
// ErrTypeChunksFailed error.
type BackfillResult struct {
	Stats         Stats
	ChunksPlanned int64
	ChunksDone    int64
	ChunksFailed  int64
	// ObjectsFailed is how many of ChunksFailed are objects of packed chunks (FailedChunk.Object).
	ObjectsFailed int64         `json:"ObjectsFailed,omitempty"`
	Objects       int64         // objects listed
	Bytes         int64         // source bytes planned
	Failed        []FailedChunk // at most 100; ChunksFailed counts them all
	Duration      time.Duration // workflow time since the backfill started
	Runs          int           // runs, continue-as-new included
	// Reconciliation is the end-of-run check of the counts; nil when it did not run.
	Reconciliation *Reconciliation
}

// Reconciliation is what the end-of-run check found: the index's _count against the documents
// the backfill indexed, and the objects whose records read != indexed + dead-lettered.
type Reconciliation struct {
	Count            int64  // the index's _count after a refresh
	Expected         int64  // documents of this backfill it must hold
	Missing          int64  // documents indexed but not in the index; > 0 fails the run
	Note             string // explains a count that differs without failing
	UnbalancedChunks int64  // completed chunks whose counts do not add up; > 0 fails the run
	Unbalanced       []Unbalanced
}

// Unbalanced is an object whose chunks' counts do not add up.
type Unbalanced struct {
	Key          string
	Read         int64
	Indexed      int64
	DeadLettered int64
}

// Stats count records. Read == Indexed + DeadLettered once every chunk has finished.
type Stats struct {
	Read         int64 // records read
	Indexed      int64 // documents the search engine acknowledged
	Retried      int64 // item sends repeated after a 429/5xx or a failed request
	DeadLettered int64 // records written to the dead-letter target
	Bytes        int64 // source bytes read (decompressed for compressed objects)
}

// FailedChunk is a chunk that failed for good.
type FailedChunk struct {
	Key       string // object key
	Start     int64  // byte range [Start, End) of the object
	End       int64  // < 0: to the end of the object
	Resume    int64  // the checkpoint it reached (rerunning from there loses nothing); 0: none
	ErrorType string
	Error     string
	// ResumeObject is, for a packed chunk, the index of the object Resume is an offset in.
	ResumeObject int `json:"ResumeObject,omitempty"`
	// Object marks an object of a packed chunk that failed while its chunk went on.
	Object bool `json:"Object,omitempty"`
}

// BackfillChildOptions are the child workflow options ExecuteBackfill starts with: those already
// set on ctx (workflow.WithChildOptions), with these defaults for the fields left empty:
//
//   - TaskQueue: TaskQueue, where sluice workers poll, unless set to a queue other than the
//     calling workflow's own (set it when your sluice workers run with --task-queue).
//   - ParentClosePolicy: REQUEST_CANCEL. If your workflow closes first, the backfill is
//     canceled and its running chunks stop at a checkpoint (Temporal's default, TERMINATE,
//     would kill them mid-request).
//   - WaitForCancellation: true. Canceling your workflow waits until the backfill has stopped.
//   - Memo: the source and index, so that `sluice status <child id>` shows them.
//
// WorkflowID is left to you (default: Temporal's, derived from your run); a readable one such
// as your workflow id + "-backfill" makes `sluice status` easier. No retry policy and no
// timeout are set: a backfill retries its own chunks, and may run for days.
func BackfillChildOptions(ctx workflow.Context, in BackfillInput) workflow.ChildWorkflowOptions {
	return childOptions(ctx, in.Source.URI, in.Source.Index)
}

// ExecuteBackfill starts BackfillWorkflow as a child of the calling workflow, with
// BackfillChildOptions, and returns its future: Get gives the BackfillResult, or an error
// (ChunksFailed tells a backfill that ran but lost chunks from one that could not run). A zero
// Version is sent as BackfillVersion.
func ExecuteBackfill(ctx workflow.Context, in BackfillInput) workflow.ChildWorkflowFuture {
	if in.Version == 0 {
		in.Version = BackfillVersion
	}
	ctx = workflow.WithChildOptions(ctx, BackfillChildOptions(ctx, in))
	return workflow.ExecuteChildWorkflow(ctx, BackfillWorkflow, in)
}

// ChunksFailed reports whether err is a backfill that ran to its end but lost more chunks than
// it allowed (ErrTypeChunksFailed), and returns its result: what was loaded and which chunks
// failed, with their checkpoints.
//
// It finds the backfill's failure also as the cause of another job's error: a reindex whose
// load lost chunks fails with ErrTypeLoadFailed, and ChunksFailed of that error returns the
// backfill's result.
func ChunksFailed(err error) (BackfillResult, bool) {
	return failedWith[BackfillResult](err, ErrTypeChunksFailed)
}
