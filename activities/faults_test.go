package activities_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/ingest/s3source"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
)

// Settings of the fault table (TestFaultTable). Timeouts are short so that each fault is
// noticed in seconds: what a fault costs with the defaults (2m request timeout, 30s S3 idle
// timeout, 5m stall timeout) is only longer waits through the same code.
const (
	faultBudget         = 32 << 20 // the worker's memory budget
	faultRSSBound       = faultBudget + 160<<20
	faultRequestTimeout = 2 * time.Second
	faultStallTimeout   = 4 * time.Second
	faultS3IdleTimeout  = time.Second
	faultDownFor        = 10 * time.Second // "down for 30 s" in the issue; the same path, shorter
	faultHangFor        = 6 * time.Second
	faultStartAfter     = time.Second
	faultDocsPerSecond  = 2000 // per chunk, for the faults that end: a chunk lasts about 3.6 s
	faultAttempts       = 30   // attempts per chunk, as the workflow's retry policy allows
	faultRowTimeout     = 3 * time.Minute
)

// faultRow is one fault: what it does to the proxies (or the fake) while the backfill runs.
type faultRow struct {
	name   string
	engine string // "opensearch" (the real node behind toxiproxy) or "fake" (esfake)
	// lasts is how long the fault lasts, from faultStartAfter into the run; 0: the whole run,
	// from its start.
	lasts time.Duration
	// retries: the fault makes the engine resend requests (Stats.Retried > 0), the proof
	// that it bit.
	retries bool
	// inject starts the fault; it returns a function that ends it (nil when lasts is 0).
	inject func(t *testing.T, r *faultRig) (end func())
}

var faultRows = []faultRow{
	{"opensearch resets mid-response", "opensearch", 0, true, func(t *testing.T, r *faultRig) func() {
		// Half the connections to the node are cut 600 bytes into the answer: the documents
		// were indexed, the client never learns it, and sends them again.
		r.toxic(t, r.esProxy, `{"name":"cut","type":"limit_data","stream":"downstream","toxicity":0.5,"attributes":{"bytes":600}}`)
		return nil
	}},
	{"opensearch hangs", "opensearch", faultHangFor, true, func(t *testing.T, r *faultRig) func() {
		// Nothing comes back, connections stay open: request timeouts and the stall detector.
		r.toxic(t, r.esProxy, `{"name":"hang","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`)
		return func() { r.untoxic(t, r.esProxy, "hang") }
	}},
	{"opensearch down", "opensearch", faultDownFor, true, func(t *testing.T, r *faultRig) func() {
		addr := r.esProxy.Listen
		r.esProxy.Stop() // refused connections, open ones closed
		return func() {
			r.esProxy.Listen = addr
			if err := r.esProxy.Start(); err != nil {
				t.Errorf("restarting the proxy: %v", err)
			}
		}
	}},
	{"s3 resets mid-body", "opensearch", 0, false, func(t *testing.T, r *faultRig) func() {
		// Every connection to S3 is closed after 200 KiB: each ranged GET breaks and reopens.
		r.toxic(t, r.s3Proxy, `{"name":"cut","type":"limit_data","stream":"downstream","attributes":{"bytes":204800}}`)
		return nil
	}},
	{"slow s3", "opensearch", 0, false, func(t *testing.T, r *faultRig) func() {
		r.toxic(t, r.s3Proxy, `{"name":"slow","type":"bandwidth","stream":"downstream","attributes":{"rate":256}}`)
		r.toxic(t, r.s3Proxy, `{"name":"late","type":"latency","stream":"downstream","attributes":{"latency":100,"jitter":50}}`)
		return nil
	}},
	{"429 storm", "fake", 0, true, func(t *testing.T, r *faultRig) func() {
		// Every item is refused twice before it is taken.
		r.fake.SetItemFault(func(it *esfake.Item) esfake.ItemError {
			if it.Attempt <= 2 {
				return esfake.Rejected()
			}
			return esfake.ItemError{}
		})
		return nil
	}},
}

// TestFaultTable runs a small backfill (three objects, plain and gzip, with invalid records;
// 5 chunks) through each fault of faultRows, with the real activities (PlanPage, IngestChunk)
// retried as Temporal's retry policy would (a failed attempt resumes from its last heartbeat),
// against the real S3 server and the real OpenSearch node each behind an in-process toxiproxy.
// For each row: no record lost, none indexed twice (the index holds exactly the valid records),
// the dead letters are exactly the invalid records, and the process's peak RSS is within
// faultRSSBound. The Temporal server restart and worker SIGKILLs are end-to-end tests
// (e2e: TestServerRestart, TestCrashAndResume).
func TestFaultTable(t *testing.T) {
	if testing.Short() {
		t.Skip("fault table: skipped with -short")
	}
	osURL := testenv.OpenSearchURL(t)
	for _, row := range faultRows {
		t.Run(strings.ReplaceAll(row.name, " ", "_"), func(t *testing.T) {
			r := newFaultRig(t, osURL, row.engine)
			resetPeakRSS(t)
			start := time.Now()
			if row.lasts == 0 {
				if end := row.inject(t, r); end != nil {
					t.Fatal("a fault for the whole run has an end")
				}
			} else {
				// A fault that ends begins once chunks are running, and lasts row.lasts. The
				// chunks are capped to faultDocsPerSecond so that the run outlasts
				// faultStartAfter on any machine (a slower one only makes it longer): the fault
				// meets requests in flight.
				r.limits.MaxDocsPerSecond = faultDocsPerSecond
				var mu sync.Mutex // the fault's start and end, and the test's end
				stopped := false
				begin := time.AfterFunc(faultStartAfter, func() {
					mu.Lock()
					defer mu.Unlock()
					end := row.inject(t, r)
					time.AfterFunc(row.lasts, func() {
						mu.Lock()
						defer mu.Unlock()
						if !stopped {
							end()
						}
					})
				})
				t.Cleanup(func() {
					begin.Stop()
					mu.Lock()
					stopped = true
					mu.Unlock()
				})
			}
			got := r.backfill(t)
			peak := peakRSS(t)
			r.check(t, got)
			if row.retries && got.stats.Retried == 0 && got.attempts == 5 {
				t.Errorf("no request resent and no attempt failed: the fault did not bite")
			}
			if peak > faultRSSBound {
				t.Errorf("peak RSS %d MiB, bound %d MiB", peak>>20, faultRSSBound>>20)
			}
			t.Logf("ROW | %s | lost 0 | duplicated 0 | dead letters %d of %d invalid | attempts %d of 5 chunks | records resent %d | peak RSS %d MiB | %s",
				row.name, got.deadLetters, len(r.invalid), got.attempts, got.stats.Retried, peak>>20, time.Since(start).Round(100*time.Millisecond))
		})
	}
}

// faultRig is one row's world: versitygw and OpenSearch (or esfake) behind proxies, the
// dataset, and activities for planning (direct) and for ingesting (through the proxies).
type faultRig struct {
	s3      *s3test.Server
	esProxy *toxiproxy.Proxy
	s3Proxy *toxiproxy.Proxy
	fake    *esfake.Server
	count   func(t *testing.T) int64
	plan    *activities.Activities
	acts    *activities.Activities
	index   string
	limits  activities.Limits // of every chunk
	dlDir   string
	valid   int64
	invalid map[string]bool // "key@offset"
}

func newFaultRig(t *testing.T, osURL, engine string) *faultRig {
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	s3.CreateBucket(t, bucket)
	r := &faultRig{s3: s3, index: fmt.Sprintf("sluice-faults-%d", time.Now().UnixNano()), dlDir: t.TempDir(), invalid: map[string]bool{}}
	r.putDataset(t)

	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	r.s3Proxy = startProxy(t, srv, "s3", s3.Endpoint())
	upstream := osURL
	if engine == "fake" {
		r.fake = esfake.New(esfake.Options{})
		t.Cleanup(r.fake.Close)
		upstream = r.fake.URL()
		r.count = func(*testing.T) int64 { return int64(r.fake.Count(r.index)) }
	}
	r.esProxy = startProxy(t, srv, "es", upstream)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	direct, err := esclient.New(ctx, esclient.Config{Addresses: []string{upstream}})
	if err != nil {
		t.Fatal(err)
	}
	if engine != "fake" {
		if st, body, err := direct.Do(ctx, http.MethodPut, "/"+r.index, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)); err != nil || st != 200 {
			t.Fatalf("create index: %d %s %v", st, body, err)
		}
		t.Cleanup(func() { _, _, _ = direct.Do(context.Background(), http.MethodDelete, "/"+r.index, nil) })
		r.count = func(t *testing.T) int64 {
			if err := direct.Refresh(context.Background(), r.index); err != nil {
				t.Fatal(err)
			}
			n, err := direct.Count(context.Background(), r.index, nil)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	bulk, err := esclient.New(ctx, esclient.Config{Addresses: []string{"http://" + r.esProxy.Listen}, RequestTimeout: faultRequestTimeout})
	if err != nil {
		t.Fatal(err)
	}
	directS3, err := s3source.New(ctx, s3source.Config{Endpoint: s3.Endpoint(), Region: s3test.Region})
	if err != nil {
		t.Fatal(err)
	}
	proxiedS3, err := s3source.New(ctx, s3source.Config{Endpoint: "http://" + r.s3Proxy.Listen, Region: s3test.Region,
		ReadIdleTimeout: faultS3IdleTimeout, ReadBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	eng := &ingest.Engine{Budget: ingest.NewBudget(faultBudget), Bulk: bulk}
	r.plan = &activities.Activities{Engine: eng, S3: directS3}
	r.acts = &activities.Activities{Engine: eng, S3: proxiedS3, DeadLetterDir: r.dlDir,
		HeartbeatInterval: 100 * time.Millisecond, StallTimeout: faultStallTimeout}
	t.Cleanup(func() { _ = r.acts.Close() })
	return r
}

func startProxy(t *testing.T, srv *toxiproxy.ApiServer, name, upstreamURL string) *toxiproxy.Proxy {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimPrefix(upstreamURL, "http://"), "https://")
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", strings.TrimRight(host, "/"))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func (r *faultRig) toxic(t *testing.T, p *toxiproxy.Proxy, js string) {
	t.Helper()
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		t.Fatalf("toxic %s: %v", js, err)
	}
}

func (r *faultRig) untoxic(t *testing.T, p *toxiproxy.Proxy, name string) {
	if err := p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		t.Errorf("removing toxic %s: %v", name, err)
	}
}

// putDataset writes two plain objects (cut into 512 KiB chunks) and a gzip object, with an
// invalid line every 500 records, and notes the valid count and the invalid records.
func (r *faultRig) putDataset(t *testing.T) {
	for i, key := range []string{"f/a.ndjson", "f/b.ndjson", "f/c.ndjson.gz"} {
		var data []byte
		for n := range 12000 {
			if n%500 == 250 {
				r.invalid[fmt.Sprintf("%s@%d", key, len(data))] = true
				data = append(data, "not json {\n"...)
				continue
			}
			r.valid++
			data = fmt.Appendf(data, `{"obj":%d,"n":%d,"pad":%q}`+"\n", i, n, strings.Repeat("x", n%97))
		}
		if strings.HasSuffix(key, ".gz") {
			data = gzipped(t, data)
		}
		r.s3.Put(t, bucket, key, data)
	}
}

type faultResult struct {
	stats       activities.ChunkStats
	attempts    int
	deadLetters int
}

// backfill plans every page and runs every chunk to its end, three at a time, each retried
// from its last heartbeat after a retryable failure, as the workflow's retry policy does.
func (r *faultRig) backfill(t *testing.T) faultResult {
	src := activities.Source{URI: "s3://" + bucket + "/f/", Format: ingest.FormatNDJSON, Compression: ingest.CompressionAuto,
		Index: r.index, DeadLetter: "file:dead-letters.ndjson"}
	planner := &fixture{acts: r.plan}
	chunks, _ := planner.planAll(t, activities.PlanPageInput{Source: src, ChunkSize: 512 << 10})
	var mu sync.Mutex
	var res faultResult
	work := make(chan activities.Chunk)
	var wg sync.WaitGroup
	deadline := time.Now().Add(faultRowTimeout)
	for range 3 {
		wg.Go(func() {
			for c := range work {
				out, attempts := r.runChunk(t, src, c, deadline)
				mu.Lock()
				res.stats.Add(out.Stats)
				res.attempts += attempts
				mu.Unlock()
			}
		})
	}
	for _, c := range chunks {
		work <- c
	}
	close(work)
	wg.Wait()
	_ = r.acts.Close() // flushes the dead-letter file
	res.deadLetters = r.checkDeadLetters(t)
	return res
}

// runChunk runs one chunk's attempts until one succeeds; a retryable failure resumes from the
// last heartbeat, as Temporal hands it to the next attempt.
func (r *faultRig) runChunk(t *testing.T, src activities.Source, c activities.Chunk, deadline time.Time) (activities.ChunkProgress, int) {
	f := &fixture{acts: r.acts}
	var last *activities.ChunkProgress
	for attempt := 1; attempt <= faultAttempts && time.Now().Before(deadline); attempt++ {
		hbs := &heartbeats{}
		env := f.env(hbs)
		if last != nil {
			env.SetHeartbeatDetails(*last)
		}
		val, err := env.ExecuteActivity(activities.IngestChunkName, activities.IngestChunkInput{Source: src, Chunk: c, Limits: r.limits})
		if err == nil {
			var out activities.ChunkProgress
			if err := val.Get(&out); err != nil {
				t.Fatal(err)
			}
			return out, attempt
		}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.NonRetryable() {
			t.Fatalf("%s [%d, %d): non-retryable failure: %v", c.Key, c.Start, c.End, err)
		}
		if got := hbs.all(); len(got) > 0 {
			hb := got[len(got)-1]
			last = &hb
		}
		msg := err.Error()
		if len(msg) > 240 {
			msg = msg[:240] + "…"
		}
		t.Logf("%s [%d, %d) attempt %d: %s", c.Key, c.Start, c.End, attempt, msg)
		// The retry policy's backoff (the workflow's starts at 1s and doubles), shortened.
		time.Sleep(min(100*time.Millisecond<<attempt, 2*time.Second))
	}
	t.Fatalf("%s [%d, %d): not done after %d attempts or by the deadline", c.Key, c.Start, c.End, faultAttempts)
	return activities.ChunkProgress{}, 0
}

// check: nothing lost, nothing twice, the counters add up.
func (r *faultRig) check(t *testing.T, got faultResult) {
	t.Helper()
	if n := r.count(t); n != r.valid {
		t.Errorf("the index holds %d documents, want the %d valid records (lost or duplicated: %d)", n, r.valid, n-r.valid)
	}
	want := int64(len(r.invalid))
	if got.stats.Indexed != r.valid || got.stats.DeadLettered != want || got.stats.Read != r.valid+want {
		t.Errorf("stats %+v, want %d indexed, %d dead-lettered", got.stats, r.valid, want)
	}
}

// checkDeadLetters reads the dead-letter file: every invalid record is there, and nothing else
// (a record dead-lettered again by a resumed attempt appears twice; it is the same record).
func (r *faultRig) checkDeadLetters(t *testing.T) int {
	t.Helper()
	fh, err := os.Open(filepath.Join(r.dlDir, "dead-letters.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Object string `json:"object"`
			Offset int64  `json:"offset"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("dead letter %q: %v", sc.Bytes(), err)
		}
		k := strings.TrimPrefix(l.Object, "s3://"+bucket+"/") + "@" + strconv.FormatInt(l.Offset, 10)
		if !r.invalid[k] {
			t.Errorf("dead letter for a valid record: %s", k)
		}
		seen[k] = true
	}
	if len(seen) != len(r.invalid) {
		t.Errorf("%d distinct dead letters, want the %d invalid records", len(seen), len(r.invalid))
	}
	return len(seen)
}

// resetPeakRSS resets the process's peak RSS (VmHWM), so that peakRSS reads the row's own.
func resetPeakRSS(t *testing.T) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS: %v", err)
	}
}

// peakRSS is VmHWM of this process, in bytes.
func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
