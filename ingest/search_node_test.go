package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestIngestSearchOnNode migrates an index shard by shard on each real engine: every document
// arrives once with its _id, _routing and contents; a slice stopped mid-way resumes exactly
// at its checkpoint (in its first page, and past it, where the cursor holds search_after);
// a slice whose point in time was closed between attempts starts over and still ends exact.
func TestIngestSearchOnNode(t *testing.T) {
	testenv.ForEachEngine(t, testIngestSearchOnNode)
}

func testIngestSearchOnNode(t *testing.T, node testenv.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := esclient.New(ctx, esclient.Config{Addresses: []string{node.URL}})
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("sluice-search-test-%d", time.Now().UnixNano())
	src := base + "-src"
	const shards, docs = 3, 6000
	createIndex(ctx, t, c, src, shards)
	loadDocs(ctx, t, c, src, docs)

	sink := &memSink{}
	eng := &Engine{Budget: NewBudget(8 << 20), Bulk: c}
	lim := Limits{MaxOps: 100, MaxBytes: 64 << 10, FlushInterval: 50 * time.Millisecond}
	spec := func(target string, shard int) SearchSpec {
		return SearchSpec{Source: c, Name: fmt.Sprintf("es://%s shard %d", src, shard), Index: src, Shard: shard, Target: target, Limits: lim}
	}

	t.Run("whole", func(t *testing.T) {
		target := base + "-whole"
		createIndex(ctx, t, c, target, 2)
		var total Stats
		for shard := range shards {
			prog, err := eng.IngestSearch(ctx, spec(target, shard), sink, nil)
			if err != nil {
				t.Fatal(err)
			}
			if prog.Stats.Bytes != prog.Checkpoint || prog.Stats.Read != prog.Checkpoint {
				t.Fatalf("shard %d: progress %+v: Bytes and Read should count the hits", shard, prog)
			}
			total.Add(prog.Stats)
		}
		if total.Indexed != docs || total.Read != docs || len(sink.letters) != 0 {
			t.Fatalf("stats %+v, %d dead letters; want %d indexed", total, len(sink.letters), docs)
		}
		sameDocuments(ctx, t, c, src, target)
	})

	for _, at := range []int64{200, 700} { // in the first page (500 hits), and past it
		t.Run(fmt.Sprintf("resume at %d", at), func(t *testing.T) {
			target := fmt.Sprintf("%s-resume-%d", base, at)
			createIndex(ctx, t, c, target, 1)
			for shard := range shards {
				first, err := stopAt(ctx, eng, spec(target, shard), sink, at)
				if err == nil || first.Checkpoint < at || first.Search == nil {
					t.Fatalf("shard %d: first attempt ended at %+v (%v), want a stop past %d with a cursor", shard, first, err, at)
				}
				past := first.Checkpoint > firstPageHits // the cursor starts the second page, or the first
				if first.Search.Skip > first.Checkpoint || first.Checkpoint != firstPageHits && past != (first.Search.After != nil) {
					t.Fatalf("shard %d: cursor %+v at checkpoint %d", shard, first.Search, first.Checkpoint)
				}
				s := spec(target, shard)
				s.Resume = first
				final, err := eng.IngestSearch(ctx, s, sink, nil)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := c.CountShard(ctx, src, shard, nil)
				if final.Checkpoint != want || final.Stats.Read != want || final.Stats.Indexed-first.Stats.Indexed != want-first.Checkpoint {
					t.Fatalf("shard %d: resumed from %d to %+v: read %d after the checkpoint, want exactly %d of %d", shard, first.Checkpoint, final, final.Stats.Indexed-first.Stats.Indexed, want-first.Checkpoint, want)
				}
			}
			sameDocuments(ctx, t, c, src, target)
		})
	}

	t.Run("expired point in time", func(t *testing.T) {
		target := base + "-expired"
		createIndex(ctx, t, c, target, 1)
		for shard := range shards {
			first, err := stopAt(ctx, eng, spec(target, shard), sink, 700)
			if err == nil || first.Search == nil {
				t.Fatalf("first attempt: %+v %v", first, err)
			}
			if err := c.ClosePIT(ctx, first.Search.PIT); err != nil {
				t.Fatal(err)
			}
			s := spec(target, shard)
			s.Resume = first
			final, err := eng.IngestSearch(ctx, s, sink, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := c.CountShard(ctx, src, shard, nil)
			if final.Checkpoint != want || final.Stats.Indexed != want {
				t.Fatalf("shard %d: restarted slice ended at %+v, want every one of its %d hits counted once", shard, final, want)
			}
		}
		sameDocuments(ctx, t, c, src, target)
	})
}

// stopAt runs a slice until its checkpoint passes at, then stops it.
func stopAt(ctx context.Context, eng *Engine, spec SearchSpec, sink DeadLetterSink, at int64) (Progress, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return eng.IngestSearch(ctx, spec, sink, func(p Progress) {
		if p.Checkpoint >= at {
			cancel()
		}
	})
}

func createIndex(ctx context.Context, t *testing.T, c *esclient.Client, index string, shards int) {
	t.Helper()
	body := fmt.Sprintf(`{"settings":{"number_of_shards":%d,"number_of_replicas":0}}`, shards)
	if err := c.CreateIndex(ctx, index, []byte(body)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteIndex(context.Background(), index) })
}

// loadDocs indexes docs documents of varied sizes; every tenth has a custom _routing.
func loadDocs(ctx context.Context, t *testing.T, c *esclient.Client, index string, docs int) {
	t.Helper()
	var b bytes.Buffer
	for i := range docs {
		routing := ""
		if i%10 == 0 {
			routing = fmt.Sprintf(`,"routing":"r%d"`, i%7)
		}
		fmt.Fprintf(&b, "{\"index\":{\"_id\":\"doc \\\"%d\\\"\"%s}}\n{\"n\":%d,\"pad\":%q}\n", i, routing, i, strings.Repeat("x", i%300))
	}
	st, out, err := c.Do(ctx, http.MethodPost, "/"+index+"/_bulk?refresh=true", b.Bytes())
	if err != nil || st != 200 || bytes.Contains(out[:min(len(out), 64)], []byte(`"errors":true`)) {
		t.Fatalf("loading %s: %d %v %.300s", index, st, err, out)
	}
}

// sameDocuments compares two indexes: the same ids, routings and sources.
func sameDocuments(ctx context.Context, t *testing.T, c *esclient.Client, a, b string) {
	t.Helper()
	if err := c.Refresh(ctx, b); err != nil {
		t.Fatal(err)
	}
	ha, hb := documentsHash(ctx, t, c, a), documentsHash(ctx, t, c, b)
	if ha != hb {
		t.Fatalf("%s and %s differ: %s != %s", a, b, ha, hb)
	}
}

func documentsHash(ctx context.Context, t *testing.T, c *esclient.Client, index string) string {
	t.Helper()
	pit, err := c.OpenPIT(ctx, index, time.Minute, esclient.NoShard)
	if err != nil {
		t.Fatal(err)
	}
	hits, pit, err := c.SearchAll(ctx, esclient.SearchRequest{PIT: pit, Size: 2000})
	_ = c.ClosePIT(ctx, pit)
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(hits))
	for i, h := range hits {
		var src any
		if err := json.Unmarshal(h.Source, &src); err != nil {
			t.Fatal(err)
		}
		norm, _ := json.Marshal(src)
		lines[i] = h.ID + "\x00" + h.Routing + "\x00" + string(norm)
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return fmt.Sprintf("%d docs %x", len(lines), sum[:8])
}
