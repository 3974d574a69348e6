package es_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestShardPITOnNode checks what migrations rely on, on both real engines: a point in time
// opened with preference=_shards:N sees that primary shard only, the shards together give
// every document exactly once, per-shard counts add up, and a closed point in time is
// ErrPITMissing.
func TestShardPITOnNode(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, node testenv.Engine) {
		ctx := ctxT(t)
		c, err := es.New(ctx, es.Config{Addresses: []string{node.URL}})
		if err != nil {
			t.Fatal(err)
		}
		index := fmt.Sprintf("sluice-es-shards-%d", time.Now().UnixNano())
		t.Cleanup(func() { _ = c.DeleteIndex(context.Background(), index) })
		if err := c.CreateIndex(ctx, index, []byte(`{"settings":{"number_of_shards":3,"number_of_replicas":0}}`)); err != nil {
			t.Fatal(err)
		}
		const docs = 500
		var body strings.Builder
		for i := range docs {
			fmt.Fprintf(&body, "{\"index\":{\"_id\":\"d%d\"}}\n{\"n\":%d}\n", i, i)
		}
		if code, out, err := c.Do(ctx, "POST", "/"+index+"/_bulk?refresh=true", []byte(body.String())); err != nil || code != 200 || strings.Contains(string(out[:min(len(out), 40)]), `"errors":true`) {
			t.Fatalf("bulk: %d %v", code, err)
		}
		shards, err := c.PrimaryShards(ctx, index)
		if err != nil || len(shards) != 1 || shards[0].Index != index || shards[0].Shards != 3 {
			t.Fatalf("primary shards %+v %v", shards, err)
		}
		seen := map[string]int{}
		var counted int64
		for shard := range 3 {
			n, err := c.CountShard(ctx, index, shard, nil)
			if err != nil {
				t.Fatal(err)
			}
			counted += n
			pit, err := c.OpenPIT(ctx, index, time.Minute, shard)
			if err != nil {
				t.Fatal(err)
			}
			hits, pit, err := c.SearchAll(ctx, es.SearchRequest{PIT: pit, Size: 37, Sort: c.ShardSort()})
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(hits)) != n || n == 0 || n == docs {
				t.Fatalf("shard %d: %d hits, _count says %d (of %d documents)", shard, len(hits), n, docs)
			}
			for _, h := range hits {
				seen[h.ID]++
			}
			if err := c.ClosePIT(ctx, pit); err != nil {
				t.Fatal(err)
			}
			_, err = c.Search(ctx, es.SearchRequest{PIT: pit, Size: 10})
			if !errors.Is(err, es.ErrPITMissing) {
				t.Fatalf("search on a closed point in time: %v, want ErrPITMissing", err)
			}
		}
		if len(seen) != docs || counted != docs {
			t.Fatalf("%d distinct documents over the shards, counts add up to %d, want %d", len(seen), counted, docs)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("%s read %d times", id, n)
			}
		}
	})
}

// TestSearchPageShapes reads answers whose keys come in any order: pit_id before or after the
// hits, other keys around them, hits with and without _routing, an answer without hits.
func TestSearchPageShapes(t *testing.T) {
	for _, c := range []struct {
		name, body string
		ids        string
		pit        string
		wantErr    string
	}{
		{"pit first", `{"pit_id":"p2","took":1,"hits":{"total":{"value":2},"hits":[{"_id":"a","_source":{"x":1},"sort":[1]},{"_id":"b","_routing":"r","_source":{},"sort":[2]}]}}`, "a,b/r", "p2", ""},
		{"pit last", `{"took":1,"_shards":{"total":1},"hits":{"max_score":null,"hits":[{"_id":"a","_source":{"x":[1,{"y":"}"}]},"sort":["a"]}],"x":1},"pit_id":"p3"}`, "a", "p3", ""},
		{"empty page", `{"pit_id":"p4","hits":{"hits":[]}}`, "", "p4", ""},
		{"no hits", `{"pit_id":"p5"}`, "", "", "no hits.hits"},
		{"truncated", `{"pit_id":"p6","hits":{"hits":[{"_id":"a","_sou`, "", "", "reading the answer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Elastic-Product", "Elasticsearch")
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == "/" {
					_, _ = w.Write([]byte(`{"version":{"number":"8.19.7"}}`))
					return
				}
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			ctx := ctxT(t)
			client, err := es.New(ctx, es.Config{Addresses: []string{srv.URL}})
			if err != nil {
				t.Fatal(err)
			}
			page, err := client.Search(ctx, es.SearchRequest{PIT: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			defer page.Close()
			var ids []string
			for {
				h, err := page.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					if c.wantErr == "" || !strings.Contains(err.Error(), c.wantErr) {
						t.Fatalf("error %v, want %q", err, c.wantErr)
					}
					return
				}
				id := h.ID
				if h.Routing != "" {
					id += "/" + h.Routing
				}
				ids = append(ids, id)
			}
			if c.wantErr != "" || strings.Join(ids, ",") != c.ids || page.PIT() != c.pit {
				t.Fatalf("hits %v, pit %q; want %s, %q (error %q)", ids, page.PIT(), c.ids, c.pit, c.wantErr)
			}
		})
	}
}
