package ingest

import (
	"context"
	"sync"
	"time"
)

// MemQueue is a FIFO queue bounded in bytes. Put charges an item's size to the shared Budget
// and to the queue's own bound, blocking until both have room (this is the backpressure that
// reaches back to the S3 read). Take moves items out in bulk; the queue's own bound is freed at
// once, but the bytes stay charged to the Budget: the taker owns them and must Release them on
// the Budget when it is done with the items (for the bulk consumer: when Elasticsearch has
// acknowledged them).
//
// Put may be called from one goroutine and Take from another; a MemQueue is safe for
// concurrent use.
type MemQueue[T any] struct {
	budget   *Budget
	maxBytes int64

	mu     sync.Mutex
	items  []queued[T]
	head   int
	bytes  int64
	closed bool
	// notify is closed and replaced whenever the queue changes, waking every waiter.
	notify chan struct{}
}

type queued[T any] struct {
	item T
	size int64
}

// NewMemQueue returns a queue holding at most maxBytes bytes of items, drawing from budget.
func NewMemQueue[T any](budget *Budget, maxBytes int64) *MemQueue[T] {
	return &MemQueue[T]{budget: budget, maxBytes: maxBytes, notify: make(chan struct{})}
}

// Put appends item of size bytes. It blocks until the queue and the budget have room, or ctx is
// done. An item larger than the queue bound is admitted alone into an empty queue.
func (q *MemQueue[T]) Put(ctx context.Context, item T, size int64) error {
	return q.put(ctx, item, size, true)
}

// PutReserved is Put for an item whose size the caller has already taken from the budget (it
// was built record by record, each charged as it was added). Only the queue's own bound can
// make it wait. On error the bytes are still the caller's to release.
func (q *MemQueue[T]) PutReserved(ctx context.Context, item T, size int64) error {
	return q.put(ctx, item, size, false)
}

func (q *MemQueue[T]) put(ctx context.Context, item T, size int64, charge bool) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrQueueClosed
		}
		if q.bytes == 0 || q.bytes+size <= q.maxBytes {
			q.bytes += size // reserve our place in the queue bound before waiting on the budget
			q.mu.Unlock()
			break
		}
		wait := q.notify
		q.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if charge {
		if err := q.budget.Acquire(ctx, size); err != nil {
			q.mu.Lock()
			q.bytes -= size
			q.signal()
			q.mu.Unlock()
			return err
		}
	}
	q.mu.Lock()
	q.items = append(q.items, queued[T]{item, size})
	q.signal()
	q.mu.Unlock()
	return nil
}

// Close marks the end of the stream: Take returns what is left, then ErrQueueClosed.
func (q *MemQueue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.signal()
	q.mu.Unlock()
}

// Take blocks until at least one item is queued (or the queue is closed and empty, or ctx is
// done), then appends up to maxItems queued items whose sizes add up to at most maxBytes (at
// least one item, whatever its size) to dst, and returns dst with the total size taken.
func (q *MemQueue[T]) Take(ctx context.Context, dst []T, maxItems int, maxBytes int64) ([]T, int64, error) {
	return q.TakeUntil(ctx, dst, maxItems, maxBytes, nil, nil)
}

// TakeUntil is Take that also gives up, returning no items and no error, when timeout or wake
// fires (either may be nil).
func (q *MemQueue[T]) TakeUntil(ctx context.Context, dst []T, maxItems int, maxBytes int64, timeout <-chan time.Time, wake <-chan struct{}) ([]T, int64, error) {
	for {
		q.mu.Lock()
		if q.head < len(q.items) {
			var took int64
			n := 0
			for q.head < len(q.items) && n < maxItems {
				it := q.items[q.head]
				if n > 0 && took+it.size > maxBytes {
					break
				}
				dst = append(dst, it.item)
				took += it.size
				var zero queued[T]
				q.items[q.head] = zero
				q.head++
				n++
			}
			if q.head == len(q.items) {
				q.items = q.items[:0]
				q.head = 0
			}
			q.bytes -= took
			q.signal()
			q.mu.Unlock()
			return dst, took, nil
		}
		if q.closed {
			q.mu.Unlock()
			return dst, 0, ErrQueueClosed
		}
		wait := q.notify
		q.mu.Unlock()
		select {
		case <-wait:
		case <-timeout:
			return dst, 0, nil
		case <-wake:
			return dst, 0, nil
		case <-ctx.Done():
			return dst, 0, ctx.Err()
		}
	}
}

// Bytes returns the bytes of the items queued and of the Puts waiting on the budget.
func (q *MemQueue[T]) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

func (q *MemQueue[T]) signal() {
	close(q.notify)
	q.notify = make(chan struct{})
}
