package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/workertest"
	"github.com/sluicehq/sluice/worker"
)

// refusedRecords is n NDJSON records of which a mapping of n as a long refuses every tenth
// (bad, by offset), and one at tooLong (when n > 100) too long for requests of 100 KiB, whose
// letter is cut.
func refusedRecords(n int) (data []byte, bad map[int64]bool, tooLong int64) {
	bad = map[int64]bool{}
	for i := range n {
		switch {
		case i%10 == 3:
			bad[int64(len(data))] = true
			data = fmt.Appendf(data, `{"n":"not a number %d"}`+"\n", i)
		case i == 100:
			tooLong = int64(len(data))
			data = fmt.Appendf(data, `{"n":1,"pad":%q}`+"\n", strings.Repeat("z", 150<<10))
		default:
			data = fmt.Appendf(data, `{"n":%d}`+"\n", i)
		}
	}
	return data, bad, tooLong
}

// startReplayStack starts a worker of cfg on the embedded Temporal server and returns the
// environment that runs sluice commands against it, and a client of cfg's cluster.
func startReplayStack(t *testing.T, ctx context.Context, cfg worker.Config) (*clientEnv, *esclient.Client) {
	t.Helper()
	w := workertest.Start(t, ctx, cfg)
	es, err := esclient.New(ctx, cfg.ES)
	if err != nil {
		t.Fatal(err)
	}
	return &clientEnv{t: t, addr: w.Config().Temporal.Address, c: w.Client()}, es
}

// TestDeadLettersInS3AndReplay runs, as a user would, against the embedded Temporal server, a
// real worker, versitygw and a real search engine: an ingest whose mapping refuses some
// records writes them as letter objects to S3 (every field there); a target outside the
// worker's allow-list is refused; `dead-letters list` counts them; after the cause is fixed
// (an index whose mapping takes them), `dead-letters replay` indexes them with their original
// ids and says that none still fails, and a second replay duplicates nothing.
func TestDeadLettersInS3AndReplay(t *testing.T) {
	engine := testenv.Engines(t)[0]
	s3srv := s3test.Start(t)
	s3srv.SetEnv(t)
	s3srv.CreateBucket(t, "data")
	s3srv.CreateBucket(t, "letters")
	data, bad, tooLong := refusedRecords(200)
	s3srv.Put(t, "data", "in/a.ndjson", data)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e, es := startReplayStack(t, ctx, worker.Config{ES: esclient.Config{Addresses: []string{engine.URL}}, DeadLetterS3: "s3://letters/dl"})
	index := fmt.Sprintf("dl-s3-%d", time.Now().UnixNano())
	fixed := index + "-fixed"
	t.Cleanup(func() {
		for _, name := range []string{index, fixed, ingest.DeadLetterIndex(fixed)} {
			_ = es.DeleteIndex(context.Background(), name)
		}
	})
	if err := es.CreateIndex(ctx, index, []byte(`{"mappings":{"properties":{"n":{"type":"long"}}}}`)); err != nil {
		t.Fatal(err)
	}

	// Outside the allow-list: the backfill fails at once, naming the flag.
	code, stdout, _ := e.sluice("ingest", "--source", "s3://data/in/", "--index", index, "--dead-letter", "s3://letters/other", "--wait")
	if code != exitFailed || !strings.Contains(stdout, "s3://letters/other is outside the locations this worker allows") {
		t.Fatalf("target outside the allow-list: exit %d, stdout %q", code, stdout)
	}

	code, stdout, stderr := e.sluice("ingest", "--source", "s3://data/in/", "--index", index, "--dead-letter", "s3://letters/dl/run1",
		"--max-bytes", "100KiB", "--chunk-size", "64KiB", "--wait", "--json")
	st := decodeStatus(t, stdout)
	want := len(bad) + 1
	if code != exitOK || st.Result == nil || st.Result.Records.DeadLettered != int64(want) || st.Result.Records.Indexed != int64(200-want) {
		t.Fatalf("ingest: exit %d, %s\n%s", code, stdout, stderr)
	}
	letters := s3srv.JSONLines(t, "letters", "dl/run1/")
	if len(letters) != want {
		t.Fatalf("%d letters in S3, want %d", len(letters), want)
	}
	for _, l := range letters {
		off := int64(l["offset"].(float64))
		for _, f := range []string{"@timestamp", "index", "object", "offset", "status", "error_type", "reason", "truncated", "record_length", "record_sha256", "record"} {
			if _, ok := l[f]; !ok {
				t.Fatalf("letter at %d without %s: %v", off, f, l)
			}
		}
		switch {
		case bad[off]:
			if l["status"].(float64) != 400 || l["truncated"] != false || !strings.HasPrefix(l["record"].(string), `{"n":"not a number`) {
				t.Fatalf("letter of a refused record: %v", l)
			}
		case off == tooLong:
			if l["truncated"] != true || int(l["record_length"].(float64)) <= len(l["record"].(string)) {
				t.Fatalf("letter of the record too long: truncated %v, length %v", l["truncated"], l["record_length"])
			}
		default:
			t.Fatalf("letter of a record nothing refused: %v", l)
		}
		if l["object"] != "s3://data/in/a.ndjson" || l["index"] != index {
			t.Fatalf("letter names %v, %v", l["object"], l["index"])
		}
	}

	var listOut, listErr bytes.Buffer // list talks to S3 only: no Temporal flags
	code = run([]string{"dead-letters", "list", "s3://letters/dl/run1", "--json"}, &listOut, &listErr)
	var lc letterCounts
	if err := json.Unmarshal(listOut.Bytes(), &lc); code != exitOK || err != nil || lc.Letters != int64(want) || lc.NotReplayable != 1 || len(lc.Reasons) != 2 {
		t.Fatalf("list: exit %d, %v, %s %s", code, err, listOut.String(), listErr.String())
	}

	// The cause fixed: an index whose mapping takes a string. The replay indexes every letter
	// but the cut one, with its original id.
	if err := es.CreateIndex(ctx, fixed, []byte(`{"mappings":{"properties":{"n":{"type":"keyword"}}}}`)); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		code, stdout, stderr = e.sluice("dead-letters", "replay", "s3://letters/dl/run1", "--index", fixed, "--wait", "--json")
		var out struct {
			Replay *replayCounts `json:"replay"`
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Replay == nil {
			t.Fatalf("replay %d: %v in %q (%s)", round, err, stdout, stderr)
		}
		r := *out.Replay
		if code != exitPartial || r.Replayed != int64(want) || r.Indexed != int64(len(bad)) || r.StillFailing != 0 || r.NotReplayable != 1 ||
			r.Replayed != r.Indexed+r.StillFailing+r.NotReplayable {
			t.Fatalf("replay %d: exit %d, %+v, stderr %q", round, code, r, stderr)
		}
		if err := es.Refresh(ctx, fixed); err != nil {
			t.Fatal(err)
		}
		if n, err := es.Count(ctx, fixed, nil); err != nil || n != int64(len(bad)) {
			t.Fatalf("replay %d: %d documents in %s (%v), want %d", round, n, fixed, err, len(bad))
		}
	}
	for off := range bad {
		id := ingest.DocumentID("data", "in/a.ndjson", off)
		if n, err := es.Count(ctx, fixed, []byte(fmt.Sprintf(`{"ids":{"values":[%q]}}`, id))); err != nil || n != 1 {
			t.Fatalf("record at %d: %d documents with its original id %s (%v)", off, n, id, err)
		}
	}
}
