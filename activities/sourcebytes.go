package activities

import (
	"io"
	"sync/atomic"

	"github.com/sluicehq/sluice/ingest"
)

// sourceCounter says how far a running chunk got in the stored object, in the units of the
// planned sizes (compressed bytes for a compressed object), for ChunkProgress.SourceBytes:
// Checkpoint and Stats.Bytes count decompressed bytes of a compressed object, which cannot be
// compared with its size.
type sourceCounter struct {
	compressed bool  // known to be compressed: count what the S3 readers delivered
	rangeBytes int64 // bytes of the chunk's range in the stored object: the bound
	read       atomic.Int64
}

func newSourceCounter(spec ingest.ChunkSpec, size int64) *sourceCounter {
	c, err := ingest.DetectCompression(spec.Compression, spec.Key, nil)
	end := spec.End
	if end < 0 || end > size {
		end = size
	}
	return &sourceCounter{compressed: err == nil && c != ingest.CompressionNone, rangeBytes: max(end-spec.Start, 0)}
}

// reader counts what rc delivers.
func (s *sourceCounter) reader(rc io.ReadCloser) io.ReadCloser { return &countingReader{rc, &s.read} }

// progress is p with SourceBytes: for a plain range the bytes behind the checkpoint, for a
// compressed object the compressed bytes read so far (ahead of the checkpoint by what the
// decoder and the queue hold). Bounded by the range, so that an object recognised as
// compressed only by its first bytes does not count past its size.
func (s *sourceCounter) progress(p ingest.Progress) ChunkProgress {
	cp := progressOf(p)
	n := cp.Stats.Bytes
	if s.compressed {
		n = s.read.Load()
	}
	cp.SourceBytes = min(n, s.rangeBytes)
	return cp
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}
