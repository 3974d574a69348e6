package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/s3source"
)

// packedJob is the job of a packed chunk: its objects read in order by one engine run
// (ingest.Engine.IngestObjects), each pinned to its planned ETag. An object that changed or
// vanished since planning is skipped and listed in ChunkProgress.Failed; it does not fail the
// chunk.
func (a *Activities) packedJob(in IngestChunkInput, earlier *ChunkProgress) (chunkJob, error) {
	spec, err := objectsSpec(in, earlier)
	if err != nil {
		return chunkJob{}, err
	}
	objs := in.Chunk.Objects
	return chunkJob{
		from: spec.Resume, index: spec.Index, limits: spec.Limits,
		run: func(ctx context.Context, op string, sink ingest.DeadLetterSink, wrap func(io.ReadCloser) io.ReadCloser, onProgress func(ChunkProgress)) (ChunkProgress, error) {
			spec := spec
			spec.Op = op
			open := func(ctx context.Context, i int, offset int64) (io.ReadCloser, error) {
				rc, err := a.S3.Open(ctx, spec.Bucket, objs[i].Key, objs[i].ETag, offset)
				if err != nil {
					return nil, err
				}
				return wrap(rc), nil
			}
			prog, err := a.Engine.IngestObjects(ctx, spec, open, sink, func(p ingest.Progress) { onProgress(packedProgress(in.Chunk, spec.Objects, p)) })
			return packedProgress(in.Chunk, spec.Objects, prog), err
		},
		where: func(at ingest.Progress) string {
			i := min(at.Object, len(objs)-1)
			return fmt.Sprintf("s3://%s/%s (object %d of %d in a packed chunk) at offset %d", spec.Bucket, objs[i].Key, i+1, len(objs), at.Checkpoint)
		},
		logAttrs: func() []any {
			return []any{"object", "s3://" + spec.Bucket + "/" + objs[0].Key, "objects", len(objs), "resume_object", spec.Resume.Object}
		},
	}, nil
}

// objectsSpec maps a packed chunk's input, and the progress an earlier attempt heartbeated
// (nil: none), to the engine's spec. Like chunkSpec it chooses where the chunk resumes: at the
// further of the earlier attempt's checkpoint, with its counters and failed objects, and
// Chunk.ResumeObject/Resume, without (the workflow kept those of the run that reached it).
func objectsSpec(in IngestChunkInput, earlier *ChunkProgress) (ingest.ObjectsSpec, error) {
	c := in.Chunk
	bucket, _, err := s3source.ParseURI(in.Source.URI)
	switch {
	case err != nil:
		return ingest.ObjectsSpec{}, err
	case in.Source.Index == "":
		return ingest.ObjectsSpec{}, errors.New("no target index")
	case c.ResumeObject < 0 || c.ResumeObject > len(c.Objects) || c.Resume < 0:
		return ingest.ObjectsSpec{}, fmt.Errorf("resume point object %d offset %d outside a chunk of %d objects", c.ResumeObject, c.Resume, len(c.Objects))
	}
	objs := make([]ingest.PackedObject, len(c.Objects))
	for i, o := range c.Objects {
		if o.Key == "" {
			return ingest.ObjectsSpec{}, fmt.Errorf("object %d of a packed chunk without a key", i)
		}
		objs[i] = ingest.PackedObject{Key: o.Key, Compression: cmp.Or(o.Compression, in.Source.Compression, ingest.CompressionAuto)}
	}
	resume := ingest.Progress{Object: c.ResumeObject, Checkpoint: c.Resume}
	if earlier != nil && !resume.After(earlier.engine()) && earlier.Object <= len(objs) {
		resume = earlier.engine()
	}
	return ingest.ObjectsSpec{
		Bucket:      bucket,
		Objects:     objs,
		Format:      cmp.Or(in.Source.Format, ingest.FormatNDJSON),
		Index:       in.Source.Index,
		IDField:     in.Source.IDField,
		Pipeline:    in.Source.Pipeline,
		Resume:      resume,
		Limits:      in.Limits.engine(),
		Unavailable: objectUnavailable,
	}, nil
}

// objectUnavailable names the errors that fail one object of a packed chunk but not the chunk:
// the object changed (412 on If-Match) or vanished (404) since planning, or its data is bad
// input (corrupt or truncated compressed data, a CSV header that does not parse), which would
// fail it as a chunk of its own too.
func objectUnavailable(err error) string {
	switch {
	case errors.Is(err, ingest.ErrBadInput):
		return ErrTypeBadInput
	case errors.Is(err, s3source.ErrObjectChanged):
		return ErrTypeObjectChanged
	case errors.Is(err, s3source.ErrNotFound):
		return ErrTypeNotFound
	}
	return ""
}

// packedProgress is p with SourceBytes for a packed chunk: the stored sizes of the objects
// before the checkpoint's, and the checkpoint in that object when it is not compressed (a
// compressed one, or one recognised only by its first bytes, counts in full once it is done),
// bounded by Chunk.Size. Prefetched objects are not
// counted: their GETs read nothing ahead.
func packedProgress(c Chunk, objs []ingest.PackedObject, p ingest.Progress) ChunkProgress {
	cp := progressOf(p)
	var n int64
	for i, o := range c.Objects {
		if i < p.Object {
			n += o.Size
			continue
		}
		if i == p.Object {
			if comp, err := ingest.DetectCompression(objs[i].Compression, o.Key, nil); err == nil && comp == ingest.CompressionNone {
				n += min(p.Checkpoint, o.Size)
			}
		}
		break
	}
	cp.SourceBytes = min(n, c.Size)
	return cp
}
