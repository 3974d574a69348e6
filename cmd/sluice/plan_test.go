package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/devserver"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
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
