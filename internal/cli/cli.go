// Package cli holds what the sluice and sluice-dev commands share: exit codes, flag parsing,
// and the worker flags of `sluice worker` and `sluice dev`.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/sluicehq/sluice/internal/units"
	"github.com/sluicehq/sluice/worker"
)

// WorkerFlags are the flags of a worker, shared by `sluice worker` and `sluice dev`. Each one
// overrides the environment only when given. No flag takes a secret as its value: the
// Elasticsearch API key is read from a file (--es-api-key-file) or ELASTICSEARCH_API_KEY, a
// password only from ELASTICSEARCH_PASSWORD, AWS credentials from the AWS SDK's own chain.
type WorkerFlags struct {
	fs              *flag.FlagSet
	temporalAddress string
	namespace       string
	taskQueue       string
	maxMemory       units.Bytes
	maxChunks       int
	esURL           string
	esAPIKeyFile    string
	esCACert        string
	s3Endpoint      string
	s3Region        string
	logLevel        string
	deadLetterDir   string
}

// AddWorkerFlags registers the worker flags on fs; withTemporal adds --temporal-address and
// --namespace (`sluice dev` has its own server and --namespace).
func AddWorkerFlags(fs *flag.FlagSet, withTemporal bool) *WorkerFlags {
	f := &WorkerFlags{fs: fs, maxMemory: worker.DefaultMaxMemory}
	if withTemporal {
		fs.StringVar(&f.temporalAddress, "temporal-address", worker.DefaultTemporalAddress, "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
		fs.StringVar(&f.namespace, "namespace", worker.DefaultNamespace, "Temporal namespace (env TEMPORAL_NAMESPACE)")
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
	var ferr error
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "temporal-address":
			cfg.TemporalAddress = f.temporalAddress
		case "namespace":
			cfg.Namespace = f.namespace
		case "task-queue":
			cfg.TaskQueue = f.taskQueue
		case "max-memory":
			cfg.MaxMemory = int64(f.maxMemory)
			cfg.MemoryLimit = 0 // follows MaxMemory
		case "max-concurrent-chunks":
			cfg.MaxConcurrentChunks = f.maxChunks
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
		}
	})
	if ferr != nil {
		return worker.Config{}, ferr
	}
	if cfg.MaxConcurrentChunks < 1 {
		return worker.Config{}, fmt.Errorf("--max-concurrent-chunks must be at least 1")
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.SDKLogLevel = max(level, slog.LevelWarn)
	if level <= slog.LevelDebug {
		cfg.SDKLogLevel = level
	}
	return cfg.WithDefaults(), nil
}

// ParseLevel parses a log level: debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
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

// UsageError reports a bad flag value the way the flag package does, and returns ExitUsage.
func UsageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "sluice %s: %v\n", cmd, err)
	return ExitUsage
}

// Exit codes of every command.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the job ran and did not fully succeed, or a runtime error
	ExitUsage   = 2 // bad flags or arguments
	ExitPartial = 3 // completed with dead letters and --fail-on-dead-letters
	// ExitInterrupted: --wait stopped following on Ctrl-C or SIGTERM; the workflow goes on.
	ExitInterrupted = 130
)

// ParseFlags parses args and reports whether the command should go on; code is the exit code
// otherwise (0 for -h).
func ParseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (ok bool, code int) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, ExitOK
		}
		return false, ExitUsage
	}
	return true, 0
}
