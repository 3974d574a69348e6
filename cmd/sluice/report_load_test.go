package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"regexp"
	"strconv"
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

// TestReportsOfBadInput runs loads with bad input on the real servers (in-process Temporal, a
// sluice worker, versitygw, OpenSearch) and checks what `ingest --wait` reports against the
// index.
func TestReportsOfBadInput(t *testing.T) {
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
}
