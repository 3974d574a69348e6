package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/ingest"
)

// TestHostileCorpusEndToEnd loads the NDJSON objects of the hostile-input corpus
// (ingest/testdata/hostile, whose manifest says what must come of each) through the CLI, as a
// user would: the documents the manifest expects are indexed, the dead letters are in the
// dead-letter index holding their records' bytes, and each object that is bad input fails its
// chunk for good, within --allow-failed-chunks (exit 3).
func TestHostileCorpusEndToEnd(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join("..", "ingest", "testdata", "hostile")
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Objects []struct {
			File, Format string
			IDField      string `json:"id_field"`
			MaxBytes     int64  `json:"max_bytes"`
			Indexed      int64  `json:"indexed"`
			DeadLettered int64  `json:"dead_lettered"`
			Error        []string
		}
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	bodies := map[string][]byte{}
	var indexed, deadLettered, bad int64
	for _, o := range m.Objects {
		// The objects one ingest can read: NDJSON, in the files, without their own limits.
		if o.File == "" || o.Format != ingest.FormatNDJSON || o.IDField != "" || o.MaxBytes != 0 {
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, o.File))
		if err != nil {
			t.Fatal(err)
		}
		key := "hostile/" + o.File
		bodies[key] = body
		e.s3.Put(t, e.bucket, key, body)
		if len(o.Error) > 0 {
			bad++
		}
		indexed += o.Indexed
		deadLettered += o.DeadLettered
	}
	if bad == 0 || deadLettered == 0 {
		t.Fatalf("the corpus has no bad-input object (%d) or no dead letter (%d) to load", bad, deadLettered)
	}

	port := freePort(t)
	e.startDev(port, filepath.Join(e.dir, "temporal"), true)
	cliEnv := e.procEnv("TEMPORAL_ADDRESS=" + temporalAddr(port))
	index := e.index("hostile")
	res := e.run(ingestTimeout, cliEnv, "ingest", "--source", "s3://"+e.bucket+"/hostile/", "--index", index,
		"--allow-failed-chunks", strconv.FormatInt(bad, 10), "--wait", "--json")
	st := parseStatus(t, res)
	if res.code != 3 || st.Result == nil {
		t.Fatalf("sluice ingest --wait: exit %d (want 3: chunks failed within the allowance)\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	got := st.Result
	// The bad-input objects share a packed chunk with the others: each fails alone (a failed
	// chunk of its own in the summary), and the records it held before its corrupt point are
	// indexed and counted with the chunk. So every valid object's records are indexed, and every
	// count adds up.
	r := got.Records
	if got.ChunksFailed != bad || r.Indexed < indexed || r.DeadLettered != deadLettered || r.Read != r.Indexed+r.DeadLettered {
		t.Errorf("summary %+v; want %d chunks failed, at least %d indexed, %d dead-lettered, read = indexed + dead-lettered", *got, bad, indexed, deadLettered)
	}
	if n := e.es.count(t, index); n != r.Indexed {
		t.Errorf("the index holds %d documents, the summary says %d indexed", n, r.Indexed)
	}
	letters := e.es.all(t, ingest.DeadLetterIndex(index))
	if int64(len(letters)) != deadLettered {
		t.Errorf("the dead-letter index holds %d letters, want %d", len(letters), deadLettered)
	}
	for id, src := range letters {
		var d struct {
			Object       string  `json:"object"`
			Offset       int64   `json:"offset"`
			Record       *string `json:"record"`
			RecordBase64 string  `json:"record_base64"`
		}
		if err := json.Unmarshal(src, &d); err != nil {
			t.Fatalf("dead letter %s: %v", id, err)
		}
		stored, err := base64.StdEncoding.DecodeString(d.RecordBase64)
		if d.Record != nil {
			stored, err = []byte(*d.Record), nil
		}
		body := bodies[strings.TrimPrefix(d.Object, "s3://"+e.bucket+"/")]
		if err != nil || body == nil || len(stored) == 0 || !bytes.HasPrefix(body[d.Offset:], stored) {
			t.Errorf("dead letter of %s at %d does not hold the record's bytes: %.200s", d.Object, d.Offset, src)
		}
	}
}
