package activities

import (
	"time"

	"github.com/sluicehq/sluice/ingest"
)

// Activity names, registered by the worker and scheduled by the workflows.
const (
	PlanPageName    = "PlanPage"
	IngestChunkName = "IngestChunk"
)

// Error types of the application errors the activities return for failures that a retry cannot
// fix (temporal.NewNonRetryableApplicationError). The workflows also list them as non-retryable
// in their retry policies, so they stop retrying even if an activity forgets to mark one.
const (
	ErrTypeObjectChanged = "ObjectChanged" // the object's ETag no longer matches the planned one
	ErrTypeAccessDenied  = "AccessDenied"  // S3 or Elasticsearch refused the credentials' permissions
	ErrTypeNotFound      = "NotFound"      // bucket, object or index does not exist
	ErrTypeUnauthorized  = "Unauthorized"  // credentials missing or rejected
	ErrTypeBadInput      = "BadInput"      // the input cannot work (bad URI, format, limits)
	// ErrTypeBadConfig: the worker's configuration or the request's settings cannot work (an
	// unusable dead-letter sink, limits larger than the worker's memory budget, an unknown format).
	ErrTypeBadConfig = "BadConfig"
	// ErrTypeIndexNotAllowed: the target index does not exist and may not be created, is
	// closed, or is blocked for writes.
	ErrTypeIndexNotAllowed = "IndexNotAllowed"
	// ErrTypePermanent: any other failure the engine knows a retry cannot fix (such as an
	// unexpected 4xx answer to _bulk).
	ErrTypePermanent = "Permanent"
)

// Format of the records in an object.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"
)

// Compression of an object. "auto" detects it from the extension and magic bytes.
const (
	CompressionAuto = "auto"
	CompressionNone = "none"
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
)

// Limits are the engine's tuning knobs carried in workflow inputs. Zero means the default.
type Limits struct {
	MaxOps         int           // documents per _bulk request; default 1000
	MaxBytes       int64         // bytes per _bulk request body; default 5 MiB
	FlushInterval  time.Duration // flush a partial batch after this long; default 1s
	Inflight       int           // concurrent _bulk requests per chunk; default 2
	RetryMaxElapse time.Duration // give up retrying 429/5xx items of one batch after this long; default 5m
}

// Source describes what to read and where to write. It never holds a secret: credentials come
// from the worker's environment.
type Source struct {
	URI         string // s3://bucket/prefix
	Format      string // ndjson | csv
	Compression string // auto | none | gzip | zstd
	Index       string // target index or alias
	IDField     string // top-level field whose value becomes _id; empty: hash of bucket, key, offset
	DeadLetter  string // "index" (default: <index>-dead-letters) or "file:/path"
}

// Chunk is one unit of work: the records that start in [Start, End) of one object.
// End < 0 means "to the end of the object" (compressed objects are one chunk).
type Chunk struct {
	Key   string
	ETag  string // pinned at planning time; the read uses If-Match
	Size  int64
	Start int64
	End   int64
	// Resume is the checkpoint a previous attempt reached (0: none). When set the chunk reads
	// from Resume, which is a record boundary.
	Resume int64
}

// PlanPageInput asks for one page of the listing, cut into chunks.
type PlanPageInput struct {
	Source    Source
	Cursor    string // continuation token of the listing; empty for the first page
	PageSize  int    // objects per page; default 1000
	ChunkSize int64  // split splittable objects into ranges of this many bytes; default 64 MiB
}

// PlanPageOutput is one page of chunks. Next is empty when the listing is finished.
type PlanPageOutput struct {
	Chunks  []Chunk
	Next    string
	Objects int
	Bytes   int64
}

// IngestChunkInput is the input of the IngestChunk activity.
type IngestChunkInput struct {
	Source Source
	Chunk  Chunk
	Limits Limits
}

// ChunkStats are the counters of one chunk: the engine's own. Read == Indexed + DeadLettered
// when a chunk completes; Bytes of the ranges of an object add up to its size.
type ChunkStats = ingest.Stats

// Heartbeat is what IngestChunk heartbeats: the checkpoint and the counters up to it.
type Heartbeat struct {
	Checkpoint int64
	Stats      ChunkStats
}

// IngestChunkOutput is the result of a finished chunk.
type IngestChunkOutput struct {
	Stats      ChunkStats
	Checkpoint int64
}
