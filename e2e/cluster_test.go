package e2e

import (
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/workflows"
)

// TestServerRestart SIGKILLs `sluice dev` (the Temporal server and its worker, in one process)
// in the middle of a backfill and starts it again on the same data directory and port. The
// workflow must go on from its persisted state and complete with every record indexed once,
// and a `sluice status --wait` that follows it across the restart must report the outcome.
// One engine (newEnv): the subject is the Temporal server, not the engine.
func TestServerRestart(t *testing.T) {
	e := newEnv(t)
	total := bulkObjects(t, e, rand.New(rand.NewPCG(7, 8)), "restart/", 3, 16<<20)
	index := e.index("restart")
	createBulkIndex(t, e, index)

	port := freePort(t)
	dataDir := filepath.Join(e.dir, "temporal")
	// The worker reaches the node through slowProxy so that the run lasts long enough to be
	// interrupted; the proxy outlives the server.
	devArgs := []string{"--es-url", slowProxy(t, e.es.url, crashBulkDelay), "--max-memory", "256MiB"}
	dev := e.startDev(port, dataDir, true, devArgs...)

	c := dialTemporal(t, port)
	id := "restart-" + index
	startBackfill(t, c, id, workflows.BackfillInput{
		Source:           activities.Source{URI: "s3://" + e.bucket + "/restart/", Format: ingest.FormatNDJSON, Index: index},
		Limits:           activities.Limits{MaxOps: crashMaxOps, Inflight: crashInflight},
		ChunkSize:        8 << 20,
		Concurrency:      4,
		HeartbeatTimeout: crashHeartbeat,
	})
	follower := e.start("status", e.procEnv(), "status", id, "--wait", "--json", "--temporal-address", temporalAddr(port))

	s := startSampler(t, e.es, index, 100*time.Millisecond)
	waitFor(t, crashStallTimeout, "a third of the records to be indexed", func() bool { return s.last().total >= total/3 })
	at := s.last().total
	if !dev.signal(syscall.SIGKILL) {
		t.Fatal("sluice dev did not die on SIGKILL")
	}
	t.Logf("SIGKILLed sluice dev at index_total %d of %d records", at, total)
	restart := time.Now()
	e.startDev(port, dataDir, true, devArgs...)
	t.Logf("sluice dev restarted on %s in %s", dataDir, time.Since(restart).Round(time.Millisecond))

	c2 := dialTemporal(t, port)
	res := waitBackfill(t, c2, id, crashRunTimeout)
	if n := e.es.count(t, index); n != total {
		t.Errorf("index holds %d documents, want %d", n, total)
	}
	if res.Stats.Indexed != total || res.Stats.Read != total || res.ChunksFailed != 0 {
		t.Errorf("result: %+v; want %d records read and indexed", res, total)
	}
	final, err := e.es.indexTotal(index)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records, %d index operations (%d re-sent after the server was killed); run took %s",
		total, final, final-total, res.Duration.Round(time.Second))

	// The user's `sluice status --wait`, started before the kill, follows the run to its end.
	select {
	case <-follower.done:
	case <-time.After(time.Minute):
		t.Fatalf("sluice status --wait still running a minute after the backfill completed:\n%s", follower.tail(30))
	}
	if follower.err != nil || !strings.Contains(follower.output(), `"status":"completed"`) {
		t.Errorf("sluice status --wait across the server restart: %v\n%s", follower.err, follower.tail(30))
	}
}

// TestTwoWorkers runs a backfill on two `sluice worker` processes with two chunk slots each,
// under a window of four chunks: both must run chunks (as the workflow's history records), and
// the index must hold every record once. One engine (newEnv): the subject is the workers.
func TestTwoWorkers(t *testing.T) {
	e := newEnv(t)
	total := bulkObjects(t, e, rand.New(rand.NewPCG(9, 10)), "two/", 6, 2<<20)
	index := e.index("two")
	createBulkIndex(t, e, index)

	port := freePort(t)
	e.startDev(port, filepath.Join(e.dir, "temporal"), false)
	w1 := e.startWorker(port, "--max-concurrent-chunks", "2", "--max-memory", "128MiB")
	w2 := e.startWorker(port, "--max-concurrent-chunks", "2", "--max-memory", "128MiB")

	id := "two-" + index
	res := e.run(ingestTimeout, e.procEnv("TEMPORAL_ADDRESS="+temporalAddr(port)), "ingest",
		"--source", "s3://"+e.bucket+"/two/", "--index", index, "--chunk-size", "512KiB", "--concurrency", "4",
		"--workflow-id", id, "--wait", "--json")
	if res.code != 0 {
		t.Fatalf("sluice ingest --wait: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	st := parseStatus(t, res)
	if st.Result == nil || st.Result.Records.Indexed != total || st.Result.ChunksFailed != 0 {
		t.Errorf("summary: %s; want %d records indexed", res.stdout, total)
	}
	if n := e.es.count(t, index); n != total {
		t.Errorf("index holds %d documents, want %d", n, total)
	}

	// Who ran each chunk: the SDK's default worker identity is "<pid>@<host>@".
	byWorker := map[string]int{}
	attempts := chunkAttempts(t, dialTemporal(t, port), id)
	for _, a := range attempts {
		byWorker[a.Identity]++
	}
	for _, w := range []*proc{w1, w2} {
		n := 0
		for ident, k := range byWorker {
			if strings.HasPrefix(ident, strconv.Itoa(w.pid())+"@") {
				n += k
			}
		}
		t.Logf("worker pid %d ran %d of %d chunks", w.pid(), n, len(attempts))
		if n == 0 {
			t.Errorf("worker pid %d ran no chunk (chunks by worker identity: %v)", w.pid(), byWorker)
		}
	}
	if want := st.Result.ChunksPlanned; int64(len(attempts)) != want {
		t.Errorf("%d chunk activities in the history, want %d", len(attempts), want)
	}
}
