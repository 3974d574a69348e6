package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
)

// Metrics are a worker's Prometheus metrics (Config.MetricsAddr): the engine's counters, the
// Elasticsearch requests, the memory budget, the running chunks, and the Temporal SDK's own
// metrics. Every metric is documented in the README. Safe for concurrent use.
//
// The record counters come from the chunks' checkpoints (heartbeats and results, through an
// activity interceptor): they count what Elasticsearch acknowledged, so they lag the reads by
// at most a checkpoint, and a chunk retried from its checkpoint counts nothing twice.
type Metrics struct {
	reg *prometheus.Registry

	records     *prometheus.CounterVec // by outcome: read, indexed, dead_lettered, retried
	bytesRead   prometheus.Counter     // decompressed
	sourceBytes prometheus.Counter     // as stored
	chunks      prometheus.Gauge
	chunksDone  *prometheus.CounterVec // by outcome: completed, failed

	requestBytes *prometheus.CounterVec   // by endpoint
	latency      *prometheus.HistogramVec // by endpoint
	responses    *prometheus.CounterVec   // by endpoint, status
	inflight     prometheus.Gauge

	sdkMu sync.Mutex
	sdk   map[string]sdkMetric // Temporal SDK metrics by name
}

// newMetrics registers every metric; budget is the worker's memory budget, adaptive its limit
// on requests in flight (nil: fixed).
func newMetrics(budget *ingest.Budget, adaptive *ingest.Adaptive) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), sdk: map[string]sdkMetric{}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.records = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_records_total",
		Help: "Records behind the chunks' checkpoints, by outcome: read, indexed, dead_lettered, retried (item sends repeated)."}, []string{"outcome"})
	m.bytesRead = prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_read_bytes_total",
		Help: "Bytes of records behind the chunks' checkpoints, after decompression."})
	m.sourceBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_source_bytes_total",
		Help: "Bytes of the stored objects behind the chunks' checkpoints (compressed objects: compressed bytes read)."})
	m.chunks = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_chunks_running", Help: "IngestChunk activities running in this worker."})
	m.chunksDone = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_chunk_attempts_total",
		Help: "IngestChunk attempts finished, by outcome: completed, failed (retried or not), canceled."}, []string{"outcome"})
	m.requestBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_es_request_bytes_total",
		Help: "Bytes of request bodies sent to Elasticsearch, by endpoint (bulk, other)."}, []string{"endpoint"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_es_request_duration_seconds",
		Help:    "Elasticsearch request latency, until the response headers, by endpoint (bulk, other).",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"endpoint"})
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_es_responses_total",
		Help: "Elasticsearch responses by endpoint and HTTP status (\"error\": no response)."}, []string{"endpoint", "status"})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_es_requests_in_flight", Help: "Elasticsearch requests waiting for their response headers."})
	for _, c := range []prometheus.Collector{m.records, m.bytesRead, m.sourceBytes, m.chunks, m.chunksDone, m.requestBytes, m.latency, m.responses, m.inflight} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_budget_used_bytes", Help: "Bytes of the memory budget in use."},
		func() float64 { return float64(budget.Used()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_budget_max_bytes", Help: "Size of the memory budget (--max-memory)."},
		func() float64 { return float64(budget.Max()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_budget_waiting", Help: "Readers blocked waiting for memory."},
		func() float64 { return float64(budget.Waiting()) }))
	if adaptive != nil {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_inflight_limit",
			Help: "_bulk requests the chunks of this worker may have in flight now: the adaptive limit (absent with --adaptive=false)."},
			func() float64 { return float64(adaptive.Limit()) }))
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// serve serves /metrics on addr until ctx is done; it returns the address it listens on.
func (m *Metrics) serve(ctx context.Context, addr string, logger *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics: listening on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr().String(), nil
}

// addProgress counts the records between two checkpoints of one chunk attempt.
func (m *Metrics) addProgress(from, to activities.ChunkProgress) {
	d := func(a, b int64) float64 { return float64(max(b-a, 0)) }
	m.records.WithLabelValues("read").Add(d(from.Stats.Read, to.Stats.Read))
	m.records.WithLabelValues("indexed").Add(d(from.Stats.Indexed, to.Stats.Indexed))
	m.records.WithLabelValues("dead_lettered").Add(d(from.Stats.DeadLettered, to.Stats.DeadLettered))
	m.records.WithLabelValues("retried").Add(d(from.Stats.Retried, to.Stats.Retried))
	m.bytesRead.Add(d(from.Stats.Bytes, to.Stats.Bytes))
	m.sourceBytes.Add(d(from.SourceBytes, to.SourceBytes))
}

// WrapTransport observes the Elasticsearch requests (es.Config.WrapTransport).
func (m *Metrics) WrapTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		endpoint := "other"
		if strings.HasSuffix(r.URL.Path, "/_bulk") {
			endpoint = "bulk"
		}
		if r.ContentLength > 0 {
			m.requestBytes.WithLabelValues(endpoint).Add(float64(r.ContentLength))
		}
		m.inflight.Inc()
		start := time.Now()
		resp, err := next.RoundTrip(r)
		m.inflight.Dec()
		m.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
		status := "error"
		if err == nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		m.responses.WithLabelValues(endpoint, status).Inc()
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Interceptor counts the running chunks and their progress.
func (m *Metrics) Interceptor() interceptor.WorkerInterceptor { return &chunkInterceptor{m: m} }

type chunkInterceptor struct {
	interceptor.WorkerInterceptorBase
	m *Metrics
}

func (c *chunkInterceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &chunkInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, m: c.m}
}

// chunkInbound follows one activity attempt: the first heartbeat is where it starts (counted
// by the attempt that reached it), every later one and the result add what lies between.
type chunkInbound struct {
	interceptor.ActivityInboundInterceptorBase
	m *Metrics

	mu    sync.Mutex
	last  *activities.ChunkProgress
	chunk bool
}

func (i *chunkInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	return i.Next.Init(&chunkOutbound{ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{Next: outbound}, in: i})
}

func (i *chunkInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if activity.GetInfo(ctx).ActivityType.Name != activities.IngestChunkName {
		return i.Next.ExecuteActivity(ctx, in)
	}
	i.chunk = true
	i.m.chunks.Inc()
	defer i.m.chunks.Dec()
	res, err := i.Next.ExecuteActivity(ctx, in)
	outcome := "failed"
	switch {
	case err == nil:
		outcome = "completed"
		if p, ok := res.(activities.ChunkProgress); ok {
			i.progress(p)
		}
	case ctx.Err() != nil:
		outcome = "canceled"
	}
	i.m.chunksDone.WithLabelValues(outcome).Inc()
	return res, err
}

func (i *chunkInbound) progress(p activities.ChunkProgress) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.last != nil && p.Checkpoint >= i.last.Checkpoint {
		i.m.addProgress(*i.last, p)
	}
	if i.last == nil || p.Checkpoint >= i.last.Checkpoint {
		i.last = &p
	}
}

type chunkOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	in *chunkInbound
}

func (o *chunkOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	if o.in.chunk && len(details) == 1 {
		if p, ok := details[0].(activities.ChunkProgress); ok {
			o.in.progress(p)
		}
	}
	o.Next.RecordHeartbeat(ctx, details...)
}

// SDKHandler is a client.MetricsHandler that turns the Temporal SDK's metrics into Prometheus
// ones of the same name (counters get "_total", timers become histograms in seconds). A
// metric's labels are fixed by its first use: later tags outside that set are dropped, missing
// ones are empty.
func (m *Metrics) SDKHandler() client.MetricsHandler { return sdkHandler{m: m} }

type sdkHandler struct {
	m    *Metrics
	tags map[string]string
}

type sdkMetric struct {
	vec    any // *prometheus.CounterVec, *GaugeVec or *HistogramVec
	labels []string
}

func (h sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return sdkHandler{m: h.m, tags: merged}
}

// metric returns the collector for name, registering it with the current tags' names on first
// use, and the label values of the current tags.
func (h sdkHandler) metric(name string, mk func(labels []string) prometheus.Collector) (any, []string) {
	h.m.sdkMu.Lock()
	defer h.m.sdkMu.Unlock()
	sm, ok := h.m.sdk[name]
	if !ok {
		labels := make([]string, 0, len(h.tags))
		for k := range h.tags {
			labels = append(labels, k)
		}
		slices.Sort(labels)
		c := mk(labels)
		if err := h.m.reg.Register(c); err != nil {
			return nil, nil // a clash with one of sluice's names: dropped
		}
		sm = sdkMetric{vec: c, labels: labels}
		h.m.sdk[name] = sm
	}
	values := make([]string, len(sm.labels))
	for i, l := range sm.labels {
		values[i] = h.tags[l]
	}
	return sm.vec, values
}

func (h sdkHandler) Counter(name string) client.MetricsCounter {
	v, values := h.metric(name, func(labels []string) prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name + "_total", Help: "Temporal SDK counter " + name + "."}, labels)
	})
	vec, _ := v.(*prometheus.CounterVec)
	if vec == nil {
		return client.MetricsNopHandler.Counter(name)
	}
	c := vec.WithLabelValues(values...)
	return counterFunc(func(d int64) { c.Add(float64(d)) })
}

func (h sdkHandler) Gauge(name string) client.MetricsGauge {
	v, values := h.metric(name, func(labels []string) prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "Temporal SDK gauge " + name + "."}, labels)
	})
	vec, _ := v.(*prometheus.GaugeVec)
	if vec == nil {
		return client.MetricsNopHandler.Gauge(name)
	}
	return gaugeFunc(vec.WithLabelValues(values...).Set)
}

func (h sdkHandler) Timer(name string) client.MetricsTimer {
	v, values := h.metric(name, func(labels []string) prometheus.Collector {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name + "_seconds", Help: "Temporal SDK timer " + name + ".",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, labels)
	})
	vec, _ := v.(*prometheus.HistogramVec)
	if vec == nil {
		return client.MetricsNopHandler.Timer(name)
	}
	o := vec.WithLabelValues(values...)
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
)

func (f counterFunc) Inc(d int64)          { f(d) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }
