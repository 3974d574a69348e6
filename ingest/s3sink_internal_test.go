package ingest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestS3Allowed(t *testing.T) {
	allow, err := ParseS3AllowList(" s3://dl/letters/ , s3://all")
	if err != nil {
		t.Fatal(err)
	}
	for target, ok := range map[string]bool{
		"s3://dl/letters":       true,
		"s3://dl/letters/":      true,
		"s3://dl/letters/run-1": true,
		"s3://dl/letters2":      false,
		"s3://dl/":              false,
		"s3://other/letters":    false,
		"s3://all/anything":     true,
	} {
		tg, err := ParseDeadLetter(target, "logs")
		if err != nil {
			t.Fatal(err)
		}
		err = S3Allowed(tg, allow)
		if (err == nil) != ok || (err != nil && (!errors.Is(err, ErrBadConfig) || !errors.Is(err, ErrS3NotAllowed))) {
			t.Errorf("S3Allowed(%s) = %v, want allowed %v", target, err, ok)
		}
	}
	if err := S3Allowed(DeadLetterTarget{S3Bucket: "dl"}, nil); err == nil || !strings.Contains(err.Error(), "SLUICE_DEAD_LETTER_S3") {
		t.Errorf("no allow-list: %v", err)
	}
	if _, err := ParseS3AllowList("s3://dl/../x"); !errors.Is(err, ErrBadConfig) {
		t.Errorf("allow-list with ..: %v", err)
	}
}

func TestS3LetterPrefixStaysUnderItsTarget(t *testing.T) {
	tg := DeadLetterTarget{S3Bucket: "b", S3Prefix: "dl/"}
	got := S3LetterPrefix(tg, "logs", "..", "a/../../k@0")
	if got != "dl/logs/%2E%2E/a%2F..%2F..%2Fk@0" {
		t.Fatalf("prefix %q", got)
	}
	if got := S3LetterPrefix(DeadLetterTarget{S3Bucket: "b"}, "logs", "wf", "k@0"); got != "logs/wf/k@0" {
		t.Fatalf("prefix %q", got)
	}
}

type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
	fail bool
}

func (m *memStore) PutObject(_ context.Context, bucket, key string, body []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("injected")
	}
	m.objs[bucket+"/"+key] = bytes.Clone(body)
	return nil
}

// TestS3SinkBuffersWithinTheBudget: letters are charged while buffered, stored at FlushBytes,
// on Flush, or at once (with the buffer before them) when the budget is spent; the same
// letters make the same key; a failed store keeps them.
func TestS3SinkBuffersWithinTheBudget(t *testing.T) {
	ctx := context.Background()
	budget := NewBudget(4 << 10)
	store := &memStore{objs: map[string][]byte{}}
	s := NewS3Sink(store, S3SinkConfig{Bucket: "b", Prefix: "p", Budget: budget, FlushBytes: 2 << 10})
	letter := func(off int64) DeadLetter {
		return DeadLetter{Object: "s3://d/k", Offset: off, Index: "logs", Status: 400, Reason: "r", Record: bytes.Repeat([]byte("x"), 300)}
	}
	if err := s.Write(ctx, []DeadLetter{letter(10), letter(20)}); err != nil {
		t.Fatal(err)
	}
	if len(store.objs) != 0 || budget.Used() != s.Buffered() || s.Buffered() == 0 {
		t.Fatalf("%d objects, budget %d, buffered %d", len(store.objs), budget.Used(), s.Buffered())
	}
	store.fail = true
	if err := s.Flush(ctx); err == nil || !strings.Contains(err.Error(), "s3://d/k at offset 10") {
		t.Fatalf("failed flush: %v", err)
	}
	store.fail = false
	if err := s.Flush(ctx); err != nil || len(store.objs) != 1 || budget.Used() != 0 {
		t.Fatalf("flush: %v, %d objects, budget %d", err, len(store.objs), budget.Used())
	}
	var key string
	for k := range store.objs {
		key = k
	}
	if !strings.HasPrefix(key, "b/p/000000000000010-") || bytes.Count(store.objs[key], []byte("\n")) != 2 {
		t.Fatalf("object %s: %q", key, store.objs[key])
	}
	// The same letters in another order: the same object.
	_ = s.Write(ctx, []DeadLetter{letter(20), letter(10)})
	_ = s.Flush(ctx)
	if len(store.objs) != 1 {
		t.Fatalf("%d objects, want the first replaced", len(store.objs))
	}
	// Past FlushBytes: stored by Write.
	for i := range 9 {
		if err := s.Write(ctx, []DeadLetter{letter(int64(100 + i))}); err != nil {
			t.Fatal(err)
		}
	}
	if len(store.objs) < 2 || s.Buffered() >= 2<<10 {
		t.Fatalf("%d objects, %d buffered", len(store.objs), s.Buffered())
	}
	// The budget spent elsewhere: the letters do not wait for it.
	if err := budget.Acquire(ctx, budget.Max()-budget.Used()); err != nil {
		t.Fatal(err)
	}
	before := len(store.objs)
	if s.Buffered() == 0 {
		t.Fatal("nothing buffered before the spent budget")
	}
	if err := s.Write(ctx, []DeadLetter{letter(500)}); err != nil || s.Buffered() != 0 || len(store.objs) != before+2 {
		t.Fatalf("write on a spent budget: %v, %d buffered, %d objects (before %d)", err, s.Buffered(), len(store.objs), before)
	}
	budget.Release(budget.Used())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
