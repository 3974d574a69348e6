package devserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/internal/devserver"
)

const taskQueue = "devserver-test"

func Greet(ctx workflow.Context, name string) (string, error) {
	return "hello " + name, nil
}

// WaitForSignal blocks until the "go" signal arrives and returns its payload. It starts a
// timer first so that the history holds more than the start events when the server restarts.
func WaitForSignal(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &v)
	return "got " + v, nil
}

func startServer(t *testing.T, opts devserver.Options) *devserver.Server {
	t.Helper()
	began := time.Now()
	s, err := devserver.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("devserver.Start (data dir %q) took %s", opts.DataDir, time.Since(began).Round(time.Millisecond))
	t.Cleanup(s.Stop)
	return s
}

func dial(t *testing.T, addr string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  addr,
		Namespace: "default",
		Logger:    quietSDKLogger(),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

func startWorker(t *testing.T, c client.Client) worker.Worker {
	t.Helper()
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(Greet)
	w.RegisterWorkflow(WaitForSignal)
	if err := w.Start(); err != nil {
		t.Fatalf("worker start: %v", err)
	}
	return w
}

func TestStartInMemoryRunsWorkflow(t *testing.T) {
	s := startServer(t, devserver.Options{})
	c := dial(t, s.FrontendAddress())
	w := startWorker(t, c)
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: taskQueue}, Greet, "sluice")
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if got != "hello sluice" {
		t.Fatalf("result = %q, want %q", got, "hello sluice")
	}
}

func TestTwoInMemoryServersAreIndependent(t *testing.T) {
	a := startServer(t, devserver.Options{})
	b := startServer(t, devserver.Options{Namespace: "other"})
	if a.FrontendAddress() == b.FrontendAddress() {
		t.Fatalf("both servers on %s", a.FrontendAddress())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca := dial(t, a.FrontendAddress())
	if _, err := ca.WorkflowService().DescribeNamespace(ctx, describeNS("other")); err == nil {
		t.Fatalf("namespace %q of server b is visible on server a", "other")
	}
	cb := dial(t, b.FrontendAddress())
	if _, err := cb.WorkflowService().DescribeNamespace(ctx, describeNS("other")); err != nil {
		t.Fatalf("describe namespace on b: %v", err)
	}
}

// TestRestartResumesWorkflow stops a file-backed server while a workflow waits for a signal,
// starts a new server on the same directory and completes the workflow there.
func TestRestartResumesWorkflow(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	began := time.Now()
	s1, err := devserver.Start(devserver.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("first Start: %v", err)
	}
	t.Cleanup(s1.Stop) // on failure; the test stops it itself
	t.Logf("Start on a new data dir (creates the schema) took %s", time.Since(began).Round(time.Millisecond))
	c1 := dial(t, s1.FrontendAddress())
	w1 := startWorker(t, c1)
	run, err := c1.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "wait-for-signal", TaskQueue: taskQueue}, WaitForSignal)
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	waitWorkflowTaskDone(t, ctx, c1, run.GetID())
	w1.Stop()
	c1.Close()
	began = time.Now()
	s1.Stop()
	t.Logf("Stop took %s", time.Since(began).Round(time.Millisecond))

	s2 := startServer(t, devserver.Options{DataDir: dir})
	c2 := dial(t, s2.FrontendAddress())
	w2 := startWorker(t, c2)
	defer w2.Stop()
	if err := c2.SignalWorkflow(ctx, run.GetID(), "", "go", "after-restart"); err != nil {
		t.Fatalf("SignalWorkflow: %v", err)
	}
	var got string
	if err := c2.GetWorkflow(ctx, run.GetID(), run.GetRunID()).Get(ctx, &got); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if got != "got after-restart" {
		t.Fatalf("result = %q", got)
	}
}

// TestRestartAcrossProcesses starts the workflow in a child process (this test binary run as
// a helper) so the second server opens the database file fresh, as `sluice dev` does after a
// reboot. In one process the SQLite plugin keeps its connection open across Stop.
func TestRestartAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("DEVSERVER_HELPER_DIR"); dir != "" {
		helperStartWorkflow(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestartAcrossProcesses$", "-test.v")
	cmd.Env = append(os.Environ(), "DEVSERVER_HELPER_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "HELPER-OK") {
		t.Fatalf("helper did not finish:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := startServer(t, devserver.Options{DataDir: dir})
	c := dial(t, s.FrontendAddress())
	w := startWorker(t, c)
	defer w.Stop()
	if err := c.SignalWorkflow(ctx, "cross-process", "", "go", "in-new-process"); err != nil {
		t.Fatalf("SignalWorkflow: %v", err)
	}
	var got string
	if err := c.GetWorkflow(ctx, "cross-process", "").Get(ctx, &got); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if got != "got in-new-process" {
		t.Fatalf("result = %q", got)
	}
}

func helperStartWorkflow(t *testing.T, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	began := time.Now()
	s, err := devserver.Start(devserver.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Stop)
	t.Logf("devserver.Start on a new data dir took %s", time.Since(began).Round(time.Millisecond))
	c := dial(t, s.FrontendAddress())
	w := startWorker(t, c)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "cross-process", TaskQueue: taskQueue}, WaitForSignal)
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	waitWorkflowTaskDone(t, ctx, c, run.GetID())
	w.Stop()
	c.Close()
	s.Stop()
	fmt.Println("HELPER-OK")
}

// waitWorkflowTaskDone polls until the first workflow task completed, so the workflow is
// parked on its signal channel (and not merely scheduled) when the server goes down.
func waitWorkflowTaskDone(t *testing.T, ctx context.Context, c client.Client, id string) {
	t.Helper()
	for {
		iter := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatalf("history: %v", err)
			}
			if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("workflow task of %s not completed: %v", id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func describeNS(name string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: name}
}

func quietSDKLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func TestStartRejectsBusyPort(t *testing.T) {
	s := startServer(t, devserver.Options{})
	_, portStr, err := net.SplitHostPort(s.FrontendAddress())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	s2, err := devserver.Start(devserver.Options{Port: port})
	if err == nil {
		s2.Stop()
		t.Fatal("second server on a busy port started")
	}
	t.Logf("busy port: %v", err)
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	startServer(t, devserver.Options{DataDir: dir})
	s2, err := devserver.Start(devserver.Options{DataDir: dir})
	if err == nil {
		s2.Stop()
		t.Fatal("second server on the same data dir started")
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("err = %v", err)
	}
}
