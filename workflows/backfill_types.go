package workflows

import (
	"time"

	"github.com/sluicehq/sluice/activities"
)

// Names that the worker, the CLI and other workflows rely on.
const (
	// BackfillName is the name BackfillWorkflow is registered under.
	BackfillName = "Backfill"

	// ProgressQuery returns a Progress. It takes no argument.
	ProgressQuery = "progress"
	// PauseSignal stops the workflow from starting chunks; running chunks finish. No payload.
	PauseSignal = "pause"
	// ResumeSignal undoes PauseSignal. No payload.
	ResumeSignal = "resume"
	// SetConcurrencySignal sets how many chunks run at once. Payload: int. Values above
	// MaxConcurrency are clamped, values below 1 ignored. Lowering it stops nothing: the window
	// shrinks as running chunks finish.
	SetConcurrencySignal = "set-concurrency"

	// ErrTypeChunksFailed is the type of the application error the workflow fails with when more
	// chunks failed than AllowFailedChunks allows. Its details hold the BackfillResult.
	ErrTypeChunksFailed = "ChunksFailed"
	// ErrTypePlanFailed is the type of the application error the workflow fails with when a page
	// of the listing cannot be planned. Its cause is the PlanPage activity error.
	ErrTypePlanFailed = "PlanFailed"
)

// Defaults of BackfillInput, and the bounds the workflow keeps whatever the input says.
const (
	DefaultChunkSize              = activities.DefaultChunkSize // bytes; the planner's own default
	DefaultPageSize               = activities.DefaultPageSize  // objects per PlanPage call
	DefaultConcurrency            = 8                           // IngestChunk activities at once
	DefaultHeartbeatTimeout       = 30 * time.Second
	DefaultChunkTimeout           = 24 * time.Hour // start-to-close of one IngestChunk attempt
	DefaultMaxAttempts      int32 = 10             // attempts per activity, the first included
	DefaultMaxHistoryEvents       = 10_000         // continue-as-new past this many events

	// MaxConcurrency bounds the window: Temporal refuses more than 2,000 pending activities per
	// execution, and the planner needs one of them.
	MaxConcurrency = 1000
	// MaxFailedListed bounds the failed chunks kept in state, results and the ChunksFailed
	// error; ChunksFailed keeps counting past it.
	MaxFailedListed = 100
)

// Phases reported by Progress.Phase.
const (
	PhaseRunning    = "running"
	PhasePaused     = "paused"
	PhaseDraining   = "draining"  // waiting for running chunks before continue-as-new
	PhaseCanceling  = "canceling" // canceled; waiting for running chunks to stop at a checkpoint
	PhaseCanceled   = "canceled"
	PhaseFailing    = "failing" // planning failed; waiting for running chunks before failing
	PhaseFailed     = "failed"
	PhaseCompleted  = "completed"
	PhaseContinued  = "continued-as-new"
	phaseInProgress = ""
)

// BackfillInput is the input of BackfillWorkflow. Zero values mean the default. It never holds a
// secret: the workers read credentials from their own environment.
type BackfillInput struct {
	// Version of this shape: BackfillVersion. 0 means 1; a higher one fails with BadInput.
	Version int

	Source activities.Source
	Limits activities.Limits
	// ChunkSize cuts splittable objects into byte ranges of this size. Defaults to 64 MiB.
	ChunkSize int64
	// PageSize is the number of objects listed per PlanPage call. Defaults to 1000.
	PageSize int
	// Concurrency is the number of IngestChunk activities running at once on the first run;
	// later runs carry the value in force in State. Defaults to 8, at most MaxConcurrency.
	Concurrency int
	// AllowFailedChunks is how many chunks may fail for good before the workflow fails with
	// ErrTypeChunksFailed. Defaults to 0.
	AllowFailedChunks int
	// HeartbeatTimeout of IngestChunk. Defaults to 30s.
	HeartbeatTimeout time.Duration
	// ChunkTimeout is the start-to-close timeout of one IngestChunk attempt. Defaults to 24h.
	ChunkTimeout time.Duration
	// MaxAttempts bounds the attempts of each activity (IngestChunk and PlanPage), the first
	// included. Defaults to 10.
	MaxAttempts int32
	// MaxHistoryEvents makes the workflow continue-as-new once its history passes this many
	// events (it also does when the server suggests it). Defaults to 10,000; Temporal fails a
	// history at 51,200.
	MaxHistoryEvents int

	// MaxDocsPerSecond and MaxBytesPerSecond cap the whole run (documents, _bulk body bytes
	// per second, across all workers); 0: no cap. Each chunk gets 1/Concurrency of them
	// (chunkLimits). Defaults to none.
	MaxDocsPerSecond  float64
	MaxBytesPerSecond float64

	// State is carried across continue-as-new; nil on the first run.
	State *BackfillState
}

// BackfillState is everything a run hands to the next one across continue-as-new. Its size is
// bounded: at most one page of planned chunks plus less than a window, and MaxFailedListed
// failed chunks.
type BackfillState struct {
	Cursor      string             // continuation token of the listing; "" before the first page
	ListingDone bool               // the last page has been planned
	Pending     []activities.Chunk // planned, not started yet; a chunk with Resume > 0 restarts there

	Stats         activities.ChunkStats // sum over finished chunks (see Progress)
	ChunksPlanned int64
	ChunksDone    int64
	ChunksFailed  int64
	ObjectsFailed int64 `json:"ObjectsFailed,omitempty"` // of ChunksFailed, objects of packed chunks (see FailedChunk.Object)
	Objects       int64 // objects planned
	Bytes         int64 // source bytes planned
	BytesDone     int64 // source bytes of the completed chunks (see Progress.BytesDone)
	Failed        []FailedChunk
	// UnbalancedChunks and Unbalanced: completed chunks whose counters do not add up, and
	// their objects (see Reconciliation).
	UnbalancedChunks int64
	Unbalanced       []Unbalanced

	Paused      bool
	Concurrency int       // the window in force
	StartTime   time.Time // start of the first run, for Elapsed and DocsPerSecond
	Runs        int       // runs finished by continue-as-new before this one
}

// FailedChunk is a chunk that failed for good: non-retryable error or attempts exhausted; or
// an object of a packed chunk that changed or vanished after planning (Start 0, End -1).
type FailedChunk struct {
	Key   string // a packed chunk's: its first object's key and object count (activities.Chunk.Name)
	Start int64
	End   int64 // < 0: to the end of the object
	// Resume is the checkpoint the chunk reached when its failure carried one (IngestChunk's
	// non-retryable errors and heartbeat timeouts do): rerunning from there loses nothing.
	// 0 otherwise.
	Resume int64
	// ResumeObject is, for a packed chunk, the index of the object Resume is an offset in.
	ResumeObject int    `json:"ResumeObject,omitempty"`
	ErrorType    string // application error type (activities.ErrType...), or "Timeout"
	Error        string // bounded to a few hundred bytes
	// Object marks an object of a packed chunk that failed while the chunk went on (Start 0,
	// End -1); false for a chunk.
	Object bool `json:"Object,omitempty"`
}

// BackfillResult is the result of a finished backfill, and the details of a ChunksFailed error.
type BackfillResult struct {
	Stats         activities.ChunkStats
	ChunksPlanned int64
	ChunksDone    int64
	ChunksFailed  int64
	// ObjectsFailed is how many of ChunksFailed are objects of packed chunks (FailedChunk.Object):
	// their chunk went on, and may be counted in ChunksDone.
	ObjectsFailed int64 `json:"ObjectsFailed,omitempty"`
	Objects       int64
	Bytes         int64
	Failed        []FailedChunk // at most MaxFailedListed; ChunksFailed counts them all
	Duration      time.Duration // workflow time since the first run started
	Runs          int           // runs, continue-as-new included
	// Reconciliation is the end-of-run check of the counts; nil when it did not run (chunks
	// failed past AllowFailedChunks, or a run recorded before it existed).
	Reconciliation *Reconciliation
}

// Progress is the answer to ProgressQuery.
//
// Stats and DocsPerSecond count the records of finished chunks: completed ones, and the part
// before the checkpoint of chunks that failed or were canceled. Running chunks are not counted:
// their counters live in their heartbeats, which the workflow cannot see (the server hands
// heartbeat details to the workflow only with a timeout failure); a client adds them from the
// pending activities of DescribeWorkflowExecution (sluice status does).
type Progress struct {
	Phase         string // Phase... constants
	ChunksPlanned int64
	ChunksDone    int64
	ChunksFailed  int64
	ObjectsFailed int64 `json:"ObjectsFailed,omitempty"` // of ChunksFailed, objects of packed chunks
	ChunksRunning int
	ChunksPending int // planned, not started
	Objects       int64
	Bytes         int64 // source bytes planned
	// BytesDone is the source bytes (as stored in S3, compressed or not) of the completed
	// chunks, comparable with Bytes; Stats.Bytes counts decompressed bytes of compressed
	// objects instead.
	BytesDone     int64
	Stats         activities.ChunkStats // finished chunks: read, indexed, retried, dead-lettered, bytes
	DocsPerSecond float64               // Stats.Indexed over Elapsed
	Elapsed       time.Duration         // workflow time since the first run started
	StartTime     time.Time             // start of the first run (Elapsed is as of the last workflow task)
	Paused        bool
	Concurrency   int
	ListingDone   bool
	Failed        []FailedChunk // at most MaxFailedListed

	Run               int // 1 on the first run, +1 per continue-as-new
	HistoryLength     int // events in this run's history as of the last workflow task (0 in the test environment)
	ActivitiesThisRun int // activities scheduled by this run (chunks and pages)
}
