package activities_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/esfake"
)

// flakyStore puts letter objects into the real S3 server until it is told to fail, and counts
// the letters stored.
type flakyStore struct {
	next ingest.ObjectPutter

	mu     sync.Mutex
	okLeft int // puts that succeed before every later one fails; < 0: never fail
	stored int // letters (lines) stored
}

func (s *flakyStore) PutObject(ctx context.Context, bucket, key string, body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.okLeft == 0 {
		return errors.New("injected: S3 unavailable")
	}
	if err := s.next.PutObject(ctx, bucket, key, body); err != nil {
		return err
	}
	s.okLeft--
	s.stored += bytes.Count(body, []byte{'\n'})
	return nil
}

func (s *flakyStore) storedLetters() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored
}

// TestIngestDeadLettersToS3 fails the letter store after two objects: no heartbeat ever counts
// a letter that is not stored, the attempt fails retryably at its last checkpoint, and the
// next attempt, resumed from that heartbeat, stores the rest: every refused record is in S3
// (some maybe twice), and read = indexed + dead-lettered.
func TestIngestDeadLettersToS3(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	f.s3.CreateBucket(t, "letters")
	var data []byte
	bad := map[int64]bool{}
	for i := range 3000 {
		if i%7 == 3 {
			bad[int64(len(data))] = true
			data = fmt.Appendf(data, "not json %d\n", i)
			continue
		}
		data = fmt.Appendf(data, `{"n":%d}`+"\n", i)
	}
	etag := f.s3.Put(t, bucket, "s3dl.ndjson", data)
	src := source("s3dl.ndjson")
	src.DeadLetter = "s3://letters/dl"
	in := activities.IngestChunkInput{Source: src, Chunk: activities.Chunk{Key: "s3dl.ndjson", ETag: etag, Size: int64(len(data)), End: -1},
		Limits: activities.Limits{MaxOps: 20, Inflight: 2}}

	// Not allowed by the worker: refused before anything is read.
	_, err := f.ingest(t, f.env(nil), in)
	if ae := checkAppError(t, err, activities.ErrTypeBadConfig); !bytes.Contains([]byte(ae.Error()), []byte("--dead-letter-s3")) {
		t.Fatalf("error %v does not say how to allow the target", ae)
	}

	allow, err := ingest.ParseS3AllowList("s3://letters/dl")
	if err != nil {
		t.Fatal(err)
	}
	store := &flakyStore{next: f.acts.S3, okLeft: 2}
	f.acts.DeadLetterS3, f.acts.LetterStore = allow, store
	t.Cleanup(func() { f.acts.DeadLetterS3, f.acts.LetterStore = nil, nil })

	var violations []string
	hb := &heartbeats{onBeat: func(_ int, p activities.ChunkProgress) {
		if n := store.storedLetters(); int64(n) < p.Stats.DeadLettered {
			violations = append(violations, fmt.Sprintf("heartbeat counts %d dead letters, %d stored", p.Stats.DeadLettered, n))
		}
	}}
	env := f.env(hb)
	_, err = f.ingest(t, env, in)
	var ae *temporal.ApplicationError
	if err == nil || (errors.As(err, &ae) && ae.NonRetryable()) {
		t.Fatalf("first attempt: %v, want a retryable failure", err)
	}
	beats := hb.all()
	if len(violations) > 0 || len(beats) == 0 {
		t.Fatalf("%d heartbeats; %v", len(beats), violations)
	}
	last := beats[len(beats)-1]
	if last.Checkpoint >= int64(len(data)) {
		t.Fatalf("first attempt's last checkpoint %d is the end: the failure did not bite", last.Checkpoint)
	}

	store.mu.Lock()
	store.okLeft = -1
	store.mu.Unlock()
	env = f.env(hb)
	env.SetHeartbeatDetails(last)
	out, err := f.ingest(t, env, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(violations) > 0 {
		t.Fatal(violations)
	}
	if out.Stats.Read != 3000 || out.Stats.DeadLettered != int64(len(bad)) || out.Stats.Indexed != 3000-int64(len(bad)) {
		t.Fatalf("stats %+v, want 3000 read, %d dead-lettered", out.Stats, len(bad))
	}
	letters, objects := f.s3.JSONLines(t, "letters", "dl/logs/"), len(f.s3.Objects(t, "letters", "dl/logs/"))
	seen := map[int64]bool{}
	for _, l := range letters {
		off := int64(l["offset"].(float64))
		if !bad[off] || l["object"] != "s3://data/s3dl.ndjson" || l["error_type"] == "" || l["record"] == nil || l["record_sha256"] == nil || l["index"] != "logs" {
			t.Fatalf("letter %v", l)
		}
		seen[off] = true
	}
	if len(seen) != len(bad) || objects < 3 {
		t.Fatalf("%d of %d refused records in %d objects in S3", len(seen), len(bad), objects)
	}
	if f.acts.Engine.Budget.Used() != 0 {
		t.Fatalf("%d bytes of the budget still held", f.acts.Engine.Budget.Used())
	}
}

// gatedStore holds the first PUT until released: a letter store slower than the heartbeat
// timeout.
type gatedStore struct {
	next    ingest.ObjectPutter
	started chan struct{} // closed when the first PUT arrives
	release chan struct{}
	once    sync.Once
}

func (s *gatedStore) PutObject(ctx context.Context, bucket, key string, body []byte) error {
	first := false
	s.once.Do(func() { first = true; close(s.started) })
	if first {
		select {
		case <-s.release:
		case <-time.After(30 * time.Second):
			return errors.New("test: the store was never released")
		}
	}
	return s.next.PutObject(ctx, bucket, key, body)
}

// TestIngestHeartbeatsWhileStoringLetters: while a letter object is being stored, the chunk
// keeps heartbeating its last stored checkpoint, so a slow PUT does not time the attempt out.
func TestIngestHeartbeatsWhileStoringLetters(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	f.s3.CreateBucket(t, "letters")
	data := []byte("{\"n\":1}\nnot json\n{\"n\":2}\n")
	etag := f.s3.Put(t, bucket, "slow.ndjson", data)
	src := source("slow.ndjson")
	src.DeadLetter = "s3://letters/dl"
	allow, err := ingest.ParseS3AllowList("s3://letters")
	if err != nil {
		t.Fatal(err)
	}
	store := &gatedStore{next: f.acts.S3, started: make(chan struct{}), release: make(chan struct{})}
	f.acts.DeadLetterS3, f.acts.LetterStore = allow, store
	var (
		mu       sync.Mutex
		during   []activities.ChunkProgress
		released bool
	)
	hb := &heartbeats{onBeat: func(_ int, p activities.ChunkProgress) {
		select {
		case <-store.started:
		default:
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if released {
			return
		}
		during = append(during, p)
		if len(during) == 3 {
			released = true
			close(store.release)
		}
	}}
	out, err := f.ingest(t, f.env(hb), activities.IngestChunkInput{Source: src, Chunk: activities.Chunk{Key: "slow.ndjson", ETag: etag, Size: int64(len(data)), End: -1}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(during) != 3 {
		t.Fatalf("%d heartbeats while the letters were being stored, want 3", len(during))
	}
	for _, p := range during {
		if p.Stats.DeadLettered != 0 {
			t.Fatalf("a heartbeat during the store counts %d dead letters, none stored yet", p.Stats.DeadLettered)
		}
	}
	if out.Stats.DeadLettered != 1 || len(f.s3.JSONLines(t, "letters", "dl/")) != 1 {
		t.Fatalf("stats %+v", out.Stats)
	}
}
