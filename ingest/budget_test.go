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

func TestMemQueueBoundsAndOrder(t *testing.T) {
	budget := NewBudget(1000)
	q := NewMemQueue[int](budget, 100)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	const n = 500
	go func() {
		defer wg.Done()
		for i := range n {
			if err := q.Put(ctx, i, int64(1+i%40)); err != nil {
				t.Error(err)
				return
			}
			if qb := q.Bytes(); qb > 100+40 {
				t.Errorf("queue holds %d bytes, bound 100", qb)
			}
		}
		q.Close()
	}()
	next := 0
	var items []int
	for {
		var n64 int64
		var err error
		items, n64, err = q.Take(ctx, items[:0], 7, 50)
		if errors.Is(err, ErrQueueClosed) {
			break
		}
		if len(items) > 7 {
			t.Fatalf("took %d items, max 7", len(items))
		}
		var sum int64
		for _, it := range items {
			if it != next {
				t.Fatalf("got item %d, want %d", it, next)
			}
			sum += int64(1 + it%40)
			next++
		}
		if sum != n64 || (len(items) > 1 && sum > 50) {
			t.Fatalf("took %d bytes (reported %d) in %d items", sum, n64, len(items))
		}
		budget.Release(n64)
	}
	wg.Wait()
	if next != n || budget.Used() != 0 {
		t.Fatalf("got %d items, budget still holds %d", next, budget.Used())
	}
}

func TestMemQueueSharedBudgetBackpressure(t *testing.T) {
	budget := NewBudget(100)
	a := NewMemQueue[string](budget, 100)
	b := NewMemQueue[string](budget, 100)
	ctx := context.Background()
	if err := a.Put(ctx, "a", 70); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	// b has room of its own, but the budget they share does not.
	if err := b.Put(cctx, "b", 40); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put over the shared budget returned %v", err)
	}
	if b.Bytes() != 0 || budget.Used() != 70 {
		t.Fatalf("after a cancelled Put: queue %d budget %d", b.Bytes(), budget.Used())
	}
	done := make(chan error)
	go func() { done <- b.Put(ctx, "b", 40) }()
	_, n, _ := a.Take(ctx, nil, 10, 1000)
	budget.Release(n)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
