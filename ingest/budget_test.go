package ingest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestBudgetBlocksUntilReleased(t *testing.T) {
	b := NewBudget(100)
	ctx := context.Background()
	if err := b.Acquire(ctx, 80); err != nil {
		t.Fatal(err)
	}
	got := make(chan error)
	go func() { got <- b.Acquire(ctx, 30) }()
	select {
	case err := <-got:
		t.Fatalf("Acquire(30) returned %v with 80 of 100 bytes held", err)
	case <-time.After(20 * time.Millisecond): // a negative check: it must still be blocked
	}
	b.Release(80)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if b.Used() != 30 || b.Peak() != 80 {
		t.Fatalf("used %d peak %d, want 30 and 80", b.Used(), b.Peak())
	}
}

func TestBudgetFIFOAndCancel(t *testing.T) {
	b := NewBudget(100)
	ctx := context.Background()
	_ = b.Acquire(ctx, 100)
	cctx, cancel := context.WithCancel(ctx)
	bigErr := make(chan error)
	go func() { bigErr <- b.Acquire(cctx, 90) }()
	for b.waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	small := make(chan error)
	go func() { small <- b.Acquire(ctx, 10) }()
	for b.waiting() != 2 {
		time.Sleep(time.Millisecond)
	}
	b.Release(20) // 20 free: the head (90) does not fit, and the small one waits behind it
	select {
	case <-small:
		t.Fatal("a small request overtook a waiting large one")
	case <-time.After(20 * time.Millisecond):
	}
	cancel() // the large one gives up: the small one goes
	if err := <-bigErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire returned %v", err)
	}
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	if b.Used() != 90 {
		t.Fatalf("used %d, want 90", b.Used())
	}
	if err := b.Acquire(ctx, 101); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Acquire over the budget: %v", err)
	}
}

func (b *Budget) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters)
}

func TestQueueBoundsAndOrder(t *testing.T) {
	q := newQueue(100)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	const n = 500
	go func() {
		defer wg.Done()
		for i := range n {
			if err := q.put(ctx, &request{seq: uint64(i), reserved: int64(1 + i%40)}); err != nil {
				t.Error(err)
				return
			}
			q.mu.Lock()
			qb := q.bytes
			q.mu.Unlock()
			if qb > 100+40 {
				t.Errorf("queue holds %d bytes, bound 100", qb)
			}
		}
		q.close()
	}()
	next := 0
	var taken []*request
	for {
		var err error
		taken, err = q.take(ctx, taken[:0], 7, nil, nil)
		if errors.Is(err, errQueueClosed) {
			break
		}
		if err != nil || len(taken) == 0 || len(taken) > 7 {
			t.Fatalf("took %d requests, want 1 to 7 (err %v)", len(taken), err)
		}
		for _, r := range taken {
			if r.seq != uint64(next) {
				t.Fatalf("got request %d, want %d", r.seq, next)
			}
			next++
		}
	}
	wg.Wait()
	if next != n {
		t.Fatalf("got %d requests, want %d", next, n)
	}
	if err := q.put(ctx, &request{}); !errors.Is(err, errQueueClosed) {
		t.Fatalf("put after close: %v", err)
	}
}

func TestQueueWaitsForRoomAndGivesUpWithCtx(t *testing.T) {
	q := newQueue(100)
	ctx := context.Background()
	if err := q.put(ctx, &request{reserved: 70}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := q.put(cctx, &request{reserved: 40}); !errors.Is(err, context.Canceled) {
		t.Fatalf("put over the bound with ctx done returned %v", err)
	}
	done := make(chan error)
	go func() { done <- q.put(ctx, &request{reserved: 40}) }()
	if taken, err := q.take(ctx, nil, 10, nil, nil); err != nil || len(taken) != 1 || taken[0].reserved != 70 {
		t.Fatalf("take: %d requests, %v", len(taken), err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("put still waiting after the queue emptied")
	}
	wake := make(chan struct{})
	close(wake)
	if taken, err := q.take(ctx, nil, 10, nil, wake); err != nil || len(taken) != 1 {
		t.Fatalf("take with a request queued and wake fired: %d requests, %v", len(taken), err)
	}
	if taken, err := q.take(ctx, nil, 10, nil, wake); err != nil || len(taken) != 0 {
		t.Fatalf("take on an empty queue with wake fired: %d requests, %v", len(taken), err)
	}
}
