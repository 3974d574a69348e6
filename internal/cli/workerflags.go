package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/units"
	"github.com/sluicehq/sluice/worker"
)

// WorkerFlags are the flags of a worker, shared by `sluice worker` and `sluice dev`. Each one
// overrides the environment only when given. No flag takes a secret as its value: the
// Elasticsearch API key is read from a file (--es-api-key-file) or ELASTICSEARCH_API_KEY, a
// password only from ELASTICSEARCH_PASSWORD, AWS credentials from the AWS SDK's own chain.
type WorkerFlags struct {
	fs            *flag.FlagSet
	temporal      *TemporalFlags // nil in `sluice dev`, which runs its own server
	taskQueue     string
	maxMemory     units.Bytes
	maxChunks     int
	esURL         string
	esAPIKeyFile  string
	esCACert      string
	s3Endpoint    string
	s3Region      string
	logLevel      string
	deadLetterDir string
	deadLetterS3  string
	metricsAddr   string
	stallTimeout  time.Duration
	adaptive      bool
}

// AddWorkerFlags registers the worker flags on fs; withTemporal adds the Temporal connection
// flags (`sluice dev` has its own server and --namespace).
func AddWorkerFlags(fs *flag.FlagSet, withTemporal bool) *WorkerFlags {
	f := &WorkerFlags{fs: fs, maxMemory: worker.DefaultMaxMemory}
	if withTemporal {
		f.temporal = AddTemporalFlags(fs)
	}
	fs.StringVar(&f.taskQueue, "task-queue", worker.DefaultTaskQueue, "task queue to poll")
	fs.Var(&f.maxMemory, "max-memory", "memory budget for records, batches and requests of all chunks of this process (the Go memory limit allows 256MiB more)")
	fs.IntVar(&f.maxChunks, "max-concurrent-chunks", worker.DefaultMaxConcurrentChunks, "chunks (activities) running at once in this process")
	fs.StringVar(&f.esURL, "es-url", "http://localhost:9200", "Elasticsearch URLs, comma-separated (env ELASTICSEARCH_URL)")
	fs.StringVar(&f.esAPIKeyFile, "es-api-key-file", "", "file holding the Elasticsearch API key (env ELASTICSEARCH_API_KEY; a password only from ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD)")
	fs.StringVar(&f.esCACert, "es-ca-cert", "", "PEM file of the CA that signed Elasticsearch's certificate (env ELASTICSEARCH_CA_CERT)")
	fs.StringVar(&f.s3Endpoint, "s3-endpoint", "", "S3-compatible endpoint URL (env AWS_ENDPOINT_URL_S3; default AWS)")
	fs.StringVar(&f.s3Region, "s3-region", "", "S3 region (env AWS_REGION; default us-east-1)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.deadLetterDir, "dead-letter-dir", "", `directory for "file:NAME" dead-letter targets (env SLUICE_DEAD_LETTER_DIR; default: none, such targets fail)`)
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", `serve Prometheus metrics on /metrics at this address, such as ":9090" (default: none)`)
	fs.DurationVar(&f.stallTimeout, "stall-timeout", 0, "a chunk that makes no progress (no checkpoint, no byte read from S3) this long fails its attempt and resumes from its checkpoint (env SLUICE_STALL_TIMEOUT; default: the larger of 5m and --retry-max-elapsed of the job plus the request timeout)")
	fs.StringVar(&f.deadLetterS3, "dead-letter-s3", "", `S3 locations "s3://bucket[/prefix]" (comma-separated) that "s3://..." dead-letter targets may write under (env SLUICE_DEAD_LETTER_S3; default: none, such targets fail)`)
	fs.BoolVar(&f.adaptive, "adaptive", true, "adapt the _bulk requests in flight of this process's chunks to the cluster (back off on 429s, 5xx and rising latency), up to their --inflight; false: each chunk keeps --inflight requests in flight")
	return f
}

// Config builds the worker configuration: the environment, then the flags that were given.
func (f *WorkerFlags) Config(stderr io.Writer) (worker.Config, error) {
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		return worker.Config{}, err
	}
	level, err := ParseLevel(f.logLevel)
	if err != nil {
		return worker.Config{}, err
	}
	if err := f.apply(&cfg); err != nil {
		return worker.Config{}, err
	}
	if f.temporal != nil {
		f.temporal.apply(&cfg.Temporal)
		if err := cfg.Temporal.Validate(); err != nil {
			return worker.Config{}, err
		}
	}
	if cfg.MaxConcurrentChunks < 1 {
		return worker.Config{}, fmt.Errorf("--max-concurrent-chunks must be at least 1")
	}
	if cfg.StallTimeout < 0 {
		return worker.Config{}, fmt.Errorf("--stall-timeout %s: want 0 (the default) or more", cfg.StallTimeout)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.SDKLogLevel = max(level, slog.LevelWarn)
	if level <= slog.LevelDebug {
		cfg.SDKLogLevel = level
	}
	return cfg.WithDefaults(), nil
}

// apply overrides cfg's fields with the worker flags that were given (the Temporal ones aside),
// reading the files they name.
func (f *WorkerFlags) apply(cfg *worker.Config) error {
	var ferr error
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "task-queue":
			cfg.TaskQueue = f.taskQueue
		case "max-memory":
			cfg.MaxMemory = int64(f.maxMemory)
			cfg.MemoryLimit = 0 // follows MaxMemory
		case "max-concurrent-chunks":
			cfg.MaxConcurrentChunks = f.maxChunks
		case "metrics-addr":
			cfg.MetricsAddr = f.metricsAddr
		case "adaptive":
			cfg.FixedInflight = !f.adaptive
		case "es-url":
			cfg.ES.Addresses = splitList(f.esURL)
		case "es-api-key-file":
			key, err := os.ReadFile(f.esAPIKeyFile)
			if err != nil {
				ferr = fmt.Errorf("--es-api-key-file: %w", err)
				return
			}
			cfg.ES.APIKey = strings.TrimSpace(string(key))
		case "es-ca-cert":
			pem, err := os.ReadFile(f.esCACert)
			if err != nil {
				ferr = fmt.Errorf("--es-ca-cert: %w", err)
				return
			}
			cfg.ES.CACert = pem
		case "s3-endpoint":
			cfg.S3.Endpoint = f.s3Endpoint
		case "s3-region":
			cfg.S3.Region = f.s3Region
		case "dead-letter-dir":
			cfg.DeadLetterDir = f.deadLetterDir
		case "stall-timeout":
			cfg.StallTimeout = f.stallTimeout
		case "dead-letter-s3":
			cfg.DeadLetterS3 = f.deadLetterS3
		}
	})
	return ferr
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
