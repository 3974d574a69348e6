package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// Limits tune one chunk's pipeline. The zero value of a field means its default.
type Limits struct {
	MaxOps          int           // documents per _bulk request. Defaults to 1000.
	MaxBytes        int64         // bytes per _bulk request body. Defaults to 5 MiB. A record that cannot fit alone is dead-lettered.
	FlushInterval   time.Duration // a partial request is sent after waiting this long. Defaults to 1s.
	Inflight        int           // _bulk requests in flight per chunk. Defaults to 2.
	QueueBytes      int64         // bytes of records queued ahead of the batcher. Defaults to 2 x MaxBytes, at most the whole budget.
	RetryInitial    time.Duration // first backoff after a 429/5xx. Defaults to 100ms; doubles, jittered.
	RetryMax        time.Duration // longest single backoff. Defaults to 10s.
	RetryMaxElapsed time.Duration // give up on a request that keeps failing after this long. Defaults to 5m.
	ValidateJSON    bool          // check each NDJSON line is valid JSON before sending. Defaults to off: Elasticsearch validates each document anyway, and its rejections are dead-lettered.
	// MaxDocsPerSecond and MaxBytesPerSecond cap this chunk's sending (documents, request body
	// bytes); 0: no cap. See throttle.
	MaxDocsPerSecond  float64
	MaxBytesPerSecond float64
}

// Bounds of Limits: past them a value is a typo or an attack, not a tuning.
const (
	MaxOpsLimit      = 100_000  // documents per request; Elasticsearch advises far fewer
	MaxBytesLimit    = 1 << 30  // bytes per request; Elasticsearch refuses bodies over 2 GiB (http.max_content_length defaults to 100 MiB)
	MinBytesLimit    = 4 << 10  // bytes per request: a smaller cap dead-letters most records
	MaxInflightLimit = 64       // requests in flight per chunk
	MaxQueueBytes    = 16 << 30 // bytes queued per chunk
)

// Validate checks the limits against their bounds; zero fields (defaults) pass. Errors name
// the flag and wrap ErrBadConfig.
func (l Limits) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, a...)...)
	}
	switch {
	case l.MaxOps < 0 || l.MaxOps > MaxOpsLimit:
		return bad("--max-ops %d: want 1 to %d", l.MaxOps, MaxOpsLimit)
	case l.MaxBytes != 0 && (l.MaxBytes < MinBytesLimit || l.MaxBytes > MaxBytesLimit):
		return bad("--max-bytes %d: want %d (4KiB) to %d (1GiB)", l.MaxBytes, MinBytesLimit, MaxBytesLimit)
	case l.Inflight < 0 || l.Inflight > MaxInflightLimit:
		return bad("--inflight %d: want 1 to %d", l.Inflight, MaxInflightLimit)
	case l.QueueBytes < 0 || l.QueueBytes > MaxQueueBytes:
		return bad("queue bytes %d: want 0 (default) to %d", l.QueueBytes, MaxQueueBytes)
	case l.FlushInterval < 0 || l.RetryInitial < 0 || l.RetryMax < 0 || l.RetryMaxElapsed < 0:
		return bad("negative duration in the limits")
	}
	return nil
}

// WithDefaults fills in the zero fields.
func (l Limits) WithDefaults() Limits {
	if l.MaxOps <= 0 {
		l.MaxOps = 1000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 5 << 20
	}
	if l.FlushInterval <= 0 {
		l.FlushInterval = time.Second
	}
	if l.Inflight <= 0 {
		l.Inflight = 2
	}
	r := es.RetryPolicy{Initial: l.RetryInitial, Max: l.RetryMax, MaxElapsed: l.RetryMaxElapsed}.WithDefaults()
	l.RetryInitial, l.RetryMax, l.RetryMaxElapsed = r.Initial, r.Max, r.MaxElapsed
	return l
}

// Engine runs chunks. One Engine serves a whole worker process: its Budget is the process's
// memory budget, shared by every chunk running at once. An Engine is safe for concurrent use.
type Engine struct {
	Budget *Budget
	Bulk   *es.Client
	Logger *slog.Logger // nil: slog.Default()
	// Adaptive, when set, limits the _bulk requests in flight of every chunk together, moved
	// by the cluster's answers (see Adaptive). nil: each chunk keeps Limits.Inflight requests
	// in flight.
	Adaptive *Adaptive
}

// ChunkSpec names the records to ingest: those that start in [Start, End) of one object.
type ChunkSpec struct {
	Bucket, Key string
	// Name, when set, names the chunk's source in errors, logs and dead letters instead of
	// s3://Bucket/Key (a slice of an index source).
	Name   string
	Format string // FormatNDJSON, FormatCSV or FormatDeadLetter
	// Compression is trusted as given: CompressionNone, Gzip or Zstd. With CompressionAuto (or
	// empty) the engine decides from the key's extension and, for a whole-object chunk, from
	// the first bytes. Compressed objects are read whole.
	Compression string
	Index       string
	IDField     string // top-level field (CSV: column) whose value is the _id; empty: DocumentID
	// Op is the bulk action: OpIndex (or empty), or OpCreate for a data stream, which takes
	// nothing else. With OpCreate a document that already exists (409, as when a resumed
	// chunk sends its tail again) counts as indexed: its id says it is the same record.
	Op         string
	Pipeline   string // ingest pipeline every document goes through; empty: the index's default
	Start, End int64  // End < 0: to the end of the object
	// Resume is the checkpoint of an earlier attempt, a record boundary, with the counters of
	// the records before it. A Checkpoint not past Start means none: see From.
	Resume Progress
	Limits Limits
}

// Bulk actions of ChunkSpec.Op.
const (
	OpIndex  = "index"
	OpCreate = "create"
)

// From is where the chunk starts: the checkpoint it resumes from, or Start, with the counters
// of the records before it. Every checkpoint the run reports is at least From.
func (s ChunkSpec) From() Progress {
	return Progress{Checkpoint: max(s.Start, s.Resume.Checkpoint), Stats: s.Resume.Stats}
}

// resumeAt is the record boundary reading resumes at; 0 for none.
func (s ChunkSpec) resumeAt() int64 {
	if s.Resume.Checkpoint > s.Start {
		return s.Resume.Checkpoint
	}
	return 0
}

func (s ChunkSpec) wholeObject() bool { return s.Start == 0 && s.End < 0 }

// Opener opens the object for reading from offset to its end. The engine reads past the
// chunk's end only to finish its last record, then closes the reader.
type Opener func(ctx context.Context, offset int64) (io.ReadCloser, error)

func (s ChunkSpec) object() string {
	if s.Name != "" {
		return s.Name
	}
	return "s3://" + s.Bucket + "/" + s.Key
}

// Ingest runs one chunk to its end, or until ctx is done or an error stops it. Refused records
// go to sink. It calls onProgress (which may be nil) each time the checkpoint advances, from
// one goroutine at a time. It returns the final progress; on error that is the last checkpoint
// reached (at least spec.From()), from which a retry can resume. A record that cannot be
// decoded (ErrBadInput: corrupt or truncated compressed data, a CSV quoted field running past
// the range) stops reading, but the records decoded before it are still sent (each request
// within its usual retry bound) before the error is returned, so the progress returned with
// it counts every record the cluster acknowledged. Other errors stop the chunk at once.
func (e *Engine) Ingest(ctx context.Context, spec ChunkSpec, open Opener, sink DeadLetterSink, onProgress func(Progress)) (Progress, error) {
	from := spec.From()
	lim, err := e.limits(spec)
	if err != nil {
		return from, err
	}
	if sink == nil {
		return from, fmt.Errorf("%w: no dead-letter sink", ErrBadConfig)
	}
	spec.Limits = lim
	p := e.newPipeline(spec, lim, sink, newWatermark(from, spec.Start, spec.End), onProgress)
	p.objects = []string{spec.object()}
	return p.runChunk(ctx, &singleObject{spec: spec, open: open, budget: e.Budget})
}

// newPipeline makes the pipeline of one chunk run; spec holds what its objects share.
func (e *Engine) newPipeline(spec ChunkSpec, lim Limits, sink DeadLetterSink, wm *watermark, onProgress func(Progress)) *pipeline {
	return &pipeline{
		budget: e.Budget, bulk: e.Bulk, sink: sink, spec: spec, lim: lim, log: e.logger(),
		queue:      newQueue(lim.QueueBytes),
		requests:   make(chan *request),
		wm:         wm,
		onProgress: onProgress,
		throttle:   newThrottle(lim),
		adaptive:   e.Adaptive,
	}
}

// runChunk runs p over the objects of src and returns the final progress, and the error that
// stopped it.
func (p *pipeline) runChunk(ctx context.Context, src objectSource) (Progress, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.cancel = cancel
	p.run(ctx, src)

	prog := p.wm.current()
	p.report(prog)
	if err := context.Cause(ctx); err != nil && !errors.Is(err, errPipelineDone) {
		return prog, err
	}
	return prog, p.badInput
}

// limits fills in spec's defaults and checks them, and the format, against the budget.
func (e *Engine) limits(spec ChunkSpec) (Limits, error) {
	if err := spec.Limits.Validate(); err != nil {
		return Limits{}, err
	}
	lim := spec.Limits.WithDefaults()
	if lim.QueueBytes <= 0 {
		lim.QueueBytes = min(2*lim.MaxBytes, e.Budget.Max())
	}
	if lim.MaxBytes > e.Budget.Max() || lim.QueueBytes > e.Budget.Max() {
		return lim, fmt.Errorf("%w: request cap (%d bytes) and queue (%d bytes) must fit in the memory budget (%d bytes)", ErrBadConfig, lim.MaxBytes, lim.QueueBytes, e.Budget.Max())
	}
	if spec.Format != FormatNDJSON && spec.Format != FormatCSV && spec.Format != FormatDeadLetter {
		return lim, fmt.Errorf("%w: unknown format %q (want ndjson, csv or deadletter)", ErrBadConfig, spec.Format)
	}
	if spec.Op != "" && spec.Op != OpIndex && spec.Op != OpCreate {
		return lim, fmt.Errorf("%w: unknown bulk action %q (want index or create)", ErrBadConfig, spec.Op)
	}
	return lim, nil
}

func (e *Engine) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}
