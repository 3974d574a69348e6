package esfake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCapacityQueue(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	q := newCapacityQueue(Capacity{DocsPerSecond: 1000, QueueDocs: 500})
	steps := []struct {
		at, docs int // ms after t0, documents
		done     int // ms after t0 the documents are indexed; -1: rejected
	}{
		{0, 200, 200},   // an empty node: service time only
		{0, 200, 400},   // behind the first
		{0, 200, -1},    // 400 queued + 200 > 500
		{300, 200, 600}, // 100 left of the queue: fits
		{300, 300, -1},  // 300 queued + 300 > 500
		{1000, 501, -1}, // larger than the queue: never fits
		{1000, 500, 1500},
	}
	for i, s := range steps {
		done, ok := q.admit(ms(s.at), s.docs)
		if s.done < 0 {
			if ok {
				t.Fatalf("step %d: %d documents at %dms admitted, want rejected", i, s.docs, s.at)
			}
			continue
		}
		if !ok || !done.Equal(ms(s.done)) {
			t.Fatalf("step %d: %d documents at %dms: done %v admitted %v, want done at %dms", i, s.docs, s.at, done.Sub(t0), ok, s.done)
		}
	}
	if newCapacityQueue(Capacity{}) != nil {
		t.Fatal("no DocsPerSecond: want no capacity limit")
	}
	if q := newCapacityQueue(Capacity{DocsPerSecond: 300}); q.queue != 300 {
		t.Fatalf("default queue %v documents, want one second's worth (300)", q.queue)
	}
}

// TestCapacityRejectsPerItem runs a node indexing 20 documents per second with a queue of 10:
// a request of 10 documents takes half a second, and one that arrives meanwhile is answered
// at once with a 200 whose every item is 429, as Elasticsearch does when its write queue is full.
func TestCapacityRejectsPerItem(t *testing.T) {
	admitted := make(chan struct{}, 10)
	s := New(Options{Capacity: Capacity{DocsPerSecond: 20, QueueDocs: 10},
		ItemFault: func(it *Item) ItemError { admitted <- struct{}{}; return ItemError{} }})
	defer s.Close()
	body := func(prefix string, n int) string {
		var ls []string
		for i := range n {
			ls = append(ls, fmt.Sprintf(`{"index":{"_id":"%s%d"}}`, prefix, i), `{"n":1}`)
		}
		return lines(ls...)
	}

	type answer struct {
		resp    response
		err     error
		elapsed time.Duration
	}
	first := make(chan answer, 1)
	go func() {
		start := time.Now()
		resp, err := doErr(context.Background(), http.MethodPost, s.URL()+"/logs/_bulk", strings.NewReader(body("a", 10)))
		first <- answer{resp, err, time.Since(start)}
	}()
	for range 10 { // the first request's items are past admission
		select {
		case <-admitted:
		case <-time.After(10 * time.Second):
			t.Fatal("the first request was not admitted")
		}
	}
	s.SetItemFault(nil)

	resp, br := bulk(t, s, "/logs/_bulk", body("b", 5))
	if resp.status != http.StatusOK || !br.Errors || len(br.Items) != 5 {
		t.Fatalf("request while the queue is full: status %d errors %v items %d: %s", resp.status, br.Errors, len(br.Items), resp.body)
	}
	for _, it := range br.Items {
		r := it["index"]
		if r.Status != http.StatusTooManyRequests || r.Error == nil || r.Error.Type != "es_rejected_execution_exception" ||
			!strings.Contains(r.Error.Reason, "queue capacity = 10") {
			t.Fatalf("item while the queue is full: %+v", r)
		}
	}

	a := <-first
	if a.err != nil {
		t.Fatal(a.err)
	}
	var fr bulkResponse
	if err := json.Unmarshal(a.resp.body, &fr); err != nil || fr.Errors || len(fr.Items) != 10 {
		t.Fatalf("the first request: %v, errors %v, %d items: %s", err, fr.Errors, len(fr.Items), a.resp.body)
	}
	if a.elapsed < 450*time.Millisecond {
		t.Fatalf("10 documents at 20 per second answered after %v, want about 500ms", a.elapsed)
	}
	if _, br := bulk(t, s, "/logs/_bulk", body("c", 10)); br.Errors {
		t.Fatalf("a request once the queue drained was rejected: %+v", br.Items[0])
	}
	st := s.Stats()
	if st.ItemStatuses[429] != 5 || st.ItemStatuses[201] != 20 {
		t.Fatalf("item statuses %v, want 5 x 429 and 20 x 201", st.ItemStatuses)
	}
}
