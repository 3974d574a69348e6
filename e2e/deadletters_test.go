package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// replayOutput is the --json of `sluice dead-letters replay --wait` (the fields read here).
type replayOutput struct {
	Replay *struct {
		Replayed      int64 `json:"replayed"`
		Indexed       int64 `json:"indexed"`
		StillFailing  int64 `json:"still_failing"`
		NotReplayable int64 `json:"not_replayable"`
	} `json:"replay"`
}

// TestDeadLettersInS3SurviveWorkerKill loads records a mapping refuses, with dead letters to S3,
// and SIGKILLs the only worker once letter objects are being stored (the cluster reached
// through a slow proxy, so that the load lasts): the letters it buffered die with it, and a new
// worker resumes from the last heartbeat, which never counted a letter that was not stored. In
// the end every refused record is in S3 (some maybe twice), read = indexed + dead-lettered,
// and `sluice dead-letters replay` into an index whose mapping takes them indexes each one
// once (original ids), with none still failing.
func TestDeadLettersInS3SurviveWorkerKill(t *testing.T) {
	e := newEnv(t)
	index, fixed := e.index("dl-s3"), e.index("dl-s3-fixed")
	e.es.createIndex(t, index, `{"mappings":{"properties":{"n":{"type":"long"}}}}`)
	e.es.createIndex(t, fixed, `{"mappings":{"properties":{"n":{"type":"keyword"}}}}`)
	type letterKey struct {
		object string
		offset int64
	}
	bad := map[letterKey]bool{}
	var total int64
	for i := range 2 {
		key := fmt.Sprintf("dlq/part-%d.ndjson", i)
		var buf bytes.Buffer
		for seq := range 15000 {
			if seq%10 == 7 {
				bad[letterKey{"s3://" + e.bucket + "/" + key, int64(buf.Len())}] = true
				fmt.Fprintf(&buf, `{"n":"not a number %d","pad":"%060d"}`+"\n", seq, seq)
			} else {
				fmt.Fprintf(&buf, `{"n":%d,"pad":"%060d"}`+"\n", seq, seq)
			}
			total++
		}
		e.s3.Put(t, e.bucket, key, buf.Bytes())
	}

	port := freePort(t)
	e.startDev(port, filepath.Join(e.dir, "temporal"), false)
	workerArgs := []string{"--max-memory", "128MiB", "--max-concurrent-chunks", "2", "--dead-letter-s3", "s3://" + e.bucket + "/letters",
		"--es-url", slowProxy(t, e.es.url, 150*time.Millisecond)}
	w := e.startWorker(port, workerArgs...)
	res := e.run(time.Minute, e.procEnv(), "ingest", "--source", "s3://"+e.bucket+"/dlq/", "--index", index,
		"--dead-letter", "s3://"+e.bucket+"/letters/run", "--chunk-size", "512KiB", "--concurrency", "2", "--max-ops", "200",
		"--heartbeat-timeout", "5s", "--json", "--temporal-address", temporalAddr(port))
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &started); res.code != 0 || err != nil {
		t.Fatalf("sluice ingest: exit %d, %v, stdout %q, stderr %q", res.code, err, res.stdout, res.stderr)
	}
	waitFor(t, 2*time.Minute, "letter objects in S3", func() bool { return len(e.s3.Objects(t, e.bucket, "letters/")) > 0 })
	w.kill()
	t.Logf("worker killed with %d letter objects stored", len(e.s3.Objects(t, e.bucket, "letters/")))
	e.startWorker(port, workerArgs...)

	c := dialTemporal(t, port)
	out := waitBackfill(t, c, started.WorkflowID, ingestTimeout)
	s := out.Stats
	if s.Read != total || s.DeadLettered != int64(len(bad)) || s.Indexed != total-int64(len(bad)) {
		t.Fatalf("stats %+v; want %d read, %d dead-lettered", s, total, len(bad))
	}
	retried := 0
	for _, a := range chunkAttempts(t, c, started.WorkflowID) {
		if a.Attempt > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("no chunk was retried: the kill did not catch a chunk running")
	}
	letters := e.s3.JSONLines(t, e.bucket, "letters/")
	seen := map[letterKey]bool{}
	for _, l := range letters {
		k := letterKey{l["object"].(string), int64(l["offset"].(float64))}
		if !bad[k] {
			t.Fatalf("a letter of a record the mapping takes: %v", l)
		}
		seen[k] = true
	}
	if len(seen) != len(bad) {
		t.Fatalf("%d of the %d refused records are in S3 (%d letters)", len(seen), len(bad), len(letters))
	}
	t.Logf("%d letters in S3 for %d refused records", len(letters), len(bad))

	res = e.run(ingestTimeout, e.procEnv(), "dead-letters", "replay", "s3://"+e.bucket+"/letters", "--index", fixed,
		"--wait", "--json", "--temporal-address", temporalAddr(port))
	var rep replayOutput
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || rep.Replay == nil || res.code != 0 {
		t.Fatalf("replay: exit %d, %v, stdout %q, stderr %q", res.code, err, res.stdout, res.stderr)
	}
	if r := rep.Replay; r.Replayed != int64(len(letters)) || r.Indexed != r.Replayed || r.StillFailing != 0 || r.NotReplayable != 0 {
		t.Fatalf("replay %+v; want %d letters indexed", *r, len(letters))
	}
	if n := e.es.count(t, fixed); n != int64(len(bad)) {
		t.Fatalf("%s holds %d documents, want %d (one per refused record)", fixed, n, len(bad))
	}
}
