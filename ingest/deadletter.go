package ingest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DeadLetter is a record that will not be indexed, with the reason.
type DeadLetter struct {
	Time   time.Time
	Index  string
	Object string // s3://bucket/key
	Offset int64
	// Status is the HTTP status Elasticsearch gave the item; 0 when sluice refused the record
	// itself (not parseable, too large, no id).
	Status    int
	ErrorType string
	Reason    string
	// Record is the original record: the NDJSON line or the CSV row as read. For a record over
	// the request cap only its first 64 KiB are kept and Truncated is set.
	Record    []byte
	Truncated bool
}

// AppendJSON appends the dead letter as one JSON object. Record is kept as a string, so a
// record that is not valid JSON is still stored faithfully.
func (d *DeadLetter) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"@timestamp":"`...)
	dst = d.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","index":`...)
	dst = appendJSONString(dst, []byte(d.Index))
	dst = append(dst, `,"object":`...)
	dst = appendJSONString(dst, []byte(d.Object))
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, d.Offset, 10)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(d.Status), 10)
	dst = append(dst, `,"error_type":`...)
	dst = appendJSONString(dst, []byte(d.ErrorType))
	dst = append(dst, `,"reason":`...)
	dst = appendJSONString(dst, []byte(d.Reason))
	dst = append(dst, `,"truncated":`...)
	dst = strconv.AppendBool(dst, d.Truncated)
	dst = append(dst, `,"record":`...)
	dst = appendJSONString(dst, d.Record)
	return append(dst, '}')
}

// DeadLetterTarget is where a chunk's refused records go: an index, or a local file.
// Exactly one field is set.
type DeadLetterTarget struct {
	Index string // name of the dead-letter index
	File  string // path of a local NDJSON file, on the machine of the worker running the chunk
}

// ParseDeadLetter parses a dead-letter destination: "" or "index" for DeadLetterIndex(index),
// "index:NAME" for the index NAME, "file:PATH" for a local file. It is the one parser of that
// grammar; it does not check that NAME is a valid index name.
func ParseDeadLetter(s, index string) (DeadLetterTarget, error) {
	if s == "" || s == "index" {
		return DeadLetterTarget{Index: DeadLetterIndex(index)}, nil
	}
	if name, ok := strings.CutPrefix(s, "index:"); ok && name != "" {
		return DeadLetterTarget{Index: name}, nil
	}
	if path, ok := strings.CutPrefix(s, "file:"); ok && path != "" {
		return DeadLetterTarget{File: path}, nil
	}
	return DeadLetterTarget{}, fmt.Errorf("%w: dead-letter destination %q: want \"index\", \"index:NAME\" or \"file:PATH\"", ErrBadInput, s)
}

// String is the target in ParseDeadLetter's grammar: "index:NAME" or "file:PATH".
func (t DeadLetterTarget) String() string {
	if t.File != "" {
		return "file:" + t.File
	}
	return "index:" + t.Index
}

// DeadLetterSink stores dead letters. Write must have stored them durably when it returns nil:
// the records are acknowledged (and the checkpoint moves past them) right after. Writing the
// same letter twice (a replayed tail after a resume) must be harmless. Implementations are safe
// for concurrent use.
type DeadLetterSink interface {
	Write(ctx context.Context, letters []DeadLetter) error
	Close() error
}

// FileSink appends dead letters to a local NDJSON file, one object per line, and syncs the
// file before Write returns. It suits a single machine; with workers on several machines use
// an index sink so that every dead letter lands in one place.
type FileSink struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	buf []byte
}

// NewFileSink opens (creating or appending to) the file at path.
func NewFileSink(path string) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: dead-letter file: %v", ErrBadConfig, err)
	}
	return &FileSink{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (s *FileSink) Write(_ context.Context, letters []DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range letters {
		s.buf = append(letters[i].AppendJSON(s.buf[:0]), '\n')
		if _, err := s.w.Write(s.buf); err != nil {
			return fmt.Errorf("writing dead letters to %s: %w", s.f.Name(), err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing dead letters to %s: %w", s.f.Name(), err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("syncing dead letters to %s: %w", s.f.Name(), err)
	}
	return nil
}

func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.f.Close()
}
