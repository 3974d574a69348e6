package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/internal/devcmd"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

// runDevInProcess is `sluice dev` in this process: the test binary may link the Temporal server that
// the sluice binary leaves to sluice-dev.
var runDevInProcess = devcmd.Run

// running is a sluice command running in this process, with its stdout read line by line.
type running struct {
	t      *testing.T
	cancel context.CancelFunc
	lines  chan string
	code   chan int
	stderr *syncBuffer
}

type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// start runs fn (runDevInProcess, runWorker) with args until the test ends or stop is called.
func start(t *testing.T, fn func(context.Context, []string, io.Writer, io.Writer) int, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	c := &running{t: t, cancel: cancel, lines: make(chan string, 100), code: make(chan int, 1), stderr: newSyncBuffer()}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody is waiting for that many lines
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		code := fn(ctx, args, pw, c.stderr)
		pw.Close()
		c.code <- code
	}()
	t.Cleanup(func() { c.stop() })
	return c
}

// waitLine returns the first line that starts with prefix, failing the test if the command
// exits or nothing comes within a minute.
func (c *running) waitLine(prefix string) string {
	c.t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		select {
		case l := <-c.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case code := <-c.code:
			c.code <- code
			c.t.Fatalf("command exited with %d before printing %q; stderr:\n%s", code, prefix, c.stderr)
		case <-timeout.C:
			c.t.Fatalf("no line %q within a minute; stderr:\n%s", prefix, c.stderr)
		}
	}
}

// stop cancels the command (as SIGINT does) and returns its exit code.
func (c *running) stop() int {
	c.cancel()
	code := <-c.code
	c.code <- code
	return code
}

// devAddress starts `sluice dev` with args and returns its frontend address.
func devAddress(t *testing.T, args ...string) (*running, string) {
	t.Helper()
	dev := start(t, runDevInProcess, append([]string{"--port", "0"}, args...)...)
	line := dev.waitLine("sluice dev: Temporal server listening on ")
	addr, _, _ := strings.Cut(strings.TrimPrefix(line, "sluice dev: Temporal server listening on "), " ")
	return dev, addr
}

func dial(t *testing.T, addr, namespace string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: addr, Namespace: namespace, Logger: worker.SDKLogger(nil, levelOff)})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

const levelOff = slog.Level(100) // above every slog level

func describeNamespace(name string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: name}
}

func TestDevAcceptsClients(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	dev, addr := devAddress(t, "--data-dir", dir, "--worker=false", "--namespace", "etl")
	dev.waitLine("sluice dev: running")
	c := dial(t, addr, "etl")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		t.Fatal(err)
	}
	ns, err := c.WorkflowService().DescribeNamespace(ctx, describeNamespace("etl"))
	if err != nil || ns.GetNamespaceInfo().GetName() != "etl" {
		t.Fatalf("namespace etl: %v %v", ns, err)
	}
	if code := dev.stop(); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, dev.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "temporal.db")); err != nil {
		t.Fatalf("no database file: %v", err)
	}
}

// TestDevAndWorkerRunBackfills runs `sluice dev` with its worker, and `sluice worker` on
// another task queue of the same server, against a real S3 server and the fake
// Elasticsearch, and runs a backfill on each.
func TestDevAndWorkerRunBackfills(t *testing.T) {
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	s3.CreateBucket(t, "data")
	var data []byte
	for i := range 500 {
		data = fmt.Appendf(data, `{"n":%d}`+"\n", i)
	}
	s3.Put(t, "data", "in/a.ndjson", data)
	es := esfake.New(esfake.Options{})
	t.Cleanup(es.Close)
	t.Setenv("ELASTICSEARCH_URL", "http://127.0.0.1:1") // the flag must win
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")

	dev, addr := devAddress(t, "--data-dir", "", "--es-url", es.URL(), "--s3-endpoint", s3.Endpoint(), "--task-queue", "q-dev", "--log-level", "warn")
	dev.waitLine("sluice dev: worker polling task queue \"q-dev\"")
	wk := start(t, runWorker, "--temporal-address", addr, "--es-url", es.URL(), "--s3-endpoint", s3.Endpoint(),
		"--task-queue", "q-worker", "--max-memory", "64MiB", "--max-concurrent-chunks", "2", "--log-level", "warn")
	wk.waitLine("sluice worker: polling task queue \"q-worker\"")

	c := dial(t, addr, "default")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, q := range []string{"q-dev", "q-worker"} {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "backfill-" + q, TaskQueue: q}, workflows.BackfillName,
			workflows.BackfillInput{Source: activities.Source{URI: "s3://data/in/", Index: q}, ChunkSize: 1 << 10})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.BackfillResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("backfill on %s: %v", q, err)
		}
		if res.Stats.Indexed != 500 || es.Count(q) != 500 {
			t.Fatalf("backfill on %s: %+v, %d documents; want 500", q, res, es.Count(q))
		}
	}
	if code := wk.stop(); code != exitOK {
		t.Fatalf("sluice worker exit code %d; stderr:\n%s", code, wk.stderr)
	}
	if code := dev.stop(); code != exitOK {
		t.Fatalf("sluice dev exit code %d; stderr:\n%s", code, dev.stderr)
	}
}

func TestDevWorkerNeedsElasticsearch(t *testing.T) {
	es := esfake.New(esfake.Options{})
	url := es.URL()
	es.Close()
	var stdout, stderr bytes.Buffer
	code := runDevInProcess(context.Background(), []string{"--port", "0", "--data-dir", "", "--es-url", url}, &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stderr.String(), "--worker=false") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		fn   func(context.Context, []string, io.Writer, io.Writer) int
		args []string
		want string
	}{
		{runWorker, []string{"--max-memory", "lots"}, "invalid size"},
		{runWorker, []string{"--log-level", "loud"}, "--log-level"},
		{runWorker, []string{"--max-concurrent-chunks", "0"}, "at least 1"},
		{runWorker, []string{"--es-api-key-file", "/nonexistent/key"}, "--es-api-key-file"},
		{runWorker, []string{"extra"}, "unexpected arguments"},
		{runWorker, []string{"--stall-timeout", "-1m"}, "--stall-timeout -1m0s: want 0 (the default) or more"},
		{runWorker, []string{"--stall-timeout", "soon"}, "stall-timeout"},
		{runDevInProcess, []string{"--server-log-level", "loud"}, "--server-log-level"},
		{runDevInProcess, []string{"--bogus"}, "bogus"},
	} {
		var stdout, stderr bytes.Buffer
		code := tc.fn(context.Background(), tc.args, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), exitUsage, tc.want)
		}
	}
}

// TestWorkerTemporalTLSEnvironment: a TLS setting that cannot be honoured stops `sluice worker`
// before it connects anywhere (exit 2), with the variable named; it never falls back to plaintext.
func TestWorkerTemporalTLSEnvironment(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"TEMPORAL_TLS": "enabled"}, nil, `TEMPORAL_TLS="enabled"`},
		{map[string]string{"TEMPORAL_TLS_KEY": "/some/key.pem"}, nil, "set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"},
		{map[string]string{"TEMPORAL_TLS_CERT": "/some/cert.pem"}, nil, "set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"},
		{nil, []string{"--temporal-tls-key", "/some/key.pem"}, "set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"},
	} {
		for _, k := range []string{"TEMPORAL_TLS", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"} {
			t.Setenv(k, tc.env[k])
		}
		var stdout, stderr bytes.Buffer
		code := runWorker(context.Background(), tc.args, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want %d and %q", tc.env, tc.args, code, stderr.String(), exitUsage, tc.want)
		}
	}
}

func TestWorkerFlagsOverrideEnvironment(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEMPORAL_ADDRESS", "env:7233")
	t.Setenv("TEMPORAL_NAMESPACE", "env-ns")
	t.Setenv("ELASTICSEARCH_URL", "http://env:9200")
	t.Setenv("ELASTICSEARCH_API_KEY", "env-key")
	t.Setenv("ELASTICSEARCH_CA_CERT", "")
	t.Setenv("SLUICE_DEAD_LETTER_S3", "s3://env-dl")

	parse := func(args ...string) worker.Config {
		t.Helper()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		wf := addWorkerFlags(fs, true)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg, err := wf.Config(io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	if cfg := parse(); cfg.StallTimeout != 0 || cfg.MetricsAddr != "" {
		t.Fatalf("defaults: stall timeout %s, metrics at %q; want 0 (the activities' default) and none", cfg.StallTimeout, cfg.MetricsAddr)
	}
	t.Setenv("SLUICE_STALL_TIMEOUT", "7m")
	cfg := parse()
	if cfg.Temporal.Address != "env:7233" || cfg.Temporal.Namespace != "env-ns" || cfg.ES.Addresses[0] != "http://env:9200" ||
		cfg.ES.APIKey != "env-key" || cfg.MaxMemory != worker.DefaultMaxMemory || cfg.TaskQueue != "sluice" || cfg.StallTimeout != 7*time.Minute ||
		cfg.DeadLetterS3 != "s3://env-dl" {
		t.Fatalf("from the environment: %+v", cfg)
	}
	cfg = parse("--temporal-address", "flag:7233", "--namespace", "flag-ns", "--es-url", "http://a:9200,http://b:9200",
		"--es-api-key-file", keyFile, "--max-memory", "1GiB", "--max-concurrent-chunks", "9", "--task-queue", "tq",
		"--s3-endpoint", "http://s3:9000", "--s3-region", "eu-west-1", "--stall-timeout", "90s", "--metrics-addr", "127.0.0.1:9464",
		"--dead-letter-s3", "s3://flag-dl/a,s3://flag-dl/b")
	if cfg.Temporal.Address != "flag:7233" || cfg.Temporal.Namespace != "flag-ns" || len(cfg.ES.Addresses) != 2 ||
		cfg.ES.APIKey != "file-key" || cfg.MaxMemory != 1<<30 || cfg.MemoryLimit != 1<<30+worker.MemoryOverhead ||
		cfg.MaxConcurrentChunks != 9 || cfg.TaskQueue != "tq" || cfg.S3.Endpoint != "http://s3:9000" || cfg.S3.Region != "eu-west-1" ||
		cfg.StallTimeout != 90*time.Second || cfg.MetricsAddr != "127.0.0.1:9464" || cfg.DeadLetterS3 != "s3://flag-dl/a,s3://flag-dl/b" {
		t.Fatalf("from the flags: %+v", cfg)
	}

	// A variable that does not parse stops the worker before it connects (exit 2), named.
	t.Setenv("SLUICE_STALL_TIMEOUT", "soon")
	var stderr bytes.Buffer
	if code := runWorker(context.Background(), nil, io.Discard, &stderr); code != exitUsage || !strings.Contains(stderr.String(), `SLUICE_STALL_TIMEOUT "soon"`) {
		t.Fatalf("SLUICE_STALL_TIMEOUT=soon: exit %d, %q", code, stderr.String())
	}
}
