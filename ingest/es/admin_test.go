package es_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestIndexOperationsOnNode runs every index operation against each real node (OpenSearch and
// Elasticsearch, whose point-in-time calls differ): create with settings and mappings, exists,
// settings, _bulk, refresh, _count with and without a query, an atomic alias swap, a sliced
// point-in-time read, delete.
func TestIndexOperationsOnNode(t *testing.T) {
	testenv.ForEachEngine(t, testIndexOperations)
}

func testIndexOperations(t *testing.T, node testenv.Engine) {
	ctx := ctxT(t)
	c, err := es.New(ctx, es.Config{Addresses: []string{node.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Flavor()) != node.Name {
		t.Fatalf("flavor %s, want %s", c, node.Name)
	}
	base := fmt.Sprintf("sluice-es-test-%d", time.Now().UnixNano())
	v1, v2, alias := base+"-v1", base+"-v2", base
	t.Cleanup(func() {
		for _, i := range []string{v1, v2} {
			_ = c.DeleteIndex(context.Background(), i)
		}
	})

	body := []byte(`{"settings":{"number_of_shards":2,"number_of_replicas":0},"mappings":{"properties":{"n":{"type":"integer"},"tag":{"type":"keyword"}}}}`)
	for _, i := range []string{v1, v2} {
		if err := c.CreateIndex(ctx, i, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CreateIndex(ctx, v1, body); !es.IsAlreadyExists(err) || !es.IsPermanent(err) {
		t.Fatalf("creating it again: err = %v, want resource_already_exists_exception", err)
	}
	if ok, err := c.IndexExists(ctx, v1); !ok || err != nil {
		t.Fatalf("exists: %v %v", ok, err)
	}
	if ok, err := c.IndexExists(ctx, base+"-none"); ok || err != nil {
		t.Fatalf("exists (missing index): %v %v", ok, err)
	}

	if err := c.PutSettings(ctx, v1, []byte(`{"index":{"refresh_interval":"-1"}}`)); err != nil {
		t.Fatal(err)
	}
	settings, err := c.GetSettings(ctx, v1, true)
	if err != nil || !strings.Contains(string(settings), `"index.refresh_interval":"-1"`) || !strings.Contains(string(settings), `"index.number_of_shards":"2"`) {
		t.Fatalf("settings %s, err %v", settings, err)
	}

	const docs = 57
	var bulk strings.Builder
	for i := range docs {
		fmt.Fprintf(&bulk, "{\"index\":{\"_id\":\"d%d\"}}\n{\"n\":%d,\"tag\":%q}\n", i, i, []string{"even", "odd"}[i%2])
	}
	bulk.WriteString("{\"index\":{\"_id\":\"bad\"}}\n{\"n\":\"not a number\"}\n")
	res, err := c.Bulk(ctx, v1, [][]byte{[]byte(bulk.String())}, docs+1, nil)
	if err != nil || res.Class() != es.OK || !res.Errors || len(res.Items) != docs+1 {
		t.Fatalf("bulk: %+v %v", res, err)
	}
	// Elasticsearch 8.8 and later name the parse error document_parsing_exception, OpenSearch
	// mapper_parsing_exception; both are the same class.
	parseError := "mapper_parsing_exception"
	if node.Name == testenv.Elasticsearch {
		parseError = "document_parsing_exception"
	}
	if last := res.Items[docs]; es.ClassifyItem(last.Status, last.Type) != es.Rejected || last.Type != parseError {
		t.Fatalf("the bad document: %+v, want a rejected %s", last, parseError)
	}
	if err := c.Refresh(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Count(ctx, v1, nil); n != docs || err != nil {
		t.Fatalf("count %d %v, want %d", n, err, docs)
	}
	if n, err := c.Count(ctx, v1, json.RawMessage(`{"term":{"tag":"odd"}}`)); n != docs/2 || err != nil {
		t.Fatalf("count of odd %d %v, want %d", n, err, docs/2)
	}
	if _, err := c.Count(ctx, base+"-none", nil); es.ClassifyError(err) != es.IndexMissing {
		t.Fatalf("count of a missing index: err = %v, want index missing", err)
	}

	// The alias moves from v1 to v2 in one call.
	if err := c.UpdateAliases(ctx, []es.AliasAction{{Add: &es.AliasRef{Index: v1, Alias: alias}}}); err != nil {
		t.Fatal(err)
	}
	if got, w, err := c.AliasIndices(ctx, alias); err != nil || len(got) != 1 || got[0] != v1 || w != v1 {
		t.Fatalf("alias on %v (write %q) %v, want [%s]", got, w, err, v1)
	}
	if err := c.UpdateAliases(ctx, []es.AliasAction{
		{Remove: &es.AliasRef{Index: v1, Alias: alias}},
		{Add: &es.AliasRef{Index: v2, Alias: alias}},
	}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.AliasIndices(ctx, alias); err != nil || len(got) != 1 || got[0] != v2 {
		t.Fatalf("alias on %v %v after the swap, want [%s]", got, err, v2)
	}
	// An action that fails makes the whole call fail: the alias stays where it is.
	err = c.UpdateAliases(ctx, []es.AliasAction{
		{Remove: &es.AliasRef{Index: v2, Alias: alias}},
		{Add: &es.AliasRef{Index: base + "-none", Alias: alias}},
	})
	if err == nil {
		t.Fatal("an _aliases call naming a missing index succeeded")
	}
	if got, _, _ := c.AliasIndices(ctx, alias); len(got) != 1 || got[0] != v2 {
		t.Fatalf("alias on %v after a failed call, want [%s]", got, v2)
	}
	if got, _, err := c.AliasIndices(ctx, base+"-no-alias"); len(got) != 0 || err != nil {
		t.Fatalf("missing alias: %v %v", got, err)
	}

	// Two slices, pages of 5: every document once.
	pit, err := c.OpenPIT(ctx, v1, time.Minute, es.NoShard)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for slice := range 2 {
		hits, last, err := c.SearchAll(ctx, es.SearchRequest{PIT: pit, Size: 5, SliceID: slice, SliceMax: 2})
		if err != nil {
			t.Fatal(err)
		}
		pit = last
		for _, h := range hits {
			seen[h.ID]++
		}
	}
	if len(seen) != docs {
		t.Fatalf("%d distinct documents read, want %d", len(seen), docs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s read %d times", id, n)
		}
	}
	if err := c.ClosePIT(ctx, pit); err != nil {
		t.Fatal(err)
	}

	if err := c.DeleteIndex(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteIndex(ctx, v1); es.ClassifyError(err) != es.IndexMissing {
		t.Fatalf("deleting it again: err = %v, want index missing", err)
	}
}

// TestPITRequestsElasticsearch pins the exact Elasticsearch shape of point-in-time calls, which
// differ from OpenSearch's; TestIndexOperationsOnNode checks that a real node takes them.
func TestPITRequestsElasticsearch(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		b, _ := json.Marshal(body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		mu.Unlock()
		switch r.URL.Path {
		case "/":
			_, _ = w.Write([]byte(`{"name":"node-1","cluster_name":"c","version":{"number":"8.19.7","build_flavor":"default"},"tagline":"You Know, for Search"}`))
		case "/logs/_pit":
			_, _ = w.Write([]byte(`{"id":"pit-1"}`))
		case "/_search":
			_, _ = w.Write([]byte(`{"pit_id":"pit-2","hits":{"hits":[{"_index":"logs","_id":"a","_source":{"n":1},"sort":[7]}]}}`))
		case "/_pit":
			_, _ = w.Write([]byte(`{"succeeded":true,"num_freed":1}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	ctx := ctxT(t)
	c, err := es.New(ctx, es.Config{Addresses: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	pit, err := c.OpenPIT(ctx, "logs", 90*time.Second, es.NoShard)
	if err != nil || pit != "pit-1" {
		t.Fatalf("pit %q %v", pit, err)
	}
	page, err := c.Search(ctx, es.SearchRequest{PIT: pit, Size: 10, SearchAfter: json.RawMessage("[3]"), SliceID: 1, SliceMax: 4})
	if err != nil {
		t.Fatal(err)
	}
	hit, err := page.Next()
	if err != nil || hit.ID != "a" || string(hit.Sort) != "[7]" || string(hit.Source) != `{"n":1}` {
		t.Fatalf("hit %+v %v", hit, err)
	}
	if _, err := page.Next(); err != io.EOF || page.PIT() != "pit-2" {
		t.Fatalf("after the last hit: %v, pit %q", err, page.PIT())
	}
	page.Close()
	if err := c.ClosePIT(ctx, page.PIT()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`GET / null`,
		`POST /logs/_pit?keep_alive=90s null`,
		`POST /_search {"pit":{"id":"pit-1","keep_alive":"60s"},"search_after":[3],"size":10,"slice":{"id":1,"max":4},"sort":[{"_shard_doc":"asc"}],"track_total_hits":false}`,
		`DELETE /_pit {"id":"pit-2"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
