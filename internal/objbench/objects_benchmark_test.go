package objbench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/ingest/s3source"
	"github.com/sluicehq/sluice/internal/devserver"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

// Settings, from the environment so that `go test -bench` needs no flags of its own.
//
//	SLUICE_BENCH_OBJECTS       small objects per dataset (default 20000)
//	SLUICE_BENCH_OBJECT_BYTES  bytes of each small object (default 8192)
//	SLUICE_BENCH_S3_LATENCY    latency added to every S3 request by a proxy (default 0, e.g. 20ms)
//	SLUICE_BENCH_LARGE         1: also run 8 objects of 64 MiB (the large-object row)
func setting(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return int64(d)
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

// bench is the world of one benchmark run: S3 server, Temporal server, worker, discard sink.
type bench struct {
	s3       *s3test.Server
	endpoint string // the S3 endpoint the worker uses (the latency proxy when there is one)
	client   client.Client
	bucket   string
}

func newBench(b *testing.B) *bench {
	s3srv := s3test.Start(b)
	s3srv.SetEnv(b)
	const bucket = "bench"
	s3srv.CreateBucket(b, bucket)
	endpoint := s3srv.Endpoint()
	if latency := time.Duration(setting("SLUICE_BENCH_S3_LATENCY", 0)); latency > 0 {
		endpoint = latencyProxy(b, endpoint, latency)
	}
	sink := esfake.NewDiscard()
	b.Cleanup(sink.Close)

	srv, err := devserver.Start(devserver.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := worker.New(ctx, worker.Config{
		Temporal: worker.TemporalConn{Address: srv.FrontendAddress()},
		S3:       s3source.Config{Endpoint: endpoint, Region: s3test.Region},
		ES:       es.Config{Addresses: []string{sink.URL()}},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	return &bench{s3: s3srv, endpoint: endpoint, client: w.Client(), bucket: bucket}
}

// latencyProxy forwards to target after holding each request for latency, as a distant S3
// would before its first byte.
func latencyProxy(b *testing.B, target string, latency time.Duration) string {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency) // the latency being simulated, not a synchronisation
		proxy.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// forEach calls do(0..n-1), concurrency calls at a time, and returns the first error.
func forEach(n, concurrency int, do func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := do(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// upload puts n objects made by gen under prefix, 32 at a time.
func (bn *bench) upload(b *testing.B, prefix string, n int, gen func(i int) (key string, data []byte)) (stored int64) {
	var total atomic.Int64
	err := forEach(n, 32, func(i int) error {
		key, data := gen(i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, err := bn.s3.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bn.bucket), Key: aws.String(prefix + key),
			Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
		total.Add(int64(len(data)))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return total.Load()
}

// getRate reads every object under prefix (keys made by key) with GETs through s3source, as
// the worker does, concurrency at a time, and returns GETs per second: what the S3 server
// can serve here, the ceiling of objects/s.
func (bn *bench) getRate(b *testing.B, prefix string, n, concurrency int, key func(i int) string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src, err := s3source.New(ctx, s3source.Config{Endpoint: bn.endpoint, Region: s3test.Region})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	err = forEach(n, concurrency, func(i int) error {
		rc, err := src.Open(ctx, bn.bucket, prefix+key(i), "", 0)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

// run runs a backfill of prefix and reports its rates.
func (bn *bench) run(b *testing.B, prefix string, objects int, decoded int64) {
	in := workflows.BackfillInput{Source: activities.Source{URI: "s3://" + bn.bucket + "/" + prefix, Index: "bench"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	run, err := bn.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bench-" + prefix + strconv.FormatInt(time.Now().UnixNano(), 36), TaskQueue: worker.DefaultTaskQueue},
		workflows.BackfillName, in)
	if err != nil {
		b.Fatal(err)
	}
	var res workflows.BackfillResult
	if err := run.Get(ctx, &res); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if res.Objects != int64(objects) || res.ChunksFailed != 0 || res.Stats.Read != res.Stats.Indexed || res.Stats.Bytes != decoded {
		b.Fatalf("result %+v, want %d objects, %d bytes, all indexed", res, objects, decoded)
	}
	events := bn.historyEvents(b, ctx, run.GetID(), run.GetRunID())
	b.ReportMetric(float64(objects)/elapsed.Seconds(), "objects/s")
	b.ReportMetric(float64(decoded)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(res.Stats.Indexed)/elapsed.Seconds(), "docs/s")
	b.ReportMetric(float64(events)/float64(objects), "events/object")
	b.ReportMetric(float64(res.ChunksDone), "chunks")
	b.ReportMetric(float64(res.Runs), "runs")
	b.Logf("%s: %d objects, %d decoded bytes, %d documents in %s; %d chunks, %d history events over %d runs",
		prefix, objects, decoded, res.Stats.Indexed, elapsed.Round(time.Millisecond), res.ChunksDone, events, res.Runs)
}

// historyEvents counts the events of every run of a workflow, following continue-as-new.
func (bn *bench) historyEvents(b *testing.B, ctx context.Context, id, runID string) int {
	total := 0
	for runID != "" {
		it := bn.client.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		next := ""
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			total++
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		runID = next
	}
	return total
}

// smallObject is object i of the small datasets: NDJSON records of about 1 KiB filling size
// bytes.
func smallObject(i int, size int64) []byte {
	var buf bytes.Buffer
	for j := 0; int64(buf.Len()) < size; j++ {
		pad := max(0, min(1000, int(size)-buf.Len()-60))
		fmt.Fprintf(&buf, "{\"object\":%d,\"record\":%d,\"msg\":\"%s\"}\n", i, j, bytes.Repeat([]byte("x"), pad))
	}
	return buf.Bytes()
}

func gzipped(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return buf.Bytes()
}

// getConcurrency is the GETs a worker has in flight at most: its 4 chunks, each reading one
// object and prefetching ingest.PrefetchObjects more.
const getConcurrency = worker.DefaultMaxConcurrentChunks * (1 + ingest.PrefetchObjects)

// BenchmarkObjects runs SLUICE_BENCH_OBJECTS small objects, plain and gzip, through the real
// workflow; with SLUICE_BENCH_LARGE=1 also 8 plain objects of 64 MiB.
func BenchmarkObjects(b *testing.B) {
	bn := newBench(b)
	n := int(setting("SLUICE_BENCH_OBJECTS", 20000))
	size := setting("SLUICE_BENCH_OBJECT_BYTES", 8192)
	for _, c := range []struct {
		name string
		gzip bool
	}{{"plain", false}, {"gzip", true}} {
		b.Run(fmt.Sprintf("%s-%dx%dB", c.name, n, size), func(b *testing.B) {
			prefix := c.name + "/"
			var decoded int64
			for range b.N {
				b.StopTimer()
				prefix = fmt.Sprintf("%s-%d/", c.name, time.Now().UnixNano())
				decoded = 0
				start := time.Now()
				key := func(i int) string {
					if c.gzip {
						return fmt.Sprintf("%07d.ndjson.gz", i)
					}
					return fmt.Sprintf("%07d.ndjson", i)
				}
				stored := bn.upload(b, prefix, n, func(i int) (string, []byte) {
					data := smallObject(i, size)
					atomic.AddInt64(&decoded, int64(len(data)))
					if c.gzip {
						return key(i), gzipped(data)
					}
					return key(i), data
				})
				b.Logf("uploaded %d objects (%d bytes) in %s", n, stored, time.Since(start).Round(time.Millisecond))
				gets := bn.getRate(b, prefix, n, getConcurrency, key)
				b.ReportMetric(gets, "s3-GETs/s")
				b.Logf("the S3 server alone: %.0f GETs/s (%d at a time through s3source)", gets, getConcurrency)
				bn.run(b, prefix, n, decoded)
			}
		})
	}
	if setting("SLUICE_BENCH_LARGE", 0) == 0 {
		return
	}
	b.Run("large-8x64MiB", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			var data []byte
			for i := 0; len(data) < 64<<20-2000; i++ {
				data = append(data, smallObject(i, 1000)...)
			}
			prefix := fmt.Sprintf("large-%d/", time.Now().UnixNano())
			bn.upload(b, prefix, 8, func(i int) (string, []byte) { return fmt.Sprintf("%d.ndjson", i), data })
			bn.run(b, prefix, 8, 8*int64(len(data)))
		}
	})
}
