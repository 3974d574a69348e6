package ingest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/ingest/s3source"
)

// DefaultS3FlushBytes is how many bytes of encoded letters an S3Sink buffers before it stores
// them as one object.
const DefaultS3FlushBytes = 8 << 20

// ObjectPutter stores one object whole (s3source.Source does). A nil error means the object is
// stored; storing the same key again replaces it.
type ObjectPutter interface {
	PutObject(ctx context.Context, bucket, key string, body []byte) error
}

// S3SinkConfig says where one chunk's letter objects go.
type S3SinkConfig struct {
	Bucket string
	// Prefix is the key prefix of the chunk's objects, without a trailing slash; see
	// S3LetterPrefix.
	Prefix string
	// Budget is charged with the buffered letters' encoded bytes. nil: not charged.
	Budget *Budget
	// FlushBytes: the buffer is stored as an object once it holds this many bytes. Defaults to
	// DefaultS3FlushBytes.
	FlushBytes int64
}

// S3Sink writes the dead letters of one chunk as NDJSON objects (one letter a line, as
// DeadLetter.AppendJSON encodes it). Unlike the other sinks, Write only buffers: letters are
// stored when the buffer reaches FlushBytes, or when Flush is called. So whoever reports a
// checkpoint must Flush first: a letter counts as stored only once Flush (or Write, when it
// flushed) returned nil. The activity does that before each heartbeat and before the chunk
// completes.
//
// Memory: buffered letters are charged to the budget. A Write whose letters the budget cannot
// take at once does not wait for it (the request holding those records would wait for the
// memory it could give back): it stores the buffer and then its own letters, as two objects.
//
// Object keys are Prefix + "/" + <lowest offset of its letters, 15 digits> + "-" + <16 hex of
// SHA-256 over the sorted (object, offset) of its letters> + ".ndjson": an attempt that stores
// the same letters again replaces the object; one that groups them differently adds objects,
// so a resumed chunk can store a letter twice (never lose one).
//
// Safe for concurrent use. Close gives back the buffer's memory; letters still buffered then are
// reported as an error, not stored.
type S3Sink struct {
	cfg S3SinkConfig
	put ObjectPutter

	buffered atomic.Int64 // bytes, read without the lock (Buffered)

	mu      sync.Mutex
	pieces  [][]byte // encoded letters, each ending in a newline
	bytes   int64    // their sum, charged to the budget
	letters []letterID
}

type letterID struct {
	object string
	offset int64
}

// NewS3Sink returns a sink that stores letters with put.
func NewS3Sink(put ObjectPutter, cfg S3SinkConfig) *S3Sink {
	if cfg.FlushBytes <= 0 {
		cfg.FlushBytes = DefaultS3FlushBytes
	}
	return &S3Sink{cfg: cfg, put: put}
}

// Write buffers letters, storing the buffer when it is full.
func (s *S3Sink) Write(ctx context.Context, letters []DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	var enc []byte
	ids := make([]letterID, len(letters))
	for i := range letters {
		enc = append(letters[i].AppendJSON(enc), '\n')
		ids[i] = letterID{letters[i].Object, letters[i].Offset}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Budget == nil || s.cfg.Budget.TryAcquire(int64(len(enc))) {
		s.pieces, s.bytes, s.letters = append(s.pieces, enc), s.bytes+int64(len(enc)), append(s.letters, ids...)
		s.buffered.Store(s.bytes)
		if s.bytes < s.cfg.FlushBytes {
			return nil
		}
		return s.flushLocked(ctx)
	}
	if err := s.flushLocked(ctx); err != nil {
		return err
	}
	return s.store(ctx, [][]byte{enc}, ids)
}

// Flush stores the buffered letters. On error they stay buffered (a later Flush tries again).
func (s *S3Sink) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked(ctx)
}

// Buffered returns the bytes of letters not stored yet. It does not wait for a store under way.
func (s *S3Sink) Buffered() int64 { return s.buffered.Load() }

func (s *S3Sink) flushLocked(ctx context.Context) error {
	if len(s.pieces) == 0 {
		return nil
	}
	if err := s.store(ctx, s.pieces, s.letters); err != nil {
		return err
	}
	s.release()
	return nil
}

// release drops the buffer and gives its memory back.
func (s *S3Sink) release() {
	if s.cfg.Budget != nil {
		s.cfg.Budget.Release(s.bytes)
	}
	s.pieces, s.bytes, s.letters = nil, 0, s.letters[:0]
	s.buffered.Store(0)
}

// store puts pieces as one object named after ids.
func (s *S3Sink) store(ctx context.Context, pieces [][]byte, ids []letterID) error {
	key := s.objectKey(ids)
	body := slices.Concat(pieces...)
	if err := s.put.PutObject(ctx, s.cfg.Bucket, key, body); err != nil {
		first := slices.MinFunc(ids, compareLetterIDs)
		return fmt.Errorf("storing %d dead letters (from %s at offset %d) in s3://%s/%s: %w", len(ids), first.object, first.offset, s.cfg.Bucket, key, err)
	}
	return nil
}

func (s *S3Sink) objectKey(ids []letterID) string {
	sorted := slices.SortedFunc(slices.Values(ids), compareLetterIDs)
	h := sha256.New()
	for _, id := range sorted {
		h.Write([]byte(id.object))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, id.offset, 10))
		h.Write([]byte{'\n'})
	}
	return fmt.Sprintf("%s/%015d-%s.ndjson", s.cfg.Prefix, sorted[0].offset, hex.EncodeToString(h.Sum(nil)[:8]))
}

func compareLetterIDs(a, b letterID) int {
	return cmp.Or(cmp.Compare(a.object, b.object), cmp.Compare(a.offset, b.offset))
}

// Close gives back the buffer's memory. Letters still buffered are not stored: Flush first.
func (s *S3Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pieces) == 0 {
		return nil
	}
	n := len(s.letters)
	s.release()
	return fmt.Errorf("dead-letter sink s3://%s/%s closed with %d letters not stored", s.cfg.Bucket, s.cfg.Prefix, n)
}

// S3LetterPrefix is the key prefix of one chunk's letter objects under a target:
// <prefix>/<index>/<workflow>/<chunk>, each part path-escaped (a "/" in it becomes %2F) so that
// no part can climb out of the target's prefix.
func S3LetterPrefix(t DeadLetterTarget, index, workflow, chunk string) string {
	parts := []string{strings.TrimSuffix(t.S3Prefix, "/")}
	if parts[0] == "" {
		parts = parts[:0]
	}
	for _, p := range []string{index, workflow, chunk} {
		p = url.PathEscape(p)
		if strings.Trim(p, ".") == "" {
			p = strings.ReplaceAll(p, ".", "%2E")
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "/")
}

// parseS3Prefix splits s3://bucket/prefix and refuses a prefix with a "." or ".." segment.
func parseS3Prefix(s string) (bucket, prefix string, err error) {
	bucket, prefix, err = s3source.ParseURI(s)
	if err != nil {
		return "", "", err
	}
	for seg := range strings.SplitSeq(prefix, "/") {
		if seg == "." || seg == ".." {
			return "", "", fmt.Errorf("%q: a prefix may not hold a %q segment", s, seg)
		}
	}
	return bucket, prefix, nil
}

// ParseS3AllowList parses a worker's allow-list of dead-letter locations: comma-separated
// s3://bucket[/prefix] values. Empty: nothing is allowed.
func ParseS3AllowList(s string) ([]DeadLetterTarget, error) {
	var out []DeadLetterTarget
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		bucket, prefix, err := parseS3Prefix(v)
		if err != nil {
			return nil, fmt.Errorf("%w: dead-letter S3 allow-list: %v", ErrBadConfig, err)
		}
		out = append(out, DeadLetterTarget{S3Bucket: bucket, S3Prefix: prefix})
	}
	return out, nil
}

// ErrS3NotAllowed: an s3:// dead-letter target is outside the worker's allow-list.
var ErrS3NotAllowed = errors.New("dead-letter target not allowed by this worker")

// S3Allowed checks that every key under the S3 target t is under one of allowed: the same
// bucket, and t's prefix equal to or below an allowed prefix (a prefix "logs" allows "logs" and
// "logs/x", not "logs2"). The error, ErrBadConfig and ErrS3NotAllowed, says how to allow it.
func S3Allowed(t DeadLetterTarget, allowed []DeadLetterTarget) error {
	for _, a := range allowed {
		if a.S3Bucket != t.S3Bucket {
			continue
		}
		ap := strings.TrimSuffix(a.S3Prefix, "/")
		tp := strings.TrimSuffix(t.S3Prefix, "/")
		if ap == "" || tp == ap || strings.HasPrefix(tp, ap+"/") {
			return nil
		}
	}
	if len(allowed) == 0 {
		return fmt.Errorf("%w: %w: %s: this worker allows no S3 dead-letter location (start it with --dead-letter-s3 s3://bucket/prefix or SLUICE_DEAD_LETTER_S3)", ErrBadConfig, ErrS3NotAllowed, t)
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = a.String()
	}
	return fmt.Errorf("%w: %w: %s is outside the locations this worker allows (%s; see --dead-letter-s3 / SLUICE_DEAD_LETTER_S3)", ErrBadConfig, ErrS3NotAllowed, t, strings.Join(names, ", "))
}
