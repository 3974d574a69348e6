package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/testenv"
)

func newSink(t *testing.T, url, index string, maxBytes int64) *ingest.IndexSink {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bulk, err := esclient.New(ctx, esclient.Config{Addresses: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ingest.NewIndexSink(bulk, ingest.IndexSinkConfig{
		Index: index, MaxBytes: maxBytes,
		Retry: esclient.RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxElapsed: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func letters(n int) []ingest.DeadLetter {
	out := make([]ingest.DeadLetter, n)
	for i := range out {
		out[i] = ingest.DeadLetter{
			Time:      time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
			Index:     "logs",
			Object:    "s3://bucket/data.ndjson",
			Offset:    int64(100 * i),
			Status:    400,
			ErrorType: "mapper_parsing_exception",
			Reason:    fmt.Sprintf("failed to parse field [n] (%d)", i),
			Record:    []byte(fmt.Sprintf(`{"n":"not a number %d", "q":"\"quoted\""}`, i)),
		}
	}
	// A record that is not JSON at all, with bytes that need escaping.
	if n > 1 {
		out[n-1].Record = []byte("not json\t\x01 \"<&>\" é")
		out[n-1].Status = 0
		out[n-1].ErrorType = "sluice_rejected"
		out[n-1].Truncated = true
	}
	return out
}

type storedLetter struct {
	Timestamp string `json:"@timestamp"`
	Index     string `json:"index"`
	Object    string `json:"object"`
	Offset    int64  `json:"offset"`
	Status    int    `json:"status"`
	ErrorType string `json:"error_type"`
	Reason    string `json:"reason"`
	Truncated bool   `json:"truncated"`
	Record    string `json:"record"`
}

func checkStored(t *testing.T, want []ingest.DeadLetter, get func(id string) ([]byte, bool)) {
	t.Helper()
	for _, d := range want {
		raw, ok := get(ingest.DeadLetterID(d.Object, d.Offset))
		if !ok {
			t.Fatalf("dead letter at offset %d not stored", d.Offset)
		}
		var got storedLetter
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("stored letter %s: %v", raw, err)
		}
		if got.Record != string(d.Record) || got.Object != d.Object || got.Offset != d.Offset ||
			got.Status != d.Status || got.ErrorType != d.ErrorType || got.Reason != d.Reason ||
			got.Index != d.Index || got.Truncated != d.Truncated || got.Timestamp != "2025-01-02T03:04:05Z" {
			t.Errorf("stored %+v, want %+v", got, d)
		}
	}
}

func TestIndexSinkStoresLettersOnceEach(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	s := newSink(t, es.URL(), ingest.DeadLetterIndex("logs"), 0)
	if s.Index() != "logs-dead-letters" {
		t.Fatalf("index %q", s.Index())
	}
	ls := letters(5)
	ctx := context.Background()
	if err := s.Write(ctx, ls); err != nil {
		t.Fatal(err)
	}
	// A replayed tail writes the same letters again: overwritten, not added.
	if err := s.Write(ctx, ls[2:]); err != nil {
		t.Fatal(err)
	}
	if n := es.Count("logs-dead-letters"); n != 5 {
		t.Fatalf("%d letters stored, want 5", n)
	}
	checkStored(t, ls, func(id string) ([]byte, bool) { return es.Doc("logs-dead-letters", id) })
	if got := es.Received("logs-dead-letters", ingest.DeadLetterID(ls[3].Object, ls[3].Offset)); got != 2 {
		t.Errorf("letter 3 received %d times, want 2", got)
	}
	if err := s.Write(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestIndexSinkSplitsRequestsByBytes(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	s := newSink(t, es.URL(), "dl", 600)
	ls := letters(10)
	if err := s.Write(context.Background(), ls); err != nil {
		t.Fatal(err)
	}
	st := es.Stats()
	if st.BulkRequests < 4 || st.Items != 10 {
		t.Fatalf("%d bulk requests with %d items; want several requests of 10 items in all", st.BulkRequests, st.Items)
	}
	if es.Count("dl") != 10 {
		t.Fatalf("count %d", es.Count("dl"))
	}
}

func TestIndexSinkRetriesRejectedItemsAndRequests(t *testing.T) {
	var bulkSeen atomic.Int64
	es := esfake.New(esfake.Options{
		Fault: func(r *esfake.Request) esfake.Decision {
			if r.Endpoint == esfake.Bulk && bulkSeen.Add(1) == 1 {
				return esfake.Decision{Status: http.StatusServiceUnavailable}
			}
			return esfake.Decision{}
		},
		ItemFault: func(it *esfake.Item) esfake.ItemError {
			if it.Attempt == 1 && it.Pos%2 == 0 {
				return esfake.Rejected()
			}
			return esfake.ItemError{}
		},
	})
	defer es.Close()
	s := newSink(t, es.URL(), "dl", 0)
	ls := letters(6)
	if err := s.Write(context.Background(), ls); err != nil {
		t.Fatal(err)
	}
	if es.Count("dl") != 6 {
		t.Fatalf("count %d, want 6", es.Count("dl"))
	}
	checkStored(t, ls, func(id string) ([]byte, bool) { return es.Doc("dl", id) })
}

func TestIndexSinkRefusedLetterIsPermanent(t *testing.T) {
	es := esfake.New(esfake.Options{ItemFault: func(it *esfake.Item) esfake.ItemError {
		if it.Pos == 1 {
			return esfake.MapperParsing("object mapping for [record] tried to parse field [record] as object")
		}
		return esfake.ItemError{}
	}})
	defer es.Close()
	s := newSink(t, es.URL(), "dl", 0)
	err := s.Write(context.Background(), letters(3))
	if err == nil || !ingest.IsPermanent(err) || !errors.Is(err, ingest.ErrBadConfig) {
		t.Fatalf("err = %v, want a permanent ErrBadConfig", err)
	}
	if !strings.Contains(err.Error(), "s3://bucket/data.ndjson at offset 100") {
		t.Errorf("error %q does not name the record", err)
	}
}

func TestIndexSinkUnauthorized(t *testing.T) {
	for _, endpoint := range []esfake.Endpoint{esfake.Bulk, esfake.IndexAdmin} {
		t.Run(endpoint.String(), func(t *testing.T) {
			es := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
				if r.Endpoint == endpoint {
					return esfake.Decision{Status: http.StatusUnauthorized}
				}
				return esfake.Decision{}
			}})
			defer es.Close()
			s := newSink(t, es.URL(), "dl", 0)
			err := s.Write(context.Background(), letters(2))
			if !errors.Is(err, ingest.ErrUnauthorized) {
				t.Fatalf("err = %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestIndexSinkUsesExistingIndexAndRecreatesDeletedOne(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	ctx := context.Background()
	bulk, err := esclient.New(ctx, esclient.Config{Addresses: []string{es.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	if status, body, err := bulk.Do(ctx, http.MethodPut, "/dl", []byte(`{}`)); err != nil || status != 200 {
		t.Fatalf("creating index: %d %s %v", status, body, err)
	}
	s := newSink(t, es.URL(), "dl", 0)
	if err := s.Write(ctx, letters(2)); err != nil {
		t.Fatal(err)
	}
	// Someone deletes the index, and the cluster does not auto-create on _bulk: the sink
	// creates it again.
	if status, _, err := bulk.Do(ctx, http.MethodDelete, "/dl", nil); err != nil || status != 200 {
		t.Fatalf("deleting index: %d %v", status, err)
	}
	var refused atomic.Bool
	es.SetFault(func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk && !refused.Swap(true) {
			return esfake.Decision{Status: http.StatusNotFound}
		}
		return esfake.Decision{}
	})
	if err := s.Write(ctx, letters(3)); err != nil {
		t.Fatal(err)
	}
	if es.Count("dl") != 3 {
		t.Fatalf("count %d, want 3", es.Count("dl"))
	}
}

func TestIndexSinkGivesUpWithContext(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	s := newSink(t, es.URL(), "dl", 0)
	ctx, cancel := context.WithCancel(context.Background())
	es.SetItemFault(func(*esfake.Item) esfake.ItemError {
		cancel() // the first rejection cancels the writer
		return esfake.Rejected()
	})
	err := s.Write(ctx, letters(2))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestIndexSinkOnNode runs against each real node (OpenSearch and Elasticsearch): the mapping
// is accepted, records of any shape are stored, and a replay does not duplicate.
func TestIndexSinkOnNode(t *testing.T) {
	testenv.ForEachEngine(t, testIndexSinkOnNode)
}

func testIndexSinkOnNode(t *testing.T, node testenv.Engine) {
	url := node.URL
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bulk, err := esclient.New(ctx, esclient.Config{Addresses: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	index := fmt.Sprintf("sluice-test-%d%s", time.Now().UnixNano(), ingest.DeadLetterIndexSuffix)
	t.Cleanup(func() { _, _, _ = bulk.Do(context.Background(), http.MethodDelete, "/"+index, nil) })
	s := newSink(t, url, index, 0)
	ls := letters(4)
	ls = append(ls, ingest.DeadLetter{ // a large record: no 32 KiB term limit applies to it
		Time: ls[0].Time, Index: "logs", Object: "s3://bucket/data.ndjson", Offset: 1 << 40,
		ErrorType: "sluice_rejected", Reason: "too large", Record: []byte(strings.Repeat("x", 100<<10)),
	})
	if err := s.Write(ctx, ls); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, ls[:2]); err != nil {
		t.Fatal(err)
	}
	if status, body, err := bulk.Do(ctx, http.MethodPost, "/"+index+"/_refresh", nil); err != nil || status != 200 {
		t.Fatalf("refresh: %d %s %v", status, body, err)
	}
	status, body, err := bulk.Do(ctx, http.MethodGet, "/"+index+"/_count", nil)
	if err != nil || status != 200 {
		t.Fatalf("count: %d %s %v", status, body, err)
	}
	var count struct{ Count int }
	if err := json.Unmarshal(body, &count); err != nil || count.Count != len(ls) {
		t.Fatalf("count %s, want %d", body, len(ls))
	}
	checkStored(t, ls[:4], func(id string) ([]byte, bool) {
		status, body, err := bulk.Do(ctx, http.MethodGet, "/"+index+"/_source/"+id, nil)
		return body, err == nil && status == 200
	})
	status, body, err = bulk.Do(ctx, http.MethodGet, "/"+index+"/_mapping", nil)
	if err != nil || status != 200 || !strings.Contains(string(body), `"record":{"type":"text","index":false}`) {
		t.Fatalf("mapping: %d %s %v", status, body, err)
	}
	// The error type is a keyword: letters can be counted by type.
	q := []byte(`{"query":{"term":{"error_type":"sluice_rejected"}}}`)
	status, body, err = bulk.Do(ctx, http.MethodPost, "/"+index+"/_count", q)
	if err != nil || status != 200 || !strings.Contains(string(body), `"count":2`) {
		t.Fatalf("count by error_type: %d %s %v", status, body, err)
	}
}
