package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	ctx, c := nodeClient(t, node, 3*time.Minute)
	base := fmt.Sprintf("sluice-search-test-%d", time.Now().UnixNano())
	src := base + "-src"
	const shards, docs = 3, 6000
	testenv.CreateIndex(ctx, t, c, src, shards)
	testenv.LoadDocs(ctx, t, c, src, 0, docs)

	sink := &memSink{}
	eng := &Engine{Budget: NewBudget(8 << 20), Bulk: c}
	lim := Limits{MaxOps: 100, MaxBytes: 64 << 10, FlushInterval: 50 * time.Millisecond}
	spec := func(target string, shard int) SearchSpec {
		return SearchSpec{Source: c, Name: fmt.Sprintf("es://%s shard %d", src, shard), Index: src, Shard: shard, Target: target, Limits: lim}
	}

	// resume runs a slice again from first to its end, and returns its final progress and the
	// shard's document count.
	resume := func(t *testing.T, target string, shard int, first Progress) (Progress, int64) {
		t.Helper()
		s := spec(target, shard)
		s.Resume = first
		final, err := eng.IngestSearch(ctx, s, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.CountShard(ctx, src, shard, nil)
		if err != nil {
			t.Fatal(err)
		}
		return final, want
	}

	t.Run("whole", func(t *testing.T) {
		target := base + "-whole"
		testenv.CreateIndex(ctx, t, c, target, 2)
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
			testenv.CreateIndex(ctx, t, c, target, 1)
			for shard := range shards {
				first, err := stopAt(ctx, eng, spec(target, shard), sink, at)
				if err == nil || first.Checkpoint < at || first.Search == nil {
					t.Fatalf("shard %d: first attempt ended at %+v (%v), want a stop past %d with a cursor", shard, first, err, at)
				}
				past := first.Checkpoint > firstPageHits // the cursor starts the second page, or the first
				if first.Search.Skip > first.Checkpoint || first.Checkpoint != firstPageHits && past != (first.Search.After != nil) {
					t.Fatalf("shard %d: cursor %+v at checkpoint %d", shard, first.Search, first.Checkpoint)
				}
				final, want := resume(t, target, shard, first)
				if final.Checkpoint != want || final.Stats.Read != want || final.Stats.Indexed-first.Stats.Indexed != want-first.Checkpoint {
					t.Fatalf("shard %d: resumed from %d to %+v: read %d after the checkpoint, want exactly %d of %d", shard, first.Checkpoint, final, final.Stats.Indexed-first.Stats.Indexed, want-first.Checkpoint, want)
				}
			}
			sameDocuments(ctx, t, c, src, target)
		})
	}

	t.Run("expired point in time", func(t *testing.T) {
		target := base + "-expired"
		testenv.CreateIndex(ctx, t, c, target, 1)
		for shard := range shards {
			first, err := stopAt(ctx, eng, spec(target, shard), sink, 700)
			if err == nil || first.Search == nil {
				t.Fatalf("first attempt: %+v %v", first, err)
			}
			if err := c.ClosePIT(ctx, first.Search.PIT); err != nil {
				t.Fatal(err)
			}
			final, want := resume(t, target, shard, first)
			if final.Checkpoint != want || final.Stats.Indexed != want {
				t.Fatalf("shard %d: restarted slice ended at %+v, want every one of its %d hits counted once", shard, final, want)
			}
		}
		sameDocuments(ctx, t, c, src, target)
	})
}

// nodeClient returns a client of node and a context that ends after timeout (or with t).
func nodeClient(t *testing.T, node testenv.Engine, timeout time.Duration) (context.Context, *esclient.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	c, err := esclient.New(ctx, esclient.Config{Addresses: []string{node.URL}})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, c
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

// sameDocuments compares two indexes: the same ids, routings and sources.
func sameDocuments(ctx context.Context, t *testing.T, c *esclient.Client, a, b string) {
	t.Helper()
	if da, db := testenv.IndexDigest(ctx, t, c, a), testenv.IndexDigest(ctx, t, c, b); da != db {
		t.Fatalf("%s and %s differ: %s != %s", a, b, da, db)
	}
}

// TestIngestSearchBigHitsOnNode: a hit past the small decoding buffer is read within the
// big-record reservation and indexed; one over --max-bytes is dead-lettered; one past twice the
// record cap fails the slice as bad input, naming its hit, instead of growing a buffer without
// bound. The budget is whole again after each run.
func TestIngestSearchBigHitsOnNode(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, node testenv.Engine) {
		ctx, c := nodeClient(t, node, 2*time.Minute)
		base := fmt.Sprintf("sluice-search-big-%d", time.Now().UnixNano())
		put := func(index, id string, padBytes int) {
			body := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", padBytes))
			if st, out, err := c.Do(ctx, http.MethodPut, "/"+index+"/_doc/"+id+"?refresh=true", []byte(body)); err != nil || st/100 != 2 {
				t.Fatalf("indexing %s: %d %v %.200s", id, st, err, out)
			}
		}
		src, huge, target := base+"-src", base+"-huge", base+"-dst"
		testenv.CreateIndex(ctx, t, c, src, 1)
		testenv.CreateIndex(ctx, t, c, huge, 1)
		testenv.CreateIndex(ctx, t, c, target, 1)
		put(src, "small", 10)
		put(src, "big", 300<<10)       // past smallBufferBytes, under --max-bytes
		put(src, "too-long", 1500<<10) // over --max-bytes, under twice the record cap
		put(huge, "huge", 3<<20)       // past twice the record cap

		budget := NewBudget(8 << 20)
		eng := &Engine{Budget: budget, Bulk: c}
		sink := &memSink{}
		spec := SearchSpec{Source: c, Name: "es://" + src + " shard 0", Index: src, Target: target, Limits: Limits{MaxBytes: 1 << 20}}
		prog, err := eng.IngestSearch(ctx, spec, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		if prog.Stats.Indexed != 2 || prog.Stats.DeadLettered != 1 || len(sink.letters) != 1 || !strings.Contains(sink.letters[0].Reason, "larger than the largest allowed request") {
			t.Fatalf("progress %+v, dead letters %+v; want 2 indexed and the 1.5 MiB hit dead-lettered", prog, sink.letters)
		}
		if l := sink.letters[0]; l.ID != "too-long" || l.Object != spec.Name {
			t.Fatalf("letter of the refused hit names %q id %q, want %q id too-long", l.Object, l.ID, spec.Name)
		}
		if budget.Used() != 0 {
			t.Fatalf("%d bytes of the budget still held after the slice", budget.Used())
		}

		spec.Name, spec.Index = "es://"+huge+" shard 0", huge
		_, err = eng.IngestSearch(ctx, spec, sink, nil)
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "a hit of more than") || !strings.Contains(err.Error(), "at offset 0") {
			t.Fatalf("a 3 MiB hit with --max-bytes 1MiB: %v, want bad input naming hit 0", err)
		}
		if budget.Used() != 0 {
			t.Fatalf("%d bytes of the budget still held after the failed slice", budget.Used())
		}
	})
}

// TestIngestSearchLettersOnNode: a hit that the target refuses is dead-lettered naming its
// slice, its hit number, its _id and its routing, so that a replay of the letter writes it
// under its own id; a hit that is taken has no letter.
func TestIngestSearchLettersOnNode(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, node testenv.Engine) {
		ctx, c := nodeClient(t, node, 2*time.Minute)
		base := fmt.Sprintf("sluice-search-letters-%d", time.Now().UnixNano())
		src, target := base+"-src", base+"-dst"
		testenv.CreateIndex(ctx, t, c, src, 1)
		var bulk strings.Builder
		for i := range 20 { // every third has a field the target refuses, every fourth a routing
			routing := ""
			if i%4 == 0 {
				routing = fmt.Sprintf(`,"routing":"r%d"`, i)
			}
			doc := fmt.Sprintf(`{"n":%d}`, i)
			if i%3 == 0 {
				doc = fmt.Sprintf(`{"n":%d,"extra":"x"}`, i)
			}
			fmt.Fprintf(&bulk, "{\"index\":{\"_id\":\"doc \\\"%d\\\"\"%s}}\n%s\n", i, routing, doc)
		}
		if st, out, err := c.Do(ctx, http.MethodPost, "/"+src+"/_bulk?refresh=true", []byte(bulk.String())); err != nil || st != 200 || strings.Contains(string(out), `"errors":true`) {
			t.Fatalf("loading %s: %d %v %.300s", src, st, err, out)
		}
		if err := c.CreateIndex(ctx, target, []byte(`{"settings":{"number_of_shards":1},"mappings":{"dynamic":"strict","properties":{"n":{"type":"long"}}}}`)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.DeleteIndex(context.Background(), target) })

		sink := &memSink{}
		eng := &Engine{Budget: NewBudget(8 << 20), Bulk: c}
		spec := SearchSpec{Source: c, Name: "es://" + src + " shard 0", Index: src, Target: target, Limits: Limits{MaxOps: 5}}
		prog, err := eng.IngestSearch(ctx, spec, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		if prog.Stats.Indexed != 13 || prog.Stats.DeadLettered != 7 || len(sink.letters) != 7 {
			t.Fatalf("progress %+v, %d letters; want 13 indexed and 7 dead-lettered", prog, len(sink.letters))
		}
		seen := map[string]bool{}
		for _, l := range sink.letters {
			var i int
			if _, err := fmt.Sscanf(l.ID, "doc \"%d\"", &i); err != nil || i%3 != 0 {
				t.Fatalf("letter %+v: id %q is not the _id of a refused document", l, l.ID)
			}
			wantRouting := ""
			if i%4 == 0 {
				wantRouting = fmt.Sprintf("r%d", i)
			}
			if l.Routing != wantRouting || l.Object != spec.Name || l.Offset < 0 || l.Offset >= 20 || l.Status != http.StatusBadRequest {
				t.Fatalf("letter of %q: object %q offset %d routing %q status %d; want %q, a hit number, routing %q, 400", l.ID, l.Object, l.Offset, l.Routing, l.Status, spec.Name, wantRouting)
			}
			if !strings.Contains(string(l.Record), fmt.Sprintf(`"n":%d`, i)) || seen[l.ID] {
				t.Fatalf("letter of %q holds %s (seen before: %v)", l.ID, l.Record, seen[l.ID])
			}
			seen[l.ID] = true
			parsed, err := ParseLetter(l.AppendJSON(nil))
			if err != nil || parsed.ID != l.ID || parsed.Routing != wantRouting {
				t.Fatalf("letter of %q reads back as id %q routing %q (%v)", l.ID, parsed.ID, parsed.Routing, err)
			}
		}
	})
}
