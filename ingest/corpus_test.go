package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/testenv"
)

// corpusObject is one entry of testdata/hostile/manifest.json.
type corpusObject struct {
	File         string   `json:"file"`
	Generate     string   `json:"generate"`
	Format       string   `json:"format"`
	IDField      string   `json:"id_field"`
	MaxBytes     int64    `json:"max_bytes"`
	Indexed      int64    `json:"indexed"`
	DeadLettered int64    `json:"dead_lettered"`
	Reasons      []string `json:"reasons"`
	Error        []string `json:"error"`
}

func (o corpusObject) name() string { return o.File + o.Generate }

// generated holds the objects of the corpus too large to keep in testdata.
var generated = map[string]func() []byte{
	// A 20 MiB line between two documents: dead-lettered by its head, never held whole.
	"long-line.ndjson": func() []byte {
		return slicesConcat([]byte("{\"n\":1}\n"), bytes.Repeat([]byte("L"), 20<<20), []byte("\n{\"n\":2}\n"))
	},
}

func loadCorpus(t *testing.T) (objs []corpusObject, data map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "hostile")
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Objects []corpusObject }
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	data = map[string][]byte{}
	for _, o := range m.Objects {
		if gen := generated[o.Generate]; gen != nil {
			data[o.name()] = gen()
			continue
		}
		if data[o.name()], err = os.ReadFile(filepath.Join(dir, o.File)); err != nil {
			t.Fatal(err)
		}
	}
	return m.Objects, data
}

// TestHostileCorpus runs every object of testdata/hostile through the engine, against the fake
// and against the real OpenSearch node, and checks what the manifest says of it; every dead
// letter must hold the record's own bytes.
func TestHostileCorpus(t *testing.T) {
	objs, data := loadCorpus(t)
	fake := esfake.New(esfake.Options{})
	defer fake.Close()
	targets := []struct{ name, url string }{{"fake", fake.URL()}, {"opensearch", testenv.OpenSearchURL(t)}}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			bulk, err := esclient.New(ctx, esclient.Config{Addresses: []string{target.url}})
			if err != nil {
				t.Fatal(err)
			}
			eng := &Engine{Budget: NewBudget(32 << 20), Bulk: bulk}
			for i, o := range objs {
				t.Run(o.name(), func(t *testing.T) {
					index := fmt.Sprintf("sluice-hostile-%d-%d", time.Now().UnixNano(), i)
					t.Cleanup(func() { _, _, _ = bulk.Do(context.Background(), http.MethodDelete, "/"+index, nil) })
					runCorpusObject(ctx, t, eng, bulk, index, o, data[o.name()])
				})
			}
			checkReleased(t, eng.Budget)
		})
	}
}

func runCorpusObject(ctx context.Context, t *testing.T, eng *Engine, bulk *esclient.Client, index string, o corpusObject, data []byte) {
	sink := &memSink{}
	spec := ChunkSpec{Bucket: "corpus", Key: o.name(), Format: o.Format, Index: index, IDField: o.IDField, End: -1,
		Limits: Limits{MaxBytes: o.MaxBytes}}
	prog, err := eng.Ingest(ctx, spec, bytesOpener(data), sink, nil)
	if len(o.Error) > 0 {
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "s3://corpus/"+o.name()) {
			t.Fatalf("error %v: want a permanent error naming the object", err)
		}
		for _, want := range o.Error {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if prog.Stats.Indexed != o.Indexed || prog.Stats.DeadLettered != o.DeadLettered || int64(len(sink.letters)) != o.DeadLettered {
		t.Errorf("indexed %d, dead-lettered %d (%d letters); want %d and %d", prog.Stats.Indexed, prog.Stats.DeadLettered, len(sink.letters), o.Indexed, o.DeadLettered)
	}
	if n := countDocs(ctx, t, bulk, index); n != o.Indexed {
		t.Errorf("the index holds %d documents, want %d", n, o.Indexed)
	}
	checkLetters(t, sink.letters, o.Reasons, data)
}

func countDocs(ctx context.Context, t *testing.T, bulk *esclient.Client, index string) int64 {
	t.Helper()
	if _, _, err := bulk.Do(ctx, http.MethodPost, "/"+index+"/_refresh", nil); err != nil {
		t.Fatal(err)
	}
	st, body, err := bulk.Do(ctx, http.MethodGet, "/"+index+"/_count", nil)
	var count struct{ Count int64 }
	if st == http.StatusNotFound {
		return 0
	}
	if err != nil || st != 200 || json.Unmarshal(body, &count) != nil {
		t.Fatalf("_count: %d %s %v", st, body, err)
	}
	return count.Count
}

// checkLetters: each reason matches a letter, each letter a reason, and each letter holds its
// record's bytes (the head of the object from its offset), also once encoded.
func checkLetters(t *testing.T, letters []DeadLetter, reasons []string, data []byte) {
	t.Helper()
	matched := make([]bool, len(reasons))
	for _, l := range letters {
		what := fmt.Sprintf("%d %s %s", l.Status, l.ErrorType, l.Reason)
		any := false
		for i, r := range reasons {
			if strings.Contains(what, r) {
				matched[i], any = true, true
			}
		}
		if !any {
			t.Errorf("dead letter at offset %d: %q matches no expected reason", l.Offset, what)
		}
		if !bytes.HasPrefix(data[l.Offset:], l.Record) {
			t.Errorf("dead letter at offset %d does not hold the record's bytes: %.80q", l.Offset, l.Record)
		}
		var enc struct {
			Record       *string `json:"record"`
			RecordBase64 []byte  `json:"record_base64"`
		}
		if err := json.Unmarshal(l.AppendJSON(nil), &enc); err != nil {
			t.Fatalf("dead letter at offset %d: %v", l.Offset, err)
		}
		stored := enc.RecordBase64
		if enc.Record != nil {
			stored = []byte(*enc.Record)
		}
		if !bytes.Equal(stored, l.Record) {
			t.Errorf("dead letter at offset %d stores %.80q, not the record %.80q (base64: %s)", l.Offset, stored, l.Record, base64.StdEncoding.EncodeToString(l.Record[:min(len(l.Record), 32)]))
		}
	}
	for i, ok := range matched {
		if !ok {
			t.Errorf("no dead letter says %q", reasons[i])
		}
	}
}
