package activities_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/ingest/s3source"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
)

const bucket = "data"

// fixture is a real S3 server (versitygw), a fake Elasticsearch and the activities on them.
type fixture struct {
	s3   *s3test.Server
	es   *esfake.Server
	acts *activities.Activities
}

func newFixture(t *testing.T, esOpts esfake.Options) *fixture {
	t.Helper()
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	s3.CreateBucket(t, bucket)
	es := esfake.New(esOpts)
	t.Cleanup(es.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := s3source.New(ctx, s3source.Config{Endpoint: s3.Endpoint(), Region: s3test.Region})
	if err != nil {
		t.Fatal(err)
	}
	bulk, err := esclient.New(ctx, esclient.Config{Addresses: []string{es.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{
		Engine:            &ingest.Engine{Budget: ingest.NewBudget(64 << 20), Bulk: bulk},
		S3:                src,
		DeadLetterDir:     t.TempDir(),
		HeartbeatInterval: 20 * time.Millisecond,
	}
	t.Cleanup(func() { _ = acts.Close() })
	return &fixture{s3: s3, es: es, acts: acts}
}

// env is a fresh activity environment (heartbeat details set on one stay for its later runs).
func (f *fixture) env(hb *heartbeats) *testsuite.TestActivityEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	if hb != nil {
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{hb}})
	}
	f.acts.Register(env)
	return env
}

func (f *fixture) plan(t *testing.T, in activities.PlanPageInput) activities.PlanPageOutput {
	t.Helper()
	val, err := f.env(nil).ExecuteActivity(activities.PlanPageName, in)
	if err != nil {
		t.Fatalf("PlanPage: %v", err)
	}
	var out activities.PlanPageOutput
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// planAll plans every page of the source.
func (f *fixture) planAll(t *testing.T, in activities.PlanPageInput) (chunks []activities.Chunk, objects int) {
	t.Helper()
	for {
		out := f.plan(t, in)
		chunks = append(chunks, out.Chunks...)
		objects += out.Objects
		if out.Next == "" {
			return chunks, objects
		}
		in.Cursor = out.Next
	}
}

func (f *fixture) ingest(t *testing.T, env *testsuite.TestActivityEnvironment, in activities.IngestChunkInput) (activities.ChunkProgress, error) {
	t.Helper()
	val, err := env.ExecuteActivity(activities.IngestChunkName, in)
	if err != nil {
		return activities.ChunkProgress{}, err
	}
	var out activities.ChunkProgress
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

// records makes n NDJSON lines of varied lengths, and the offset of each.
func records(n int) (data []byte, offsets []int64) {
	for i := range n {
		offsets = append(offsets, int64(len(data)))
		data = fmt.Appendf(data, `{"n":%d,"pad":%q}`+"\n", i, strings.Repeat("x", (i*37)%211))
	}
	return data, offsets
}

func gzipped(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func source(prefix string) activities.Source {
	return activities.Source{URI: "s3://" + bucket + "/" + prefix, Format: ingest.FormatNDJSON, Compression: ingest.CompressionAuto, Index: "logs"}
}

// heartbeats records every heartbeat the activity sends (the SDK's listener only sees those
// that pass its throttle).
type heartbeats struct {
	interceptor.WorkerInterceptorBase
	mu     sync.Mutex
	got    []activities.ChunkProgress
	onBeat func(n int, hb activities.ChunkProgress)
}

func (h *heartbeats) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &hbInbound{h: h}
	i.Next = next
	return i
}

func (h *heartbeats) all() []activities.ChunkProgress {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]activities.ChunkProgress(nil), h.got...)
}

type hbInbound struct {
	interceptor.ActivityInboundInterceptorBase
	h *heartbeats
}

func (i *hbInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	o := &hbOutbound{h: i.h}
	o.Next = outbound
	return i.Next.Init(o)
}

type hbOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	h *heartbeats
}

func (o *hbOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	if len(details) != 1 {
		panic(fmt.Sprintf("heartbeat with %d details", len(details)))
	}
	hb := details[0].(activities.ChunkProgress)
	o.h.mu.Lock()
	o.h.got = append(o.h.got, hb)
	n := len(o.h.got)
	o.h.mu.Unlock()
	if o.h.onBeat != nil {
		o.h.onBeat(n, hb)
	}
	o.Next.RecordHeartbeat(ctx, details...)
}

func TestPlanPage(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	plain, _ := records(40)
	etags := map[string]string{
		"p/a.ndjson":    f.s3.Put(t, bucket, "p/a.ndjson", plain),
		"p/b.ndjson.gz": f.s3.Put(t, bucket, "p/b.ndjson.gz", gzipped(t, bytes.Repeat(plain, 10))),
		"p/c.ndjson":    f.s3.Put(t, bucket, "p/c.ndjson", plain[:100]),
		"p/d.ndjson":    f.s3.Put(t, bucket, "p/d.ndjson", plain[:1000]), // exactly 2 chunks
		"p/empty":       f.s3.Put(t, bucket, "p/empty", nil),
		// gzip under a plain name, large enough to be split if its bytes were not looked at
		"p/e.ndjson": f.s3.Put(t, bucket, "p/e.ndjson", gzipped(t, bytes.Repeat(plain, 10))),
	}
	f.s3.Put(t, bucket, "other/x.ndjson", plain) // outside the prefix
	sizes := map[string]int64{"p/a.ndjson": int64(len(plain)), "p/c.ndjson": 100, "p/d.ndjson": 1000, "p/empty": 0}

	in := activities.PlanPageInput{Source: source("p/"), PageSize: 2, ChunkSize: 500}
	first := f.plan(t, in)
	if first.Next == "" || first.Objects != 2 {
		t.Fatalf("first page: %d objects, next %q; want 2 and more to come", first.Objects, first.Next)
	}
	chunks, objects := f.planAll(t, in)
	if objects != 6 {
		t.Fatalf("%d objects, want 6", objects)
	}
	byKey := map[string][]activities.Chunk{}
	for _, c := range chunks {
		if c.ETag != etags[c.Key] || c.ETag == "" {
			t.Errorf("%s: ETag %q, want %q", c.Key, c.ETag, etags[c.Key])
		}
		if c.Resume != 0 {
			t.Errorf("%s: Resume %d", c.Key, c.Resume)
		}
		byKey[c.Key] = append(byKey[c.Key], c)
	}
	if len(byKey["p/empty"]) != 0 {
		t.Errorf("empty object got chunks %v", byKey["p/empty"])
	}
	// The planner's answer travels in each chunk: from the name, from the first bytes of an
	// object large enough to be cut, and "auto" for a small object it did not read.
	for key, want := range map[string]string{
		"p/a.ndjson": ingest.CompressionNone, "p/b.ndjson.gz": ingest.CompressionGzip,
		"p/c.ndjson": ingest.CompressionAuto, "p/d.ndjson": ingest.CompressionNone, "p/e.ndjson": ingest.CompressionGzip,
	} {
		for _, c := range byKey[key] {
			if c.Compression != want {
				t.Errorf("%s [%d, %d): compression %q, want %q", key, c.Start, c.End, c.Compression, want)
			}
		}
	}
	for _, key := range []string{"p/b.ndjson.gz", "p/e.ndjson"} {
		if gz := byKey[key]; len(gz) != 1 || gz[0].Start != 0 || gz[0].End != -1 || gz[0].Size <= 500 {
			t.Errorf("compressed object %s: chunks %+v, want one [0, -1)", key, gz)
		}
	}
	for _, key := range []string{"p/a.ndjson", "p/c.ndjson", "p/d.ndjson"} {
		cs := byKey[key]
		want := int((sizes[key] + 499) / 500)
		if len(cs) != want {
			t.Fatalf("%s (%d bytes): %d chunks, want %d", key, sizes[key], len(cs), want)
		}
		checkTiling(t, key, cs, sizes[key])
	}
}

// checkTiling checks that chunks cover [0, size) of one object without gap or overlap, the
// last one open-ended.
func checkTiling(t *testing.T, key string, cs []activities.Chunk, size int64) {
	t.Helper()
	var at int64
	for i, c := range cs {
		if c.Size != size || c.Start != at {
			t.Fatalf("%s chunk %d: %+v, want start %d and size %d", key, i, c, at, size)
		}
		if i == len(cs)-1 {
			if c.End != -1 {
				t.Fatalf("%s: last chunk ends at %d, want -1", key, c.End)
			}
			return
		}
		if c.End <= c.Start || c.End >= size {
			t.Fatalf("%s chunk %d: bad range %+v", key, i, c)
		}
		at = c.End
	}
}

func TestPlanPageBadURI(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	_, err := f.env(nil).ExecuteActivity(activities.PlanPageName, activities.PlanPageInput{Source: activities.Source{URI: "http://x"}})
	checkAppError(t, err, activities.ErrTypeBadInput)
	_, err = f.env(nil).ExecuteActivity(activities.PlanPageName, activities.PlanPageInput{Source: source("")}) // fine
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.env(nil).ExecuteActivity(activities.PlanPageName, activities.PlanPageInput{Source: activities.Source{URI: "s3://no-such-bucket/"}})
	checkAppError(t, err, activities.ErrTypeNotFound)
}

// TestIngestRangesIndexEachRecordOnce runs every chunk of a split object and of a compressed
// one, and checks that each record was sent and stored exactly once, under its own id.
func TestIngestRangesIndexEachRecordOnce(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	data, offsets := records(600)
	f.s3.Put(t, bucket, "r/plain.ndjson", data)
	f.s3.Put(t, bucket, "r/packed.ndjson.gz", gzipped(t, data))

	src := source("r/")
	chunks, _ := f.planAll(t, activities.PlanPageInput{Source: src, ChunkSize: 4 << 10})
	if len(chunks) < 10 {
		t.Fatalf("%d chunks; want the plain object cut into many", len(chunks))
	}
	var total activities.ChunkStats
	for _, c := range chunks {
		out, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{Source: src, Chunk: c, Limits: activities.Limits{MaxOps: 50}})
		if err != nil {
			t.Fatalf("chunk %+v: %v", c, err)
		}
		if out.Stats.Read != out.Stats.Indexed || out.Stats.DeadLettered != 0 {
			t.Errorf("chunk %+v: stats %+v", c, out.Stats)
		}
		if c.End < 0 && out.Checkpoint < int64(len(data)) {
			t.Errorf("chunk %+v: checkpoint %d, want the end of the object", c, out.Checkpoint)
		}
		total.Add(out.Stats)
	}
	if total.Read != 1200 || total.Indexed != 1200 {
		t.Fatalf("total %+v, want 1200 read and indexed", total)
	}
	if n := f.es.Count("logs"); n != 1200 {
		t.Fatalf("%d documents, want 1200", n)
	}
	if d := f.es.Stats().Duplicates; d != 0 {
		t.Fatalf("%d duplicate sends", d)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	for _, key := range []string{"r/plain.ndjson", "r/packed.ndjson.gz"} {
		for i, off := range offsets {
			doc, ok := f.es.Doc("logs", ingest.DocumentID(bucket, key, off))
			if !ok || !bytes.Equal(doc, lines[i]) {
				t.Fatalf("%s record %d at %d: stored %q (%v), want %q", key, i, off, doc, ok, lines[i])
			}
		}
	}
}

// TestIngestResumesFromHeartbeat gives the activity the heartbeat of an earlier attempt: only
// the records after its checkpoint are sent, and the counters continue from it.
func TestIngestResumesFromHeartbeat(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	data, offsets := records(300)
	etag := f.s3.Put(t, bucket, "resume.ndjson", data)
	src := source("resume.ndjson")
	chunk := activities.Chunk{Key: "resume.ndjson", ETag: etag, Size: int64(len(data)), End: -1}

	const done = 120
	carried := activities.ChunkStats{Read: done, Indexed: done - 2, DeadLettered: 2, Bytes: offsets[done]}
	env := f.env(nil)
	env.SetHeartbeatDetails(activities.ChunkProgress{Checkpoint: offsets[done], Stats: carried})
	out, err := f.ingest(t, env, activities.IngestChunkInput{Source: src, Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.es.Stats().Items; got != 300-done {
		t.Fatalf("%d items sent, want %d", got, 300-done)
	}
	for i, off := range offsets {
		_, ok := f.es.Doc("logs", ingest.DocumentID(bucket, chunk.Key, off))
		if ok != (i >= done) {
			t.Fatalf("record %d stored: %v", i, ok)
		}
	}
	want := activities.ChunkStats{Read: 300, Indexed: 298, DeadLettered: 2, Bytes: int64(len(data))}
	if out.Stats != want || out.Checkpoint != int64(len(data)) {
		t.Fatalf("output %+v, want stats %+v and checkpoint %d", out, want, len(data))
	}

	// Chunk.Resume (set by the workflow) works the same way, without counters; heartbeat
	// details that are behind it are ignored.
	env = f.env(nil)
	env.SetHeartbeatDetails(activities.ChunkProgress{Checkpoint: offsets[10], Stats: activities.ChunkStats{Read: 10}})
	chunk.Resume = offsets[250]
	out, err = f.ingest(t, env, activities.IngestChunkInput{Source: src, Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.es.Stats().Items; got != 300-done+50 {
		t.Fatalf("%d items sent in all, want %d", got, 300-done+50)
	}
	if out.Stats.Read != 50 || out.Stats.Indexed != 50 {
		t.Fatalf("output %+v, want 50 read and indexed", out)
	}
}

// TestIngestResumesMidRange resumes a chunk that starts inside the object.
func TestIngestResumesMidRange(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	data, offsets := records(300)
	etag := f.s3.Put(t, bucket, "mid.ndjson", data)
	src := source("mid.ndjson")
	// The range [offsets[100]-3, offsets[200]+5) owns records 100..200.
	chunk := activities.Chunk{Key: "mid.ndjson", ETag: etag, Size: int64(len(data)), Start: offsets[100] - 3, End: offsets[200] + 5}
	env := f.env(nil)
	env.SetHeartbeatDetails(activities.ChunkProgress{Checkpoint: offsets[150], Stats: activities.ChunkStats{Read: 50, Indexed: 50}})
	out, err := f.ingest(t, env, activities.IngestChunkInput{Source: src, Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.es.Stats().Items; got != 51 {
		t.Fatalf("%d items sent, want 51 (records 150..200)", got)
	}
	if out.Stats.Read != 101 || out.Checkpoint != offsets[201] {
		t.Fatalf("output %+v, want 101 read, checkpoint %d", out, offsets[201])
	}
}

func TestIngestObjectReplacedIsPermanent(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	data, _ := records(50)
	etag := f.s3.Put(t, bucket, "changing.ndjson", data)
	f.s3.Put(t, bucket, "changing.ndjson", append(data, data...))
	_, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{
		Source: source("changing.ndjson"),
		Chunk:  activities.Chunk{Key: "changing.ndjson", ETag: etag, Size: int64(len(data)), End: -1},
	})
	appErr := checkAppError(t, err, activities.ErrTypeObjectChanged)
	if !strings.Contains(appErr.Message(), "s3://data/changing.ndjson at offset 0") {
		t.Errorf("message %q does not name the object and offset", appErr.Message())
	}
	var hb activities.ChunkProgress
	if !appErr.HasDetails() || appErr.Details(&hb) != nil || hb.Checkpoint != 0 {
		t.Errorf("details: %v %+v", appErr.HasDetails(), hb)
	}
	if f.es.Stats().Items != 0 {
		t.Errorf("%d items sent", f.es.Stats().Items)
	}
}

func TestIngestMissingObjectIsPermanent(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	_, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{
		Source: source(""),
		Chunk:  activities.Chunk{Key: "nope.ndjson", End: -1},
	})
	checkAppError(t, err, activities.ErrTypeNotFound)
}

func TestIngestUnauthorizedIsPermanent(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	data, _ := records(20)
	etag := f.s3.Put(t, bucket, "a.ndjson", data)
	f.es.SetFault(func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk {
			return esfake.Decision{Status: http.StatusUnauthorized}
		}
		return esfake.Decision{}
	})
	_, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{
		Source: source("a.ndjson"),
		Chunk:  activities.Chunk{Key: "a.ndjson", ETag: etag, Size: int64(len(data)), End: -1},
	})
	appErr := checkAppError(t, err, activities.ErrTypeUnauthorized)
	if !strings.Contains(appErr.Message(), "s3://data/a.ndjson at offset 0") {
		t.Errorf("message %q does not name the object and offset", appErr.Message())
	}
}

func TestIngestTransientErrorIsRetryable(t *testing.T) {
	f := newFixture(t, esfake.Options{ItemFault: func(*esfake.Item) esfake.ItemError { return esfake.Unavailable() }})
	data, _ := records(20)
	etag := f.s3.Put(t, bucket, "a.ndjson", data)
	_, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{
		Source: source("a.ndjson"),
		Chunk:  activities.Chunk{Key: "a.ndjson", ETag: etag, Size: int64(len(data)), End: -1},
		Limits: activities.Limits{RetryMaxElapsed: 50 * time.Millisecond},
	})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.NonRetryable() {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "s3://data/a.ndjson at offset 0") || !strings.Contains(err.Error(), "retries exhausted") {
		t.Errorf("error %q", err)
	}
}

func TestIngestBadDeadLetterSpec(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	src := source("a.ndjson")
	src.DeadLetter = "s3:/elsewhere" // not a target: s3:// targets are checked against the allow-list (TestIngestDeadLettersToS3)
	_, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{Source: src, Chunk: activities.Chunk{Key: "a.ndjson", End: -1}})
	checkAppError(t, err, activities.ErrTypeBadInput)
}

// TestIngestDeadLetterFileStaysInTheWorkersDirectory: a workflow input names a file, never
// where it goes; a worker without a dead-letter directory writes no file at all.
func TestIngestDeadLetterFileStaysInTheWorkersDirectory(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	outside := filepath.Join(t.TempDir(), "outside.ndjson")
	for _, dl := range []string{"file:" + outside, "file:../outside.ndjson", "file:a/../../outside.ndjson"} {
		src := source("a.ndjson")
		src.DeadLetter = dl
		_, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{Source: src, Chunk: activities.Chunk{Key: "a.ndjson", End: -1}})
		checkAppError(t, err, activities.ErrTypeBadInput)
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Fatalf("a dead-letter file was created outside the worker's directory: %v", err)
	}
	f.acts.DeadLetterDir = ""
	src := source("a.ndjson")
	src.DeadLetter = "file:dead.ndjson"
	_, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{Source: src, Chunk: activities.Chunk{Key: "a.ndjson", End: -1}})
	checkAppError(t, err, activities.ErrTypeBadConfig)
}

// TestIngestDeadLetters sends refused records to the dead-letter index beside the target, or
// to a file.
func TestIngestDeadLetters(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	data := []byte("{\"ok\":1}\nnot json\n{\"ok\":2}\n{\"bad\":\n")
	etag := f.s3.Put(t, bucket, "dl.ndjson", data)
	chunk := activities.Chunk{Key: "dl.ndjson", ETag: etag, Size: int64(len(data)), End: -1}

	out, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{Source: source("dl.ndjson"), Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	if out.Stats.Read != 4 || out.Stats.Indexed != 2 || out.Stats.DeadLettered != 2 {
		t.Fatalf("stats %+v", out.Stats)
	}
	if n := f.es.Count("logs-dead-letters"); n != 2 {
		t.Fatalf("%d dead letters in the index, want 2", n)
	}
	doc, ok := f.es.Doc("logs-dead-letters", ingest.DeadLetterID("s3://data/dl.ndjson", 9))
	if !ok || !bytes.Contains(doc, []byte(`"record":"not json"`)) {
		t.Fatalf("dead letter at 9: %s", doc)
	}

	path := filepath.Join(f.acts.DeadLetterDir, "dead.ndjson")
	src := source("dl.ndjson")
	src.DeadLetter = "file:dead.ndjson"
	if _, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{Source: src, Chunk: chunk}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dead-letter file under the worker's directory: %v, %v; want mode 0600", fi, err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	n := 0
	for sc := bufio.NewScanner(fh); sc.Scan(); n++ {
	}
	if n != 2 {
		t.Fatalf("%d lines in the dead-letter file, want 2", n)
	}
}

// TestIngestHeartbeatsWhileStalled holds the first _bulk request until the activity has sent
// a few keep-alive heartbeats, then checks that every heartbeat carries details, that
// checkpoints never go back, and that the last one is the end of the object.
func TestIngestHeartbeatsWhileStalled(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	f := newFixture(t, esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk && r.Seq == 1 {
			<-release
		}
		return esfake.Decision{}
	}})
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before es.Close (cleanups run last-in first-out)
	data, _ := records(200)
	etag := f.s3.Put(t, bucket, "slow.ndjson", data)
	hbs := &heartbeats{onBeat: func(n int, hb activities.ChunkProgress) {
		if n == 4 {
			once.Do(func() { close(release) })
		}
	}}
	out, err := f.ingest(t, f.env(hbs), activities.IngestChunkInput{
		Source: source("slow.ndjson"),
		Chunk:  activities.Chunk{Key: "slow.ndjson", ETag: etag, Size: int64(len(data)), End: -1},
		// One request in flight, so that the held first request is the first batch.
		Limits: activities.Limits{MaxOps: 20, Inflight: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := hbs.all()
	if len(got) < 4 {
		t.Fatalf("%d heartbeats, want at least 4", len(got))
	}
	for i := 1; i < 4; i++ {
		if got[i].Checkpoint != 0 {
			t.Fatalf("heartbeat %d while stalled: %+v, want checkpoint 0", i, got[i])
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Checkpoint < got[i-1].Checkpoint || got[i].Stats.Read < got[i-1].Stats.Read {
			t.Fatalf("heartbeat %d went back: %+v after %+v", i, got[i], got[i-1])
		}
	}
	last := got[len(got)-1]
	if last.Checkpoint != int64(len(data)) || last.Stats != out.Stats || out.Stats.Indexed != 200 {
		t.Fatalf("last heartbeat %+v, output %+v", last, out)
	}
}

// TestIngestStopsAtCheckpointOnWorkerStop stops the worker while a _bulk request hangs: the
// activity returns a retryable error and has heartbeated how far it got.
func TestIngestStopsAtCheckpointOnWorkerStop(t *testing.T) {
	release := make(chan struct{})
	f := newFixture(t, esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk && r.Seq > 1 {
			<-release
		}
		return esfake.Decision{}
	}})
	t.Cleanup(func() { close(release) })
	data, offsets := records(100)
	etag := f.s3.Put(t, bucket, "stop.ndjson", data)
	stop := make(chan struct{})
	hbs := &heartbeats{}
	hbs.onBeat = func(n int, hb activities.ChunkProgress) {
		if hb.Checkpoint == offsets[10] {
			select {
			case <-stop:
			default:
				close(stop) // the first batch is acknowledged; the second hangs
			}
		}
	}
	env := f.env(hbs)
	env.SetWorkerStopChannel(stop)
	_, err := f.ingest(t, env, activities.IngestChunkInput{
		Source: source("stop.ndjson"),
		Chunk:  activities.Chunk{Key: "stop.ndjson", ETag: etag, Size: int64(len(data)), End: -1},
		Limits: activities.Limits{MaxOps: 10, Inflight: 1},
	})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.NonRetryable() || !strings.Contains(err.Error(), "worker stopping") {
		t.Fatalf("err = %v, want a retryable worker-stopping error", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("at offset %d", offsets[10])) {
		t.Errorf("error %q does not name the checkpoint %d", err, offsets[10])
	}
	got := hbs.all()
	if last := got[len(got)-1]; last.Checkpoint != offsets[10] || last.Stats.Indexed != 10 {
		t.Fatalf("last heartbeat %+v, want checkpoint %d with 10 indexed", last, offsets[10])
	}
}

func checkAppError(t *testing.T, err error, typ string) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("err = %v, want an application error of type %s", err, typ)
	}
	if appErr.Type() != typ || !appErr.NonRetryable() {
		t.Fatalf("err = %v: type %q non-retryable %v, want %q non-retryable", err, appErr.Type(), appErr.NonRetryable(), typ)
	}
	return appErr
}

// TestPlanPageBoundsItsSize asks for absurdly small chunks: the page grows the chunk size
// until its encoding fits in MaxPlanPageBytes, and the ranges still tile the object.
func TestPlanPageBoundsItsSize(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	data, _ := records(400) // about 45 KB: 45,000 one-byte chunks would be several MB
	f.s3.Put(t, bucket, "big.ndjson", data)
	out := f.plan(t, activities.PlanPageInput{Source: source("big.ndjson"), ChunkSize: 1})
	encoded, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(encoded) > activities.MaxPlanPageBytes || len(out.Chunks) < 100 {
		t.Fatalf("%d chunks, %d bytes encoded; want many chunks within %d bytes", len(out.Chunks), len(encoded), activities.MaxPlanPageBytes)
	}
	checkTiling(t, "big.ndjson", out.Chunks, int64(len(data)))
}

// TestIngestStallFailsTheAttempt hangs every _bulk request after the first one (no answer, no
// timeout within the test): the chunk stops heartbeating after StallTimeout without progress
// and fails its attempt with a retryable error at the checkpoint it reached, from which the
// next attempt resumes.
func TestIngestStallFailsTheAttempt(t *testing.T) {
	f := newFixture(t, esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		return esfake.Decision{Hang: r.Endpoint == esfake.Bulk && r.Seq > 1}
	}})
	f.acts.StallTimeout = 300 * time.Millisecond
	data, offsets := records(100)
	etag := f.s3.Put(t, bucket, "hang.ndjson", data)
	hbs := &heartbeats{}
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		_, err := f.ingest(t, f.env(hbs), activities.IngestChunkInput{
			Source: source("hang.ndjson"),
			Chunk:  activities.Chunk{Key: "hang.ndjson", ETag: etag, Size: int64(len(data)), End: -1},
			Limits: activities.Limits{MaxOps: 10, Inflight: 1},
		})
		done <- result{err}
	}()
	var err error
	select {
	case r := <-done:
		err = r.err
	case <-time.After(60 * time.Second):
		t.Fatal("IngestChunk still running 60s into a hung _bulk request: no stall detection")
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.NonRetryable() || !strings.Contains(err.Error(), "stalled") {
		t.Fatalf("err = %v, want a retryable stall error", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("s3://data/hang.ndjson at offset %d", offsets[10])) {
		t.Errorf("error %q does not name the object and the checkpoint %d", err, offsets[10])
	}
	got := hbs.all()
	if last := got[len(got)-1]; last.Checkpoint != offsets[10] || last.Stats.Indexed != 10 {
		t.Fatalf("last heartbeat %+v, want checkpoint %d with 10 indexed", last, offsets[10])
	}
}

// TestPlanPageObjectVanishedOrChanged deletes one object and replaces another between the
// listing and the planner's look at their first bytes (a proxy does it when the planner's GET
// arrives): the page is planned anyway, each of the two as one whole-object chunk, whose
// ingestion then fails for good naming the object. So the backfill counts failed chunks
// instead of failing its planning.
func TestPlanPageObjectVanishedOrChanged(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	data, _ := records(60)
	for _, k := range []string{"v/a.ndjson", "v/changed.ndjson", "v/gone.ndjson"} {
		f.s3.Put(t, bucket, k, data)
	}
	target, err := url.Parse(f.s3.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target) // keeps the Host the client signed
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
			once.Do(func() {
				ctx := context.Background()
				if _, err := f.s3.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("v/gone.ndjson")}); err != nil {
					t.Errorf("delete: %v", err)
				}
				f.s3.Put(t, bucket, "v/changed.ndjson", append(data, data...))
			})
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if f.acts.S3, err = s3source.New(ctx, s3source.Config{Endpoint: srv.URL, Region: s3test.Region}); err != nil {
		t.Fatal(err)
	}

	out := f.plan(t, activities.PlanPageInput{Source: source("v/"), ChunkSize: 1000})
	byKey := map[string][]activities.Chunk{}
	for _, c := range out.Chunks {
		byKey[c.Key] = append(byKey[c.Key], c)
	}
	if out.Objects != 3 || len(byKey["v/a.ndjson"]) < 2 {
		t.Fatalf("planned %d objects, chunks %v", out.Objects, byKey)
	}
	for key, typ := range map[string]string{"v/gone.ndjson": activities.ErrTypeNotFound, "v/changed.ndjson": activities.ErrTypeObjectChanged} {
		cs := byKey[key]
		if len(cs) != 1 || cs[0].Start != 0 || cs[0].End != -1 || cs[0].Compression != ingest.CompressionAuto {
			t.Fatalf("%s: chunks %+v, want one whole-object chunk", key, cs)
		}
		_, err := f.ingest(t, f.env(nil), activities.IngestChunkInput{Source: source("v/"), Chunk: cs[0]})
		appErr := checkAppError(t, err, typ)
		if !strings.Contains(appErr.Message(), "s3://data/"+key) {
			t.Errorf("message %q does not name the object", appErr.Message())
		}
	}
}
