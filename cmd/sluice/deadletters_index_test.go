package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/worker"
)

// TestDeadLettersInIndexReplay runs, as a user would, against the embedded Temporal server, a
// real worker, versitygw and a real search engine: an ingest whose mapping refuses some
// records writes them to the default dead-letter index; `dead-letters list index:NAME` counts
// them (all, and those a --query picks); a replay of the 400s while the cause is not fixed yet
// dead-letters them again into another index, naming the original object, offset and id;
// once the mapping is fixed (the target deleted and created again), replaying that second
// generation, and then the first twice, indexes every replayable record under its original id,
// counts replayed = indexed + still failing + not replayable, and duplicates nothing.
// It runs on each engine: the listing's point in time over every shard sorts differently on
// Elasticsearch (_shard_doc) and OpenSearch (_id).
func TestDeadLettersInIndexReplay(t *testing.T) {
	testenv.ForEachEngine(t, testDeadLettersInIndexReplay)
}

func testDeadLettersInIndexReplay(t *testing.T, engine testenv.Engine) {
	s3srv := s3test.Start(t)
	s3srv.SetEnv(t)
	s3srv.CreateBucket(t, "data")
	t.Setenv("ELASTICSEARCH_URL", engine.URL) // list and replay count the letters of an index with these
	for _, v := range []string{"ELASTICSEARCH_API_KEY", "ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_CA_CERT"} {
		t.Setenv(v, "")
	}
	data, bad, tooLong := refusedRecords(150)
	s3srv.Put(t, "data", "in/a.ndjson", data)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, es := startReplayStack(t, ctx, worker.Config{ES: esclient.Config{Addresses: []string{engine.URL}}})
	index := fmt.Sprintf("dl-idx-%d", time.Now().UnixNano())
	dl, gen2 := ingest.DeadLetterIndex(index), index+"-gen2"
	t.Cleanup(func() {
		for _, name := range []string{index, dl, gen2} {
			_ = es.DeleteIndex(context.Background(), name)
		}
	})
	createTarget := func(fieldType string) {
		t.Helper()
		if err := es.CreateIndex(ctx, index, fmt.Appendf(nil, `{"mappings":{"properties":{"n":{"type":%q}}}}`, fieldType)); err != nil {
			t.Fatal(err)
		}
	}
	createTarget("long")
	code, stdout, stderr := e.sluice("ingest", "--source", "s3://data/in/", "--index", index,
		"--max-bytes", "100KiB", "--chunk-size", "64KiB", "--wait", "--json")
	st := decodeStatus(t, stdout)
	want := len(bad) + 1
	if code != exitOK || st.Result == nil || st.Result.Records.DeadLettered != int64(want) {
		t.Fatalf("ingest: exit %d, %s\n%s", code, stdout, stderr)
	}

	status400 := filepath.Join(t.TempDir(), "400.json")
	if err := os.WriteFile(status400, []byte(`{"term":{"status":400}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	list := func(args ...string) letterCounts {
		t.Helper()
		var out, errOut bytes.Buffer // list talks to the cluster only: no Temporal flags
		code := run(append([]string{"dead-letters", "list", "--json"}, args...), &out, &errOut)
		var lc letterCounts
		if err := json.Unmarshal(out.Bytes(), &lc); code != exitOK || err != nil {
			t.Fatalf("list %q: exit %d, %v, %s %s", args, code, err, out.String(), errOut.String())
		}
		return lc
	}
	if lc := list("index:" + dl); lc.Letters != int64(want) || lc.NotReplayable != 1 || len(lc.Reasons) != 2 || lc.Source != "index:"+dl {
		t.Fatalf("list index:%s: %+v", dl, lc)
	}
	if lc := list("--query", status400, "index:"+dl); lc.Letters != int64(len(bad)) || lc.NotReplayable != 0 || len(lc.Reasons) != 1 || lc.Reasons[0].Status != 400 {
		t.Fatalf("list --query status 400: %+v", lc)
	}

	replay := func(source string, args ...string) replayCounts {
		t.Helper()
		code, stdout, stderr := e.sluice(append([]string{"dead-letters", "replay", source, "--index", index, "--wait", "--json"}, args...)...)
		var out struct {
			Replay *replayCounts `json:"replay"`
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Replay == nil {
			t.Fatalf("replay %s: %v in %q (%s)", source, err, stdout, stderr)
		}
		r := *out.Replay
		if r.Replayed != r.Indexed+r.StillFailing+r.NotReplayable || (code == exitOK) != (r.StillFailing+r.NotReplayable == 0) || code != exitOK && code != exitPartial {
			t.Fatalf("replay %s: exit %d, %+v", source, code, r)
		}
		return r
	}

	// The cause not fixed yet: the 400s fail again, into another dead-letter index, and their
	// letters there name the original object, offset and id, not the letter of the first.
	if r := replay("index:"+dl, "--query", status400, "--dead-letter", "index:"+gen2); r.Replayed != int64(len(bad)) || r.StillFailing != int64(len(bad)) || r.Indexed != 0 {
		t.Fatalf("replay into the unfixed index: %+v", r)
	}
	letters := searchLetters(t, ctx, es, gen2)
	if len(letters) != len(bad) {
		t.Fatalf("%d letters in %s, want %d", len(letters), gen2, len(bad))
	}
	for _, l := range letters {
		if l.Object != "s3://data/in/a.ndjson" || !bad[l.Offset] || l.ID != ingest.DocumentID("data", "in/a.ndjson", l.Offset) || l.Status != 400 {
			t.Fatalf("second-generation letter names %s at %d, id %q, status %d", l.Object, l.Offset, l.ID, l.Status)
		}
	}

	// The cause fixed: a mapping that takes a string. The second generation goes in under the
	// original ids; so does the first, twice, without duplicates; the cut letter is not
	// replayable and, written again to the dead-letter index it is read from, replaces itself.
	if err := es.DeleteIndex(ctx, index); err != nil {
		t.Fatal(err)
	}
	createTarget("keyword")
	if r := replay("index:" + gen2); r.Replayed != int64(len(bad)) || r.Indexed != int64(len(bad)) {
		t.Fatalf("replay of the second generation: %+v", r)
	}
	checkOriginalIDs(t, ctx, es, index, bad)
	for round := 1; round <= 2; round++ {
		r := replay("index:" + dl)
		if r.Replayed != int64(want) || r.Indexed != int64(len(bad)) || r.StillFailing != 0 || r.NotReplayable != 1 || r.DeadLetter != "index:"+dl {
			t.Fatalf("replay %d of %s: %+v", round, dl, r)
		}
		checkOriginalIDs(t, ctx, es, index, bad)
		if lc := list("index:" + dl); lc.Letters != int64(want) || lc.NotReplayable != 1 {
			t.Fatalf("after replay %d, %s holds %+v", round, dl, lc)
		}
	}
	for _, l := range searchLetters(t, ctx, es, dl) {
		if l.Offset == tooLong && !ingest.IsNotReplayable(l.Reason) || l.Object != "s3://data/in/a.ndjson" {
			t.Fatalf("letter at %d of %s: %s, %q", l.Offset, l.Object, dl, l.Reason)
		}
	}
}

// checkOriginalIDs checks that index holds exactly one document for each record at the
// offsets of bad, under its original id, and nothing else.
func checkOriginalIDs(t *testing.T, ctx context.Context, es *esclient.Client, index string, bad map[int64]bool) {
	t.Helper()
	if err := es.Refresh(ctx, index); err != nil {
		t.Fatal(err)
	}
	if n, err := es.Count(ctx, index, nil); err != nil || n != int64(len(bad)) {
		t.Fatalf("%d documents in %s (%v), want %d", n, index, err, len(bad))
	}
	for off := range bad {
		id := ingest.DocumentID("data", "in/a.ndjson", off)
		if n, err := es.Count(ctx, index, fmt.Appendf(nil, `{"ids":{"values":[%q]}}`, id)); err != nil || n != 1 {
			t.Fatalf("record at %d: %d documents with its original id %s (%v)", off, n, id, err)
		}
	}
}

// searchLetters returns the letters of a dead-letter index (at most 1,000).
func searchLetters(t *testing.T, ctx context.Context, es *esclient.Client, index string) []ingest.Letter {
	t.Helper()
	if err := es.Refresh(ctx, index); err != nil {
		t.Fatal(err)
	}
	status, body, err := es.Do(ctx, http.MethodPost, "/"+index+"/_search?size=1000", []byte(`{"query":{"match_all":{}}}`))
	var out struct {
		Hits struct {
			Hits []struct {
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("searching %s: %d %v %s", index, status, err, body)
	}
	var letters []ingest.Letter
	for _, h := range out.Hits.Hits {
		l, err := ingest.ParseLetter(h.Source)
		if err != nil {
			t.Fatal(err)
		}
		letters = append(letters, l)
	}
	return letters
}

// TestParseLetterSource: SOURCE of dead-letters is an S3 prefix or index:NAME of the workers'
// cluster; --query applies to an index only.
func TestParseLetterSource(t *testing.T) {
	q := json.RawMessage(`{"term":{"status":400}}`)
	cases := []struct {
		pos     []string
		query   json.RawMessage
		wantURI string
		wantErr string
	}{
		// A prefix is a folder: s3://letters/dl reads dl/..., not the letters of dl2/.
		{[]string{"s3://letters/dl"}, nil, "s3://letters/dl/", ""},
		{[]string{"s3://letters/dl/"}, nil, "s3://letters/dl/", ""},
		{[]string{"s3://letters"}, nil, "s3://letters", ""},
		{[]string{"index:logs-dead-letters"}, q, "es://logs-dead-letters", ""},
		{[]string{"index:legacy/logs"}, nil, "", "not an index name"},
		{[]string{"index:"}, nil, "", "not an index name"},
		{[]string{"s3://letters/dl"}, q, "", "--query applies to index:NAME sources only"},
		{[]string{"file:letters.ndjson"}, nil, "", "s3://"},
		{nil, nil, "", "SOURCE is required"},
		{[]string{"index:a", "index:b"}, nil, "", "unexpected arguments"},
	}
	for _, c := range cases {
		src, err := parseLetterSource(c.pos, c.query)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: %v, want an error with %q", c.pos, err, c.wantErr)
			}
		case err != nil || src.uri() != c.wantURI || string(src.query) != string(c.query):
			t.Errorf("%q: %+v (%q), %v; want %s", c.pos, src, src.uri(), err, c.wantURI)
		}
	}
}

// TestDeadLettersOfAMigrationReplay: an es:// migration into an index whose mapping refuses
// some documents dead-letters them naming their _id and routing; once the mapping takes them,
// a replay of those letters leaves the target holding every source document under its own id
// and routing, and nothing else.
func TestDeadLettersOfAMigrationReplay(t *testing.T) {
	engine := testenv.Engines(t)[0]
	t.Setenv("ELASTICSEARCH_URL", engine.URL) // replay counts the letters of an index with these
	for _, v := range []string{"ELASTICSEARCH_API_KEY", "ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_CA_CERT"} {
		t.Setenv(v, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e, es := startReplayStack(t, ctx, worker.Config{ES: esclient.Config{Addresses: []string{engine.URL}}})
	base := fmt.Sprintf("dl-mig-%d", time.Now().UnixNano())
	src, target := base+"-src", base+"-dst"
	dl := ingest.DeadLetterIndex(target)
	t.Cleanup(func() { _ = es.DeleteIndex(context.Background(), dl) })
	testenv.CreateIndex(ctx, t, es, src, 2)
	testenv.LoadDocs(ctx, t, es, src, 0, 300)
	// Every seventh document gets a field the target's strict mapping refuses.
	for i := 0; i < 300; i += 7 {
		routing := ""
		if i%10 == 0 {
			routing = fmt.Sprintf("?routing=r%d", i%7) // as LoadDocs routes it
		}
		id := fmt.Sprintf(`doc%%20%%22%d%%22`, i) // doc "N"
		if st, out, err := es.Do(ctx, http.MethodPost, "/"+src+"/_update/"+id+routing, []byte(`{"doc":{"extra":"x"}}`)); err != nil || st != http.StatusOK {
			t.Fatalf("updating %d: %d %v %s", i, st, err, out)
		}
	}
	if err := es.Refresh(ctx, src); err != nil {
		t.Fatal(err)
	}
	refused := int64((300 + 6) / 7)
	if err := es.CreateIndex(ctx, target, []byte(`{"settings":{"number_of_shards":1},"mappings":{"dynamic":"strict","properties":{"n":{"type":"long"},"pad":{"type":"keyword"}}}}`)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = es.DeleteIndex(context.Background(), target) })

	code, stdout, stderr := e.sluice("ingest", "--source", "es://"+src, "--index", target, "--wait", "--json")
	st := decodeStatus(t, stdout)
	if code != exitOK || st.Result == nil || st.Result.Records.DeadLettered != refused || st.Result.Records.Indexed != 300-refused {
		t.Fatalf("migration: exit %d, %s\n%s", code, stdout, stderr)
	}
	letters := searchLetters(t, ctx, es, dl)
	if int64(len(letters)) != refused {
		t.Fatalf("%d letters in %s, want %d", len(letters), dl, refused)
	}
	for _, l := range letters {
		var i int
		if _, err := fmt.Sscanf(l.ID, `doc "%d"`, &i); err != nil || i%7 != 0 || (l.Routing != "") != (i%10 == 0) || !strings.HasPrefix(l.Object, "es://"+src) {
			t.Fatalf("letter %s at %d: id %q, routing %q: not a refused document's", l.Object, l.Offset, l.ID, l.Routing)
		}
	}

	if st, out, err := es.Do(ctx, http.MethodPut, "/"+target+"/_mapping", []byte(`{"properties":{"extra":{"type":"keyword"}}}`)); err != nil || st != http.StatusOK {
		t.Fatalf("fixing the mapping: %d %v %s", st, err, out)
	}
	code, stdout, stderr = e.sluice("dead-letters", "replay", "index:"+dl, "--index", target, "--wait", "--json")
	var out struct {
		Replay *replayCounts `json:"replay"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Replay == nil || code != exitOK || out.Replay.Indexed != refused || out.Replay.Replayed != refused {
		t.Fatalf("replay: exit %d, %v, %s\n%s", code, err, stdout, stderr)
	}
	if a, b := testenv.IndexDigest(ctx, t, es, src), testenv.IndexDigest(ctx, t, es, target); a != b {
		t.Fatalf("after the replay %s and %s differ: %s != %s", src, target, a, b)
	}
}

// TestReplayRefusesATargetInsideItsSource: a replay whose S3 dead-letter target is inside the
// S3 folder it reads would read the letters it writes again; it is refused before anything is
// contacted (exit 2). A sibling prefix (run1-again beside run1) is fine.
func TestReplayRefusesATargetInsideItsSource(t *testing.T) {
	for _, tc := range []struct {
		source, target string
		refused        bool
	}{
		{"s3://dl/run1", "s3://dl/run1", true},
		{"s3://dl/run1/", "s3://dl/run1/again", true},
		{"s3://dl", "s3://dl/x", true},
		{"s3://dl/run1", "s3://dl/run1-again", false},
		{"s3://dl/run1", "s3://other/run1", false},
		{"s3://dl/run1", "index", false},
	} {
		src, err := parseLetterSource([]string{tc.source}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.readsItsTarget(tc.target); (err != nil) != tc.refused {
			t.Errorf("%s -> %s: %v, want refused %v", tc.source, tc.target, err, tc.refused)
		}
	}
	var stderr bytes.Buffer
	code := runDeadLettersReplay(context.Background(), []string{"s3://dl/run1", "--index", "logs", "--dead-letter", "s3://dl/run1/again", "--temporal-address", "127.0.0.1:1"}, io.Discard, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "inside s3://dl/run1/") {
		t.Errorf("exit %d, stderr %q; want %d naming the source", code, stderr.String(), exitUsage)
	}
}
