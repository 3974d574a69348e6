package esfake_test

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/sluicehq/sluice/internal/esfake"
)

// TestGoElasticsearchClient checks that the official client accepts esfake as Elasticsearch
// (product check, bulk response parsing) and refuses it as OpenSearch, as it refuses a real
// OpenSearch node.
func TestGoElasticsearchClient(t *testing.T) {
	s := esfake.New(esfake.Options{ItemFault: func(it *esfake.Item) esfake.ItemError {
		if it.ID == "reject" {
			return esfake.Rejected()
		}
		return esfake.ItemError{}
	}})
	defer s.Close()
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{s.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := es.Info()
	if err != nil || info.IsError() {
		t.Fatalf("info: %v %v", err, info)
	}
	info.Body.Close()

	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "docs", NumWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed atomic.Int64
	for _, id := range []string{"a", "b", "reject", "c"} {
		err := bi.Add(context.Background(), esutil.BulkIndexerItem{
			Action:     "index",
			DocumentID: id,
			Body:       strings.NewReader(`{"id":"` + id + `"}`),
			OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) {
				ok.Add(1)
			},
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				if res.Status != 429 || res.Error.Type != "es_rejected_execution_exception" {
					t.Errorf("failure %+v %v", res, err)
				}
				failed.Add(1)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 3 || failed.Load() != 1 || s.Count("docs") != 3 {
		t.Errorf("ok %d failed %d count %d", ok.Load(), failed.Load(), s.Count("docs"))
	}
	if st := bi.Stats(); st.NumFlushed != 3 || st.NumFailed != 1 {
		t.Errorf("indexer stats %+v", st)
	}

	res, err := es.Count(es.Count.WithIndex("docs"))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("count: %v %v", err, res)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(res.Body)
	res.Body.Close()
	if !strings.HasPrefix(body.String(), `{"count":3,`) {
		t.Errorf("count body %s", body.String())
	}

	os := esfake.New(esfake.Options{Flavor: esfake.OpenSearch})
	defer os.Close()
	osc, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{os.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := osc.Info(); err == nil || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Errorf("client accepted an OpenSearch-flavoured server: %v", err)
	}
}
