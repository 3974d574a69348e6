package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

// Deadlines of the harness. Every wait has one, so that a test fails with a message instead of
// hanging until the package timeout.
const (
	devStartTimeout    = 90 * time.Second // sluice dev: server (and worker) ready
	workerStartTimeout = 60 * time.Second
	stopTimeout        = 20 * time.Second // a process to exit after SIGTERM or SIGKILL
	httpTimeout        = 30 * time.Second
)

// env is one test's world: its own S3 server and bucket, one of the shared engine nodes (each
// test uses its own index names) and a scratch directory.
type env struct {
	t      *testing.T
	s3     *s3test.Server
	bucket string
	es     *esClient
	dir    string

	mu    sync.Mutex
	procs []*proc
	seq   map[string]int // per process name, to number log files
}

// newEnv is newEnvOn the OpenSearch node, for a test whose subject is not the engine (Temporal,
// workers, faults): one engine is enough there, and it is the one these tests were written on.
func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	return newEnvOn(t, testenv.Engine{Name: testenv.OpenSearch, URL: testenv.OpenSearchURL(t)})
}

// newEnvOn skips the test unless the end-to-end setup is there (versitygw, the binaries), and
// starts a versitygw server with one bucket for a test whose sluice processes index into node.
func newEnvOn(t *testing.T, node testenv.Engine) *env {
	t.Helper()
	return newEnvWith(t, esNode{url: node.URL})
}

// newSecuredEnv is newEnvOn the Elasticsearch node with security on: the sluice processes get
// ELASTICSEARCH_USERNAME, ELASTICSEARCH_PASSWORD and ELASTICSEARCH_CA_CERT, as a user sets them.
func newSecuredEnv(t *testing.T) *env {
	t.Helper()
	s := testenv.SecuredElasticsearch(t)
	return newEnvWith(t, esNode{url: s.URL, username: s.Username, password: s.Password, caCert: s.CACert})
}

func newEnvWith(t *testing.T, node esNode) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	testenv.VersityGW(t)
	if binDir == "" {
		t.Fatal("binaries were not built (TestMain)")
	}
	e := &env{t: t, es: newESClient(t, node), dir: t.TempDir(), seq: map[string]int{}}
	e.s3 = s3test.Start(t)
	e.bucket = uniqueName("e2e")
	e.s3.CreateBucket(t, e.bucket)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range e.procs {
				t.Logf("---- last lines of %s (%s) ----\n%s", p.name, p.logPath, p.tail(60))
			}
		}
		e.checkNoSecretInLogs()
	})
	return e
}

// uniqueName is prefix plus a random suffix: a valid bucket and index name.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%06d", prefix, time.Now().Unix()%100000, rand.IntN(1_000_000))
}

// index returns a fresh index name for the test and deletes the index and its dead-letter index
// when the test ends.
func (e *env) index(tag string) string {
	name := uniqueName("e2e-" + tag)
	e.t.Cleanup(func() {
		e.es.deleteIndex(name)
		e.es.deleteIndex(name + "-dead-letters")
	})
	return name
}

// procEnv is the environment of every sluice process: this process's, without any setting
// sluice reads (so a developer's shell cannot leak into the test), plus the S3 server's
// credentials and endpoint, the node's URL (and credentials and CA, when it has them), extra,
// and the binaries first on PATH.
func (e *env) procEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "AWS_"), strings.HasPrefix(k, "TEMPORAL_"), strings.HasPrefix(k, "ELASTICSEARCH_"),
			k == "GOMEMLIMIT", k == "PATH":
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out = append(out, e.s3.Env()...)
	out = append(out, e.es.node.env()...)
	return append(out, extra...)
}

// checkNoSecretInLogs fails the test when the S3 secret key or the node's password shows up in
// any process output.
func (e *env) checkNoSecretInLogs() {
	for _, p := range e.procs {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		e.checkNoSecret(p.name+" ("+p.logPath+")", b)
	}
}

// checkNoSecret fails the test when the S3 secret key or the node's password is in out, the
// output of what.
func (e *env) checkNoSecret(what string, out []byte) {
	if bytes.Contains(out, []byte(s3test.SecretKey)) {
		e.t.Errorf("the S3 secret key appears in the output of %s", what)
	}
	if pw := e.es.node.password; pw != "" && bytes.Contains(out, []byte(pw)) {
		e.t.Errorf("the Elasticsearch password appears in the output of %s", what)
	}
}

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 100ms until it returns true, and fails the test with what it was
// waiting for after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
}

// ---- processes ----

// proc is a sluice process started by a test. Its stdout and stderr go to one log file; the
// test's cleanup SIGKILLs its process group if it still runs.
type proc struct {
	t       testing.TB
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, once done is closed
}

// start runs `sluice args...` with the environment env; name names it in messages and in its
// log file.
func (e *env) start(name string, env []string, args ...string) *proc {
	e.t.Helper()
	e.mu.Lock()
	e.seq[name]++
	logPath := filepath.Join(e.dir, fmt.Sprintf("%s-%d.log", name, e.seq[name]))
	e.mu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(filepath.Join(binDir, "sluice"), args...)
	cmd.Env = env
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{t: e.t, name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	e.t.Cleanup(p.kill)
	e.t.Logf("started %s (pid %d): sluice %s", name, cmd.Process.Pid, strings.Join(args, " "))
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process group (the process and anything it started) and waits up
// to stopTimeout for the process to exit; it reports whether it did.
func (p *proc) signal(sig syscall.Signal) bool {
	if p.exited() {
		return true
	}
	_ = syscall.Kill(-p.pid(), sig)
	select {
	case <-p.done:
		return true
	case <-time.After(stopTimeout):
		return false
	}
}

// kill SIGKILLs the process group and waits for the process to exit.
func (p *proc) kill() {
	if !p.signal(syscall.SIGKILL) {
		p.t.Errorf("%s (pid %d) did not exit %s after SIGKILL", p.name, p.pid(), stopTimeout)
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// tail is the last n lines of the output.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.output(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// startDev runs `sluice dev` on port with its database under dataDir, with a worker in the same
// process unless withWorker is false, and waits until the server answers (and, with a worker,
// until a worker polls for activities).
func (e *env) startDev(port int, dataDir string, withWorker bool, extra ...string) *proc {
	e.t.Helper()
	args := []string{"dev", "--port", strconv.Itoa(port), "--data-dir", dataDir, "--worker=" + strconv.FormatBool(withWorker)}
	p := e.start("dev", e.procEnv(), append(args, extra...)...)
	c := p.waitTemporal(e.t, port, devStartTimeout)
	if withWorker {
		p.waitPoller(e.t, c, "", devStartTimeout)
	}
	return p
}

// startWorker runs `sluice worker` against the Temporal frontend at port and waits until it
// polls for activities.
func (e *env) startWorker(port int, args ...string) *proc {
	e.t.Helper()
	return e.startWorkerEnv(port, nil, args...)
}

// startWorkerEnv is startWorker with extra variables in the worker's environment.
func (e *env) startWorkerEnv(port int, extraEnv []string, args ...string) *proc {
	e.t.Helper()
	p := e.start("worker", e.procEnv(extraEnv...), append([]string{"worker", "--temporal-address", temporalAddr(port)}, args...)...)
	c := p.waitTemporal(e.t, port, workerStartTimeout)
	p.waitPoller(e.t, c, strconv.Itoa(p.pid())+"@", workerStartTimeout)
	return p
}

// waitTemporal waits until the Temporal frontend at port answers, failing early when p exits,
// and returns a client, closed when the test ends.
func (p *proc) waitTemporal(t *testing.T, port int, timeout time.Duration) client.Client {
	t.Helper()
	var c client.Client
	waitFor(t, timeout, fmt.Sprintf("Temporal to answer on %s (%s)", temporalAddr(port), p.name), func() bool {
		p.failIfExited(t)
		var err error
		c, err = dial(port, 2*time.Second)
		return err == nil
	})
	t.Cleanup(c.Close)
	return c
}

// waitPoller waits until a worker whose identity starts with prefix ("": any) polls sluice's
// task queue for activities, failing early when p exits.
func (p *proc) waitPoller(t *testing.T, c client.Client, prefix string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%s (pid %d) to poll task queue %q", p.name, p.pid(), worker.DefaultTaskQueue), func() bool {
		p.failIfExited(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.DescribeTaskQueue(ctx, worker.DefaultTaskQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		if err != nil {
			return false
		}
		for _, pi := range resp.GetPollers() {
			if strings.HasPrefix(pi.GetIdentity(), prefix) {
				return true
			}
		}
		return false
	})
}

// failIfExited fails the test with p's output when p has exited.
func (p *proc) failIfExited(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("%s (pid %d) exited: %v; output:\n%s", p.name, p.pid(), p.err, p.tail(60))
	}
}

func temporalAddr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// cliResult is the outcome of a sluice command run to its end.
type cliResult struct {
	code   int
	stdout string
	stderr string
}

// run runs `sluice args...` to its end (at most timeout) with env and returns its exit code and
// output.
func (e *env) run(timeout time.Duration, env []string, args ...string) cliResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "sluice"), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = stopTimeout
	start := time.Now()
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.t.Fatalf("sluice %s: did not finish in %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), timeout, res.stdout, res.stderr)
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		e.t.Fatalf("sluice %s: %v", strings.Join(args, " "), err)
	}
	e.t.Logf("sluice %s: exit %d after %s", strings.Join(args, " "), res.code, time.Since(start).Round(time.Millisecond))
	e.checkNoSecret("sluice "+strings.Join(args, " "), []byte(res.stdout+res.stderr))
	return res
}

// ---- the CLI's JSON output (the fields the tests read; see cmd/sluice/status.go) ----

type statusOutput struct {
	WorkflowID string          `json:"workflow_id"`
	Status     string          `json:"status"`
	Error      string          `json:"error"`
	Result     *resultOutput   `json:"result"`
	Progress   json.RawMessage `json:"progress"`
}

type recordsOutput struct {
	Read         int64 `json:"read"`
	Indexed      int64 `json:"indexed"`
	DeadLettered int64 `json:"dead_lettered"`
	Retried      int64 `json:"retried"`
	BytesRead    int64 `json:"bytes_read"`
}

type resultOutput struct {
	Records       recordsOutput `json:"records"`
	ChunksPlanned int64         `json:"chunks_planned"`
	ChunksDone    int64         `json:"chunks_done"`
	ChunksFailed  int64         `json:"chunks_failed"`
	Objects       int64         `json:"objects"`
	Bytes         int64         `json:"bytes"`
	Runs          int           `json:"runs"`
}

// parseStatus decodes the one JSON object a --json command prints.
func parseStatus(t *testing.T, res cliResult) statusOutput {
	t.Helper()
	var s statusOutput
	if err := json.Unmarshal([]byte(strings.TrimSpace(res.stdout)), &s); err != nil {
		t.Fatalf("decoding the JSON output: %v\nstdout:\n%s\nstderr:\n%s", err, res.stdout, res.stderr)
	}
	return s
}

// ---- Temporal ----

// dialTemporal connects to the frontend at port; the client is closed when the test ends.
func dialTemporal(t *testing.T, port int) client.Client {
	t.Helper()
	c, err := dial(port, 30*time.Second)
	if err != nil {
		t.Fatalf("connecting to Temporal at %s: %v", temporalAddr(port), err)
	}
	t.Cleanup(c.Close)
	return c
}

// dial connects to the frontend at port, waiting at most timeout. The SDK's logs are dropped.
func dial(port int, timeout time.Duration) (client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return client.DialContext(ctx, client.Options{
		HostPort:  temporalAddr(port),
		Namespace: worker.DefaultNamespace,
		Logger:    worker.SDKLogger(slog.New(slog.NewTextHandler(io.Discard, nil)), slog.LevelError),
	})
}

// startBackfill starts BackfillWorkflow with the SDK, for settings `sluice ingest` has no flag
// for (the heartbeat timeout).
func startBackfill(t *testing.T, c client.Client, id string, in workflows.BackfillInput) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                worker.DefaultTaskQueue,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.BackfillName, in)
	if err != nil {
		t.Fatalf("starting workflow %s: %v", id, err)
	}
}

// waitBackfill waits up to timeout for workflow id to close and returns its result.
func waitBackfill(t *testing.T, c client.Client, id string, timeout time.Duration) workflows.BackfillResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var res workflows.BackfillResult
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatalf("workflow %s did not complete: %v", id, err)
	}
	return res
}

// chunkAttempt is an IngestChunk activity that started, from the workflow's history (which
// records the last attempt only).
type chunkAttempt struct {
	Chunk    activities.Chunk
	Identity string // of the worker that ran the last attempt
	Attempt  int32
}

// chunkAttempts reads the IngestChunk activities that started, from the histories of every run
// of workflow id (continue-as-new included).
func chunkAttempts(t *testing.T, c client.Client, id string) []chunkAttempt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []chunkAttempt
	runID := ""
	for range 1000 {
		it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		scheduled := map[int64]*historypb.ActivityTaskScheduledEventAttributes{}
		prev := ""
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("reading the history of %s: %v", id, err)
			}
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
				prev = ev.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes()
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				a := ev.GetActivityTaskStartedEventAttributes()
				s := scheduled[a.GetScheduledEventId()]
				if s.GetActivityType().GetName() != activities.IngestChunkName {
					continue
				}
				var in activities.IngestChunkInput
				if err := converter.GetDefaultDataConverter().FromPayloads(s.GetInput(), &in); err != nil {
					t.Fatalf("decoding the input of IngestChunk %s: %v", s.GetActivityId(), err)
				}
				out = append(out, chunkAttempt{Chunk: in.Chunk, Identity: a.GetIdentity(), Attempt: a.GetAttempt()})
			}
		}
		if prev == "" {
			return out
		}
		runID = prev
	}
	t.Fatalf("workflow %s: more than 1000 runs", id)
	return nil
}

// checkNoSecretInHistory fails the test when the S3 secret key is anywhere in the history of
// workflow id (its latest run): secrets never enter workflow inputs.
func checkNoSecretInHistory(t *testing.T, c client.Client, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	events := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("reading the history of %s: %v", id, err)
		}
		events++
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s3test.SecretKey)) {
			t.Errorf("the S3 secret key is in event %d (%s) of workflow %s", ev.GetEventId(), ev.GetEventType(), id)
		}
	}
	if events == 0 {
		t.Errorf("workflow %s: empty history", id)
	}
}

// pendingChunk is an IngestChunk activity the server holds as pending, with the last heartbeat
// that reached it.
type pendingChunk struct {
	Chunk         activities.Chunk
	State         enumspb.PendingActivityState
	Attempt       int32
	Identity      string // of the worker that runs (or ran) the current attempt
	Started       time.Time
	Heartbeat     activities.ChunkProgress
	HasHeartbeat  bool
	LastHeartbeat time.Time
}

// workflowClosed reports whether workflow id's latest run has closed.
func workflowClosed(t *testing.T, c client.Client, id string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatalf("describing %s: %v", id, err)
	}
	return desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// pendingChunks lists the pending IngestChunk activities of workflow id's current run.
func pendingChunks(t *testing.T, c client.Client, id string) []pendingChunk {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatalf("describing %s: %v", id, err)
	}
	runID := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	chunks := map[string]activities.Chunk{} // activity id -> chunk
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("reading the history of %s: %v", id, err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == activities.IngestChunkName {
			var in activities.IngestChunkInput
			if err := converter.GetDefaultDataConverter().FromPayloads(a.GetInput(), &in); err != nil {
				t.Fatalf("decoding the input of IngestChunk %s: %v", a.GetActivityId(), err)
			}
			chunks[a.GetActivityId()] = in.Chunk
		}
	}
	var out []pendingChunk
	for _, pa := range desc.GetPendingActivities() {
		if pa.GetActivityType().GetName() != activities.IngestChunkName {
			continue
		}
		pc := pendingChunk{Chunk: chunks[pa.GetActivityId()], State: pa.GetState(), Attempt: pa.GetAttempt(), Identity: pa.GetLastWorkerIdentity()}
		if pa.GetLastStartedTime() != nil {
			pc.Started = pa.GetLastStartedTime().AsTime()
		}
		if pa.GetLastHeartbeatTime() != nil {
			pc.LastHeartbeat = pa.GetLastHeartbeatTime().AsTime()
		}
		if len(pa.GetHeartbeatDetails().GetPayloads()) > 0 &&
			converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &pc.Heartbeat) == nil {
			pc.HasHeartbeat = true
		}
		out = append(out, pc)
	}
	return out
}

// ---- the engine node ----

// esNode is where a test's node is and how to get in.
type esNode struct {
	url                string
	username, password string // for a node with security on
	caCert             string // PEM file of the CA that signed the node's certificate
}

// env is the node as a user tells sluice about it: the ELASTICSEARCH_* variables.
func (n esNode) env() []string {
	out := []string{"ELASTICSEARCH_URL=" + n.url}
	if n.username != "" {
		out = append(out, "ELASTICSEARCH_USERNAME="+n.username, "ELASTICSEARCH_PASSWORD="+n.password)
	}
	if n.caCert != "" {
		out = append(out, "ELASTICSEARCH_CA_CERT="+n.caCert)
	}
	return out
}

// esClient is a minimal client of the OpenSearch (or Elasticsearch) REST API for checks.
type esClient struct {
	node esNode
	url  string
	hc   *http.Client
}

func newESClient(t *testing.T, node esNode) *esClient {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	if node.caCert != "" {
		pem, err := os.ReadFile(node.caCert)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("%s holds no PEM certificate", node.caCert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &esClient{node: node, url: strings.TrimRight(node.url, "/"), hc: &http.Client{Timeout: httpTimeout, Transport: tr}}
}

// do sends a request and returns the status and body.
func (c *esClient) do(method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.node.username != "" {
		req.SetBasicAuth(c.node.username, c.node.password)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// must sends a request and fails the test unless the answer is 2xx; it decodes the body into
// out when out is not nil.
func (c *esClient) must(t *testing.T, method, path string, body []byte, out any) {
	t.Helper()
	status, b, err := c.do(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if status/100 != 2 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
}

func (c *esClient) createIndex(t *testing.T, index, body string) {
	t.Helper()
	c.must(t, http.MethodPut, "/"+index, []byte(body), nil)
}

func (c *esClient) deleteIndex(index string) {
	_, _, _ = c.do(http.MethodDelete, "/"+index, nil)
}

func (c *esClient) refresh(t *testing.T, index string) {
	t.Helper()
	c.must(t, http.MethodPost, "/"+index+"/_refresh", nil, nil)
}

// count refreshes index and returns its document count.
func (c *esClient) count(t *testing.T, index string) int64 {
	t.Helper()
	c.refresh(t, index)
	var r struct{ Count int64 }
	c.must(t, http.MethodGet, "/"+index+"/_count", nil, &r)
	return r.Count
}

// indexTotal is the number of index operations the index's primaries have done, overwrites
// included: every record sent, however many times.
func (c *esClient) indexTotal(index string) (int64, error) {
	status, b, err := c.do(http.MethodGet, "/"+index+"/_stats/indexing", nil)
	if err != nil {
		return 0, err
	}
	if status == http.StatusNotFound {
		return 0, nil
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("GET /%s/_stats/indexing: HTTP %d: %s", index, status, b)
	}
	var r struct {
		All struct {
			Primaries struct {
				Indexing struct {
					IndexTotal int64 `json:"index_total"`
				} `json:"indexing"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, err
	}
	return r.All.Primaries.Indexing.IndexTotal, nil
}

// mget returns the _source of each of ids found in index.
func (c *esClient) mget(t *testing.T, index string, ids []string) map[string]json.RawMessage {
	t.Helper()
	out := make(map[string]json.RawMessage, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		body, _ := json.Marshal(map[string]any{"ids": ids[:n]})
		var r struct {
			Docs []struct {
				ID     string          `json:"_id"`
				Found  bool            `json:"found"`
				Source json.RawMessage `json:"_source"`
			} `json:"docs"`
		}
		c.must(t, http.MethodPost, "/"+index+"/_mget", body, &r)
		for _, d := range r.Docs {
			if d.Found {
				out[d.ID] = d.Source
			}
		}
		ids = ids[n:]
	}
	return out
}

// all returns the _source of every document of index (up to 10,000), by _id.
func (c *esClient) all(t *testing.T, index string) map[string]json.RawMessage {
	t.Helper()
	c.refresh(t, index)
	var r struct {
		Hits struct {
			Hits []struct {
				ID     string          `json:"_id"`
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	c.must(t, http.MethodPost, "/"+index+"/_search", []byte(`{"size":10000,"query":{"match_all":{}}}`), &r)
	out := make(map[string]json.RawMessage, len(r.Hits.Hits))
	for _, h := range r.Hits.Hits {
		out[h.ID] = h.Source
	}
	return out
}

// slowProxy forwards every request to the node at target, holding each _bulk request for delay
// first: a node that answers slower, so that a chunk runs for many seconds on a small dataset.
// A request whose client goes away during the delay (a killed worker) is not forwarded.
func slowProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_bulk") {
			timer := time.NewTimer(delay) // simulated latency, not synchronisation
			select {
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// sampler records an index's index_total every interval, to tell how many records were
// acknowledged in any window of time.
type sampler struct {
	mu      sync.Mutex
	samples []sample
	stop    func()
}

type sample struct {
	at    time.Time
	total int64
}

func startSampler(t *testing.T, es *esClient, index string, every time.Duration) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{}
	done := make(chan struct{})
	s.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if n, err := es.indexTotal(index); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, sample{time.Now(), n})
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// last is the latest sample (zero before the first).
func (s *sampler) last() sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return sample{}
	}
	return s.samples[len(s.samples)-1]
}

// before is the latest sample taken at or before at.
func (s *sampler) before(at time.Time) sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out sample
	for _, x := range s.samples {
		if x.at.After(at) {
			break
		}
		out = x
	}
	return out
}
