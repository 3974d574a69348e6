package es_test

import (
	"context"
	"errors"
	"fmt"
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
			hits, pit, err := c.SearchAll(ctx, es.SearchRequest{PIT: pit, Size: 37})
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
