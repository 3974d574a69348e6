package worker_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/devserver"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

// TestMetricsMatchTheBackfill runs a small backfill through a worker with --metrics-addr and
// scrapes /metrics: the record counters are the backfill's result, the Elasticsearch requests
// and the Temporal SDK's metrics are there, and nothing is left running.
func TestMetricsMatchTheBackfill(t *testing.T) {
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	s3.CreateBucket(t, "data")
	for i := range 3 {
		var data []byte
		for j := range 200 {
			data = fmt.Appendf(data, `{"object":%d,"n":%d}`+"\n", i, j)
		}
		s3.Put(t, "data", fmt.Sprintf("in/part-%d.ndjson", i), data)
	}
	s3.Put(t, "data", "in/bad.ndjson", []byte("{\"ok\":true}\nnot json\n"))
	es := esfake.New(esfake.Options{})
	t.Cleanup(es.Close)
	srv, err := devserver.Start(devserver.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := worker.New(ctx, worker.Config{
		Temporal: worker.TemporalConn{Address: srv.FrontendAddress()}, TaskQueue: "sluice-metrics", MaxMemory: 64 << 20, MemoryLimit: -1,
		ES: esclient.Config{Addresses: []string{es.URL()}}, Logger: quietLogger(), MetricsAddr: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	run, err := w.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "backfill-metrics", TaskQueue: "sluice-metrics"},
		workflows.BackfillName, workflows.BackfillInput{
			Source:    activities.Source{URI: "s3://data/in/", Format: ingest.FormatNDJSON, Index: "logs"},
			ChunkSize: 1 << 10,
		})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.BackfillResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if res.Stats.Read != 602 || res.Stats.DeadLettered != 1 {
		t.Fatalf("result %+v", res)
	}

	m := scrape(t, "http://"+w.MetricsAddr()+"/metrics")
	for outcome, want := range map[string]int64{"read": res.Stats.Read, "indexed": res.Stats.Indexed,
		"dead_lettered": res.Stats.DeadLettered, "retried": res.Stats.Retried} {
		if got := value(m, "sluice_records_total", "outcome", outcome); got != float64(want) {
			t.Errorf("sluice_records_total{outcome=%q} = %v, want %d", outcome, got, want)
		}
	}
	if got := value(m, "sluice_read_bytes_total"); got != float64(res.Stats.Bytes) {
		t.Errorf("sluice_read_bytes_total = %v, want %d", got, res.Stats.Bytes)
	}
	if got := value(m, "sluice_source_bytes_total"); got != float64(res.Bytes) {
		t.Errorf("sluice_source_bytes_total = %v, want the %d bytes planned", got, res.Bytes)
	}
	if got := value(m, "sluice_chunk_attempts_total", "outcome", "completed"); got != float64(res.ChunksDone) {
		t.Errorf("completed chunk attempts %v, want %d", got, res.ChunksDone)
	}
	bulk200 := value(m, "sluice_es_responses_total", "endpoint", "bulk", "status", "200")
	if bulk200 < float64(res.ChunksDone) || value(m, "sluice_es_request_bytes_total", "endpoint", "bulk") <= 0 {
		t.Errorf("bulk: %v responses 200, want at least one per chunk (%d), and bytes sent", bulk200, res.ChunksDone)
	}
	if h := m["sluice_es_request_duration_seconds"]; h == nil || histogramCount(h, "bulk") != uint64(bulk200) {
		t.Errorf("bulk latency histogram does not count the %v bulk requests", bulk200)
	}
	for _, name := range []string{"sluice_chunks_running", "sluice_es_requests_in_flight", "sluice_budget_used_bytes", "sluice_budget_waiting"} {
		if got := value(m, name); got != 0 {
			t.Errorf("%s = %v after the backfill, want 0", name, got)
		}
	}
	// Adaptive by default: the limit is back within [1, the sum of the running chunks'
	// --inflight], which is 1 once no chunk runs.
	if got := value(m, "sluice_inflight_limit"); got != 1 {
		t.Errorf("sluice_inflight_limit = %v after the backfill, want 1", got)
	}
	if got := value(m, "sluice_budget_max_bytes"); got != 64<<20 {
		t.Errorf("sluice_budget_max_bytes = %v", got)
	}
	// The Temporal SDK's own metrics, through the handler.
	if f := m["temporal_activity_execution_latency_seconds"]; f == nil {
		var names []string
		for n := range m {
			names = append(names, n)
		}
		t.Errorf("no Temporal SDK activity metrics among %v", names)
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	m, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// value is the value of the counter or gauge name with the labels given as name, value pairs
// (0 when absent).
func value(m map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	for _, mt := range f.GetMetric() {
		if hasLabels(mt, labels) {
			if c := mt.GetCounter(); c != nil {
				return c.GetValue()
			}
			return mt.GetGauge().GetValue()
		}
	}
	return 0
}

func histogramCount(f *dto.MetricFamily, endpoint string) uint64 {
	for _, mt := range f.GetMetric() {
		if hasLabels(mt, []string{"endpoint", endpoint}) {
			return mt.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func hasLabels(mt *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range mt.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
