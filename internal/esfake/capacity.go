package esfake

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Capacity makes a Server a node of fixed indexing capacity (Options.Capacity), to show how a
// client behaves against a cluster it can overload: documents are indexed one after another
// at DocsPerSecond, a bulk request is answered once its documents have been indexed (service
// time proportional to its documents, after those queued ahead of it), and a request that
// arrives when its documents do not fit in the queue is rejected: HTTP 200 with "errors":true
// and every item 429 es_rejected_execution_exception, as Elasticsearch answers when the write
// thread pool's queue is full (the rejection happens per shard request, so a one-shard index
// rejects every item of the request; see Rejected for the indexing-pressure wording).
type Capacity struct {
	// DocsPerSecond is how many documents the node indexes per second. 0: no limit, the
	// default (then the other fields are ignored).
	DocsPerSecond float64
	// QueueDocs is how many documents may be admitted and not yet indexed, the one in
	// service included. A request of more documents than this is always rejected. Defaults
	// to one second of DocsPerSecond.
	QueueDocs int
	// Latency is added to every bulk answer without using capacity: the network and the
	// coordinating node. Defaults to 0.
	Latency time.Duration
}

// capacityQueue is the node's single indexing queue, in virtual time: it keeps only when the
// documents admitted so far will all have been indexed.
type capacityQueue struct {
	rate  float64 // documents per second
	queue float64 // documents
	mu    sync.Mutex
	busy  time.Time // when everything admitted is indexed
}

func newCapacityQueue(c Capacity) *capacityQueue {
	if c.DocsPerSecond <= 0 {
		return nil
	}
	q := &capacityQueue{rate: c.DocsPerSecond, queue: float64(c.QueueDocs)}
	if c.QueueDocs <= 0 {
		q.queue = c.DocsPerSecond
	}
	return q
}

// admit takes a request of n documents arriving at now: it returns when they will have been
// indexed, or false when the queue has no room for them.
func (q *capacityQueue) admit(now time.Time, n int) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	backlog := max(q.busy.Sub(now).Seconds(), 0) * q.rate
	if backlog+float64(n) > q.queue {
		return now, false
	}
	start := q.busy
	if start.Before(now) {
		start = now
	}
	q.busy = start.Add(time.Duration(float64(n) / q.rate * float64(time.Second)))
	return q.busy, true
}

// queueFullReason is the reason of a write thread pool rejection, as Elasticsearch 8 words it.
func queueFullReason(queueDocs int) string {
	return "rejected execution of org.elasticsearch.action.support.replication.TransportWriteAction$1/WrappedActionListener on EsThreadPoolExecutor[name = esfake/write, queue capacity = " +
		strconv.Itoa(queueDocs) + ", org.elasticsearch.common.util.concurrent.EsThreadPoolExecutor[Running, pool size = 1, active threads = 1]]"
}

// throttle admits the items of a bulk request that have not failed yet into the capacity
// queue, or rejects them all, and returns when the answer may be sent.
func (s *Server) throttle(items []item, now time.Time) time.Time {
	n := 0
	for i := range items {
		if !items[i].failed() {
			n++
		}
	}
	done, ok := s.capacity.admit(now, n)
	if !ok {
		for i := range items {
			if it := &items[i]; !it.failed() {
				it.fail(http.StatusTooManyRequests, "es_rejected_execution_exception", s.queueFull)
			}
		}
	}
	return done.Add(s.opts.Capacity.Latency)
}

// waitUntil waits until t, or until the client goes away or the server closes.
func (s *Server) waitUntil(r *http.Request, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-r.Context().Done():
	case <-s.closing:
	}
}
