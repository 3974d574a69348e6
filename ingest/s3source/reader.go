package s3source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// errStalled is the cause of a read that got no byte for ReadIdleTimeout.
var errStalled = errors.New("no data received")

// errReaderClosed is returned by Read after Close.
var errReaderClosed = errors.New("s3source: read after Close")

// Open returns a reader of the object from offset to its end. Every GET carries If-Match:
// etag when etag is not empty (else the ETag of the first response, so that a reader never
// mixes two versions of an object). The first GET is made here: ErrNotFound,
// ErrAccessDenied and ErrObjectChanged come back from Open itself when they apply at once.
//
// Each GET asks for the open-ended range offset-: one request streams the rest of the object
// however far the caller reads. When the caller stops early and Closes, the connection is
// dropped rather than drained, so the bytes left unread cost nothing beyond what was in
// flight. See the package comment for how broken streams are reopened.
//
// An offset at or past the end of the object gives a reader that returns io.EOF at once.
// The reader is not safe for concurrent use; Close must be called and may be called more
// than once.
func (s *Source) Open(ctx context.Context, bucket, key, etag string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("reading s3://%s/%s: negative offset %d", bucket, key, offset)
	}
	r := &reader{src: s, ctx: ctx, bucket: bucket, key: key, etag: etag, off: offset, size: -1}
	if err := r.get(); err != nil {
		return nil, err
	}
	return r, nil
}

type reader struct {
	src         *Source
	ctx         context.Context
	bucket, key string
	etag        string // pinned for every GET of this reader
	off         int64  // offset of the next byte Read returns
	size        int64  // object size from the first response; -1 until known

	body    io.ReadCloser // current response body; nil between GETs
	cancel  context.CancelFunc
	idle    *time.Timer
	stalled *atomic.Bool

	progressed bool  // a byte arrived since the current GET was opened
	failed     int   // reopens in a row that brought no byte
	cause      error // why the last body or GET broke, for the final error
	eof        bool
	err        error // sticky
	closed     bool
}

func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errReaderClosed
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if r.eof || (r.size >= 0 && r.off >= r.size) {
			r.eof = true
			r.closeBody()
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.reopen(); err != nil {
				r.err = err
				return 0, err
			}
			continue
		}
		n, err := r.readBody(p)
		r.off += int64(n)
		if n > 0 {
			r.progressed = true
		}
		if err == nil {
			return n, nil
		}
		r.closeBody()
		if err == io.EOF {
			if r.size < 0 || r.off >= r.size {
				r.eof = true
				if n > 0 {
					return n, nil
				}
				return 0, io.EOF
			}
			// A clean end before the object's end is a truncated response.
			err = fmt.Errorf("response ended at offset %d of %d: %w", r.off, r.size, io.ErrUnexpectedEOF)
		}
		if ctxErr := r.ctx.Err(); ctxErr != nil {
			r.err = r.wrap(ctxErr)
			return n, r.err
		}
		r.cause = err
		if r.progressed {
			r.failed = 0
		}
		if n > 0 {
			return n, nil
		}
	}
}

// readBody reads from the current body, cancelling the GET when no byte comes for
// ReadIdleTimeout.
func (r *reader) readBody(p []byte) (int, error) {
	r.idle.Reset(r.src.cfg.ReadIdleTimeout)
	n, err := r.body.Read(p)
	r.idle.Stop()
	if err != nil && err != io.EOF && r.stalled.Load() {
		err = fmt.Errorf("%w for %s: %w", errStalled, r.src.cfg.ReadIdleTimeout, err)
	}
	return n, err
}

// reopen issues a new GET at r.off after a broken one, with backoff, up to ReadAttempts
// times in a row without progress.
func (r *reader) reopen() error {
	for {
		r.failed++
		if r.failed > r.src.cfg.ReadAttempts {
			return r.wrap(fmt.Errorf("giving up after %d attempts without progress: %w", r.src.cfg.ReadAttempts, r.cause))
		}
		backoff := r.src.cfg.ReadBackoff << (r.failed - 1)
		if backoff > maxReadBackoff || backoff <= 0 {
			backoff = maxReadBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return r.wrap(r.ctx.Err())
		case <-t.C:
		}
		err := r.get()
		if err == nil {
			return nil
		}
		if IsPermanent(err) || r.ctx.Err() != nil {
			return err
		}
		r.cause = err
	}
}

// get issues one ranged GET at r.off and installs its body.
func (r *reader) get() error {
	gctx, cancel := context.WithCancel(r.ctx)
	in := &s3.GetObjectInput{
		Bucket: aws.String(r.bucket),
		Key:    aws.String(r.key),
		Range:  aws.String("bytes=" + strconv.FormatInt(r.off, 10) + "-"),
	}
	if r.etag != "" {
		in.IfMatch = aws.String(r.etag)
	}
	// An answer that does not start within ReadIdleTimeout is a stall like a body that stops.
	stalled := &atomic.Bool{}
	idle := time.AfterFunc(r.src.cfg.ReadIdleTimeout, func() {
		stalled.Store(true)
		cancel()
	})
	out, err := r.src.client.GetObject(gctx, in)
	idle.Stop()
	if err != nil {
		cancel()
		if stalled.Load() && r.ctx.Err() == nil {
			return r.wrap(fmt.Errorf("%w for %s waiting for the answer: %w", errStalled, r.src.cfg.ReadIdleTimeout, err))
		}
		if kindOf(err) == kindRange && (r.size < 0 || r.off >= r.size) {
			// 416: the offset is at or past the end (S3 answers bytes=N- that way, N >= size).
			r.eof = true
			return nil
		}
		return r.wrap(classify(err))
	}
	fail := func(err error) error {
		_ = out.Body.Close()
		cancel()
		return r.wrap(err)
	}
	total := int64(-1)
	if cr := aws.ToString(out.ContentRange); cr != "" {
		start, tot, err := parseContentRange(cr)
		if err != nil {
			return fail(err)
		}
		if start != r.off {
			return fail(fmt.Errorf("asked for bytes from %d, got Content-Range %q", r.off, cr))
		}
		total = tot
	} else {
		// 200 and the whole object: the store ignored the range.
		if out.ContentLength != nil {
			total = *out.ContentLength
		}
		if total >= 0 && r.off >= total {
			_ = out.Body.Close()
			cancel()
			r.eof = true
			return nil
		}
		if r.off != 0 {
			return fail(fmt.Errorf("store ignored the Range header (bytes=%d-)", r.off))
		}
	}
	if r.size >= 0 && total >= 0 && total != r.size {
		// Only reachable when the store sends no ETag to pin.
		return fail(fmt.Errorf("%w: size went from %d to %d", ErrObjectChanged, r.size, total))
	}
	if r.size < 0 {
		r.size = total
	}
	if r.etag == "" {
		r.etag = aws.ToString(out.ETag)
	}
	r.body, r.cancel, r.stalled, r.idle = out.Body, cancel, stalled, idle
	r.progressed = false
	return nil
}

func (r *reader) closeBody() {
	if r.body == nil {
		return
	}
	r.idle.Stop()
	// Cancelling first makes the transport drop the connection instead of draining the rest
	// of an open-ended range.
	r.cancel()
	_ = r.body.Close()
	r.body, r.cancel, r.idle, r.stalled = nil, nil, nil, nil
}

// Close releases the connection. It never fails.
func (r *reader) Close() error {
	r.closed = true
	r.closeBody()
	return nil
}

func (r *reader) wrap(err error) error {
	if r.etag != "" {
		return fmt.Errorf("reading s3://%s/%s (etag %s) at offset %d: %w", r.bucket, r.key, r.etag, r.off, err)
	}
	return fmt.Errorf("reading s3://%s/%s at offset %d: %w", r.bucket, r.key, r.off, err)
}

// parseContentRange parses "bytes start-end/total"; total is -1 when it is "*".
func parseContentRange(s string) (start, total int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	rng, tot, ok2 := strings.Cut(rest, "/")
	first, _, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("malformed Content-Range %q", s)
	}
	if start, err = strconv.ParseInt(first, 10, 64); err != nil || start < 0 {
		return 0, 0, fmt.Errorf("malformed Content-Range %q", s)
	}
	if tot == "*" {
		return start, -1, nil
	}
	if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total < 0 {
		return 0, 0, fmt.Errorf("malformed Content-Range %q", s)
	}
	return start, total, nil
}
