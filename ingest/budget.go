package ingest

import (
	"context"
	"fmt"
	"sync"
)

// Budget is a byte budget shared by every pipeline of a process. Acquire blocks until the bytes
// are free; Release returns them and wakes the waiters that now fit, in FIFO order (a large
// request is not starved by a stream of small ones). Counts are exact byte counts supplied by
// the callers, never estimates.
//
// A Budget is safe for concurrent use.
type Budget struct {
	mu      sync.Mutex
	max     int64
	used    int64
	peak    int64
	waiters []*budgetWaiter
	// pressure is closed while someone waits: holders of partial requests should send them.
	pressure chan struct{}
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

// NewBudget returns a budget of maxBytes bytes.
func NewBudget(maxBytes int64) *Budget {
	if maxBytes <= 0 {
		panic(fmt.Sprintf("ingest: budget of %d bytes", maxBytes))
	}
	return &Budget{max: maxBytes, pressure: make(chan struct{})}
}

// Pressure returns a channel that is closed when a caller is waiting in Acquire. Whoever holds
// bytes that it could give back sooner (a partial request waiting for more records) should do so
// when it fires, and then call Pressure again for the next wait.
func (b *Budget) Pressure() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pressure
}

// Max returns the size of the budget in bytes.
func (b *Budget) Max() int64 { return b.max }

// Acquire takes n bytes from the budget, blocking until they are free or ctx is done. A request
// larger than the whole budget is refused with ErrTooLarge: it could never be granted.
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	if n > b.max {
		return fmt.Errorf("%w: %d bytes asked of a budget of %d", ErrTooLarge, n, b.max)
	}
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.max {
		b.take(n)
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	if len(b.waiters) == 1 {
		close(b.pressure)
	}
	b.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted while we were giving up: hand the bytes back.
			b.mu.Unlock()
			b.Release(n)
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
			if len(b.waiters) == 0 {
				b.pressure = make(chan struct{})
			}
			// Removing the head may let the next waiters in.
			b.grant()
			b.mu.Unlock()
		}
		return ctx.Err()
	}
}

// TryAcquire takes n bytes if they are free now, without waiting, and reports whether it did.
func (b *Budget) TryAcquire(n int64) bool {
	if n <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) == 0 && b.used+n <= b.max {
		b.take(n)
		return true
	}
	return false
}

// Release returns n bytes to the budget.
func (b *Budget) Release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		panic("ingest: budget released more than acquired")
	}
	b.grant()
	b.mu.Unlock()
}

// Used returns the bytes currently held.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak returns the most bytes ever held at once.
func (b *Budget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

func (b *Budget) take(n int64) {
	b.used += n
	if b.used > b.peak {
		b.peak = b.used
	}
}

// grant wakes waiters in order while the head fits. Called with mu held.
func (b *Budget) grant() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if b.used+w.n > b.max {
			return
		}
		b.take(w.n)
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		close(w.ready)
		if len(b.waiters) == 0 {
			b.pressure = make(chan struct{})
		}
	}
}
