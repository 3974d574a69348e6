package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/devserver"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("TEMPORAL_ADDRESS", "")
	t.Setenv("TEMPORAL_NAMESPACE", "")
	t.Setenv("ELASTICSEARCH_URL", "")
	t.Setenv("ELASTICSEARCH_API_KEY", "")
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.Address != "127.0.0.1:7233" || cfg.Temporal.Namespace != "default" || cfg.TaskQueue != "sluice" ||
		cfg.MaxMemory != 512<<20 || cfg.MaxConcurrentChunks != 4 || cfg.MemoryLimit != (512+256)<<20 {
		t.Fatalf("defaults: %+v", cfg)
	}

	t.Setenv("TEMPORAL_ADDRESS", "temporal.example:7233")
	t.Setenv("TEMPORAL_NAMESPACE", "etl")
	t.Setenv("ELASTICSEARCH_URL", "https://a:9200, https://b:9200")
	t.Setenv("ELASTICSEARCH_API_KEY", "secret-key")
	cfg, err = worker.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Temporal.Address != "temporal.example:7233" || cfg.Temporal.Namespace != "etl" ||
		strings.Join(cfg.ES.Addresses, " ") != "https://a:9200 https://b:9200" || cfg.ES.APIKey != "secret-key" {
		t.Fatalf("from the environment: %s %s %v", cfg.Temporal.Address, cfg.Temporal.Namespace, cfg.ES.Addresses)
	}
}

func TestESConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"ELASTICSEARCH_URL":      " https://es-1:9200,,https://es-2:9200 ",
		"ELASTICSEARCH_USERNAME": "elastic",
		"ELASTICSEARCH_PASSWORD": "changeme",
		"ELASTICSEARCH_CA_CERT":  "/etc/es/ca.pem",
	}
	got := worker.ESConfigFromEnv(func(k string) string { return env[k] })
	want := esclient.Config{Addresses: []string{"https://es-1:9200", "https://es-2:9200"}, Username: "elastic", Password: "changeme", CACertFile: "/etc/es/ca.pem"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ESConfigFromEnv: addresses %v, user %q, CA file %q; want %v", got.Addresses, got.Username, got.CACertFile, want.Addresses)
	}
	if got := worker.ESConfigFromEnv(func(string) string { return "" }); !reflect.DeepEqual(got, esclient.Config{}) {
		t.Fatalf("empty environment: %v", got.Addresses)
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []worker.Config{
		{MaxMemory: 1 << 20},
		{MaxConcurrentChunks: -1},
		{StopTimeout: -time.Second},
		{StallTimeout: -time.Second},
	} {
		if err := cfg.WithDefaults().Validate(); !errors.Is(err, ingest.ErrBadConfig) {
			t.Errorf("%+v: err = %v, want ErrBadConfig", cfg, err)
		}
	}
	if err := (worker.Config{}).WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestNewFailsFastWithoutElasticsearch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	es := esfake.New(esfake.Options{})
	url := es.URL()
	es.Close() // nothing listens there any more
	_, err := worker.New(ctx, worker.Config{ES: esclient.Config{Addresses: []string{url}}, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "elasticsearch") {
		t.Fatalf("err = %v, want an Elasticsearch connection error", err)
	}
}

// TestBackfillEndToEnd runs a real Temporal server (in process), a real S3 server and each real
// engine (OpenSearch and Elasticsearch), starts a worker, and runs a backfill through it.
func TestBackfillEndToEnd(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, node testenv.Engine) {
		testBackfill(t, esclient.Config{Addresses: []string{node.URL}})
	})
}

// testBackfill runs a backfill of four objects (one line of them invalid) through a worker that
// reaches the cluster with cfg, and checks the result and the index.
func testBackfill(t *testing.T, cfg esclient.Config) {
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	s3.CreateBucket(t, "data")
	var want int
	for i := range 3 {
		var data []byte
		for j := range 300 {
			data = fmt.Appendf(data, `{"object":%d,"n":%d,"pad":%q}`+"\n", i, j, strings.Repeat("y", j%50))
		}
		s3.Put(t, "data", fmt.Sprintf("in/part-%d.ndjson", i), data)
		want += 300
	}
	s3.Put(t, "data", "in/bad.ndjson", []byte("{\"ok\":true}\nnot json\n"))
	want += 2 // one of them dead-lettered

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	es := newNodeClient(t, ctx, cfg)
	index := fmt.Sprintf("sluice-worker-test-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		for _, i := range []string{index, ingest.DeadLetterIndex(index)} {
			_ = es.DeleteIndex(context.Background(), i)
		}
	})
	w := startWorker(t, ctx, cfg, "sluice-test")

	run, err := w.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "backfill-e2e", TaskQueue: "sluice-test"},
		workflows.BackfillName, workflows.BackfillInput{
			Source:    activities.Source{URI: "s3://data/in/", Format: ingest.FormatNDJSON, Index: index},
			ChunkSize: 2 << 10, // several chunks per object
		})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.BackfillResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if res.Stats.Read != int64(want) || res.Stats.Indexed != int64(want-1) || res.Stats.DeadLettered != 1 || res.Objects != 4 {
		t.Fatalf("result %+v, want %d read, 1 dead-lettered, 4 objects", res, want)
	}
	if res.ChunksPlanned <= 4 || res.ChunksDone != res.ChunksPlanned {
		t.Fatalf("chunks: %d planned, %d done; want several per object, all done", res.ChunksPlanned, res.ChunksDone)
	}
	if n := nodeCount(t, ctx, es, index); n != int64(want-1) {
		t.Fatalf("%d documents, want %d", n, want-1)
	}
	if n := nodeCount(t, ctx, es, ingest.DeadLetterIndex(index)); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	if r := res.Reconciliation; r == nil || !r.OK() || r.Count != int64(want-1) || r.Expected != int64(want-1) {
		t.Fatalf("reconciliation %+v, want the index's %d documents", r, want-1)
	}
}

// newNodeClient is a client of the cluster for the test's own checks.
func newNodeClient(t *testing.T, ctx context.Context, cfg esclient.Config) *esclient.Client {
	t.Helper()
	c, err := esclient.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nodeCount refreshes index and counts its documents.
func nodeCount(t *testing.T, ctx context.Context, c *esclient.Client, index string) int64 {
	t.Helper()
	if err := c.Refresh(ctx, index); err != nil {
		t.Fatal(err)
	}
	n, err := c.Count(ctx, index, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCancelStopsRunningChunks cancels a backfill while a chunk's _bulk request hangs: the
// activity learns of it through its heartbeats, stops, and the workflow ends canceled.
func TestCancelStopsRunningChunks(t *testing.T) {
	startS3WithOneObject(t)

	hung := make(chan struct{})
	var once sync.Once
	es := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk && r.Seq >= 2 {
			once.Do(func() { close(hung) })
			return esfake.Decision{Hang: true}
		}
		return esfake.Decision{}
	}})
	t.Cleanup(es.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := startWorker(t, ctx, esclient.Config{Addresses: []string{es.URL()}}, "sluice-cancel")

	run, err := w.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "backfill-cancel", TaskQueue: "sluice-cancel"},
		workflows.BackfillName, workflows.BackfillInput{
			Source:           activities.Source{URI: "s3://data/in/", Index: "logs"},
			Limits:           activities.Limits{MaxOps: 10, Inflight: 1},
			HeartbeatTimeout: 2 * time.Second, // the SDK sends a heartbeat (and learns of a cancellation) every 1.6s
		})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-hung:
	case <-ctx.Done():
		t.Fatal("no second _bulk request")
	}
	if err := w.Client().CancelWorkflow(ctx, run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	err = run.Get(ctx, nil)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("backfill: %v, want canceled", err)
	}
	if n := es.Count("logs"); n != 10 {
		t.Fatalf("%d documents, want the first batch of 10", n)
	}
}

// startWorker starts an in-memory Temporal server and a worker on taskQueue that reaches the
// cluster with cfg, both stopped when the test ends.
func startWorker(t *testing.T, ctx context.Context, cfg esclient.Config, taskQueue string) *worker.Worker {
	t.Helper()
	srv, err := devserver.Start(devserver.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	w, err := worker.New(ctx, worker.Config{
		Temporal: worker.TemporalConn{Address: srv.FrontendAddress()}, TaskQueue: taskQueue, MaxMemory: 64 << 20, MemoryLimit: -1,
		ES: cfg, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}
