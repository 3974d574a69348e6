package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestAdaptive(t *testing.T, maxInflight int) (*Adaptive, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a := NewAdaptive(AdaptiveConfig{Clock: clk.now})
	a.join(maxInflight)
	return a, clk
}

var (
	good     = es.Outcome{Full: true}
	pushback = es.Outcome{Full: true, Pushback: true}
)

// wantLimit fails the test unless the limit is want; format says when, with %d for the limit.
func wantLimit(t *testing.T, a *Adaptive, want int, format string) {
	t.Helper()
	if got := a.Limit(); got != want {
		t.Fatalf(format, got)
	}
}

// round fills every slot (n requests, or the limit when n is 0), lets latency pass, and
// answers them all with o. It returns how many were sent.
func round(t *testing.T, a *Adaptive, clk *fakeClock, n int, latency time.Duration, o es.Outcome) int {
	t.Helper()
	if n == 0 {
		n = a.Limit()
	}
	slots := make([]es.Slot, n)
	for i := range slots {
		var err error
		if slots[i], err = a.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(latency)
	for _, s := range slots {
		a.Release(s, o)
	}
	return n
}

func TestAdaptiveGrowsUpToTheChunksInflight(t *testing.T) {
	a, clk := newTestAdaptive(t, 12)
	wantLimit(t, a, 1, "limit at start %d, want 1")
	var limits []int
	for range 14 {
		round(t, a, clk, 0, 50*time.Millisecond, good)
		limits = append(limits, a.Limit())
	}
	// One more per window of answers (a round of the test), up to the bound.
	want := []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12, 12, 12}
	for i := range want {
		if limits[i] != want[i] {
			t.Fatalf("limits after each round %v, want %v", limits, want)
		}
	}
	a.leave(4)
	wantLimit(t, a, 8, "limit after a chunk of 4 left: %d, want 8")
}

func TestAdaptiveDecreasesOnPushbackOncePerWindow(t *testing.T) {
	a, clk := newTestAdaptive(t, 10)
	for a.Limit() < 10 {
		round(t, a, clk, 0, 50*time.Millisecond, good)
	}
	// Ten requests in flight, all answered 429 (or a per-item 429 in a 200): one decrease.
	round(t, a, clk, 10, 5*time.Millisecond, pushback)
	wantLimit(t, a, 7, "limit after a window of pushback: %d, want 7 (10 x 0.7)")
	round(t, a, clk, 0, 5*time.Millisecond, es.Outcome{Pushback: true}) // a retry's 503
	wantLimit(t, a, 4, "limit after the next window's pushback: %d, want 4 (7 x 0.7)")
	for range 10 {
		round(t, a, clk, 0, 5*time.Millisecond, pushback)
	}
	wantLimit(t, a, 1, "limit after ten windows of pushback: %d, want the minimum 1")
	// An answer cut short by the caller says nothing.
	round(t, a, clk, 0, time.Millisecond, es.Outcome{Pushback: true, Aborted: true})
	wantLimit(t, a, 1, "limit %d after an aborted request")
}

func TestAdaptiveDecreasesOnLatencyRise(t *testing.T) {
	a, clk := newTestAdaptive(t, 16)
	for a.Limit() < 8 {
		round(t, a, clk, 0, 100*time.Millisecond, good)
	}
	before := a.Limit()
	// Slower, but within 1.5 x the floor: still near it.
	round(t, a, clk, 0, 140*time.Millisecond, good)
	if got := a.Limit(); got < before {
		t.Fatalf("limit fell from %d to %d at 1.4 x the latency floor", before, got)
	}
	before = a.Limit()
	// One slow request (a merge, a GC pause) among fast ones is no rise either.
	slots := make([]es.Slot, before)
	for i := range slots {
		slots[i], _ = a.Acquire(context.Background())
	}
	clk.advance(100 * time.Millisecond)
	for _, s := range slots[1:] {
		a.Release(s, good)
	}
	clk.advance(900 * time.Millisecond)
	a.Release(slots[0], good)
	if got := a.Limit(); got < before {
		t.Fatalf("limit fell from %d to %d on one slow request", before, got)
	}
	before = a.Limit()
	// Retries and halves are not timed: a slow small request is no rise.
	round(t, a, clk, 0, 400*time.Millisecond, es.Outcome{})
	if got := a.Limit(); got < before {
		t.Fatalf("limit fell from %d to %d on slow requests that were not full", before, got)
	}
	before = a.Limit()
	round(t, a, clk, 0, 200*time.Millisecond, good)
	if got, want := a.Limit(), int(float64(before)*0.7); got != want {
		t.Fatalf("limit %d after full requests at 2 x the floor, want %d (%d x 0.7)", got, want, before)
	}
}

func TestAdaptiveAdditiveIncreaseOnlyWhenTheLimitIsUsed(t *testing.T) {
	a, clk := newTestAdaptive(t, 32)
	for a.Limit() < 10 {
		round(t, a, clk, 0, 50*time.Millisecond, good)
	}
	limit := a.Limit()
	// Senders that use only half the limit (the source is slow) do not raise it.
	for range 20 {
		round(t, a, clk, limit/2, 50*time.Millisecond, good)
	}
	if got := a.Limit(); got != limit {
		t.Fatalf("limit moved from %d to %d while half used", limit, got)
	}
	// Used in full: one more per window, not one per answer.
	for i := 1; i <= 3; i++ {
		round(t, a, clk, 0, 50*time.Millisecond, good)
		if got := a.Limit(); got != limit+i {
			t.Fatalf("limit %d after %d full windows, want %d", got, i, limit+i)
		}
	}
}

func TestAdaptiveFloorFollowsASlowerCluster(t *testing.T) {
	a, clk := newTestAdaptive(t, 8)
	for a.Limit() < 8 {
		round(t, a, clk, 0, 20*time.Millisecond, good)
	}
	// The cluster is now 5 x slower for good: the limit falls, then, once the fast windows
	// have aged out of the floor, grows back to the bound.
	round(t, a, clk, 0, 100*time.Millisecond, good)
	if a.Limit() >= 8 {
		t.Fatalf("limit %d did not fall when latency rose 5 x", a.Limit())
	}
	for range 200 {
		round(t, a, clk, 0, 100*time.Millisecond, good)
	}
	wantLimit(t, a, 8, "limit %d: the floor did not follow the slower cluster")
}

func TestAdaptiveAcquireWaitsForASlot(t *testing.T) {
	a, clk := newTestAdaptive(t, 4)
	s, err := a.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The limit is 1: the next sender waits until its context ends...
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stopped")
	cancel(stop)
	if _, err := a.Acquire(ctx); !errors.Is(err, stop) {
		t.Fatalf("Acquire at the limit with a canceled context: %v, want %v", err, stop)
	}
	// ...or until a slot is given back.
	got := make(chan error, 1)
	go func() {
		s2, err := a.Acquire(context.Background())
		if err == nil {
			a.Release(s2, good)
		}
		got <- err
	}()
	clk.advance(time.Millisecond)
	a.Release(s, good)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting sender did not get the slot given back")
	}
	if n := a.InFlight(); n != 0 {
		t.Fatalf("%d in flight after every slot came back", n)
	}
}

// TestIngestUnderOneAdaptiveLimit runs four chunks on one Adaptive against a node that answers
// the first send of every fourth request with per-item 429s: every record is indexed, and once
// the chunks are done (one of them canceled midway) no slot is held and the bound is back to
// nothing.
func TestIngestUnderOneAdaptiveLimit(t *testing.T) {
	fake := esfake.New(esfake.Options{ItemFault: func(it *esfake.Item) esfake.ItemError {
		if it.Seq%4 == 0 && it.Attempt == 1 {
			return esfake.Rejected()
		}
		return esfake.ItemError{}
	}})
	defer fake.Close()
	eng, _ := newTestEngine(t, fake, 8<<20)
	eng.Adaptive = NewAdaptive(AdaptiveConfig{})
	data, valid, _ := dataset(3000)
	spec := func(key string) ChunkSpec {
		return ChunkSpec{Bucket: "b", Key: key, Format: FormatNDJSON, Index: "logs", End: -1,
			Limits: Limits{MaxOps: 50, Inflight: 4, RetryInitial: time.Millisecond}}
	}
	var wg sync.WaitGroup
	for c := range 3 {
		wg.Go(func() {
			if _, err := eng.Ingest(context.Background(), spec(fmt.Sprint("k", c)), bytesOpener(data), nil); err != nil {
				t.Error(err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	wg.Go(func() {
		_, err := eng.Ingest(ctx, spec("canceled"), bytesOpener(data), func(Progress) { cancel() })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled chunk: %v", err)
		}
	})
	wg.Wait()
	if got := fake.Count("logs"); got < 3*len(valid) || got > 4*len(valid) {
		t.Fatalf("index holds %d, want the 3 x %d of the finished chunks and part of the canceled one", got, len(valid))
	}
	if fake.Stats().ItemStatuses[429] == 0 {
		t.Fatal("no item was rejected: the test tests nothing")
	}
	a := eng.Adaptive
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight != 0 || len(a.waiters) != 0 || a.max != 0 || a.capLocked() != 1 {
		t.Fatalf("after the run: %d in flight, %d waiting, bound %d, limit %d", a.inflight, len(a.waiters), a.max, a.capLocked())
	}
}
