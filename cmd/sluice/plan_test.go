package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/devserver"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestIngestPlan runs `sluice ingest --plan` against a real S3 server through a `sluice
// worker`: the plan counts objects, chunks and bytes by compression, and loads nothing.
func TestIngestPlan(t *testing.T) {
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	s3.CreateBucket(t, "data")
	var plain []byte
	for i := range 300 {
		plain = fmt.Appendf(plain, `{"n":%d,"pad":"%s"}`+"\n", i, strings.Repeat("x", 20))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	s3.Put(t, "data", "in/a.ndjson", plain)           // 3 chunks of 4 KiB and a bit
	s3.Put(t, "data", "in/b.ndjson.gz", gz.Bytes())   // by name: gzip
	s3.Put(t, "data", "in/c.zst", []byte("whatever")) // by name: zstd
	s3.Put(t, "data", "in/empty.ndjson", nil)
	es := esfake.New(esfake.Options{})
	t.Cleanup(es.Close)

	srv, err := devserver.Start(devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	addr := srv.FrontendAddress()
	wk := start(t, runWorker, "--temporal-address", addr, "--es-url", es.URL(), "--s3-endpoint", s3.Endpoint(),
		"--task-queue", "q-plan", "--log-level", "warn")
	wk.waitLine("sluice worker: polling task queue \"q-plan\"")

	var out, errOut bytes.Buffer
	code := run([]string{"ingest", "--source", "s3://data/in/", "--index", "planned", "--plan", "--json", "--chunk-size", "4KiB",
		"--task-queue", "q-plan", "--temporal-address", addr}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	var p planJSON
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatalf("%v in %s", err, &out)
	}
	size := int64(len(plain))
	wantChunks := (size + 4095) / 4096
	// The two small compressed objects share one packed chunk, counted under the compression
	// of its first object (see "How objects become chunks" in the README).
	if p.Objects != 4 || p.EmptyObjects != 1 || p.Chunks != wantChunks+1 || p.Bytes != size+int64(gz.Len())+8 || p.Format != "ndjson" {
		t.Errorf("plan %+v; want 4 objects (1 empty), %d chunks", p, wantChunks+1)
	}
	want := map[string]planGroupJSON{
		"none": {Objects: 1, Chunks: wantChunks, Bytes: size},
		"gzip": {Objects: 1, Chunks: 1, Bytes: int64(gz.Len())},
		"zstd": {Objects: 1, Chunks: 0, Bytes: 8},
	}
	if fmt.Sprint(p.ByCompression) != fmt.Sprint(want) {
		t.Errorf("by compression %v, want %v", p.ByCompression, want)
	}
	if len(p.Largest) != 3 || p.Largest[0].Key != "in/a.ndjson" || p.Estimate.Activities != wantChunks+1+1+1 || p.Estimate.Waves != 1 {
		t.Errorf("largest %+v, estimate %+v", p.Largest, p.Estimate)
	}
	if strings.Contains(errOut.String(), "no worker") {
		t.Errorf("warned of no worker with one polling:\n%s", &errOut)
	}

	out.Reset()
	code = run([]string{"ingest", "--source", "s3://data/in/", "--index", "planned", "--plan", "--chunk-size", "4KiB",
		"--task-queue", "q-plan", "--temporal-address", addr}, &out, &errOut)
	for _, w := range []string{"(nothing was loaded)", "4 (1 empty)", "  gzip       1 objects, 1 chunks", "largest      in/a.ndjson"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("no %q in\n%s", w, &out)
		}
	}
	if code != exitOK || es.Count("planned") != 0 {
		t.Fatalf("exit %d, %d documents loaded by a plan", code, es.Count("planned"))
	}
}

// TestNoWorkerHints: a plan and a backfill on a task queue no worker polls. Each warns that it
// starts when a worker does; the plan's wait is bounded and names the task queue; status names it too when the progress query gets no answer.
func TestNoWorkerHints(t *testing.T) {
	e := newClientEnv(t)
	hint := `is a worker polling task queue "nobody"? start one with 'sluice worker --task-queue nobody'`
	start := time.Now()
	code, _, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "no-worker", "--plan", "--plan-wait", "2s", "--task-queue", "nobody")
	if code != exitFailed || !strings.Contains(errOut, "no worker took up the plan in 2s; canceled it: "+hint) {
		t.Errorf("plan without a worker: exit %d, stderr %q; want exit %d and the hint", code, errOut, exitFailed)
	}
	if !strings.Contains(errOut, "lately; the plan starts when one does") || strings.Contains(errOut, "backfill") {
		t.Errorf("plan without a worker: stderr %q; want the warning to say the plan starts when one does", errOut)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("the plan without a worker took %s to give up", d)
	}

	code, out, errOut := e.sluice("ingest", "--source", "s3://data/in/", "--index", "no-worker", "--task-queue", "nobody", "--workflow-id", "no-worker")
	if code != exitOK || !strings.Contains(errOut, "lately; the backfill starts when one does") {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = e.sluice("status", "no-worker")
	if code != exitOK || !strings.Contains(out, "no answer to the progress query") || !strings.Contains(out, "("+hint+")") {
		t.Errorf("status without a worker: exit %d; want the hint in\n%s", code, out)
	}
}

// TestIngestPlanOfAnIndex runs `sluice ingest --plan` of an es:// source through a `sluice
// worker` against a real engine: one slice per primary shard of each concrete index the
// pattern names, each with the documents --query matches, their total and the estimate, in
// --json and in text; nothing is loaded.
func TestIngestPlanOfAnIndex(t *testing.T) {
	engine := testenv.Engines(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := esclient.New(ctx, esclient.Config{Addresses: []string{engine.URL}})
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("plan-idx-%d", time.Now().UnixNano())
	testenv.CreateIndex(ctx, t, c, base+"-a", 2)
	testenv.CreateIndex(ctx, t, c, base+"-b", 1)
	testenv.LoadDocs(ctx, t, c, base+"-a", 0, 200)
	testenv.LoadDocs(ctx, t, c, base+"-b", 200, 100)
	query := []byte(`{"range":{"n":{"lt":250}}}`)
	queryFile := filepath.Join(t.TempDir(), "q.json")
	if err := os.WriteFile(queryFile, query, 0o600); err != nil {
		t.Fatal(err)
	}

	srv, err := devserver.Start(devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	addr := srv.FrontendAddress()
	wk := start(t, runWorker, "--temporal-address", addr, "--es-url", engine.URL, "--task-queue", "q-plan-idx", "--log-level", "warn")
	wk.waitLine("sluice worker: polling task queue \"q-plan-idx\"")

	args := []string{"ingest", "--source", "es://" + base + "-*", "--index", base + "-dst", "--plan", "--query", queryFile,
		"--task-queue", "q-plan-idx", "--temporal-address", addr}
	var out, errOut bytes.Buffer
	if code := run(append(args, "--json"), &out, &errOut); code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	var p indexPlanJSON
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatalf("%v in %s", err, &out)
	}
	if p.Indices != 2 || p.Chunks != 3 || p.Documents != 250 || len(p.Slices) != 3 || p.SlicesLeftOut != 0 || p.Estimate.Activities != 3+1+1 {
		t.Fatalf("plan %+v; want 2 indices, 3 slices, 250 documents", p)
	}
	var sum int64
	for i, s := range p.Slices {
		want, err := c.CountShard(ctx, s.Index, s.Shard, query)
		if err != nil || s.Documents != want || s.Index != base+"-a" && s.Index != base+"-b" {
			t.Fatalf("slice %d %+v: want %d documents (%v)", i, s, want, err)
		}
		sum += s.Documents
	}
	if sum != p.Documents || p.Slices[2] != (planSliceJSON{Index: base + "-b", Shard: 0, Documents: 50}) {
		t.Fatalf("slices %+v sum to %d of %d", p.Slices, sum, p.Documents)
	}

	out.Reset()
	code := run(args, &out, &errOut)
	for _, w := range []string{"(nothing was loaded)", "indices      2 concrete, 3 slices", "documents    250 (those --query matches)",
		"slices       " + base + "-a shard 0: ", base + "-b shard 0: 50 documents", "estimate     5 activities"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("no %q in\n%s", w, &out)
		}
	}
	if exists, err := c.IndexExists(ctx, base+"-dst"); code != exitOK || err != nil || exists {
		t.Fatalf("exit %d; the target exists after a plan: %v %v", code, exists, err)
	}
}
