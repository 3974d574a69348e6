package ingest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// DeadLetter is a record that will not be indexed, with the reason.
type DeadLetter struct {
	Time   time.Time
	Index  string
	Object string // s3://bucket/key
	Offset int64
	// ID is the _id the record was sent with, when it has to be said: a replayed letter's
	// original, or a hit's own (see Origin). Empty: DocumentID of Object and Offset, or the id
	// field's value. Routing is the routing it was sent with, when it had one.
	ID, Routing string
	// Status is the HTTP status Elasticsearch gave the item; 0 when sluice refused the record
	// itself (not parseable, too large, no id).
	Status    int
	ErrorType string
	Reason    string
	// Record is the original record (the NDJSON line, the CSV row as read, or the document
	// sent), at most its first 64 KiB: a longer one is Truncated. Length and SHA256 describe
	// the whole record, so a truncated letter still identifies it.
	Record    []byte
	Truncated bool
	Length    int64
	SHA256    [32]byte
}

// setRecord sets the letter's record from rec: its head, without copying, with its length and
// hash (those rec carries when it is truncated already).
func (d *DeadLetter) setRecord(rec Record) {
	d.Record = rec.Data[:min(len(rec.Data), previewBytes)]
	if rec.Truncated {
		d.Truncated, d.Length, d.SHA256 = true, rec.Length, rec.SHA256
		return
	}
	d.Truncated, d.Length, d.SHA256 = len(rec.Data) > previewBytes, int64(len(rec.Data)), sha256.Sum256(rec.Data)
}

// setOrigin makes the letter name the record's origin, when it has one, instead of the
// chunk's own object and offset.
func (d *DeadLetter) setOrigin(o *Origin) {
	if o != nil {
		d.Object, d.Offset, d.ID, d.Routing = o.Object, o.Offset, o.ID, o.Routing
	}
}

// AppendJSON appends the dead letter as one JSON object. Record is kept as a string when it is
// valid UTF-8 (so a record that is not valid JSON is still stored faithfully), else as
// record_base64, so that no byte is replaced: a Latin-1 record can be replayed from its letter.
// record_length and record_sha256 (hex) describe the whole record; id and routing are there only when set.
func (d *DeadLetter) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"@timestamp":"`...)
	dst = d.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","index":`...)
	dst = appendJSONString(dst, []byte(d.Index))
	dst = append(dst, `,"object":`...)
	dst = appendJSONString(dst, []byte(d.Object))
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, d.Offset, 10)
	if d.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendJSONString(dst, []byte(d.ID))
	}
	if d.Routing != "" {
		dst = append(dst, `,"routing":`...)
		dst = appendJSONString(dst, []byte(d.Routing))
	}
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(d.Status), 10)
	dst = append(dst, `,"error_type":`...)
	dst = appendJSONString(dst, []byte(d.ErrorType))
	dst = append(dst, `,"reason":`...)
	dst = appendJSONString(dst, []byte(d.Reason))
	dst = append(dst, `,"truncated":`...)
	dst = strconv.AppendBool(dst, d.Truncated)
	length, sum := d.Length, d.SHA256
	if length == 0 && !d.Truncated { // a letter made by hand: describe what it holds
		length, sum = int64(len(d.Record)), sha256.Sum256(d.Record)
	}
	dst = append(dst, `,"record_length":`...)
	dst = strconv.AppendInt(dst, length, 10)
	dst = append(dst, `,"record_sha256":"`...)
	dst = hex.AppendEncode(dst, sum[:])
	if utf8.Valid(d.Record) {
		dst = append(dst, `","record":`...)
		dst = appendJSONString(dst, d.Record)
	} else {
		dst = append(dst, `","record_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, d.Record)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// DeadLetterTarget is where a chunk's refused records go: an index, a local file, or NDJSON
// objects in S3. Exactly one of Index, File and S3Bucket is set.
type DeadLetterTarget struct {
	Index string // name of the dead-letter index
	// File is the name of a local NDJSON file, relative to the dead-letter directory of the
	// worker that runs the chunk (see OpenFileSink).
	File string
	// S3Bucket and S3Prefix say where letter objects go (see S3Sink); the worker allows only
	// the buckets and prefixes of its own configuration (see S3Allowed).
	S3Bucket, S3Prefix string
}

// ParseDeadLetter parses a dead-letter destination: "" or "index" for DeadLetterIndex(index),
// "index:NAME" for the index NAME, "file:NAME" for a local file, "s3://bucket/prefix" for
// letter objects in S3. It is the one parser of that grammar; it does not check that NAME is a
// valid index name. A file NAME comes from the workflow input, so it must be local
// (filepath.IsLocal): relative, without "..": a worker writes only under the directory it was
// given. An S3 prefix may not hold a ".." segment; whether the worker may write there is the
// worker's decision (S3Allowed).
func ParseDeadLetter(s, index string) (DeadLetterTarget, error) {
	if strings.HasPrefix(s, "s3://") {
		bucket, prefix, err := parseS3Prefix(s)
		if err != nil {
			return DeadLetterTarget{}, fmt.Errorf("%w: dead-letter destination: %v", ErrBadInput, err)
		}
		return DeadLetterTarget{S3Bucket: bucket, S3Prefix: prefix}, nil
	}
	if s == "" || s == "index" {
		return DeadLetterTarget{Index: DeadLetterIndex(index)}, nil
	}
	if name, ok := strings.CutPrefix(s, "index:"); ok && name != "" {
		return DeadLetterTarget{Index: name}, nil
	}
	if name, ok := strings.CutPrefix(s, "file:"); ok && name != "" {
		if !filepath.IsLocal(name) {
			return DeadLetterTarget{}, fmt.Errorf("%w: dead-letter file %q: want a relative name without \"..\" (it is created under each worker's dead-letter directory)", ErrBadInput, name)
		}
		return DeadLetterTarget{File: filepath.Clean(name)}, nil
	}
	return DeadLetterTarget{}, fmt.Errorf("%w: dead-letter destination %q: want \"index\", \"index:NAME\", \"file:NAME\" or \"s3://bucket/prefix\"", ErrBadInput, s)
}

// String is the target in ParseDeadLetter's grammar: "index:NAME", "file:PATH" or
// "s3://bucket/prefix".
func (t DeadLetterTarget) String() string {
	if t.File != "" {
		return "file:" + t.File
	}
	if t.S3Bucket != "" {
		return "s3://" + t.S3Bucket + "/" + t.S3Prefix
	}
	return "index:" + t.Index
}

// DeadLetterSink stores dead letters. Write must have stored them durably when it returns nil:
// the records are acknowledged (and the checkpoint moves past them) right after. The one
// exception, S3Sink, only buffers in Write and stores on Flush: whoever reports a checkpoint
// (the activity's heartbeater) flushes it first. Write must
// not keep the letters (their Record may alias a request's memory) after it returns, and may
// cut a letter's Record shorter (its Length and SHA256 still describe the whole record). Writing the
// same letter twice (a replayed tail after a resume) must be harmless. Implementations are safe
// for concurrent use.
type DeadLetterSink interface {
	Write(ctx context.Context, letters []DeadLetter) error
	Close() error
}

// FileSink appends dead letters to a local NDJSON file, one object per line, and syncs the
// file before Write returns. It suits a single machine; with workers on several machines use
// an index sink so that every dead letter lands in one place.
//
// The file is created with mode 0600 (dead letters hold the records themselves) and reopened
// when it was renamed or removed since the last Write, so that log rotation works.
type FileSink struct {
	root *os.Root
	name string

	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	buf []byte
}

// OpenFileSink opens (creating or appending to) the file name under dir. name must be local
// (see ParseDeadLetter); neither it nor a symbolic link in it can reach outside dir.
func OpenFileSink(dir, name string) (*FileSink, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: dead-letter file %q: this worker has no dead-letter directory (set --dead-letter-dir or SLUICE_DEAD_LETTER_DIR)", ErrBadConfig, name)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: dead-letter directory: %v", ErrBadConfig, err)
	}
	s := &FileSink{root: root, name: name}
	if err := s.open(); err != nil {
		root.Close()
		return nil, err
	}
	return s, nil
}

func (s *FileSink) open() error {
	f, err := s.root.OpenFile(s.name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("%w: dead-letter file: %v", ErrBadConfig, err)
	}
	s.f = f
	if s.w == nil {
		s.w = bufio.NewWriterSize(f, 64<<10)
	} else {
		s.w.Reset(f)
	}
	return nil
}

// reopenIfMoved reopens the file when the name no longer leads to the file open (rotated).
func (s *FileSink) reopenIfMoved() error {
	named, err := s.root.Stat(s.name)
	if err == nil {
		open, err := s.f.Stat()
		if err == nil && os.SameFile(named, open) {
			return nil
		}
	}
	_ = s.f.Close()
	return s.open()
}

func (s *FileSink) Write(_ context.Context, letters []DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reopenIfMoved(); err != nil {
		return err
	}
	for i := range letters {
		s.buf = append(letters[i].AppendJSON(s.buf[:0]), '\n')
		if _, err := s.w.Write(s.buf); err != nil {
			return fmt.Errorf("writing dead letters to %s: %w", s.name, err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing dead letters to %s: %w", s.name, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("syncing dead letters to %s: %w", s.name, err)
	}
	return nil
}

func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.w.Flush(), s.f.Close(), s.root.Close())
}
