package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/activities"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/workertest"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

// Sizes of the two datasets the reindex tests load: the "old" and the "new" documents. They
// differ, so that a count through the alias says which index it saw.
const (
	oldDocs = 300
	newDocs = 500
	bigDocs = 20_000 // a load that lasts long enough to be canceled
)

// reindexIndexConfig maps the marker as a keyword and asks for a refresh interval, which the
// reindex must restore after its load.
const reindexIndexConfig = `{"settings":{"index":{"number_of_shards":1,"refresh_interval":"2s"}},
	"mappings":{"properties":{"marker":{"type":"keyword"},"n":{"type":"long"}}}}`

// reindexEnv is a real Temporal server (in process), a real worker, versitygw holding the two
// datasets under s3://data/old/ and s3://data/new/, and a client of the search engine.
type reindexEnv struct {
	t  *testing.T
	w  *worker.Worker
	es *esclient.Client
	tq string
}

func newReindexEnv(t *testing.T, ctx context.Context, e testenv.Engine) *reindexEnv {
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	s3.CreateBucket(t, "data")
	for _, ds := range []struct {
		marker string
		n      int
	}{{"old", oldDocs}, {"new", newDocs}, {"big", bigDocs}} {
		var data []byte
		for i := range ds.n {
			data = fmt.Appendf(data, `{"marker":%q,"n":%d}`+"\n", ds.marker, i)
		}
		s3.Put(t, "data", ds.marker+"/part.ndjson", data)
	}
	cfg := esclient.Config{Addresses: []string{e.URL}}
	w := workertest.Start(t, ctx, worker.Config{TaskQueue: "sluice-reindex", ES: cfg})
	c, err := esclient.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &reindexEnv{t: t, w: w, es: c, tq: "sluice-reindex"}
}

// alias returns a fresh alias name and deletes its indices when the test ends.
func (r *reindexEnv) alias(name string) string {
	alias := fmt.Sprintf("rx-%s-%d", name, time.Now().UnixNano())
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, pattern := range []string{alias + "-*", alias} {
			settings, err := r.es.GetSettings(ctx, pattern, true)
			if err != nil {
				continue
			}
			var all map[string]json.RawMessage
			_ = json.Unmarshal(settings, &all)
			for index := range all {
				_ = r.es.PutSettings(ctx, index, []byte(`{"index.blocks.read_only":false}`))
				if err := r.es.DeleteIndex(ctx, index); err != nil {
					r.t.Logf("cleanup: %v", err)
				}
			}
		}
	})
	return alias
}

func (r *reindexEnv) start(ctx context.Context, in workflows.ReindexInput) client.WorkflowRun {
	r.t.Helper()
	run, err := r.w.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "reindex-" + in.Alias + "-" + time.Now().Format("150405.000000"), TaskQueue: r.tq,
	}, workflows.ReindexName, in)
	if err != nil {
		r.t.Fatal(err)
	}
	return run
}

func (r *reindexEnv) reindex(ctx context.Context, in workflows.ReindexInput) workflows.ReindexResult {
	r.t.Helper()
	var res workflows.ReindexResult
	if err := r.start(ctx, in).Get(ctx, &res); err != nil {
		r.t.Fatalf("reindex of %s: %v", in.Alias, err)
	}
	return res
}

func reindexInput(alias, dataset string) workflows.ReindexInput {
	return workflows.ReindexInput{
		Alias:       alias,
		IndexConfig: json.RawMessage(reindexIndexConfig),
		Backfill: workflows.BackfillInput{
			Source:    activities.Source{URI: "s3://data/" + dataset + "/"},
			ChunkSize: 4 << 10, // several chunks
		},
	}
}

func (r *reindexEnv) aliasIndices(ctx context.Context, alias string) []string {
	r.t.Helper()
	indices, _, err := r.es.AliasIndices(ctx, alias)
	if err != nil {
		r.t.Fatal(err)
	}
	slices.Sort(indices)
	return indices
}

func (r *reindexEnv) exists(ctx context.Context, index string) bool {
	r.t.Helper()
	ok, err := r.es.IndexExists(ctx, index)
	if err != nil {
		r.t.Fatal(err)
	}
	return ok
}

// observation is what a reader saw through the alias: all documents, and those marked new.
type observation struct{ total, marked int64 }

func (r *reindexEnv) observe(ctx context.Context, alias string) (observation, error) {
	total, err := r.es.Count(ctx, alias, nil)
	if err != nil {
		return observation{}, err
	}
	marked, err := r.es.Count(ctx, alias, json.RawMessage(`{"term":{"marker":"new"}}`))
	return observation{total, marked}, err
}

// TestReindex runs the reindex scenarios on each engine: an alias that does not exist is
// created; a reader polling the alias during a reindex sees the old index until the swap and
// the new one after, never anything in between; --keep-old deletes the older indices; a
// failure at the swap leaves the alias where it was; a concrete index of the alias's name
// fails the reindex before anything is done.
func TestReindex(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		r := newReindexEnv(t, ctx, e)
		t.Run("swap seen atomically, keep-old", func(t *testing.T) { r.t = t; r.testSwap(ctx) })
		t.Run("failure at the swap", func(t *testing.T) { r.t = t; r.testFailedSwap(ctx) })
		t.Run("alias is an index", func(t *testing.T) { r.t = t; r.testAliasIsIndex(ctx) })
		t.Run("cancel during the load", func(t *testing.T) { r.t = t; r.testCancel(ctx) })
	})
}

func (r *reindexEnv) testSwap(ctx context.Context) {
	t := r.t
	alias := r.alias("swap")

	// An alias that does not exist yet is created.
	first := r.reindex(ctx, reindexInput(alias, "old"))
	if first.Count != oldDocs || first.Backfill.Stats.Indexed != oldDocs || len(first.Previous) != 0 {
		t.Fatalf("first reindex: %+v, want %d documents and no previous index", first, oldDocs)
	}
	if got := r.aliasIndices(ctx, alias); !slices.Equal(got, []string{first.Index}) {
		t.Fatalf("alias %s points to %v, want [%s]", alias, got, first.Index)
	}
	settings, err := r.es.GetSettings(ctx, first.Index, true)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(settings); !strings.Contains(s, `"index.refresh_interval":"2s"`) || strings.Contains(s, `"index.number_of_replicas":"0"`) {
		t.Fatalf("settings after the load: %s, want the configured refresh interval and the default replicas back", s)
	}

	// A reader polls the alias while the second reindex runs.
	var (
		mu      sync.Mutex
		seen    []observation
		pollErr error
	)
	done := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			o, err := r.observe(ctx, alias)
			mu.Lock()
			seen, pollErr = append(seen, o), err
			mu.Unlock()
			if err != nil {
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	second := r.reindex(ctx, reindexInput(alias, "new"))
	close(done)
	<-polled
	final, err := r.observe(ctx, alias)
	if err != nil {
		t.Fatal(err)
	}
	if pollErr != nil {
		t.Fatalf("reading through the alias during the reindex: %v", pollErr)
	}
	seen = append(seen, final)
	// Each count is one observation of one index: every count of all documents must be the old
	// index's or the new one's, every count of new documents 0 (old index) or all of them, and in
	// the order the counts were made (all, then new; observation after observation) the old
	// index is never seen again once the new one was.
	swappedAt := -1
	for i, o := range seen {
		for _, c := range []struct {
			what        string
			n, old, new int64
		}{{"documents", o.total, oldDocs, newDocs}, {"new documents", o.marked, 0, newDocs}} {
			switch {
			case c.n == c.old && swappedAt < 0:
			case c.n == c.new:
				if swappedAt < 0 {
					swappedAt = i
				}
			default:
				t.Fatalf("observation %d of %d through the alias: %d %s; want %d before the swap, %d after (first new at %d)",
					i, len(seen), c.n, c.what, c.old, c.new, swappedAt)
			}
		}
	}
	if seen[0] != (observation{oldDocs, 0}) || seen[len(seen)-1] != (observation{newDocs, newDocs}) {
		t.Fatalf("observations: first %v, last %v; want the old index first and the new one last", seen[0], seen[len(seen)-1])
	}
	t.Logf("%d observations through the alias, the new index from the %dth", len(seen), swappedAt+1)
	if !slices.Equal(second.Previous, []string{first.Index}) || second.Count != newDocs {
		t.Fatalf("second reindex: previous %v, count %d; want [%s], %d", second.Previous, second.Count, first.Index, newDocs)
	}
	if !r.exists(ctx, first.Index) {
		t.Fatalf("%s deleted without --keep-old", first.Index)
	}

	// --keep-old 1: the third reindex keeps the second index and deletes the first.
	in := reindexInput(alias, "new")
	keep := 1
	in.KeepOld = &keep
	third := r.reindex(ctx, in)
	if !slices.Equal(third.Deleted, []string{first.Index}) || third.PruneError != "" {
		t.Fatalf("third reindex deleted %v (error %q), want [%s]", third.Deleted, third.PruneError, first.Index)
	}
	if r.exists(ctx, first.Index) || !r.exists(ctx, second.Index) || !r.exists(ctx, third.Index) {
		t.Fatalf("after --keep-old 1: %s exists %v (want false), %s %v, %s %v (want true)", first.Index, r.exists(ctx, first.Index),
			second.Index, r.exists(ctx, second.Index), third.Index, r.exists(ctx, third.Index))
	}
	if got := r.aliasIndices(ctx, alias); !slices.Equal(got, []string{third.Index}) {
		t.Fatalf("alias %s points to %v, want [%s]", alias, got, third.Index)
	}
}

// testFailedSwap makes the swap itself fail for real: the old index is read-only, so the
// _aliases call cannot remove the alias from it (403 cluster_block_exception) and applies
// nothing. The alias must stay on the old index, and the new index be deleted (or kept with
// KeepFailed).
func (r *reindexEnv) testFailedSwap(ctx context.Context) {
	t := r.t
	alias := r.alias("fail")
	first := r.reindex(ctx, reindexInput(alias, "old"))
	if err := r.es.PutSettings(ctx, first.Index, []byte(`{"index.blocks.read_only":true}`)); err != nil {
		t.Fatal(err)
	}
	for _, keepFailed := range []bool{false, true} {
		in := reindexInput(alias, "new")
		in.KeepFailed = keepFailed
		run := r.start(ctx, in)
		err := run.Get(ctx, nil)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || !strings.Contains(err.Error(), "cluster_block_exception") {
			t.Fatalf("keep-failed %v: reindex ended with %v, want the swap's cluster_block_exception", keepFailed, err)
		}
		v, err := r.w.Client().QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.ReindexProgressQuery)
		if err != nil {
			t.Fatal(err)
		}
		var p workflows.ReindexProgress
		if err := v.Get(&p); err != nil {
			t.Fatal(err)
		}
		if p.Phase != workflows.ReindexFailed || p.Index == "" || p.Index == first.Index || p.Count != newDocs {
			t.Fatalf("progress of the failed reindex: %+v", p)
		}
		if got := r.aliasIndices(ctx, alias); !slices.Equal(got, []string{first.Index}) {
			t.Fatalf("keep-failed %v: alias points to %v after the failed swap, want [%s]", keepFailed, got, first.Index)
		}
		if n, err := r.es.Count(ctx, alias, nil); err != nil || n != oldDocs {
			t.Fatalf("keep-failed %v: %d documents through the alias (%v), want %d", keepFailed, n, err, oldDocs)
		}
		if got := r.exists(ctx, p.Index); got != keepFailed {
			t.Fatalf("keep-failed %v: new index %s exists: %v", keepFailed, p.Index, got)
		}
	}
}

func (r *reindexEnv) testAliasIsIndex(ctx context.Context) {
	t := r.t
	alias := r.alias("concrete")
	if err := r.es.CreateIndex(ctx, alias, nil); err != nil {
		t.Fatal(err)
	}
	err := r.start(ctx, reindexInput(alias, "new")).Get(ctx, nil)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeAliasIndex {
		t.Fatalf("reindex onto the index %s: %v, want %s", alias, err, activities.ErrTypeAliasIndex)
	}
	settings, err := r.es.GetSettings(ctx, alias+"-*", true)
	if err != nil || string(settings) != "{}" {
		t.Fatalf("indices %s-*: %s (%v), want none created", alias, settings, err)
	}
}

// testCancel cancels a reindex while its backfill loads: the alias stays on the old index and
// the new index is gone once the reindex has closed (deleted after the backfill's chunks
// stopped writing, or a late write would have created it again).
func (r *reindexEnv) testCancel(ctx context.Context) {
	t := r.t
	alias := r.alias("cancel")
	first := r.reindex(ctx, reindexInput(alias, "old"))
	in := reindexInput(alias, "big")
	in.Backfill.Concurrency = 1
	run := r.start(ctx, in)
	var p workflows.ReindexProgress
	deadline := time.Now().Add(time.Minute)
	for p.Phase != workflows.ReindexLoading {
		if time.Now().After(deadline) {
			t.Fatalf("the reindex did not start loading within a minute: %+v", p)
		}
		if v, err := r.w.Client().QueryWorkflow(ctx, run.GetID(), "", workflows.ReindexProgressQuery); err == nil {
			_ = v.Get(&p)
		}
	}
	if err := r.w.Client().CancelWorkflow(ctx, run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	var canceled *temporal.CanceledError
	if err := run.Get(ctx, nil); !errors.As(err, &canceled) {
		t.Fatalf("reindex ended with %v, want canceled", err)
	}
	// Once the backfill has closed too, no chunk can write any more.
	if err := r.w.Client().GetWorkflow(ctx, p.BackfillID, "").Get(ctx, nil); !errors.As(err, &canceled) {
		t.Fatalf("backfill %s ended with %v, want canceled", p.BackfillID, err)
	}
	if got := r.aliasIndices(ctx, alias); !slices.Equal(got, []string{first.Index}) {
		t.Fatalf("alias points to %v after the cancel, want [%s]", got, first.Index)
	}
	if r.exists(ctx, p.Index) {
		t.Fatalf("new index %s exists after the canceled reindex", p.Index)
	}
	if n, err := r.es.Count(ctx, alias, nil); err != nil || n != oldDocs {
		t.Fatalf("%d documents through the alias (%v), want %d", n, err, oldDocs)
	}
}
