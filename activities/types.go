package activities

import (
	"encoding/json"
	"fmt"
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

// Limits are the engine's tuning knobs carried in workflow inputs. Zero means the engine's
// default (see ingest.Limits); Engine maps them to the engine's own type.
type Limits struct {
	MaxOps        int           // documents per _bulk request; default 1000
	MaxBytes      int64         // bytes per _bulk request body; default 5 MiB
	FlushInterval time.Duration // send a partial request after this long; default 1s
	Inflight      int           // concurrent _bulk requests per chunk; default 2
	// RetryMaxElapsed: give up retrying 429/5xx items of one request after this long; default
	// 5m. Its JSON name is the one recorded histories and running workflows hold.
	RetryMaxElapsed time.Duration `json:"RetryMaxElapse"`
	// MaxDocsPerSecond and MaxBytesPerSecond cap one chunk's sending; 0: no cap. The workflow
	// sets them to its share of a run-wide cap (BackfillInput.MaxDocsPerSecond).
	MaxDocsPerSecond  float64
	MaxBytesPerSecond float64
}

// engine returns the engine's limits for l: the only mapping between the two types.
func (l Limits) engine() ingest.Limits {
	return ingest.Limits{
		MaxOps:          l.MaxOps,
		MaxBytes:        l.MaxBytes,
		FlushInterval:   l.FlushInterval,
		Inflight:        l.Inflight,
		RetryMaxElapsed: l.RetryMaxElapsed,

		MaxDocsPerSecond:  l.MaxDocsPerSecond,
		MaxBytesPerSecond: l.MaxBytesPerSecond,
	}
}

// Source describes what to read and where to write. It never holds a secret: credentials come
// from the worker's environment.
type Source struct {
	// URI is what to read: s3://bucket/prefix, or an existing index, es://INDEX on the
	// worker's own cluster or es://CLUSTER/INDEX on a cluster the worker has
	// SLUICE_CLUSTER_<NAME>_* variables for (see package essource).
	URI         string
	Format      string // ingest.FormatNDJSON, FormatCSV or FormatDeadLetter (a replay); empty: NDJSON
	Compression string // ingest.Compression*: auto (empty), none, gzip or zstd
	Index       string // target index or alias
	IDField     string // top-level field whose value becomes _id; empty: hash of bucket, key, offset
	DeadLetter  string // ingest.ParseDeadLetter's grammar: "index" (default), "index:NAME", "file:PATH" or "s3://bucket/prefix"
	Pipeline    string // ingest pipeline every document goes through; empty: the index's default
	// Query is a query clause (JSON, at most essource.MaxQueryBytes) that filters the
	// documents of an es:// source; nil: all of them. Unused for s3:// sources.
	Query json.RawMessage `json:"Query,omitempty"`
}

// Chunk is one unit of work: the records that start in [Start, End) of one object, or, for a
// packed chunk (Objects set), every record of several small whole objects read in order.
// End < 0 means "to the end of the object" (compressed objects are one chunk).
type Chunk struct {
	Key   string // empty in a packed chunk, so that a worker that predates packing refuses it
	ETag  string // pinned at planning time; the read uses If-Match
	Size  int64
	Start int64
	End   int64
	// Compression is what the planner found: none, gzip or zstd; auto when it did not look
	// (a whole small object whose name says nothing: the engine recognises it by its first
	// bytes). Empty in chunks planned before the field existed: Source.Compression applies.
	Compression string
	// Resume is the checkpoint a previous attempt reached (0: none). When set the chunk reads
	// from Resume, which is a record boundary.
	Resume int64
	// Objects are the whole objects of a packed chunk, in the order they are read; nil for a
	// single-object chunk. Key, ETag, Start and End are then unused, Size is the objects' sum.
	Objects []PackedObject `json:"Objects,omitempty"`
	// ResumeObject is the index in Objects of the object Resume is an offset in: the objects
	// before it are done.
	ResumeObject int `json:"ResumeObject,omitempty"`
	// Slice is the primary shard of an index read by a chunk of an es:// source; nil for
	// objects. Key is then empty (a worker that predates index sources refuses the chunk),
	// Size counts the slice's documents at planning time, Start is 0, End -1, and Resume
	// counts the hits acknowledged.
	Slice *Slice `json:"Slice,omitempty"`
	// Search is where Resume is in the slice's point in time (set with Resume when the
	// workflow reschedules a slice itself); nil: the slice starts over when Resume > 0.
	Search *SearchCursor `json:"Search,omitempty"`
}

// Slice names one primary shard of one concrete index: every document of an es:// source is
// in exactly one slice.
type Slice struct {
	Index string
	Shard int
}

// SearchCursor is where a slice's checkpoint is in its point in time: hit number Skip of the
// page that search_after After starts (After empty: the slice's first page). The point in
// time's id is no secret: it only names server-side state, which expires on its own.
type SearchCursor struct {
	PIT   string
	After json.RawMessage `json:"After,omitempty"`
	Skip  int64           `json:"Skip,omitempty"`
}

func cursorOf(c *ingest.SearchCursor) *SearchCursor {
	if c == nil {
		return nil
	}
	return &SearchCursor{PIT: c.PIT, After: c.After, Skip: c.Skip}
}

func (c *SearchCursor) engine() *ingest.SearchCursor {
	if c == nil {
		return nil
	}
	return &ingest.SearchCursor{PIT: c.PIT, After: c.After, Skip: c.Skip}
}

// PackedObject is one whole object of a packed chunk.
type PackedObject struct {
	Key         string
	ETag        string // pinned at planning time; the read uses If-Match
	Size        int64
	Compression string // as Chunk.Compression
}

// Name describes the chunk in logs and errors: its key, or a packed chunk's first key and
// object count.
func (c Chunk) Name() string {
	if c.Slice != nil {
		return fmt.Sprintf("%s shard %d", c.Slice.Index, c.Slice.Shard)
	}
	if len(c.Objects) == 0 {
		return c.Key
	}
	return fmt.Sprintf("%s (first of %d packed objects)", c.Objects[0].Key, len(c.Objects))
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

// ChunkStats are the counters of one chunk, as the workflow stores and sums them. Read ==
// Indexed + DeadLettered when a chunk completes; Bytes of the ranges of an object add up to
// its size. It is its own type, not the engine's: a counter added to the engine changes no
// stored payload until it is added here.
type ChunkStats struct {
	Read         int64 // records read (documents and refused records)
	Indexed      int64 // documents Elasticsearch acknowledged
	Retried      int64 // item sends repeated after a 429/5xx or a failed request
	DeadLettered int64 // records written to the dead-letter sink
	Bytes        int64 // bytes of the chunk's range behind the checkpoint (decompressed for compressed objects)
}

// Add accumulates o into s, as the engine adds its counters.
func (s *ChunkStats) Add(o ChunkStats) {
	sum := s.engine()
	sum.Add(o.engine())
	*s = statsOf(sum)
}

func statsOf(s ingest.Stats) ChunkStats {
	return ChunkStats{Read: s.Read, Indexed: s.Indexed, Retried: s.Retried, DeadLettered: s.DeadLettered, Bytes: s.Bytes}
}

func (s ChunkStats) engine() ingest.Stats {
	return ingest.Stats{Read: s.Read, Indexed: s.Indexed, Retried: s.Retried, DeadLettered: s.DeadLettered, Bytes: s.Bytes}
}

// ChunkProgress is how far a chunk got: the checkpoint (every record that starts before it is
// indexed or dead-lettered) and the counters of the records before it. IngestChunk heartbeats
// it, attaches the last one to its canceled and non-retryable errors, and returns it when the
// chunk is done.
//
// In a packed chunk the checkpoint is offset Checkpoint of object number Object (every object
// before it is done), and Failed lists the objects before it that changed or vanished after
// planning: they were skipped (their records read before the failure are counted) and do not
// fail the chunk.
type ChunkProgress struct {
	Checkpoint int64
	Stats      ChunkStats
	Object     int            `json:"Object,omitempty"`
	Failed     []FailedObject `json:"Failed,omitempty"`
	// SourceBytes is how far the chunk got in the stored object, in the units of Chunk.Size
	// (compressed bytes for a compressed object, where Checkpoint and Stats.Bytes count
	// decompressed ones), for progress displays; see sourceCounter. Approximate for compressed
	// objects (the read-ahead is counted), 0 in heartbeats sent before the field existed.
	SourceBytes int64
	// Search is where Checkpoint is in the point in time of a slice of an es:// source; nil
	// for objects.
	Search *SearchCursor `json:"Search,omitempty"`
}

// FailedObject is an object of a packed chunk that changed (ErrTypeObjectChanged) or vanished
// (ErrTypeNotFound) after planning.
type FailedObject struct {
	Key       string
	Offset    int64 // where reading it stopped; the records before were ingested
	ErrorType string
	Error     string
}

// After reports whether p's checkpoint is past q's: a later object, or further in the same.
func (p ChunkProgress) After(q ChunkProgress) bool {
	return p.engine().After(q.engine())
}

func progressOf(p ingest.Progress) ChunkProgress {
	cp := ChunkProgress{Checkpoint: p.Checkpoint, Stats: statsOf(p.Stats), Object: p.Object, Search: cursorOf(p.Search)}
	for _, f := range p.Failed {
		cp.Failed = append(cp.Failed, FailedObject{Key: f.Key, Offset: f.Offset, ErrorType: f.Type, Error: f.Err})
	}
	return cp
}

// engine is the engine's progress for p: the only mapping back.
func (p ChunkProgress) engine() ingest.Progress {
	ep := ingest.Progress{Checkpoint: p.Checkpoint, Stats: p.Stats.engine(), Object: p.Object, Search: p.Search.engine()}
	for _, f := range p.Failed {
		ep.Failed = append(ep.Failed, ingest.ObjectFailure{Key: f.Key, Offset: f.Offset, Type: f.ErrorType, Err: f.Error})
	}
	return ep
}
