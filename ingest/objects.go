package ingest

import (
	"context"
	"fmt"
	"io"
)

// PackedObject is one whole object of a packed chunk.
type PackedObject struct {
	Key string
	// Compression as in ChunkSpec: CompressionNone, Gzip or Zstd is trusted; CompressionAuto
	// (or empty) is decided from the key's extension and the object's first bytes.
	Compression string
}

// ObjectsSpec names a packed chunk: every record of whole objects, read in order by one
// pipeline, so that records of many objects share _bulk requests. Ids and dead letters are
// each object's own, exactly as for a chunk of that object alone.
type ObjectsSpec struct {
	Bucket   string
	Objects  []PackedObject
	Format   string // FormatNDJSON or FormatCSV
	Index    string
	IDField  string // as in ChunkSpec
	Op       string // as in ChunkSpec: OpIndex (or empty), or OpCreate for a data stream
	Pipeline string // as in ChunkSpec: the ingest pipeline every document goes through
	// Resume is where an earlier attempt got to: objects before Resume.Object are done, and
	// object Resume.Object continues at Resume.Checkpoint (a record boundary), with the
	// counters and failed objects before it.
	Resume Progress
	Limits Limits
	// Unavailable names the errors (opening or reading an object) that fail only that object
	// (it changed or vanished since planning) with a type, and returns "" for any other. Such
	// an object is listed in Progress.Failed with that type and the chunk goes on with the
	// next. nil: every error fails the chunk.
	Unavailable func(error) string
}

// ObjectOpener opens object number object of a packed chunk for reading from offset to its end.
type ObjectOpener func(ctx context.Context, object int, offset int64) (io.ReadCloser, error)

// PrefetchObjects is how many of a packed chunk's next objects are opened (their GET sent)
// while the current one is decoded, so that S3's first-byte latency does not serialise the
// chunk. Their bodies are not read ahead: each holds only the HTTP transport's read buffer
// (4 KiB) and the kernel's socket buffer, so a chunk holds at most this many such responses
// beyond the one it reads; that bound is per chunk and not charged to the budget.
const PrefetchObjects = 8

// IngestObjects runs a packed chunk to its end, or until ctx is done or an error stops it, as
// Ingest runs a single-object chunk. Its checkpoints name the object (Progress.Object) and the
// offset in it; Progress.Stats.Bytes counts the (decompressed) bytes of the objects behind the
// checkpoint. An object that spec.Unavailable fails is skipped from where it failed and
// reported in Progress.Failed once the checkpoint passes it.
func (e *Engine) IngestObjects(ctx context.Context, spec ObjectsSpec, open ObjectOpener, sink DeadLetterSink, onProgress func(Progress)) (Progress, error) {
	from := spec.Resume
	common := ChunkSpec{Bucket: spec.Bucket, Format: spec.Format, Index: spec.Index, IDField: spec.IDField,
		Op: spec.Op, Pipeline: spec.Pipeline, End: -1, Limits: spec.Limits}
	lim, err := e.limits(common)
	if err != nil {
		return from, err
	}
	if sink == nil {
		return from, fmt.Errorf("%w: no dead-letter sink", ErrBadConfig)
	}
	if from.Object < 0 || from.Object > len(spec.Objects) || from.Checkpoint < 0 {
		return from, fmt.Errorf("%w: resume point object %d offset %d outside a chunk of %d objects", ErrBadInput, from.Object, from.Checkpoint, len(spec.Objects))
	}
	common.Limits = lim
	p := e.newPipeline(common, lim, sink, newPackedWatermark(from), onProgress)
	p.packed, p.unavailable = true, spec.Unavailable
	p.objects = make([]string, len(spec.Objects))
	for i, o := range spec.Objects {
		p.objects[i] = "s3://" + spec.Bucket + "/" + o.Key
	}
	src := &packedObjects{common: common, budget: e.Budget, objects: spec.Objects, resume: from, open: open, unavailable: spec.Unavailable, index: from.Object}
	defer src.stop()
	return p.runChunk(ctx, src)
}

// objectSource hands the producer the objects of a chunk in order, opened.
type objectSource interface {
	// next opens the next object; io.EOF after the last. An error fails the chunk. beforeWait
	// is the producer's flush, called before opening waits for the budget (see openDecoder).
	next(ctx context.Context, beforeWait func(context.Context) error) (*chunkObject, error)
}

// chunkObject is one object of a chunk, opened.
type chunkObject struct {
	index int
	spec  ChunkSpec     // the object's own spec: key, compression, range, resume point
	dec   Decoder       // nil when err is set
	mem   *decodeMemory // dec's decoding memory, given back by close; nil when err is set
	err   error         // opening failed with an error that fails only this object
	close func()
}

// singleObject is the source of a single-object chunk.
type singleObject struct {
	spec   ChunkSpec
	open   Opener
	budget *Budget // charged for the decoding memory
	done   bool
}

func (s *singleObject) next(ctx context.Context, beforeWait func(context.Context) error) (*chunkObject, error) {
	if s.done {
		return nil, io.EOF
	}
	s.done = true
	dec, mem, closeSrc, err := openDecoder(ctx, s.spec, s.open, s.budget, beforeWait)
	if err != nil {
		return nil, err
	}
	return &chunkObject{spec: s.spec, dec: dec, mem: mem, close: closeSrc}, nil
}

// packedObjects is the source of a packed chunk. It keeps up to PrefetchObjects GETs of the
// objects after the current one in flight.
type packedObjects struct {
	common  ChunkSpec
	budget  *Budget // charged for each object's decoding memory, from its open to its close
	objects []PackedObject
	resume  Progress
	open    ObjectOpener
	// unavailable: see ObjectsSpec.Unavailable.
	unavailable func(error) string
	index       int // the object next returns
	// ahead holds the GETs started for the objects after the current one, by index.
	ahead       map[int]chan opened
	prefetchCtx context.Context
	cancel      context.CancelFunc // of prefetchCtx
}

// opened is the result of a prefetched GET.
type opened struct {
	rc  io.ReadCloser
	err error
}

func (s *packedObjects) next(ctx context.Context, beforeWait func(context.Context) error) (*chunkObject, error) {
	if s.index >= len(s.objects) {
		return nil, io.EOF
	}
	i := s.index
	s.index++
	spec := s.common
	spec.Key, spec.Compression = s.objects[i].Key, s.objects[i].Compression
	if i == s.resume.Object {
		spec.Resume = Progress{Checkpoint: s.resume.Checkpoint}
	}
	s.prefetch(ctx, i+1)
	open := func(ctx context.Context, offset int64) (io.ReadCloser, error) {
		if ch, ok := s.ahead[i]; ok && offset == 0 {
			delete(s.ahead, i)
			r := <-ch
			return r.rc, r.err
		}
		return s.open(ctx, i, offset)
	}
	dec, mem, closeSrc, err := openDecoder(ctx, spec, open, s.budget, beforeWait)
	s.discard(i) // not used when the object was opened elsewhere than at 0
	if err != nil && s.unavailable != nil && s.unavailable(err) != "" {
		return &chunkObject{index: i, spec: spec, err: err, close: func() {}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &chunkObject{index: i, spec: spec, dec: dec, mem: mem, close: closeSrc}, nil
}

// prefetch starts the GETs of objects from..from+PrefetchObjects-1 not started yet. They run
// on a context of their own, canceled by stop, so that they outlive no chunk.
func (s *packedObjects) prefetch(ctx context.Context, from int) {
	if s.ahead == nil {
		s.prefetchCtx, s.cancel = context.WithCancel(ctx)
		s.ahead = map[int]chan opened{}
	}
	for j := from; j < min(from+PrefetchObjects, len(s.objects)); j++ {
		if _, ok := s.ahead[j]; ok {
			continue
		}
		ch := make(chan opened, 1)
		s.ahead[j] = ch
		go func() {
			rc, err := s.open(s.prefetchCtx, j, 0)
			ch <- opened{rc, err}
		}()
	}
}

// discard closes the prefetched GET of object i, if it is still there.
func (s *packedObjects) discard(i int) {
	if ch, ok := s.ahead[i]; ok {
		delete(s.ahead, i)
		if r := <-ch; r.rc != nil {
			_ = r.rc.Close()
		}
	}
}

// stop cancels the GETs still in flight and closes what they opened.
func (s *packedObjects) stop() {
	if s.cancel != nil {
		s.cancel()
	}
	for i := range s.ahead {
		s.discard(i)
	}
}
