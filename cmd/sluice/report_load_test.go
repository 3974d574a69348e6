package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/teststack"
)

// gzipLines is n NDJSON documents {"key": key, "n": i}, gzipped.
func gzipLines(t *testing.T, key string, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	for i := range n {
		fmt.Fprintf(zw, `{"key":%q,"n":%d}`+"\n", key, i)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLoadReports runs loads with bad input, and one of nothing, on the real servers
// (in-process Temporal, a sluice worker, versitygw, OpenSearch) and checks what `ingest --wait`
// reports against the index.
func TestLoadReports(t *testing.T) {
	st := teststack.Start(t, "sluice-badinput")
	st.S3.CreateBucket(t, "demo")
	e := &clientEnv{t: t, addr: st.Address(), c: st.Client()}
	ingest := func(source, index string) (int, statusJSON, string) {
		t.Helper()
		code, out, errOut := e.sluice("ingest", "--source", source, "--index", index, "--task-queue", st.TaskQueue, "--wait", "--json")
		return code, decodeStatus(t, out), errOut
	}

	// A lone gzip object cut in half is a chunk of its own: it fails, and the records before
	// the break that were indexed are counted, up to the offset the failure names.
	t.Run("truncated gzip object", func(t *testing.T) {
		z := gzipLines(t, "t.gz", 10000)
		st.S3.Put(t, "demo", "t.gz", z[:len(z)/2])
		index := st.UniqueIndex(t, "sluice-badinput")
		code, s, _ := ingest("s3://demo/t.gz", index)
		held := st.Count(t, index)
		if code != exitFailed || s.Result == nil || len(s.Result.FailedChunks) != 1 {
			t.Fatalf("exit %d, %+v: want exit %d with one failed chunk", code, s, exitFailed)
		}
		if r := s.Result.Records; held == 0 || r.Indexed != held || r.Read != held {
			t.Errorf("the index holds %d documents, the report says %d read, %d indexed", held, r.Read, r.Indexed)
		}
		fc := s.Result.FailedChunks[0]
		m := regexp.MustCompile(`t\.gz at offset (\d+)`).FindStringSubmatch(fc.Error)
		if fc.ErrorType != "BadInput" || m == nil || m[1] == "0" || fc.Checkpoint == 0 {
			t.Errorf("failed chunk %+v: want BadInput naming t.gz at a non-zero offset, with its checkpoint", fc)
		}
		if m != nil {
			if at, _ := strconv.ParseInt(m[1], 10, 64); at != fc.Checkpoint {
				t.Errorf("the error names offset %d, the checkpoint is %d", at, fc.Checkpoint)
			}
		}
	})

	// Small objects are packed into one chunk; a truncated one fails alone and the chunk goes
	// on: the report says one object failed, not one chunk of one.
	t.Run("packed chunk with a bad object", func(t *testing.T) {
		st.PutLines(t, "demo", "p/a.ndjson", 100)
		z := gzipLines(t, "p/b.ndjson.gz", 10000)
		st.S3.Put(t, "demo", "p/b.ndjson.gz", z[:len(z)/2])
		st.PutLines(t, "demo", "p/c.ndjson", 100)
		index := st.UniqueIndex(t, "sluice-badinput")
		code, out, errOut := e.sluice("ingest", "--source", "s3://demo/p/", "--index", index, "--task-queue", st.TaskQueue, "--wait")
		if code != exitFailed || !strings.Contains(errOut, "failed: 1 object failed") {
			t.Fatalf("exit %d, stderr %q: want exit %d saying 1 object failed", code, errOut, exitFailed)
		}
		for _, want := range []string{"1 done of 1 planned; 1 object failed; 3 objects", "object p/b.ndjson.gz (of a packed chunk): BadInput"} {
			if !strings.Contains(out, want) {
				t.Errorf("the report lacks %q:\n%s", want, out)
			}
		}
		m := regexp.MustCompile(`workflow\s+(\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no workflow id in\n%s", out)
		}
		_, out, _ = e.sluice("status", m[1], "--json")
		s := decodeStatus(t, out)
		if s.Result == nil {
			t.Fatalf("status --json: %+v", s)
		}
		r := s.Result
		if r.ChunksDone != 1 || r.ChunksFailed != 1 || r.ObjectsFailed != 1 || len(r.FailedChunks) != 1 || !r.FailedChunks[0].Object {
			t.Errorf("result %+v: want 1 chunk done, 1 failed that is an object", r)
		}
		if held := st.Count(t, index); held <= 200 || r.Records.Indexed != held {
			t.Errorf("the index holds %d documents, the report says %d indexed", held, r.Records.Indexed)
		}
	})

	// A prefix with nothing under it (an empty day, a typo) is no failure, but it is said.
	t.Run("empty prefix", func(t *testing.T) {
		index := st.UniqueIndex(t, "sluice-badinput")
		want := "no objects found under s3://demo/nothing/; nothing was loaded"
		code, out, errOut := e.sluice("ingest", "--source", "s3://demo/nothing/", "--index", index, "--task-queue", st.TaskQueue, "--wait")
		if code != exitOK || !strings.Contains(errOut, "sluice ingest: "+want) || !strings.Contains(out, "warning      "+want) {
			t.Fatalf("exit %d: want %d, and %q on stderr and in the report", code, exitOK, want)
		}
		m := regexp.MustCompile(`workflow\s+(\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no workflow id in\n%s", out)
		}
		_, out, _ = e.sluice("status", m[1], "--json")
		if s := decodeStatus(t, out); len(s.Warnings) != 1 || s.Warnings[0] != want {
			t.Errorf("status --json warnings %q, want [%q]", s.Warnings, want)
		}
	})
}
