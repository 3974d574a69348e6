package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/testenv"
)

// ingestTimeout bounds one `sluice ingest --wait` of the small datasets.
const ingestTimeout = 3 * time.Minute

// testChunkSize cuts the uncompressed objects of TestBackfillDataset into many chunks.
const testChunkSize = 64 << 10

// TestBackfillDataset runs `sluice dev` and `sluice ingest --wait --json` as a user would, over
// a dataset with every shape of input sluice accepts, and checks the summary, every document
// in the index and every dead letter, on each engine.
func TestBackfillDataset(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, node testenv.Engine) {
		testBackfillDataset(t, newEnvOn(t, node))
	})
}

func testBackfillDataset(t *testing.T, e *env) {
	r := rand.New(rand.NewPCG(1, 2))

	// The NDJSON dataset, under data/.
	var objs []object
	for i := range 40 {
		n := 20 + r.IntN(40)
		bad := map[int]bool{}
		if i%13 == 5 {
			bad[3] = true
		}
		objs = append(objs, ndjsonObject(r, fmt.Sprintf("data/small-%03d.ndjson", i), n, 60+r.IntN(140), bad, i%7 == 3).plain())
	}
	big := ndjsonObject(r, "data/big.ndjson", 6000, 200, map[int]bool{100: true, 2500: true, 4000: true}, true).plain()
	objs = append(objs, big)
	objs = append(objs,
		ndjsonObject(r, "data/logs.ndjson.gz", 800, 100, map[int]bool{10: true}, false).gzip(t),
		ndjsonObject(r, "data/logs.ndjson.zst", 800, 100, map[int]bool{20: true, 21: true}, true).zstd(t),
		// Compressed, found by its magic bytes, and larger than a chunk: still one chunk.
		ndjsonObject(r, "data/gzip-without-extension", 2500, 150, map[int]bool{1234: true}, false).gzip(t),
		newObject("data/empty.ndjson").plain(),
	)
	blank := newObject("data/blank-only.ndjson")
	blank.raw("\n   \n\r\n\t\n")
	objs = append(objs, blank.plain())
	// A UTF-8 byte-order mark before the first record: stripped, and the record is at offset 0.
	bom := newObject("data/bom.ndjson")
	bom.raw("\xEF\xBB\xBF")
	for i := range 10 {
		bom.record(doc(r, bom.key, i, 50), true, eolFor(r))
	}
	bom.lines[0].Offset = 0
	objs = append(objs, bom.plain())
	for _, o := range objs {
		e.s3.Put(t, e.bucket, o.Key, o.Body)
	}
	// Outside the prefix: must not be read.
	e.s3.Put(t, e.bucket, "other/outside.ndjson", []byte(`{"outside":true}`+"\n"))

	valid, invalid := count(objs)
	if big := int64(len(big.Body)); big < 20*testChunkSize {
		t.Fatalf("test data: the big object has %d bytes, fewer than 20 chunks", big)
	}
	for _, o := range objs {
		if o.Key == "data/gzip-without-extension" && len(o.Body) <= testChunkSize {
			t.Fatalf("test data: %s has %d bytes, not more than a chunk", o.Key, len(o.Body))
		}
	}
	t.Logf("dataset: %d objects, %d valid records, %d invalid", len(objs), valid, invalid)

	port := freePort(t)
	// Dead-letter files go under e.dir: the CSV run names one.
	e.startDev(port, filepath.Join(e.dir, "temporal"), true, "--dead-letter-dir", e.dir)
	cliEnv := e.procEnv("TEMPORAL_ADDRESS=" + temporalAddr(port))

	index := e.index("dataset")
	// A mapping, as a user would create it: "n" is a long, so the line that has a string there
	// is rejected by the index itself.
	e.es.createIndex(t, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0},
		"mappings":{"properties":{"n":{"type":"long"},"seq":{"type":"long"}}}}`)

	wfID := "backfill-" + index
	res := e.run(ingestTimeout, cliEnv, "ingest", "--source", "s3://"+e.bucket+"/data/", "--index", index,
		"--chunk-size", "64KiB", "--workflow-id", wfID, "--wait", "--json")
	if res.code != 0 {
		t.Fatalf("sluice ingest --wait: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	st := parseStatus(t, res)
	if st.Status != "completed" || st.Result == nil {
		t.Fatalf("status %q, result %v; want completed with a result\n%s", st.Status, st.Result, res.stdout)
	}
	var wantBytes int64
	for _, o := range objs {
		wantBytes += int64(len(o.Body))
	}
	wantChunks := plannedChunks(objs)
	got := st.Result
	want := resultOutput{
		Records: recordsOutput{Read: valid + invalid, Indexed: valid, DeadLettered: invalid,
			Retried: got.Records.Retried, BytesRead: got.Records.BytesRead},
		ChunksPlanned: wantChunks, ChunksDone: wantChunks, ChunksFailed: 0,
		Objects: int64(len(objs)), Bytes: wantBytes, Runs: got.Runs,
	}
	if *got != want {
		t.Errorf("summary:\n got %+v\nwant %+v", *got, want)
	}

	checkDocuments(t, e, index, objs)
	checkDeadLetterIndex(t, e, index, objs)

	// `sluice status` reports the closed run; --fail-on-dead-letters turns its dead letters into
	// exit code 3.
	res = e.run(time.Minute, cliEnv, "status", wfID, "--json")
	if st := parseStatus(t, res); res.code != 0 || st.Status != "completed" || st.Result == nil || st.Result.Records.Indexed != valid {
		t.Errorf("sluice status: exit %d, %s", res.code, res.stdout)
	}
	res = e.run(time.Minute, cliEnv, "status", wfID, "--wait", "--fail-on-dead-letters", "--json")
	if res.code != 3 {
		t.Errorf("sluice status --wait --fail-on-dead-letters: exit %d, want 3\n%s%s", res.code, res.stdout, res.stderr)
	}

	t.Run("CSV", func(t *testing.T) { testCSV(t, e, cliEnv) })

	checkNoSecretInHistory(t, dialTemporal(t, port), wfID)
}

// plannedChunks is the number of chunks the planner makes of objs with testChunkSize: none
// for an empty object; objects of at most testChunkSize bytes packed, in listing (key) order,
// into chunks of at most testChunkSize bytes (a larger object does not interrupt the packing);
// a larger object one chunk if compressed (not splittable), else one per testChunkSize bytes.
func plannedChunks(objs []object) int64 {
	sorted := slices.Clone(objs)
	slices.SortFunc(sorted, func(a, b object) int { return strings.Compare(a.Key, b.Key) })
	var n, packed int64 // packed: bytes of the packed chunk being filled; 0: none open
	for _, o := range sorted {
		size := int64(len(o.Body))
		switch {
		case size == 0:
		case size <= testChunkSize:
			if packed == 0 || packed+size > testChunkSize {
				n, packed = n+1, 0
			}
			packed += size
		case o.Codec != "":
			n++
		default:
			n += (size + testChunkSize - 1) / testChunkSize
		}
	}
	return n
}

// checkDocuments checks that index holds exactly the valid records of objs, each under its
// deterministic id with its content.
func checkDocuments(t *testing.T, e *env, index string, objs []object) {
	t.Helper()
	want := map[string]string{}
	for _, o := range objs {
		for _, l := range o.Lines {
			if l.Valid {
				want[ingest.DocumentID(e.bucket, l.Key, l.Offset)] = l.Text
			}
		}
	}
	if n := e.es.count(t, index); n != int64(len(want)) {
		t.Errorf("index %s holds %d documents, want %d (the valid records)", index, n, len(want))
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	got := e.es.mget(t, index, ids)
	bad := 0
	for id, text := range want {
		src, ok := got[id]
		switch {
		case !ok:
			t.Errorf("document %s (%.80s) is missing", id, text)
		case !sameJSON(t, src, []byte(text)):
			t.Errorf("document %s:\n got %.200s\nwant %.200s", id, src, text)
		default:
			continue
		}
		if bad++; bad >= 10 {
			t.Fatalf("more documents are wrong; stopping")
		}
	}
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	decode := func(x []byte) any {
		d := json.NewDecoder(bytes.NewReader(x))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("decoding %.200s: %v", x, err)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

// deadLetter is the part of a dead letter (index or file) the tests check.
type deadLetter struct {
	Index     string `json:"index"`
	Object    string `json:"object"`
	Offset    int64  `json:"offset"`
	Status    int    `json:"status"`
	ErrorType string `json:"error_type"`
	Reason    string `json:"reason"`
	Record    string `json:"record"`
}

// checkDeadLetters checks that letters are exactly the invalid records of objs, each with its
// object, offset and original text.
func checkDeadLetters(t *testing.T, bucket, index string, objs []object, letters []deadLetter) {
	t.Helper()
	type at struct {
		object string
		offset int64
	}
	want := map[at]string{}
	for _, o := range objs {
		for _, l := range o.Lines {
			if !l.Valid {
				want[at{"s3://" + bucket + "/" + l.Key, l.Offset}] = l.Text
			}
		}
	}
	if len(letters) != len(want) {
		t.Errorf("%d dead letters, want %d", len(letters), len(want))
	}
	seen := map[at]bool{}
	for _, d := range letters {
		k := at{d.Object, d.Offset}
		text, ok := want[k]
		switch {
		case !ok:
			t.Errorf("unexpected dead letter %+v", d)
		case seen[k]:
			t.Errorf("dead letter for %s at %d stored twice", d.Object, d.Offset)
		case d.Record != text:
			t.Errorf("dead letter for %s at %d: record %q, want %q", d.Object, d.Offset, d.Record, text)
		case d.Index != index || d.Reason == "":
			t.Errorf("dead letter for %s at %d: index %q (want %q), reason %q", d.Object, d.Offset, d.Index, index, d.Reason)
		}
		seen[k] = true
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("no dead letter for %s at %d (%q)", k.object, k.offset, want[k])
		}
	}
}

// checkDeadLetterIndex checks the dead-letter index beside index: one document per invalid
// record, under its deterministic id.
func checkDeadLetterIndex(t *testing.T, e *env, index string, objs []object) {
	t.Helper()
	docs := e.es.all(t, ingest.DeadLetterIndex(index))
	var letters []deadLetter
	for id, src := range docs {
		var d deadLetter
		if err := json.Unmarshal(src, &d); err != nil {
			t.Fatalf("dead letter %s: %v: %s", id, err, src)
		}
		if want := ingest.DeadLetterID(d.Object, d.Offset); id != want {
			t.Errorf("dead letter of %s at %d has id %s, want %s", d.Object, d.Offset, id, want)
		}
		if d.Status != 400 {
			t.Errorf("dead letter of %s at %d: status %d, want 400 (rejected by the index)", d.Object, d.Offset, d.Status)
		}
		letters = append(letters, d)
	}
	checkDeadLetters(t, e.bucket, index, objs, letters)
}

// testCSV loads CSV objects (one cut into several chunks, whose later chunks need the header
// from the object's start) with --id-field, and dead letters in a local file.
func testCSV(t *testing.T, e *env, cliEnv []string) {
	r := rand.New(rand.NewPCG(3, 4))
	want := map[string]map[string]any{} // _id -> document
	var objs []object
	mk := func(key, prefix string, rows int, bad map[int]bool, noFinalNewline bool) object {
		b := newObject(key)
		b.raw("id,name,city,note\r\n")
		for i := range rows {
			eol := eolFor(r)
			if i == rows-1 && noFinalNewline {
				eol = ""
			}
			if bad[i] {
				b.record(fmt.Sprintf("%s-%06d,only two fields", prefix, i), false, eol)
				continue
			}
			id := fmt.Sprintf("%s-%06d", prefix, i)
			name := []string{"Ada", "Grace", "Edsger", "Barbara", "Ken"}[r.IntN(5)]
			city := []string{"Paris", "Zürich", "São Paulo", "Kyoto", "Oslo"}[r.IntN(5)]
			note := strings.Repeat("x", r.IntN(40))
			text := fmt.Sprintf("%s,%s,%s,%s", id, name, city, note)
			if i%5 == 0 { // quoted fields with a comma and an escaped quote
				note = `said "hi", left`
				text = fmt.Sprintf(`%s,%s,"%s","said ""hi"", left"`, id, name, city)
			}
			b.record(text, true, eol)
			want[id] = map[string]any{"id": id, "name": name, "city": city, "note": note}
			b.raw(blankFor(r))
		}
		return b.plain()
	}
	objs = append(objs,
		mk("csv/people.csv", "p", 300, map[int]bool{7: true}, true),
		mk("csv/big.csv", "b", 6000, map[int]bool{1000: true, 5999: true}, false),
	)
	if n := len(objs[1].Body); n < 3*testChunkSize {
		t.Fatalf("test data: csv/big.csv has %d bytes, fewer than 3 chunks", n)
	}
	for _, o := range objs {
		e.s3.Put(t, e.bucket, o.Key, o.Body)
	}
	valid, invalid := count(objs)

	index := e.index("csv")
	dlFile := filepath.Join(e.dir, "csv-dead-letters.ndjson")
	res := e.run(ingestTimeout, cliEnv, "ingest", "--source", "s3://"+e.bucket+"/csv/", "--index", index,
		"--format", "csv", "--id-field", "id", "--dead-letter", "file:"+filepath.Base(dlFile), "--chunk-size", "64KiB", "--wait", "--json")
	if res.code != 0 {
		t.Fatalf("sluice ingest --format csv --wait: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	st := parseStatus(t, res)
	if st.Result == nil || st.Result.Records.Indexed != valid || st.Result.Records.DeadLettered != invalid ||
		st.Result.Records.Read != valid+invalid || st.Result.ChunksFailed != 0 {
		t.Errorf("summary: %s; want %d indexed, %d dead-lettered", res.stdout, valid, invalid)
	}

	if n := e.es.count(t, index); n != valid {
		t.Errorf("index %s holds %d documents, want %d", index, n, valid)
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	got := e.es.mget(t, index, ids)
	bad := 0
	for id, doc := range want {
		wantJSON, _ := json.Marshal(doc)
		if src, ok := got[id]; !ok || !sameJSON(t, src, wantJSON) {
			t.Errorf("document %s: got %s, want %s", id, src, wantJSON)
			if bad++; bad >= 10 {
				t.Fatal("more documents are wrong; stopping")
			}
		}
	}

	f, err := os.Open(dlFile)
	if err != nil {
		t.Fatalf("dead-letter file: %v", err)
	}
	defer f.Close()
	var letters []deadLetter
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d deadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("dead-letter file line %q: %v", sc.Text(), err)
		}
		letters = append(letters, d)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	checkDeadLetters(t, e.bucket, index, objs, letters)
}
