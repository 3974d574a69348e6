package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/essource"
	"github.com/sluicehq/sluice/ingest/s3source"
)

// Planning bounds. A PlanPageOutput travels through the workflow's history, and the workflow
// carries unfinished chunks into continue-as-new: Temporal fails a payload past 2 MiB (and
// warns past 512 KiB). A page therefore lists at most MaxPageSize objects, and when cutting
// its objects at the requested ChunkSize would make the encoded page larger than
// MaxPlanPageBytes, the chunk size of that page is doubled until it fits (ranges still tile
// every object; they are only fewer and longer). With 1,000 objects whose keys are 1 KiB each
// (S3's maximum), one chunk per object is about 1.2 MB, still below the hard limit.
const (
	DefaultPageSize        = 1000     // objects per page
	MaxPageSize            = 1000     // S3's own cap on a listing page
	DefaultChunkSize int64 = 64 << 20 // bytes
	MaxPlanPageBytes       = 1 << 20  // encoded chunks per page, before the chunk size grows
	// maxEmptyPages bounds the listing calls of one PlanPage when pages hold nothing but
	// directory markers; the workflow then gets an empty page and asks again.
	maxEmptyPages = 20
)

// Activities are sluice's Temporal activities. One value serves a whole worker process and is
// safe for concurrent use; Close releases the dead-letter sinks it opened.
//
// Credentials never appear in inputs, outputs, heartbeats or errors: the clients in Engine and
// S3 carry them, from the worker's own environment.
type Activities struct {
	// Engine runs the chunks; its Budget is the process's memory budget and its Bulk the
	// Elasticsearch client. Each chunk's dead-letter sink follows Source.DeadLetter.
	Engine *ingest.Engine
	// S3 lists and reads the objects.
	S3 *s3source.Source
	// Clusters are the clusters es:// sources read: the worker's own (Engine.Bulk) and those
	// named by SLUICE_CLUSTER_<NAME>_* variables of its environment. nil: only its own.
	Clusters *essource.Clusters
	// DeadLetterDir is the directory under which "file:NAME" dead-letter targets are created;
	// empty: such targets fail their chunk with ErrTypeBadConfig. Workflow inputs choose only
	// the name, never where on the worker's machine a file goes.
	DeadLetterDir string
	// DeadLetterS3 are the S3 locations "s3://bucket/prefix" dead-letter targets may write
	// under (see ingest.S3Allowed); a target outside them fails its chunk with
	// ErrTypeBadConfig. Empty: no S3 target is allowed. Letters are written with the S3 client.
	DeadLetterS3 []ingest.DeadLetterTarget
	// LetterStore stores the letter objects of S3 targets. nil: S3.
	LetterStore ingest.ObjectPutter
	// Logger receives the activities' own logs. nil: slog.Default().
	Logger *slog.Logger
	// HeartbeatInterval is how often a chunk heartbeats its last checkpoint while it makes no
	// progress (waiting for memory, for a slow cluster, for S3), so that a slow but live chunk
	// is not timed out and a cancellation (delivered in a heartbeat's response) is noticed.
	// Defaults to a quarter of the activity's heartbeat timeout, at most 5s, at least 100ms.
	// The SDK throttles what reaches the server to 0.8 x the heartbeat timeout.
	HeartbeatInterval time.Duration
	// StallTimeout bounds how long a chunk may go without progress (its checkpoint advancing,
	// or a byte read from S3) before it stops heartbeating and fails its attempt with a
	// retryable error; the next attempt resumes from the checkpoint, on whichever worker takes
	// it. It catches what no other bound does (a wait that never ends inside the worker), so
	// the default leaves room for the others: the larger of 5m and the chunk's
	// RetryMaxElapsed plus the Elasticsearch client's request timeout.
	StallTimeout time.Duration

	mu    sync.Mutex
	sinks map[string]ingest.DeadLetterSink // by "index:<name>" or "file:<path>"
	ops   map[string]string                // bulk action by target index, decided once
}

// registry is what Register needs: a worker.Worker, or a testsuite environment.
type registry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// Register registers the activities under PlanPageName, IngestChunkName and ReconcileName.
func (a *Activities) Register(r registry) {
	r.RegisterActivityWithOptions(a.PlanPage, activity.RegisterOptions{Name: PlanPageName})
	r.RegisterActivityWithOptions(a.IngestChunk, activity.RegisterOptions{Name: IngestChunkName})
	r.RegisterActivityWithOptions(a.Reconcile, activity.RegisterOptions{Name: ReconcileName})
}

// Close closes the dead-letter sinks opened by IngestChunk. Call it after the worker stopped.
func (a *Activities) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for k, s := range a.sinks {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing dead-letter sink %s: %w", k, err))
		}
	}
	a.sinks = nil
	return errors.Join(errs...)
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// PlanPage lists one page of the source and cuts its objects into chunks.
//
// An object whose compression (Source.Compression, or the key's extension with "auto") is none
// and that is larger than the chunk size is cut into ranges [i*size, (i+1)*size); the last
// range has End -1 (to the end of the object). A compressed object larger than the chunk size
// is one chunk [0, -1). Objects no larger than the chunk size are packed, in listing order,
// into packed chunks (Chunk.Objects) of at most the chunk size, MaxPackedObjects objects and
// MaxPackedChunkJSON encoded bytes; a lone one is a chunk [0, -1) of its own. No small object is
// read while planning: the engine recognises a compressed object without extension by its
// magic bytes as it reads it.
// Empty objects get no chunk (they hold no record); they are counted in Objects. Every chunk
// pins the object's ETag, so a replaced object fails its chunk instead of mixing versions.
//
// CSV objects are cut like NDJSON ones: a quoted field that holds a newline must then not
// straddle a range boundary (see ingest's CSV decoder); use a chunk size larger than such
// objects when the data has them.
//
// An es:// source is planned by planIndex instead: one chunk per primary shard.
func (a *Activities) PlanPage(ctx context.Context, in PlanPageInput) (PlanPageOutput, error) {
	if essource.Is(in.Source.URI) {
		return a.planIndex(ctx, in)
	}
	bucket, prefix, err := s3source.ParseURI(in.Source.URI)
	if err != nil {
		return PlanPageOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
	}
	if in.ChunkSize < 0 || in.PageSize < 0 {
		err := fmt.Errorf("negative page size %d or chunk size %d", in.PageSize, in.ChunkSize)
		return PlanPageOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
	}
	pageSize := in.PageSize
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	pageSize = min(pageSize, MaxPageSize)
	chunkSize := in.ChunkSize
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if _, err := ingest.DetectCompression(in.Source.Compression, "", nil); err != nil {
		return PlanPageOutput{}, classify(err, fmt.Sprintf("planning %s", in.Source.URI), nil)
	}

	var objs []s3source.Object
	next := in.Cursor
	for range maxEmptyPages {
		objs, next, err = a.S3.ListPage(ctx, bucket, prefix, next, pageSize)
		if err != nil {
			return PlanPageOutput{}, classify(err, fmt.Sprintf("listing %s after cursor %q", in.Source.URI, in.Cursor), nil)
		}
		if len(objs) > 0 || next == "" {
			break
		}
	}
	out := PlanPageOutput{Next: next, Objects: len(objs)}
	for _, o := range objs {
		out.Bytes += o.Size
	}
	compressions := make([]string, len(objs))
	for i, o := range objs {
		compressions[i], err = a.compressionOf(ctx, bucket, o, in.Source.Compression, chunkSize)
		if errors.Is(err, s3source.ErrObjectChanged) || errors.Is(err, s3source.ErrNotFound) {
			// Replaced or deleted since the listing: one whole-object chunk, whose read fails
			// the same way and names the object, so the backfill counts one failed chunk
			// instead of failing its planning.
			a.logger().Warn("object changed or vanished while planning", "object", "s3://"+bucket+"/"+o.Key, "err", err)
			compressions[i], err = ingest.CompressionAuto, nil
		}
		if err != nil {
			return PlanPageOutput{}, classify(err, fmt.Sprintf("planning s3://%s/%s", bucket, o.Key), nil)
		}
	}
	out.Chunks = planChunks(objs, compressions, chunkSize, MaxPlanPageBytes)
	return out, nil
}

// compressionOf decides the compression of o once, for its chunks to carry: the setting when it
// names one; with "auto" the name when it says gzip or zstd, and for an object large enough to
// be cut into ranges its first bytes (one small read), so a compressed object with a plain name
// is never cut. A smaller object whose name says nothing stays "auto": it is one whole-object
// chunk, and the engine recognises it by its first bytes as it reads them, so planning reads
// no small object.
func (a *Activities) compressionOf(ctx context.Context, bucket string, o s3source.Object, setting string, chunkSize int64) (string, error) {
	c, err := ingest.DetectCompression(setting, o.Key, nil)
	if err != nil || c != ingest.CompressionNone || setting == ingest.CompressionNone {
		return c, err
	}
	if o.Size <= chunkSize {
		return ingest.CompressionAuto, nil
	}
	rc, err := a.S3.Open(ctx, bucket, o.Key, o.ETag, 0)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var magic [4]byte
	n, err := io.ReadFull(rc, magic[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	return ingest.DetectCompression(setting, o.Key, magic[:n])
}

// planChunks cuts the plain objects (compression none) larger than chunkSize into chunks of
// chunkSize bytes, doubling chunkSize until the encoded chunks fit in maxBytes or every object
// is a single chunk, and packs the other objects, small ones, into packed chunks (see pack).
// Each chunk carries its objects' compression.
func planChunks(objs []s3source.Object, compressions []string, chunkSize int64, maxBytes int) []Chunk {
	splittable := make([]bool, len(objs))
	encoded := make([]int, len(objs)) // JSON size of one chunk of the object
	var largest int64
	for i, o := range objs {
		splittable[i] = compressions[i] == ingest.CompressionNone
		if splittable[i] {
			largest = max(largest, o.Size)
		}
		encoded[i] = chunkJSONSize(o)
	}
	// Packed objects take less room than a chunk of their own: counting them as such bounds
	// the page from above.
	count := func(size int64) (n, bytes int) {
		for i, o := range objs {
			k := chunksOf(o.Size, size, splittable[i])
			n += k
			bytes += k * encoded[i]
		}
		return n, bytes
	}
	n, bytes := count(chunkSize)
	for bytes > maxBytes && chunkSize < largest {
		chunkSize *= 2
		n, bytes = count(chunkSize)
	}
	chunks := make([]Chunk, 0, n)
	var small packer
	for i, o := range objs {
		if o.Size > 0 && o.Size <= chunkSize {
			chunks = small.add(chunks, o, compressions[i], chunkSize)
			continue
		}
		k := chunksOf(o.Size, chunkSize, splittable[i])
		for j := range k {
			c := Chunk{Key: o.Key, ETag: o.ETag, Size: o.Size, Start: int64(j) * chunkSize, End: int64(j+1) * chunkSize,
				Compression: compressions[i]}
			if j == k-1 {
				c.End = -1
			}
			chunks = append(chunks, c)
		}
	}
	return small.flush(chunks)
}

// Bounds of a packed chunk, besides its bytes (at most the chunk size): its objects, and the
// encoded size of its input (a payload in history, and in continue-as-new state).
const (
	MaxPackedObjects         = 1000      // objects per packed chunk
	MaxPackedChunkJSON       = 256 << 10 // bytes of a packed chunk's encoded objects
	maxPackedObjectSizeBytes = 1 << 62
)

// packer groups consecutive small whole objects of a page into packed chunks: at most
// chunkSize bytes, MaxPackedObjects objects and MaxPackedChunkJSON encoded bytes each. A group
// of one object is a chunk of that object alone.
type packer struct {
	objs  []PackedObject
	bytes int64
	json  int
}

// add appends o to the group, first closing the group into chunks when o does not fit.
func (p *packer) add(chunks []Chunk, o s3source.Object, compression string, chunkSize int64) []Chunk {
	po := PackedObject{Key: o.Key, ETag: o.ETag, Size: o.Size, Compression: compression}
	n := packedJSONSize(po)
	if len(p.objs) > 0 && (p.bytes+o.Size > chunkSize || len(p.objs) >= MaxPackedObjects || p.json+n > MaxPackedChunkJSON) {
		chunks = p.flush(chunks)
	}
	p.objs = append(p.objs, po)
	p.bytes += o.Size
	p.json += n
	return chunks
}

// flush appends the group as a chunk and empties it.
func (p *packer) flush(chunks []Chunk) []Chunk {
	switch len(p.objs) {
	case 0:
		return chunks
	case 1:
		o := p.objs[0]
		chunks = append(chunks, Chunk{Key: o.Key, ETag: o.ETag, Size: o.Size, End: -1, Compression: o.Compression})
	default:
		chunks = append(chunks, Chunk{Objects: p.objs, Size: p.bytes, End: -1})
	}
	*p = packer{}
	return chunks
}

// packedJSONSize is an upper bound of the encoded size of o in a packed chunk.
func packedJSONSize(o PackedObject) int {
	o.Size, o.Compression = maxPackedObjectSizeBytes, ingest.CompressionNone // as long as the longest
	b, _ := json.Marshal(o)
	return len(b) + 1 // the separating comma
}

// chunksOf is the number of chunks of an object of size bytes.
func chunksOf(size, chunkSize int64, splittable bool) int {
	switch {
	case size == 0:
		return 0
	case !splittable || size <= chunkSize:
		return 1
	}
	return int((size + chunkSize - 1) / chunkSize)
}

// chunkJSONSize is an upper bound of the encoded size of one chunk of o (offsets at their
// longest), as the default data converter writes it.
func chunkJSONSize(o s3source.Object) int {
	b, _ := json.Marshal(Chunk{Key: o.Key, ETag: o.ETag, Size: 1 << 62, Start: 1 << 62, End: 1 << 62, Resume: 1 << 62,
		Compression: ingest.CompressionNone}) // as long as the longest name
	return len(b) + 1 // the separating comma
}

// errWorkerStopping is the cause that stops a chunk when its worker shuts down.
var errWorkerStopping = errors.New("worker stopping")

// errStalled is the cause that stops a chunk that made no progress for the stall timeout.
var errStalled = errors.New("stalled")

// errDeadLetters is the cause that stops a chunk whose buffered dead letters could not be
// stored: its checkpoint may not pass them.
var errDeadLetters = errors.New("dead letters not stored")

// defaultStallTimeout is the least default of Activities.StallTimeout.
const defaultStallTimeout = 5 * time.Minute

// IngestChunk indexes the records of one chunk. It resumes from the checkpoint of a previous
// attempt (its heartbeat details) or from Chunk.Resume, whichever is further, heartbeats each
// checkpoint Elasticsearch acknowledged (and the last one again every HeartbeatInterval while
// nothing moves), and returns the chunk's final ChunkProgress.
//
// Errors: failures a retry cannot fix are non-retryable application errors of the ErrType*
// types, with the last ChunkProgress as details; anything else is a plain, retryable error.
// Both name the object and the offset reached. When the activity is canceled it returns a
// canceled error whose details are the last ChunkProgress; when its worker stops it returns a
// retryable error after heartbeating the checkpoint, so another worker resumes there.
func (a *Activities) IngestChunk(ctx context.Context, in IngestChunkInput) (ChunkProgress, error) {
	if a.Engine == nil || a.Engine.Bulk == nil || a.Engine.Budget == nil || a.S3 == nil {
		err := errors.New("activities built without an engine, a bulk client, a budget or an S3 source")
		return ChunkProgress{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadConfig, err)
	}
	job, err := a.chunkJob(in, a.heartbeatDetails(ctx, in.Chunk.Name()))
	if err != nil {
		return ChunkProgress{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
	}
	sink, err := a.sink(ctx, in)
	if err != nil {
		return ChunkProgress{}, classify(err, "ingesting "+job.where(job.from), nil)
	}
	if s, ok := sink.(*ingest.S3Sink); ok {
		defer func() {
			if err := s.Close(); err != nil {
				a.logger().Warn("chunk ended with dead letters not stored; its checkpoint did not pass them", append(job.logAttrs(), "err", err)...)
			}
		}()
	}
	op, err := a.op(ctx, job.index)
	if err != nil {
		return ChunkProgress{}, classify(err, fmt.Sprintf("ingesting %s: resolving the target %q", job.where(job.from), job.index), nil)
	}
	a.logger().Info("chunk started", append(job.logAttrs(), "resume", job.from.Checkpoint, "attempt", activity.GetInfo(ctx).Attempt)...)

	last, err := a.run(ctx, job, op, sink)
	if err == nil {
		a.logger().Info("chunk done", append(job.logAttrs(), "read", last.Stats.Read, "indexed", last.Stats.Indexed,
			"dead_lettered", last.Stats.DeadLettered, "retried", last.Stats.Retried, "failed_objects", len(last.Failed))...)
		return last, nil
	}
	where := "ingesting " + job.where(last.engine())
	switch {
	case ctx.Err() != nil && temporal.IsCanceledError(context.Cause(ctx)):
		// Canceled by the server: report where the chunk stopped. (A CanceledError is only
		// accepted by the SDK for a requested cancellation.)
		return ChunkProgress{}, temporal.NewCanceledError(last)
	case ctx.Err() != nil:
		return ChunkProgress{}, fmt.Errorf("%s: %w", where, ctx.Err())
	case errors.Is(err, errWorkerStopping):
		return ChunkProgress{}, fmt.Errorf("%s: %w", where, errWorkerStopping)
	case errors.Is(err, errStalled):
		a.logger().Warn("chunk stalled", append(job.logAttrs(), "offset", last.Checkpoint, "err", err)...)
		return ChunkProgress{}, fmt.Errorf("%s: %w", where, err)
	}
	a.logger().Warn("chunk failed", append(job.logAttrs(), "offset", last.Checkpoint, "err", err)...)
	return ChunkProgress{}, classify(err, where, &last)
}

// heartbeatDetails returns the progress an earlier attempt of this activity heartbeated, or
// nil.
func (a *Activities) heartbeatDetails(ctx context.Context, key string) *ChunkProgress {
	if !activity.HasHeartbeatDetails(ctx) {
		return nil
	}
	var p ChunkProgress
	if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
		a.logger().Warn("ignoring unreadable heartbeat details", "key", key, "err", err)
		return nil
	}
	return &p
}

// run runs job, with op as its bulk action, while heartbeating its checkpoints, and returns
// the last one. It stops at a checkpoint, with errWorkerStopping, when the worker shuts down,
// before the SDK cancels the activity outright.
//
// It stops with errStalled when nothing moves for the stall timeout: the heartbeater stops
// beating and cancels the run, so the attempt fails (or, when the engine does not return,
// times out on its heartbeat) and the next one resumes from the checkpoint.
func (a *Activities) run(ctx context.Context, job chunkJob, op string, sink ingest.DeadLetterSink) (ChunkProgress, error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hb := newHeartbeater(ctx, progressOf(job.from), a.heartbeatInterval(ctx), a.stallTimeout(job.limits), cancel)
	hb.letters, _ = sink.(bufferedSink)
	go hb.run()
	go func() {
		select {
		case <-activity.GetWorkerStopChannel(ctx):
			cancel(errWorkerStopping)
		case <-runCtx.Done():
		}
	}()
	moving := func(rc io.ReadCloser) io.ReadCloser { return movingReader{rc, hb} }
	last, err := job.run(runCtx, op, sink, moving, hb.update)
	// The final checkpoint is heartbeated before the activity returns: on failure the SDK
	// sends it, and the next attempt resumes there. When the dead letters it covers could not
	// be stored, the last checkpoint heartbeated is what the chunk reached.
	if stored, serr := hb.stop(last); serr != nil {
		last = stored
		if err == nil {
			err = serr
		}
	}
	if cause := context.Cause(runCtx); err != nil && ctx.Err() == nil {
		switch {
		case errors.Is(cause, errWorkerStopping):
			err = errWorkerStopping
		case errors.Is(cause, errStalled), errors.Is(cause, errDeadLetters):
			err = cause
		}
	}
	return last, err
}

// chunkJob is a chunk ready to run: where it starts, and the engine call that runs it.
type chunkJob struct {
	from   ingest.Progress
	index  string        // the target, whose kind decides the bulk action (see Activities.op)
	limits ingest.Limits // the chunk's, for its stall timeout
	// run runs the engine with op as the bulk action, wrapping each S3 reader it opens in
	// wrap, and reports progress with SourceBytes (see sourceCounter) to onProgress.
	run      func(ctx context.Context, op string, sink ingest.DeadLetterSink, wrap func(io.ReadCloser) io.ReadCloser, onProgress func(ChunkProgress)) (ChunkProgress, error)
	where    func(at ingest.Progress) string // the object (and offset) a checkpoint is in
	logAttrs func() []any
}

// chunkJob maps a chunk's input, and the progress an earlier attempt heartbeated (nil: none),
// to the engine call that runs it: Ingest for a single-object chunk, IngestObjects for a
// packed one.
func (a *Activities) chunkJob(in IngestChunkInput, earlier *ChunkProgress) (chunkJob, error) {
	if in.Chunk.Slice != nil {
		return a.sliceJob(in, earlier)
	}
	if len(in.Chunk.Objects) > 0 {
		return a.packedJob(in, earlier)
	}
	spec, err := chunkSpec(in, earlier)
	if err != nil {
		return chunkJob{}, err
	}
	object := "s3://" + spec.Bucket + "/" + spec.Key
	return chunkJob{
		from: spec.From(), index: spec.Index, limits: spec.Limits,
		run: func(ctx context.Context, op string, sink ingest.DeadLetterSink, wrap func(io.ReadCloser) io.ReadCloser, onProgress func(ChunkProgress)) (ChunkProgress, error) {
			spec := spec
			spec.Op = op
			src := newSourceCounter(spec, in.Chunk.Size)
			open := func(ctx context.Context, offset int64) (io.ReadCloser, error) {
				rc, err := a.S3.Open(ctx, spec.Bucket, spec.Key, in.Chunk.ETag, offset)
				if err != nil {
					return nil, err
				}
				return src.reader(wrap(rc)), nil
			}
			prog, err := a.Engine.Ingest(ctx, spec, open, sink, func(p ingest.Progress) { onProgress(src.progress(p)) })
			return src.progress(prog), err
		},
		where:    func(at ingest.Progress) string { return fmt.Sprintf("%s at offset %d", object, at.Checkpoint) },
		logAttrs: func() []any { return []any{"object", object, "start", spec.Start, "end", spec.End} },
	}, nil
}

// stallTimeout is StallTimeout, or its default for a chunk with the limits lim.
func (a *Activities) stallTimeout(lim ingest.Limits) time.Duration {
	if a.StallTimeout > 0 {
		return a.StallTimeout
	}
	return max(defaultStallTimeout, lim.WithDefaults().RetryMaxElapsed+a.Engine.Bulk.RequestTimeout())
}

// movingReader tells the heartbeater of every byte read: reading is progress, even while the
// checkpoint cannot move (a resumed compressed object skips what it already indexed).
type movingReader struct {
	io.ReadCloser
	hb *heartbeater
}

func (r movingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.hb.moved()
	}
	return n, err
}

// chunkSpec maps a chunk's input, and the progress an earlier attempt heartbeated (nil: none),
// to the engine's spec. It is the one place that chooses where a chunk resumes: at the further
// of the earlier attempt's checkpoint, with its counters, and Chunk.Resume, without (the
// workflow kept the counters of the run that reached it). The engine's ChunkSpec.From turns
// that into the offset reading starts at.
func chunkSpec(in IngestChunkInput, earlier *ChunkProgress) (ingest.ChunkSpec, error) {
	c := in.Chunk
	bucket, _, err := s3source.ParseURI(in.Source.URI)
	switch {
	case err != nil:
		return ingest.ChunkSpec{}, err
	case c.Key == "":
		return ingest.ChunkSpec{}, errors.New("chunk without an object key")
	case in.Source.Index == "":
		return ingest.ChunkSpec{}, errors.New("no target index")
	case c.End >= 0 && c.End < c.Start, c.Start < 0:
		return ingest.ChunkSpec{}, fmt.Errorf("invalid range [%d, %d)", c.Start, c.End)
	}
	resume := ingest.Progress{Checkpoint: c.Resume}
	if earlier != nil && earlier.Checkpoint >= max(c.Start, c.Resume) {
		resume = ingest.Progress{Checkpoint: earlier.Checkpoint, Stats: earlier.Stats.engine()}
	}
	return ingest.ChunkSpec{
		Bucket:      bucket,
		Key:         c.Key,
		Format:      cmp.Or(in.Source.Format, ingest.FormatNDJSON),
		Compression: cmp.Or(c.Compression, in.Source.Compression, ingest.CompressionAuto),
		Index:       in.Source.Index,
		IDField:     in.Source.IDField,
		Pipeline:    in.Source.Pipeline,
		Start:       c.Start,
		End:         c.End,
		Resume:      resume,
		Limits:      in.Limits.engine(),
	}, nil
}

func (a *Activities) heartbeatInterval(ctx context.Context) time.Duration {
	if a.HeartbeatInterval > 0 {
		return a.HeartbeatInterval
	}
	d := 5 * time.Second
	if t := activity.GetInfo(ctx).HeartbeatTimeout; t > 0 {
		d = min(d, max(t/4, 100*time.Millisecond))
	}
	return d
}

// classify turns err into the activity's error, once: a non-retryable application error of
// the matching ErrType when a retry cannot fix it, else a retryable error. Both say where.
func classify(err error, where string, last *ChunkProgress) error {
	typ := ""
	switch {
	case errors.Is(err, s3source.ErrObjectChanged):
		typ = ErrTypeObjectChanged
	case errors.Is(err, s3source.ErrAccessDenied):
		typ = ErrTypeAccessDenied
	case errors.Is(err, s3source.ErrNotFound), indexMissing(err):
		typ = ErrTypeNotFound
	case errors.Is(err, ingest.ErrUnauthorized):
		typ = ErrTypeUnauthorized
	case errors.Is(err, ingest.ErrIndexNotAllowed):
		typ = ErrTypeIndexNotAllowed
	case errors.Is(err, ingest.ErrBadInput):
		typ = ErrTypeBadInput
	case errors.Is(err, ingest.ErrBadConfig):
		typ = ErrTypeBadConfig
	case ingest.IsPermanent(err), s3source.IsPermanent(err):
		typ = ErrTypePermanent
	default:
		return fmt.Errorf("%s: %w", where, err)
	}
	msg := where + ": " + err.Error()
	if last != nil {
		return temporal.NewNonRetryableApplicationError(msg, typ, err, *last)
	}
	return temporal.NewNonRetryableApplicationError(msg, typ, err)
}

// op is the bulk action for index: create for a data stream (which takes nothing else),
// else index. Each worker process asks the cluster once per index.
func (a *Activities) op(ctx context.Context, index string) (string, error) {
	a.mu.Lock()
	op, ok := a.ops[index]
	a.mu.Unlock()
	if ok {
		return op, nil
	}
	ds, err := a.Engine.Bulk.IsDataStream(ctx, index)
	if err != nil {
		return "", err
	}
	op = ingest.OpIndex
	if ds {
		op = ingest.OpCreate
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ops == nil {
		a.ops = map[string]string{}
	}
	a.ops[index] = op
	return op, nil
}

// sink returns the dead-letter sink Source.DeadLetter names (see ingest.ParseDeadLetter),
// opening it on first use. A file is under DeadLetterDir on the machine of whichever worker
// runs the chunk. An S3 target gets a sink of the chunk's own (it buffers the chunk's letters
// and names their objects after the chunk), which the caller closes, and only when
// DeadLetterS3 allows it.
func (a *Activities) sink(ctx context.Context, in IngestChunkInput) (ingest.DeadLetterSink, error) {
	src := in.Source
	target, err := ingest.ParseDeadLetter(src.DeadLetter, src.Index)
	if err != nil {
		return nil, err
	}
	if target.S3Bucket != "" {
		return a.s3Sink(ctx, target, in)
	}
	key := target.String()
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.sinks[key]; ok {
		return s, nil
	}
	var s ingest.DeadLetterSink
	if target.File != "" {
		s, err = ingest.OpenFileSink(a.DeadLetterDir, target.File)
	} else {
		s, err = ingest.NewIndexSink(a.Engine.Bulk, ingest.IndexSinkConfig{Index: target.Index})
	}
	if err != nil {
		return nil, err
	}
	if a.sinks == nil {
		a.sinks = map[string]ingest.DeadLetterSink{}
	}
	a.sinks[key] = s
	return s, nil
}

// s3Sink is the chunk's sink for the S3 target t: objects under
// <prefix>/<index>/<workflow id>/<chunk's first key>@<start>, memory from the worker's budget.
func (a *Activities) s3Sink(ctx context.Context, t ingest.DeadLetterTarget, in IngestChunkInput) (ingest.DeadLetterSink, error) {
	if err := ingest.S3Allowed(t, a.DeadLetterS3); err != nil {
		return nil, err
	}
	key := in.Chunk.Key
	if len(in.Chunk.Objects) > 0 {
		key = in.Chunk.Objects[0].Key
	}
	chunk := fmt.Sprintf("%s@%d", key, in.Chunk.Start)
	prefix := ingest.S3LetterPrefix(t, in.Source.Index, activity.GetInfo(ctx).WorkflowExecution.ID, chunk)
	var store ingest.ObjectPutter = a.S3
	if a.LetterStore != nil {
		store = a.LetterStore
	}
	return ingest.NewS3Sink(store, ingest.S3SinkConfig{Bucket: t.S3Bucket, Prefix: prefix, Budget: a.Engine.Budget}), nil
}

// bufferedSink is a dead-letter sink whose Write only buffers (ingest.S3Sink): a checkpoint
// may be reported only after Flush stored the letters written before it was reached.
type bufferedSink interface {
	Flush(ctx context.Context) error
	Buffered() int64
}

// heartbeater is the only sender of a chunk's heartbeats: it sends each new checkpoint soon
// after it is reached, and the last one again every interval while nothing moves. Only it
// calls RecordHeartbeat, so an older checkpoint is never sent after a newer one, and the
// engine never waits for a heartbeat.
//
// With a buffering dead-letter sink (letters), it stores the buffered letters before it sends
// a checkpoint (at most once per half interval; a checkpoint reached sooner waits for the
// next store), so that no heartbeat covers a letter that is not stored. A store that fails cancels
// the run with errDeadLetters: the chunk fails at the last checkpoint sent.
//
// It is also the stall detector: when neither the checkpoint nor the reader has moved for
// stall, it stops heartbeating for good and cancels the run with errStalled. Not beating
// matters as much as cancelling: should the run not return, the server times the attempt out
// on its heartbeat and retries it from the last checkpoint it holds.
type heartbeater struct {
	ctx      context.Context
	interval time.Duration
	stall    time.Duration
	cancel   context.CancelCauseFunc

	letters  bufferedSink // nil: Write stores (index and file sinks)
	storedAt time.Time    // last store of letters
	failed   error        // the store that failed: nothing is sent after it

	mu   sync.Mutex
	last ChunkProgress
	sent ChunkProgress // the last checkpoint sent

	moves atomic.Int64 // counts progress: checkpoints and reads

	wake chan struct{} // a new checkpoint is waiting
	quit chan struct{}
	done chan struct{}
}

func newHeartbeater(ctx context.Context, start ChunkProgress, interval, stall time.Duration, cancel context.CancelCauseFunc) *heartbeater {
	return &heartbeater{
		ctx: ctx, interval: interval, stall: stall, cancel: cancel, last: start, sent: start,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
}

// moved records progress that is not a checkpoint.
func (h *heartbeater) moved() { h.moves.Add(1) }

func (h *heartbeater) update(hb ChunkProgress) {
	h.moved()
	h.mu.Lock()
	if hb.After(h.last) {
		h.last = hb
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// send heartbeats the last checkpoint, after storing the letters it covers (see store); ctx
// bounds the store. force: store now, however recent the last store.
func (h *heartbeater) send(ctx context.Context, force bool) error {
	h.mu.Lock()
	hb := h.last
	h.mu.Unlock()
	// Letters written before hb was reached are in the buffer, or stored.
	if h.letters != nil && h.letters.Buffered() > 0 {
		if !force && time.Since(h.storedAt) < h.interval/2 {
			return nil
		}
		if err := h.store(ctx); err != nil {
			return err
		}
	}
	if h.ctx.Err() == nil {
		activity.RecordHeartbeat(h.ctx, hb)
	}
	h.mu.Lock()
	h.sent = hb
	h.mu.Unlock()
	return nil
}

// store stores the buffered letters. Meanwhile it heartbeats the last checkpoint sent every
// interval, since a PUT may take longer than the heartbeat timeout (Write may be storing a
// full buffer too, which Flush waits for). A store that fails cancels the run; the failure
// stays, so nothing is sent after it.
func (h *heartbeater) store(ctx context.Context) error {
	if h.failed != nil {
		return h.failed
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(h.interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h.mu.Lock()
				sent := h.sent
				h.mu.Unlock()
				if h.ctx.Err() == nil {
					activity.RecordHeartbeat(h.ctx, sent)
				}
			}
		}
	})
	err := h.letters.Flush(ctx)
	close(done)
	wg.Wait()
	if err != nil {
		h.failed = fmt.Errorf("%w: %w", errDeadLetters, err)
		h.cancel(h.failed)
		return h.failed
	}
	h.storedAt = time.Now()
	return nil
}

func (h *heartbeater) run() {
	defer close(h.done)
	_ = h.send(h.ctx, true) // at once (nothing is buffered yet): the server learns the resume point, and the SDK sends the first at once
	t := time.NewTicker(min(h.interval, h.stall))
	defer t.Stop()
	seen, since := h.moves.Load(), time.Now()
	for {
		select {
		case <-h.wake:
		case <-t.C:
		case <-h.quit:
			return
		case <-h.ctx.Done():
			return
		}
		if n := h.moves.Load(); n != seen {
			seen, since = n, time.Now()
		} else if idle := time.Since(since); idle >= h.stall {
			h.mu.Lock()
			at := h.last.Checkpoint
			h.mu.Unlock()
			h.cancel(fmt.Errorf("%w: no progress for %s (no checkpoint past offset %d, no byte read)", errStalled, idle.Round(time.Millisecond), at))
			return
		}
		if err := h.send(h.ctx, false); err != nil {
			return
		}
	}
}

// stop ends the loop and sends final (when it is at least the last checkpoint sent), after
// storing the letters it covers, even when the activity was canceled (a canceled chunk
// reports final too). When they cannot be stored it returns the last checkpoint sent, and why.
func (h *heartbeater) stop(final ChunkProgress) (ChunkProgress, error) {
	close(h.quit)
	<-h.done
	h.update(final)
	if err := h.send(context.WithoutCancel(h.ctx), true); err != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.sent, err
	}
	return final, nil
}
