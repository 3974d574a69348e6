// Package worker builds a sluice worker process from its configuration: a Temporal client,
// the process's memory budget, the Elasticsearch and S3 clients, and an SDK worker that runs
// the workflows and the activities on one task queue. Scale-out is running more of them.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/ingest/essource"
	"github.com/sluicehq/sluice/ingest/s3source"
	"github.com/sluicehq/sluice/workflows"
)

// Defaults of Config.
const (
	DefaultTemporalAddress     = "127.0.0.1:7233"
	DefaultNamespace           = "default"
	DefaultTaskQueue           = "sluice"
	DefaultMaxMemory           = 512 << 20 // bytes
	DefaultMaxConcurrentChunks = 4
	DefaultStopTimeout         = 30 * time.Second
	// MemoryOverhead is what the Go memory limit allows beyond MaxMemory by default: the
	// Temporal SDK, gRPC and HTTP buffers, S3 readers, decompressors and the garbage
	// collector's own slack.
	MemoryOverhead = 256 << 20 // bytes
	// MinMaxMemory is the smallest budget accepted: a chunk's default queue and request cap
	// (10 MiB and 5 MiB) must fit in it.
	MinMaxMemory = 16 << 20 // bytes
)

// Config configures a worker. Secrets (ES credentials, AWS keys) live in ES and in the AWS
// SDK's own environment, never in workflow inputs. The zero value of a field means its
// default.
type Config struct {
	// Temporal says how to reach Temporal (address, namespace, TLS, API key).
	Temporal TemporalConn
	// TaskQueue the workflows and activities are polled from. Defaults to "sluice".
	TaskQueue string
	// MaxMemory is the byte budget of records, batches and request bodies shared by every
	// chunk running in this process. Defaults to 512 MiB.
	MaxMemory int64
	// MaxConcurrentChunks is the number of activities (IngestChunk, and the short PlanPage)
	// that run at once in this process. Defaults to 4.
	MaxConcurrentChunks int
	// MemoryLimit is the Go runtime's soft memory limit (debug.SetMemoryLimit) set while the
	// worker runs. 0: MaxMemory + MemoryOverhead; negative: leave it alone. Ignored when the
	// GOMEMLIMIT environment variable is set.
	MemoryLimit int64
	// StopTimeout is how long Stop lets running chunks reach a checkpoint and return before
	// their contexts are canceled. Defaults to 30s.
	StopTimeout time.Duration
	// S3 says where the objects are. Credentials come from the AWS SDK's default chain.
	S3 s3source.Config
	// ES says how to reach Elasticsearch, credentials included.
	ES es.Config
	// SourceEnv reads the variables of the source clusters es://CLUSTER/INDEX names
	// (SLUICE_CLUSTER_<NAME>_URL, _USERNAME, _PASSWORD, _API_KEY, _CA_CERT), when a chunk
	// first needs one. Defaults to os.Getenv.
	SourceEnv func(string) string
	// DeadLetterDir is where "file:NAME" dead-letter targets are created (env
	// SLUICE_DEAD_LETTER_DIR). Empty: a chunk that asks for a file fails with a bad
	// configuration.
	DeadLetterDir string
	// DeadLetterS3 lists the S3 locations, comma-separated "s3://bucket[/prefix]", that
	// "s3://..." dead-letter targets may write under (env SLUICE_DEAD_LETTER_S3). Empty: such
	// targets fail with a bad configuration. Letters are written with the S3 credentials.
	DeadLetterS3 string
	// Logger receives sluice's logs. Defaults to slog.Default().
	Logger *slog.Logger
	// SDKLogLevel is the lowest level of the Temporal SDK's logs passed on to Logger.
	// Defaults to warn: the SDK is chatty at info.
	SDKLogLevel slog.Leveler
	// MetricsAddr is where Start serves Prometheus metrics on /metrics (see Metrics), such as
	// ":9090". Defaults to none: no metrics.
	MetricsAddr string
	// StallTimeout is how long a chunk may go without progress (its checkpoint advancing, or a
	// byte read from S3) before its attempt fails and resumes from the checkpoint (env
	// SLUICE_STALL_TIMEOUT; see activities.Activities.StallTimeout). 0: the default, the
	// larger of 5m and the chunk's retry-max-elapsed plus the request timeout.
	StallTimeout time.Duration
	// FixedInflight turns off the adaptive limit on _bulk requests in flight (ingest.Adaptive):
	// every chunk then keeps its --inflight requests in flight. Defaults to false: the
	// chunks of this process share one limit that backs off on 429s, 5xx and rising latency
	// and grows while the cluster keeps up, up to the sum of their --inflight.
	FixedInflight bool
}

// ConfigFromEnv reads the TEMPORAL_* variables of TemporalConnFromEnv, SLUICE_DEAD_LETTER_DIR,
// SLUICE_STALL_TIMEOUT and
// the Elasticsearch variables of ESConfigFromEnv. S3 settings are left to the AWS SDK's own variables
// (AWS_REGION, AWS_ENDPOINT_URL_S3, credentials). Other fields keep their defaults.
func ConfigFromEnv() (Config, error) {
	temporal, err := TemporalConnFromEnv()
	if err != nil {
		return Config{}, err
	}
	var stall time.Duration
	if v := os.Getenv("SLUICE_STALL_TIMEOUT"); v != "" {
		if stall, err = time.ParseDuration(v); err != nil {
			return Config{}, fmt.Errorf("%w: SLUICE_STALL_TIMEOUT %q: want a duration such as 10m", ingest.ErrBadConfig, v)
		}
	}
	return Config{
		Temporal:      temporal,
		ES:            ESConfigFromEnv(os.Getenv),
		DeadLetterDir: os.Getenv("SLUICE_DEAD_LETTER_DIR"),
		StallTimeout:  stall,
		DeadLetterS3:  os.Getenv("SLUICE_DEAD_LETTER_S3"),
	}.WithDefaults(), nil
}

// ESConfigFromEnv reads the Elasticsearch variables through getenv: es.ConfigFromEnv, the one
// place that reads them (sluice-bench reads them too, without linking this package).
func ESConfigFromEnv(getenv func(string) string) es.Config { return es.ConfigFromEnv(getenv) }

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.Temporal = c.Temporal.WithDefaults()
	if c.TaskQueue == "" {
		c.TaskQueue = DefaultTaskQueue
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = DefaultMaxMemory
	}
	if c.MaxConcurrentChunks == 0 {
		c.MaxConcurrentChunks = DefaultMaxConcurrentChunks
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = c.MaxMemory + MemoryOverhead
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SDKLogLevel == nil {
		c.SDKLogLevel = slog.LevelWarn
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.MaxMemory < MinMaxMemory:
		return fmt.Errorf("%w: max memory %d bytes is below the minimum of %d", ingest.ErrBadConfig, c.MaxMemory, MinMaxMemory)
	case c.MaxConcurrentChunks < 1:
		return fmt.Errorf("%w: max concurrent chunks %d: want at least 1", ingest.ErrBadConfig, c.MaxConcurrentChunks)
	case c.StopTimeout < 0:
		return fmt.Errorf("%w: negative stop timeout", ingest.ErrBadConfig)
	case c.StallTimeout < 0:
		return fmt.Errorf("%w: negative stall timeout %s", ingest.ErrBadConfig, c.StallTimeout)
	}
	return c.Temporal.Validate()
}

// Worker is a running (or ready to run) sluice worker. Start and Stop may each be called once.
type Worker struct {
	cfg    Config
	client client.Client
	sdk    sdkworker.Worker
	acts   *activities.Activities

	metrics     *Metrics // nil without MetricsAddr
	metricsAddr string   // where /metrics listens, once started
	stopMetrics context.CancelFunc

	stopOnce    sync.Once
	memLimitSet bool
	prevLimit   int64
}

// New connects to Elasticsearch (es.New, to learn what the cluster is) and to Temporal, and
// registers the workflows and activities. It fails fast when either is unreachable or
// refuses the credentials. Nothing is polled until Start.
func New(ctx context.Context, cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	allowS3, err := ingest.ParseS3AllowList(cfg.DeadLetterS3)
	if err != nil {
		return nil, err
	}
	budget := ingest.NewBudget(cfg.MaxMemory)
	var adaptive *ingest.Adaptive
	if !cfg.FixedInflight {
		adaptive = ingest.NewAdaptive(ingest.AdaptiveConfig{})
	}
	var metrics *Metrics
	var sdkMetrics client.MetricsHandler
	if cfg.MetricsAddr != "" {
		metrics = newMetrics(budget, adaptive)
		cfg.ES.WrapTransport = metrics.WrapTransport
		sdkMetrics = metrics.SDKHandler()
	}
	bulk, err := es.New(ctx, cfg.ES)
	if err != nil {
		return nil, err
	}
	src, err := s3source.New(ctx, cfg.S3)
	if err != nil {
		return nil, err
	}
	c, err := cfg.Temporal.dial(ctx, SDKLogger(cfg.Logger, cfg.SDKLogLevel), sdkMetrics)
	if err != nil {
		return nil, err
	}
	acts := &activities.Activities{
		Engine:        &ingest.Engine{Budget: budget, Bulk: bulk, Logger: cfg.Logger, Adaptive: adaptive},
		S3:            src,
		Clusters:      &essource.Clusters{Local: bulk, Getenv: cfg.sourceEnv(), Configure: wrapTransport(cfg.ES.WrapTransport)},
		DeadLetterDir: cfg.DeadLetterDir,
		StallTimeout:  cfg.StallTimeout,
		DeadLetterS3:  allowS3,
		Logger:        cfg.Logger,
	}
	opts := sdkworker.Options{
		// PlanPage shares these slots: it is short, and a page is asked for only when the
		// workflow's queue runs low, so it waits at most for one chunk to finish.
		MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentChunks,
		WorkerStopTimeout:                  cfg.StopTimeout,
	}
	if metrics != nil {
		opts.Interceptors = append(opts.Interceptors, metrics.Interceptor())
	}
	saCtx, cancel := context.WithTimeout(ctx, DialTimeout)
	if err := RegisterSearchAttributes(saCtx, c, cfg.Temporal.WithDefaults().Namespace); err != nil {
		cfg.Logger.Warn("sluice's search attributes are not registered; backfills start without them", "err", err)
	}
	cancel()
	w := sdkworker.New(c, cfg.TaskQueue, opts)
	Register(w, acts)
	cfg.Logger.Info("worker ready", "temporal", cfg.Temporal.Address, "namespace", cfg.Temporal.Namespace,
		"taskQueue", cfg.TaskQueue, "maxMemory", cfg.MaxMemory, "maxConcurrentChunks", cfg.MaxConcurrentChunks,
		"adaptiveInflight", !cfg.FixedInflight, "elasticsearch", bulk.String())
	return &Worker{cfg: cfg, client: c, sdk: w, acts: acts, metrics: metrics}, nil
}

func (c Config) sourceEnv() func(string) string {
	if c.SourceEnv != nil {
		return c.SourceEnv
	}
	return os.Getenv
}

// wrapTransport has a source cluster's requests observed as the destination's are.
func wrapTransport(wrap func(http.RoundTripper) http.RoundTripper) func(*es.Config) {
	return func(c *es.Config) { c.WrapTransport = wrap }
}

// Registry is what Register needs: an SDK worker (or a test environment).
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
	sdkworker.ActivityRegistry
}

// Register registers sluice's workflows, acts' activities and the index admin activities (on
// acts.Engine.Bulk, the same Elasticsearch client) under their names.
func Register(r Registry, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.BackfillWorkflow, workflow.RegisterOptions{Name: workflows.BackfillName})
	r.RegisterWorkflowWithOptions(workflows.ScheduledBackfillWorkflow, workflow.RegisterOptions{Name: workflows.ScheduledBackfillName})
	r.RegisterWorkflowWithOptions(workflows.ReindexWorkflow, workflow.RegisterOptions{Name: workflows.ReindexName})
	r.RegisterWorkflowWithOptions(workflows.ScheduledReindexWorkflow, workflow.RegisterOptions{Name: workflows.ScheduledReindexName})
	r.RegisterWorkflowWithOptions(workflows.PlanWorkflow, workflow.RegisterOptions{Name: workflows.PlanName})
	acts.Register(r)
	(&activities.Admin{ES: acts.Engine.Bulk}).Register(r)
}

// Client is the worker's Temporal client; it stays open until Stop.
func (w *Worker) Client() client.Client { return w.client }

// Config is the configuration in force, defaults applied.
func (w *Worker) Config() Config { return w.cfg }

// Start sets the memory limit and starts polling. It returns at once.
func (w *Worker) Start() error {
	if w.cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		w.prevLimit = debug.SetMemoryLimit(w.cfg.MemoryLimit)
		w.memLimitSet = true
	}
	if w.metrics != nil {
		ctx, cancel := context.WithCancel(context.Background())
		addr, err := w.metrics.serve(ctx, w.cfg.MetricsAddr, w.cfg.Logger)
		if err != nil {
			cancel()
			w.restoreMemoryLimit()
			return err
		}
		w.metricsAddr, w.stopMetrics = addr, cancel
	}
	if err := w.sdk.Start(); err != nil {
		w.restoreMemoryLimit()
		if w.stopMetrics != nil {
			w.stopMetrics()
		}
		return fmt.Errorf("starting the worker on task queue %s: %w", w.cfg.TaskQueue, err)
	}
	return nil
}

// MetricsAddr is the address /metrics is served on once started ("" without metrics).
func (w *Worker) MetricsAddr() string { return w.metricsAddr }

// Stop stops polling, lets running chunks stop at a checkpoint (up to StopTimeout), and closes
// the clients. It is safe to call more than once, and without Start.
func (w *Worker) Stop() {
	w.stopOnce.Do(func() {
		w.sdk.Stop()
		w.client.Close()
		if err := w.acts.Close(); err != nil {
			w.cfg.Logger.Warn("closing dead-letter sinks", "err", err)
		}
		w.restoreMemoryLimit()
		if w.stopMetrics != nil {
			w.stopMetrics()
		}
	})
}

func (w *Worker) restoreMemoryLimit() {
	if w.memLimitSet {
		debug.SetMemoryLimit(w.prevLimit)
		w.memLimitSet = false
	}
}

// SDKLogger adapts l for the Temporal SDK, passing on records at level and above.
func SDKLogger(l *slog.Logger, level slog.Leveler) sdklog.Logger {
	if l == nil {
		l = slog.Default()
	}
	return sdklog.NewStructuredLogger(slog.New(minLevel{l.Handler(), level}))
}

// minLevel drops the records below its level.
type minLevel struct {
	slog.Handler
	level slog.Leveler
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}
