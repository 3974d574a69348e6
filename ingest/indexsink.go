package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// DeadLetterIndexSuffix names the dead-letter index beside a target index: logs ->
// logs-dead-letters.
const DeadLetterIndexSuffix = "-dead-letters"

// DeadLetterIndex is the default dead-letter index of the target index.
func DeadLetterIndex(target string) string { return target + DeadLetterIndexSuffix }

// deadLetterMapping is the mapping a dead-letter index is created with. The record is kept as
// a string that is neither indexed nor given doc values, so any record (not JSON, huge, or
// at odds with the target's mapping) can be stored; the other fields are there to be searched
// and aggregated. dynamic:false keeps unknown fields out of the mapping.
const deadLetterMapping = `{"mappings":{"dynamic":false,"properties":{` +
	`"@timestamp":{"type":"date"},` +
	`"index":{"type":"keyword"},` +
	`"object":{"type":"keyword"},` +
	`"offset":{"type":"long"},` +
	`"id":{"type":"keyword"},` +
	`"routing":{"type":"keyword"},` +
	`"status":{"type":"integer"},` +
	`"error_type":{"type":"keyword"},` +
	`"reason":{"type":"text"},` +
	`"truncated":{"type":"boolean"},` +
	`"record_length":{"type":"long"},` +
	`"record_sha256":{"type":"keyword"},` +
	`"record_base64":{"type":"binary"},` +
	`"record":{"type":"text","index":false}}}}`

// IndexSinkConfig configures an IndexSink.
type IndexSinkConfig struct {
	// Index receives the dead letters. Required; usually DeadLetterIndex(target).
	Index string
	// MaxBytes caps one _bulk request body. Defaults to 5 MiB. A single dead letter larger
	// than that is sent alone.
	MaxBytes int64
	// Retry is the backoff after a 429, a 5xx or a failed request; MaxElapsed bounds the
	// retries of one Write. Defaults to es.RetryPolicy's (100ms doubling to 10s, 5m).
	Retry es.RetryPolicy
}

// IndexSink is a DeadLetterSink that stores dead letters as documents of an Elasticsearch (or
// OpenSearch) index, as Filebeat's dead-letter index does: the record as an unindexed string
// beside the index, object, offset, status, error type and reason. It creates the index with
// its mapping on first use when it does not exist.
//
// Each dead letter's _id is a hash of its object and offset, so a tail replayed after a resume
// overwrites the letters it wrote before instead of adding copies. Write checks every item of
// the _bulk response: it returns nil only when every letter is stored, retries 429s, 5xx and
// failed requests with the one es.RetryPolicy backoff for up to Retry.MaxElapsed, and returns an error
// (permanent when a retry cannot help: refused credentials, a mapping that refuses the letter)
// otherwise, so the records are not acknowledged.
//
// An IndexSink is safe for concurrent use. Close does not close the es client, which the
// sink shares.
//
// It lives in ingest, not in es, because it is an ingest.DeadLetterSink of ingest.DeadLetter
// values; everything it says to the cluster goes through es.Client.
type IndexSink struct {
	bulk *es.Client
	cfg  IndexSinkConfig

	mu    sync.Mutex // held while the index is being checked or created
	ready bool       // the index exists (or we may not create it and will let _bulk decide)
}

// NewIndexSink returns a sink writing through bulk to cfg.Index. It makes no request: the index
// is checked and created on the first Write.
func NewIndexSink(bulk *es.Client, cfg IndexSinkConfig) (*IndexSink, error) {
	if bulk == nil {
		return nil, fmt.Errorf("%w: dead-letter index sink without an Elasticsearch client", ErrBadConfig)
	}
	if cfg.Index == "" {
		return nil, fmt.Errorf("%w: dead-letter index name is empty", ErrBadConfig)
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 5 << 20
	}
	cfg.Retry = cfg.Retry.WithDefaults()
	return &IndexSink{bulk: bulk, cfg: cfg}, nil
}

// Index is the name of the dead-letter index.
func (s *IndexSink) Index() string { return s.cfg.Index }

// Close releases nothing: the sink holds no resource of its own.
func (s *IndexSink) Close() error { return nil }

// DeadLetterID is the _id of the dead letter of the record at offset of object (s3://bucket/key).
func DeadLetterID(object string, offset int64) string {
	buf := make([]byte, 0, len(object)+24)
	buf = append(buf, object...)
	buf = append(buf, 0)
	buf = strconv.AppendInt(buf, offset, 10)
	sum := sha256.Sum256(buf)
	return base64.RawURLEncoding.EncodeToString(sum[:20])
}

// Write stores letters; see IndexSink.
func (s *IndexSink) Write(ctx context.Context, letters []DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	r := s.cfg.Retry.Start()
	var body []byte
	for start := 0; start < len(letters); {
		// Greedy groups of at most MaxBytes of body; a letter alone may exceed it.
		body = body[:0]
		end := start
		for end < len(letters) {
			n := len(body)
			body = appendLetter(body, &letters[end])
			if end > start && int64(len(body)) > s.cfg.MaxBytes {
				body = body[:n]
				break
			}
			end++
		}
		if err := s.writeGroup(ctx, r, letters[start:end], body); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// appendLetter appends the action line and the document of one letter.
func appendLetter(dst []byte, d *DeadLetter) []byte {
	dst = append(dst, `{"index":{"_id":"`...)
	dst = append(dst, DeadLetterID(d.Object, d.Offset)...)
	dst = append(dst, "\"}}\n"...)
	if d.Time.IsZero() {
		c := *d
		c.Time = time.Now()
		d = &c
	}
	dst = d.AppendJSON(dst)
	return append(dst, '\n')
}

// minLetterRecord is as far as a dead letter's record is cut when the dead-letter index
// refuses the letter as too large (413): a record problem must not become a chunk failure.
const minLetterRecord = 4 << 10

// errLetterCut: settle cut a letter's record; the group is sent again with the shorter letter.
var errLetterCut = errors.New("dead letter cut")

// writeGroup sends letters (whose bulk body is body) until each is stored. es.Client.Deliver is
// the retry loop, with r, the backoff of the whole Write; settle says what an outcome means
// for a letter. A letter too large for the cluster is cut (see minLetterRecord) and the group
// sent again: letters stored already are overwritten by their own ids.
func (s *IndexSink) writeGroup(ctx context.Context, r *es.Backoff, letters []DeadLetter, body []byte) error {
	if err := s.ensureIndex(ctx, r); err != nil {
		return err
	}
	job := &es.BulkJob{
		Index:   s.cfg.Index,
		Backoff: r,
		Body: func(idx []int) [][]byte {
			var body []byte
			for _, i := range idx {
				body = appendLetter(body, &letters[i])
			}
			return [][]byte{body}
		},
		Settle: func(i int, c es.Class, it es.ItemResult) (bool, error) { return s.settle(ctx, r, &letters[i], c, it) },
		Describe: func(i int) string {
			return fmt.Sprintf("the dead letter of %s at offset %d", letters[i].Object, letters[i].Offset)
		},
	}
	var items []es.ItemResult
	bodies := [][]byte{body}
	for {
		err := s.bulk.Deliver(ctx, job, allIndexes(len(letters)), bodies, &items)
		if errors.Is(err, errLetterCut) {
			bodies = nil // built again by job.Body
			continue
		}
		if err != nil {
			return fmt.Errorf("writing dead letters to %q: %w", s.cfg.Index, err)
		}
		return nil
	}
}

// settle says what became of the letter d: stored, sent again after its index is created
// again, cut (errLetterCut), or an error (permanent when a retry cannot help).
func (s *IndexSink) settle(ctx context.Context, r *es.Backoff, d *DeadLetter, c es.Class, it es.ItemResult) (retry bool, err error) {
	switch c {
	case es.OK:
		return false, nil
	case es.IndexMissing: // someone deleted it, and the cluster does not auto-create on _bulk
		s.forget()
		return true, s.ensureIndex(ctx, r)
	case es.Unauthorized:
		return false, fmt.Errorf("%w: %d %s: %s", ErrUnauthorized, it.Status, it.Type, it.Reason)
	case es.Split:
		if len(d.Record) > minLetterRecord {
			d.Record, d.Truncated = d.Record[:minLetterRecord], true
			return false, errLetterCut
		}
		// Not permanent: the cluster's limit may be raised, or another node less loaded.
		return false, fmt.Errorf("the dead letter of %s at offset %d is larger than the cluster accepts in one request (413) even cut to %d bytes of record", d.Object, d.Offset, minLetterRecord)
	}
	// The index refuses the letter itself (a mapping that is not ours, a closed or read-only
	// index): retrying the same letter cannot help.
	return false, fmt.Errorf("%w: dead-letter index %q refused the dead letter of %s at offset %d: %d %s: %s",
		ErrBadConfig, s.cfg.Index, d.Object, d.Offset, it.Status, it.Type, it.Reason)
}

func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func (s *IndexSink) forget() {
	s.mu.Lock()
	s.ready = false
	s.mu.Unlock()
}

// ensureIndex makes sure the dead-letter index exists, creating it with its mapping. An index
// or alias of that name that exists already is used as it is. Without the privilege to create
// indices (403) it goes on and lets _bulk decide: auto-creation may still be allowed.
func (s *IndexSink) ensureIndex(ctx context.Context, r *es.Backoff) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.ready {
		err := s.createIndex(ctx)
		if err == nil {
			s.ready = true
			return nil
		}
		if IsPermanent(err) || ctx.Err() != nil {
			return err
		}
		if err := r.Wait(ctx, err); err != nil {
			return err
		}
	}
	return nil
}

// createIndex checks for the index and creates it. Errors are permanent when a retry cannot
// help.
func (s *IndexSink) createIndex(ctx context.Context) error {
	exists, err := s.bulk.IndexExists(ctx, s.cfg.Index)
	var se *es.StatusError
	switch {
	case exists:
		return nil
	case errors.As(err, &se) && se.Status == http.StatusForbidden:
		// no right to look: try to create it
	case err != nil:
		return fmt.Errorf("checking dead-letter index %q: %w", s.cfg.Index, err)
	}
	err = s.bulk.CreateIndex(ctx, s.cfg.Index, []byte(deadLetterMapping))
	switch {
	case err == nil, es.IsAlreadyExists(err): // another worker may have made it first
		return nil
	case errors.As(err, &se) && se.Status == http.StatusForbidden:
		return nil // no right to create indices: _bulk will tell whether we may write
	case errors.As(err, &se) && se.Class() == es.Rejected:
		return fmt.Errorf("%w: creating dead-letter index %q: %v", ErrBadConfig, s.cfg.Index, err)
	}
	return fmt.Errorf("creating dead-letter index %q: %w", s.cfg.Index, err)
}
