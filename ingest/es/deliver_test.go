package es_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
)

// docs is a BulkJob of n documents {"n":i} with ids d<i>, recording how each was settled.
type docs struct {
	n       int
	settled map[int]es.Class
}

func (d *docs) job(index string) *es.BulkJob {
	d.settled = map[int]es.Class{}
	return &es.BulkJob{
		Index:   index,
		Backoff: es.RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxElapsed: 2 * time.Second}.Start(),
		Body: func(idx []int) [][]byte {
			var b []byte
			for _, i := range idx {
				b = fmt.Appendf(b, "{\"index\":{\"_id\":\"d%d\"}}\n{\"n\":%d}\n", i, i)
			}
			return [][]byte{b}
		},
		Settle: func(i int, c es.Class, r es.ItemResult) (bool, error) {
			if _, dup := d.settled[i]; dup {
				return false, fmt.Errorf("item %d settled twice", i)
			}
			d.settled[i] = c
			if c == es.Unauthorized {
				return false, fmt.Errorf("item %d: %w", i, es.ErrUnauthorized)
			}
			return false, nil
		},
		Describe: func(i int) string { return fmt.Sprintf("document %d", i) },
	}
}

func (d *docs) all() []int {
	idx := make([]int, d.n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func newFakeClient(t *testing.T, opts esfake.Options) (*es.Client, *esfake.Server) {
	t.Helper()
	fake := esfake.New(opts)
	t.Cleanup(fake.Close)
	c, err := es.New(ctxT(t), es.Config{Addresses: []string{fake.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	return c, fake
}

func TestDeliverRetriesItemsAloneAndSplitsOn413(t *testing.T) {
	var requests atomic.Int64
	c, fake := newFakeClient(t, esfake.Options{
		ItemFault: func(it *esfake.Item) esfake.ItemError {
			if it.Attempt == 1 && it.ID[len(it.ID)-1] == '3' {
				return esfake.Rejected() // 429 once for d3, d13, ...
			}
			return esfake.ItemError{}
		},
		Fault: func(r *esfake.Request) esfake.Decision {
			if r.Endpoint == esfake.Bulk && requests.Add(1) == 1 {
				return esfake.Decision{Status: http.StatusRequestEntityTooLarge}
			}
			return esfake.Decision{}
		},
	})
	d := &docs{n: 40}
	job := d.job("logs")
	var items []es.ItemResult
	if err := c.Deliver(context.Background(), job, d.all(), nil, &items); err != nil {
		t.Fatal(err)
	}
	if fake.Count("logs") != d.n || len(d.settled) != d.n {
		t.Fatalf("index holds %d, %d settled, want %d", fake.Count("logs"), len(d.settled), d.n)
	}
	for i, cl := range d.settled {
		if cl != es.OK {
			t.Fatalf("item %d settled %v", i, cl)
		}
	}
	// 4 documents end in 3 (d3, d13, d23, d33): resent alone, once each.
	if job.Resent != 4 {
		t.Fatalf("%d items resent, want 4", job.Resent)
	}
	for _, id := range []string{"d3", "d13", "d23", "d33", "d0"} {
		want := 1
		if id != "d0" {
			want = 2
		}
		if got := fake.Received("logs", id); got != want {
			t.Fatalf("%s received %d times, want %d", id, got, want)
		}
	}
}

func TestDeliverStopsAtOnceOnUnauthorized(t *testing.T) {
	var requests atomic.Int64
	c, _ := newFakeClient(t, esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk {
			requests.Add(1)
			return esfake.Decision{Status: http.StatusUnauthorized}
		}
		return esfake.Decision{}
	}})
	d := &docs{n: 10}
	var items []es.ItemResult
	err := c.Deliver(context.Background(), d.job("logs"), d.all(), nil, &items)
	if !errors.Is(err, es.ErrUnauthorized) || !es.IsPermanent(err) || requests.Load() != 1 {
		t.Fatalf("err = %v after %d requests, want one permanent ErrUnauthorized", err, requests.Load())
	}
}

func TestDeliverGivesUpAfterMaxElapsed(t *testing.T) {
	c, _ := newFakeClient(t, esfake.Options{ItemFault: func(*esfake.Item) esfake.ItemError { return esfake.Unavailable() }})
	d := &docs{n: 3}
	job := d.job("logs")
	job.Backoff = es.RetryPolicy{Initial: time.Millisecond, MaxElapsed: 50 * time.Millisecond}.Start()
	var items []es.ItemResult
	err := c.Deliver(context.Background(), job, d.all(), nil, &items)
	if !errors.Is(err, es.ErrRetriesExhausted) || es.IsPermanent(err) || len(d.settled) != 0 {
		t.Fatalf("err = %v, %d settled; want retries exhausted, none settled", err, len(d.settled))
	}
	if want := "3 items to logs, the first document 0"; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want it to name the first document", err)
	}
}

// recordingGate is a Gate that admits everything and records the outcomes it is told.
type recordingGate struct {
	held     int
	outcomes []es.Outcome
}

func (g *recordingGate) Acquire(context.Context) (es.Slot, error) {
	g.held++
	return es.Slot{}, nil
}

func (g *recordingGate) Release(_ es.Slot, o es.Outcome) {
	g.held--
	g.outcomes = append(g.outcomes, o)
}

// TestDeliverTellsTheGateEachOutcome: a per-item 429 inside a 200 and a 503 are pushback, a
// good answer is not; only the job's whole first request is Full; every slot comes back.
func TestDeliverTellsTheGateEachOutcome(t *testing.T) {
	var requests atomic.Int64
	c, _ := newFakeClient(t, esfake.Options{
		Fault: func(r *esfake.Request) esfake.Decision {
			if r.Endpoint == esfake.Bulk && requests.Add(1) == 2 {
				return esfake.Decision{Status: http.StatusServiceUnavailable}
			}
			return esfake.Decision{}
		},
		ItemFault: func(it *esfake.Item) esfake.ItemError {
			if it.ID == "d1" && it.Attempt == 1 {
				return esfake.Rejected()
			}
			return esfake.ItemError{}
		},
	})
	d := &docs{n: 4}
	job := d.job("gate")
	gate := &recordingGate{}
	job.Gate, job.Full = gate, true
	var items []es.ItemResult
	if err := c.Deliver(ctxT(t), job, d.all(), job.Body(d.all()), &items); err != nil {
		t.Fatal(err)
	}
	// 1: all four, d1 answered 429 in a 200; 2: d1 alone, 503; 3: d1 alone, indexed.
	want := []es.Outcome{{Full: true, Pushback: true}, {Pushback: true}, {}}
	if fmt.Sprint(gate.outcomes) != fmt.Sprint(want) || gate.held != 0 {
		t.Fatalf("outcomes %+v (%d slots held), want %+v", gate.outcomes, gate.held, want)
	}
	if len(d.settled) != 4 {
		t.Fatalf("settled %v", d.settled)
	}
}
