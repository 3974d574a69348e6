package e2e

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/workflows"
)

// Settings of TestCrashAndResume. The workers reach the node through slowProxy, so that a
// chunk runs for about ten seconds and kills land inside chunks; the heartbeat timeout is
// short, so that the chunks of a killed worker are retried a few seconds later.
const (
	crashObjects      = 4
	crashObjectSize   = 24 << 20 // bytes; three chunks each
	crashChunkSize    = 8 << 20
	crashChunks       = 4 // chunks at once: the workflow's window and the worker's slots
	crashMaxOps       = 250
	crashInflight     = 2
	crashBulkDelay    = 200 * time.Millisecond
	crashHeartbeat    = 5 * time.Second
	crashKills        = 5
	minCrashKills     = 3 // kills that must land before a run ends (see runCrash)
	crashRunTimeout   = 5 * time.Minute
	crashStallTimeout = 2 * time.Minute // for the index to grow between kills
)

// TestCrashAndResume SIGKILLs the only worker in the middle of chunks, five times, starting a
// new one each time. The run must complete with every record indexed exactly once, and re-send
// no more records than the design promises: per kill, what was in flight plus what was
// acknowledged since the last heartbeat that reached the server (the SDK sends at most one
// every 0.8 x heartbeat timeout; the killed worker loses the buffered one).
//
// Elasticsearch only, the first target: the test runs for minutes, and what it checks (resume
// from the heartbeated checkpoint, the re-send bound) is the worker's, the same on OpenSearch,
// which TestBackfillDataset covers.
func TestCrashAndResume(t *testing.T) {
	e := newEnvOn(t, testenv.Engine{Name: testenv.Elasticsearch, URL: testenv.ElasticsearchURL(t)})
	total := bulkObjects(t, e, rand.New(rand.NewPCG(5, 6)), "crash/", crashObjects, crashObjectSize)
	t.Logf("dataset: %d objects of %d MiB, %d records", crashObjects, crashObjectSize>>20, total)
	runCrash(t, e, crashSetup{prefix: "crash/", records: total, chunkSize: crashChunkSize, maxOps: crashMaxOps})
}

// crashSetup is what a crash test varies: its dataset (objects under prefix holding records
// records, cut by chunkSize) and the documents per _bulk request. A migration sets uri (an
// es:// source holding records documents) instead of prefix, the workers' extra environment
// (its source cluster's variables) and fewer kills.
type crashSetup struct {
	prefix    string
	records   int64
	chunkSize int64
	maxOps    int
	uri       string   // default: s3://<bucket>/<prefix>
	workerEnv []string // added to each worker's environment
	kills     int      // default: crashKills
}

// runCrash runs a backfill of cs's dataset and SIGKILLs its only worker crashKills times inside
// chunks, starting a new one each time, then checks that every record is indexed once and that
// the re-sent records stay within the bounds (see TestCrashAndResume).
func runCrash(t *testing.T, e *env, cs crashSetup) crashRun {
	total := cs.records
	index := e.index("crash")
	createBulkIndex(t, e, index)
	port := freePort(t)
	e.startDev(port, filepath.Join(e.dir, "temporal"), false)
	workerArgs := []string{"--max-memory", "256MiB", "--max-concurrent-chunks", strconv.Itoa(crashChunks),
		"--es-url", slowProxy(t, e.es.url, crashBulkDelay)}
	w := e.startWorkerEnv(port, cs.workerEnv, workerArgs...)
	if cs.uri == "" {
		cs.uri = "s3://" + e.bucket + "/" + cs.prefix
	}
	kills := cmp.Or(cs.kills, crashKills)

	c := dialTemporal(t, port)
	id := "crash-" + index
	startBackfill(t, c, id, workflows.BackfillInput{
		Source:           activities.Source{URI: cs.uri, Format: ingest.FormatNDJSON, Index: index},
		Limits:           activities.Limits{MaxOps: cs.maxOps, Inflight: crashInflight},
		ChunkSize:        cs.chunkSize,
		Concurrency:      crashChunks,
		HeartbeatTimeout: crashHeartbeat,
	})
	s := startSampler(t, e.es, index, 100*time.Millisecond)

	// Kill when the index has grown past a point spread over the run, and the progress the
	// server knows shows the worker inside a chunk: a chunk attempt of this worker that has run
	// for longer than a heartbeat interval and heartbeated a checkpoint past its start.
	throttle := crashHeartbeat * 8 / 10
	window := throttle + time.Second // plus the heartbeat's trip to the server and the sampling
	inflight := int64(crashChunks * crashInflight * cs.maxOps)
	var bound, exact int64 // the design's bound, and the one from the server's last heartbeats
	var windows []int64
	midChunks := 0
	killed := 0 // chunk attempts killed
	for k := range kills {
		threshold := total * int64(10+80*k/kills) / 100 // 10, 26, 42, 58, 74 % with five kills
		finished := false
		waitFor(t, crashStallTimeout, fmt.Sprintf("index_total to reach %d and worker %d to be inside a chunk (kill %d)", threshold, w.pid(), k+1), func() bool {
			if finished = workflowClosed(t, c, id); finished {
				return true
			}
			if s.last().total < threshold {
				return false
			}
			for _, pc := range pendingChunks(t, c, id) {
				if pc.State == enumspb.PENDING_ACTIVITY_STATE_STARTED && strings.HasPrefix(pc.Identity, strconv.Itoa(w.pid())+"@") &&
					time.Since(pc.Started) > window && pc.HasHeartbeat && pc.insideChunk() {
					return true
				}
			}
			return false
		})
		if finished {
			// index_total counts re-sent records too, so on a small dataset the last
			// thresholds can lie past the end of a fast run: the kills that landed are checked.
			t.Logf("the backfill finished before kill %d", k+1)
			if k < minCrashKills {
				t.Errorf("the backfill finished after %d kills; want at least %d", k, minCrashKills)
			}
			kills = k
			break
		}
		at := time.Now()
		if !w.signal(syscall.SIGKILL) {
			t.Fatalf("worker %d did not die", w.pid())
		}
		// Everything the dead worker got acknowledged, read now that it is gone (no other worker
		// runs until the next one starts below).
		dead, err := e.es.indexTotal(index)
		if err != nil {
			t.Fatal(err)
		}
		acked := dead - s.before(at.Add(-window)).total
		windows = append(windows, acked)
		bound += inflight + acked

		// The server's view right after the kill: the chunks the worker was running, each with
		// the last checkpoint that reached the server. The next attempt resumes there.
		var desc []string
		midChunk := 0
		oldest := at // the oldest state of a killed chunk that the server knows
		for _, pc := range pendingChunks(t, c, id) {
			if !strings.HasPrefix(pc.Identity, strconv.Itoa(w.pid())+"@") {
				continue // not started by the killed worker (waiting for a retry)
			}
			killed++
			if ref := pc.LastHeartbeat; ref.IsZero() || ref.Before(oldest) {
				if ref.IsZero() {
					ref = pc.Started
				}
				oldest = ref
			}
			if !pc.HasHeartbeat {
				desc = append(desc, fmt.Sprintf("%s[%d,%d) attempt %d: no heartbeat", pc.Chunk.Name(), pc.Chunk.Start, pc.Chunk.End, pc.Attempt))
				continue
			}
			if pc.insideChunk() {
				midChunk++
			}
			desc = append(desc, fmt.Sprintf("%s[%d,%d) attempt %d started %s before the kill: checkpoint %d of object %d (%d records) in the heartbeat of %s before",
				pc.Chunk.Name(), pc.Chunk.Start, pc.Chunk.End, pc.Attempt, at.Sub(pc.Started).Round(10*time.Millisecond),
				pc.Heartbeat.Checkpoint, pc.Heartbeat.Object, pc.Heartbeat.Stats.Read, at.Sub(pc.LastHeartbeat).Round(10*time.Millisecond)))
		}
		// What the server can know of: every record acknowledged since the oldest last heartbeat
		// of the killed chunks (a second earlier, for the heartbeat's trip) is re-sent at most.
		since := at.Sub(oldest) + time.Second
		ackedSince := dead - s.before(at.Add(-since)).total
		exact += inflight + ackedSince
		t.Logf("kill %d: SIGKILLed worker pid %d at index_total %d; %d records acknowledged in the %s before, %d since the oldest last heartbeat (%s before); pending chunks:\n\t%s",
			k+1, w.pid(), dead, acked, window, ackedSince, since.Round(10*time.Millisecond), strings.Join(desc, "\n\t"))
		if midChunk == 0 {
			t.Errorf("kill %d: no chunk of the killed worker had a checkpoint inside its range", k+1)
		}
		midChunks += midChunk
		w = e.startWorkerEnv(port, cs.workerEnv, workerArgs...)
	}

	res := waitBackfill(t, c, id, crashRunTimeout)
	final, err := e.es.indexTotal(index)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.es.count(t, index); n != total {
		t.Errorf("index holds %d documents, want %d (each record once)", n, total)
	}
	if res.Stats.Indexed != total || res.Stats.Read != total || res.Stats.DeadLettered != 0 || res.ChunksFailed != 0 {
		t.Errorf("result: %+v; want %d records read and indexed, nothing dead-lettered or failed", res, total)
	}
	retried, retries := 0, 0
	attempts := chunkAttempts(t, c, id)
	for _, a := range attempts {
		if a.Attempt > 1 {
			retried++
			retries += int(a.Attempt) - 1
		}
	}
	// Each killed attempt is retried once. More retries mean attempts that failed without a
	// kill, such as a heartbeat that reached the server too late on an overloaded machine; their
	// re-sent records are not in the bounds.
	unexplained := ""
	if retries > killed {
		unexplained = fmt.Sprintf(" (%d retries for %d killed attempts: some attempts failed on their own; see the worker logs)", retries, killed)
	}

	resent := final - total
	t.Logf("re-sent records: %d after %d kills (%d index operations for %d records, +%.2f%%); bound %d = per kill %d in flight (%d chunks x %d requests x %d docs) + records acknowledged in the %s before it %v",
		resent, kills, final, total, 100*float64(resent)/float64(total), bound, inflight,
		crashChunks, crashInflight, cs.maxOps, window, windows)
	t.Logf("bound from the killed chunks' last heartbeats on the server: %d", exact)
	t.Logf("%d chunks, %d retried, %d retries for %d killed attempts, %d of which had a checkpoint inside their range; run took %s",
		len(attempts), retried, retries, killed, midChunks, res.Duration.Round(time.Second))
	if resent < 0 {
		t.Errorf("index_total %d is below the record count %d", final, total)
	}
	if resent > bound {
		t.Errorf("%d records re-sent after %d kills, more than the bound %d%s", resent, kills, bound, unexplained)
	}
	// A resumed chunk that started over from its start would re-send everything before its
	// checkpoint too, and break this tighter bound.
	if resent > exact {
		t.Errorf("%d records re-sent after %d kills, more than what was in flight plus what was acknowledged after the killed chunks' last heartbeats reached the server (%d)%s", resent, kills, exact, unexplained)
	}
	return crashRun{BackfillResult: res, Index: index, ID: id, Port: port}
}

// crashRun is what runCrash ran: the backfill's result, its target index, workflow id and the
// Temporal port.
type crashRun struct {
	workflows.BackfillResult
	Index, ID string
	Port      int
}

// insideChunk reports whether the chunk's last heartbeat on the server is past where its attempt
// started: a kill then lands inside the chunk.
func (pc pendingChunk) insideChunk() bool {
	return pc.Heartbeat.After(activities.ChunkProgress{Object: pc.Chunk.ResumeObject, Checkpoint: max(pc.Chunk.Start, pc.Chunk.Resume)})
}
