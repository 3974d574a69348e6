package ingest

import (
	"context"
	"errors"
	"sync"
	"time"
)

// queue is the FIFO between the producer and the batcher, bounded in bytes: this bound is the
// backpressure that reaches back to the S3 read. The bytes of a queued request are already
// charged to the budget (the producer charged each block as it took it); the queue only bounds
// how many of them wait, and hands the requests, with their reserved bytes, to the taker.
//
// put is called from one goroutine and take from another; a queue is safe for concurrent use.
type queue struct {
	maxBytes int64

	mu       sync.Mutex
	requests []*request
	head     int
	bytes    int64
	closed   bool
	// notify is closed and replaced whenever the queue changes, waking every waiter.
	notify chan struct{}
}

// errQueueClosed is what put returns after close, and take once the queue is empty.
var errQueueClosed = errors.New("queue closed")

func newQueue(maxBytes int64) *queue {
	return &queue{maxBytes: maxBytes, notify: make(chan struct{})}
}

// put appends r. It blocks until the queue has room for r.reserved bytes, or ctx is done; a
// request larger than the bound is admitted alone into an empty queue. On error r is still the
// caller's.
func (q *queue) put(ctx context.Context, r *request) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return errQueueClosed
		}
		if q.bytes == 0 || q.bytes+r.reserved <= q.maxBytes {
			q.bytes += r.reserved
			q.requests = append(q.requests, r)
			q.signal()
			q.mu.Unlock()
			return nil
		}
		wait := q.notify
		q.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close marks the end of the stream: take returns what is left, then errQueueClosed.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.signal()
	q.mu.Unlock()
}

// take blocks until at least one request is queued (or the queue is closed and empty, or ctx
// is done), then appends up to maxRequests of them to dst. It also gives up, returning no
// request and no error, when timeout or wake fires (either may be nil).
func (q *queue) take(ctx context.Context, dst []*request, maxRequests int, timeout <-chan time.Time, wake <-chan struct{}) ([]*request, error) {
	for {
		q.mu.Lock()
		if q.head < len(q.requests) {
			for n := 0; q.head < len(q.requests) && n < maxRequests; n++ {
				r := q.requests[q.head]
				dst = append(dst, r)
				q.bytes -= r.reserved
				q.requests[q.head] = nil
				q.head++
			}
			if q.head == len(q.requests) {
				q.requests = q.requests[:0]
				q.head = 0
			}
			q.signal()
			q.mu.Unlock()
			return dst, nil
		}
		if q.closed {
			q.mu.Unlock()
			return dst, errQueueClosed
		}
		wait := q.notify
		q.mu.Unlock()
		select {
		case <-wait:
		case <-timeout:
			return dst, nil
		case <-wake:
			return dst, nil
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

func (q *queue) signal() {
	close(q.notify)
	q.notify = make(chan struct{})
}
