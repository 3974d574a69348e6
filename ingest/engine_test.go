package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
)

type memSink struct {
	mu      sync.Mutex
	letters []DeadLetter
}

func (m *memSink) Write(_ context.Context, ls []DeadLetter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range ls {
		l.Record = append([]byte(nil), l.Record...) // Write must not keep it
		m.letters = append(m.letters, l)
	}
	return nil
}
func (m *memSink) Close() error { return nil }

func (m *memSink) offsets() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for _, l := range m.letters {
		out = append(out, l.Offset)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// sinkEngine is an Engine whose chunks all dead-letter into one sink.
type sinkEngine struct {
	*Engine
	sink DeadLetterSink
}

func (e sinkEngine) Ingest(ctx context.Context, spec ChunkSpec, open Opener, onProgress func(Progress)) (Progress, error) {
	return e.Engine.Ingest(ctx, spec, open, e.sink, onProgress)
}

func newTestEngine(t *testing.T, es *esfake.Server, budget int64) (sinkEngine, *memSink) {
	t.Helper()
	bulk, err := esclient.New(context.Background(), esclient.Config{Addresses: []string{es.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	return sinkEngine{&Engine{Budget: NewBudget(budget), Bulk: bulk}, sink}, sink
}

func bytesOpener(data []byte) Opener {
	return func(_ context.Context, off int64) (io.ReadCloser, error) {
		if off > int64(len(data)) {
			off = int64(len(data))
		}
		return io.NopCloser(bytes.NewReader(data[off:])), nil
	}
}

// dataset returns n NDJSON lines, every 97th not JSON, with CRLF and blank lines mixed in, and
// the offsets of the valid and the invalid records.
func dataset(n int) (data []byte, valid map[int64]string, invalid []int64) {
	valid = map[int64]string{}
	var b bytes.Buffer
	for i := range n {
		off := int64(b.Len())
		switch {
		case i%97 == 13:
			fmt.Fprintf(&b, "not json %d\n", i)
			invalid = append(invalid, off)
			continue
		case i%50 == 7:
			b.WriteString("\n")
			off++
		}
		doc := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, bytes.Repeat([]byte("x"), i%300))
		valid[off] = doc
		b.WriteString(doc)
		if i%3 == 0 {
			b.WriteString("\r\n")
		} else if i != n-1 {
			b.WriteString("\n")
		}
	}
	return b.Bytes(), valid, invalid
}

func TestIngestRangesIndexEachRecordOnce(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, sink := newTestEngine(t, es, 8<<20)
	data, valid, invalid := dataset(3000)

	cuts := []int64{0, 1000, 1001, int64(len(data)) / 3, int64(len(data)) / 2, int64(len(data)) - 5}
	var total Stats
	for i, start := range cuts {
		end := int64(-1)
		if i+1 < len(cuts) {
			end = cuts[i+1]
		}
		var last int64 = -1
		spec := ChunkSpec{Bucket: "b", Key: "k.ndjson", Format: FormatNDJSON, Index: "logs", Start: start, End: end,
			Limits: Limits{MaxOps: 100, MaxBytes: 64 << 10, FlushInterval: time.Hour}}
		prog, err := eng.Ingest(context.Background(), spec, bytesOpener(data), func(p Progress) {
			if p.Checkpoint <= last {
				t.Errorf("checkpoint went from %d to %d", last, p.Checkpoint)
			}
			last = p.Checkpoint
		})
		if err != nil {
			t.Fatal(err)
		}
		if end >= 0 && prog.Checkpoint < end || end < 0 && prog.Checkpoint != int64(len(data)) {
			t.Errorf("range [%d,%d) ended at checkpoint %d", start, end, prog.Checkpoint)
		}
		total.Add(prog.Stats)
	}
	if total.Read != total.Indexed+total.DeadLettered || total.Bytes != int64(len(data)) {
		t.Errorf("counts do not add up (bytes %d of %d): %+v", total.Bytes, len(data), total)
	}
	if total.Indexed != int64(len(valid)) || total.DeadLettered != int64(len(invalid)) {
		t.Errorf("indexed %d dead-lettered %d, want %d and %d", total.Indexed, total.DeadLettered, len(valid), len(invalid))
	}
	if got := es.Count("logs"); got != len(valid) {
		t.Fatalf("index holds %d documents, want %d", got, len(valid))
	}
	if st := es.Stats(); st.Duplicates != 0 {
		t.Errorf("%d documents were sent twice", st.Duplicates)
	}
	for off, doc := range valid {
		got, ok := es.Doc("logs", DocumentID("b", "k.ndjson", off))
		if !ok || string(got) != doc {
			t.Fatalf("document at offset %d = %q (found %v), want %q", off, got, ok, doc)
		}
	}
	if got := sink.offsets(); fmt.Sprint(got) != fmt.Sprint(invalid) {
		t.Errorf("dead letters at %v, want %v", got, invalid)
	}
	for _, l := range sink.letters {
		if l.Status != http.StatusBadRequest || l.Object != "s3://b/k.ndjson" || !bytes.HasPrefix(l.Record, []byte("not json")) || l.Reason == "" {
			t.Errorf("dead letter %+v", l)
		}
	}
	if eng.Budget.Used() != 0 {
		t.Errorf("budget still holds %d bytes", eng.Budget.Used())
	}
}

func TestIngestRetriesRejectedItems(t *testing.T) {
	var rejected atomic.Int64
	es := esfake.New(esfake.Options{ItemFault: func(it *esfake.Item) esfake.ItemError {
		if it.Attempt <= 2 && it.Pos%3 == 0 {
			rejected.Add(1)
			if it.Pos%2 == 0 {
				return esfake.Rejected()
			}
			return esfake.Unavailable()
		}
		return esfake.ItemError{}
	}})
	defer es.Close()
	eng, sink := newTestEngine(t, es, 8<<20)
	data, valid, _ := dataset(500)
	spec := ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "logs", End: -1,
		Limits: Limits{MaxOps: 50, RetryInitial: time.Millisecond, RetryMax: 5 * time.Millisecond}}
	prog, err := eng.Ingest(context.Background(), spec, bytesOpener(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if es.Count("logs") != len(valid) || prog.Stats.Indexed != int64(len(valid)) {
		t.Fatalf("indexed %d, index holds %d, want %d", prog.Stats.Indexed, es.Count("logs"), len(valid))
	}
	if prog.Stats.Retried < rejected.Load() || rejected.Load() == 0 {
		t.Errorf("retried %d items, %d rejections", prog.Stats.Retried, rejected.Load())
	}
	for _, l := range sink.letters {
		if l.Status == 429 || l.Status == 503 {
			t.Errorf("a retryable item was dead-lettered: %+v", l)
		}
	}
}

func TestIngestRetriesGiveUpAfterMaxElapsed(t *testing.T) {
	es := esfake.New(esfake.Options{ItemFault: func(*esfake.Item) esfake.ItemError { return esfake.Rejected() }})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 8<<20)
	data, _, _ := dataset(20)
	spec := ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "logs", End: -1,
		Limits: Limits{RetryInitial: time.Millisecond, RetryMaxElapsed: 30 * time.Millisecond}}
	prog, err := eng.Ingest(context.Background(), spec, bytesOpener(data), nil)
	if !errors.Is(err, ErrRetriesExhausted) || IsPermanent(err) {
		t.Fatalf("err = %v, want retries exhausted (retryable)", err)
	}
	if prog.Checkpoint != 0 || eng.Budget.Used() != 0 {
		t.Fatalf("checkpoint %d, budget %d after failure", prog.Checkpoint, eng.Budget.Used())
	}
}

func TestIngestSplitsOn413AndDeadLettersOversize(t *testing.T) {
	es := esfake.New(esfake.Options{MaxContentLength: 8 << 10})
	defer es.Close()
	eng, sink := newTestEngine(t, es, 8<<20)
	var b bytes.Buffer
	want := 0
	for i := range 200 {
		size := 50
		if i == 77 {
			size = 10 << 10 // alone larger than the cluster accepts
		} else {
			want++
		}
		fmt.Fprintf(&b, "{\"i\":%d,\"s\":\"%s\"}\n", i, bytes.Repeat([]byte("y"), size))
	}
	big := fmt.Sprintf("{\"i\":999,\"s\":\"%s\"}\n", bytes.Repeat([]byte("z"), 200<<10)) // over our own cap
	b.WriteString(big)
	spec := ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "logs", End: -1,
		Limits: Limits{MaxOps: 1000, MaxBytes: 64 << 10}}
	prog, err := eng.Ingest(context.Background(), spec, bytesOpener(b.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if es.Count("logs") != want || prog.Stats.DeadLettered != 2 || prog.Stats.Read != int64(want)+2 {
		t.Fatalf("index %d, stats %+v; want %d indexed and 2 dead letters", es.Count("logs"), prog.Stats, want)
	}
	if es.Stats().Responses[413] == 0 {
		t.Fatal("the cluster never answered 413: the test did not exercise splitting")
	}
	var truncated bool
	for _, l := range sink.letters {
		if l.Truncated && len(l.Record) == previewBytes {
			truncated = true
		}
	}
	if !truncated {
		t.Errorf("the over-cap record was not dead-lettered with a truncated preview: %d letters", len(sink.letters))
	}
}

func TestIngestStopsOnUnauthorized(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 8<<20)
	es.SetFault(func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk {
			return esfake.Decision{Status: http.StatusUnauthorized}
		}
		return esfake.Decision{}
	})
	data, _, _ := dataset(50)
	_, err := eng.Ingest(context.Background(), ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "logs", End: -1}, bytesOpener(data), nil)
	if !errors.Is(err, ErrUnauthorized) || !IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent ErrUnauthorized", err)
	}
	if eng.Budget.Used() != 0 {
		t.Errorf("budget holds %d bytes after failure", eng.Budget.Used())
	}
}

// The checkpoint only moves over a contiguous prefix: while the first batch is held, later
// ones finish but the checkpoint stays put.
func TestIngestWatermarkWaitsForOldestBatch(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	var reported atomic.Int64
	reported.Store(-1)
	var heldCheckpoint atomic.Int64
	es := esfake.New(esfake.Options{ItemFault: func(it *esfake.Item) esfake.ItemError {
		var n int
		if _, err := fmt.Sscanf(string(it.Doc), `{"n":%d`, &n); err != nil {
			return esfake.ItemError{}
		}
		switch {
		case n == 0 && it.Attempt == 1:
			<-release // hold the first batch
		case n >= 20:
			// The first batch is held on one sender, so the other has finished the second
			// batch (and reported any progress it made) before taking this third one.
			once.Do(func() {
				heldCheckpoint.Store(reported.Load())
				close(release)
			})
		}
		return esfake.ItemError{}
	}})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 8<<20)
	data, _, _ := dataset(100)
	spec := ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "logs", End: -1,
		Limits: Limits{MaxOps: 10, Inflight: 2}}
	prog, err := eng.Ingest(context.Background(), spec, bytesOpener(data), func(p Progress) { reported.Store(p.Checkpoint) })
	if err != nil {
		t.Fatal(err)
	}
	if heldCheckpoint.Load() != -1 {
		t.Fatalf("checkpoint %d was reported while the first batch was in flight", heldCheckpoint.Load())
	}
	if prog.Checkpoint != int64(len(data)) || reported.Load() != int64(len(data)) {
		t.Fatalf("final checkpoint %d (reported %d), want %d", prog.Checkpoint, reported.Load(), len(data))
	}
}

func TestIngestResumeSendsOnlyTheRest(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 8<<20)
	data, valid, invalid := dataset(1000)
	// Resume at a record boundary in the middle, as a heartbeat would have recorded it.
	resume := int64(bytes.IndexByte(data[len(data)/2:], '\n')) + int64(len(data)/2) + 1
	before := 0
	for off := range valid {
		if off < resume {
			before++
		}
	}
	spec := ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "logs", End: -1, Resume: Progress{Checkpoint: resume, Stats: Stats{Read: 7, Indexed: 7}}}
	prog, err := eng.Ingest(context.Background(), spec, bytesOpener(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := es.Stats().Items; got != int64(len(valid)-before+countFrom(invalid, resume)) {
		t.Fatalf("sent %d items after resuming at %d, want %d", got, resume, len(valid)-before+countFrom(invalid, resume))
	}
	if prog.Stats.Read != 7+es.Stats().Items || prog.Stats.Bytes != int64(len(data)) {
		t.Fatalf("stats %+v", prog.Stats)
	}
}

func countFrom(offs []int64, from int64) int {
	n := 0
	for _, o := range offs {
		if o >= from {
			n++
		}
	}
	return n
}

func TestIngestCancelReleasesBudget(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	es := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk && r.Seq == 3 {
			cancel()
			return esfake.Decision{Hang: true}
		}
		return esfake.Decision{}
	}})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 1<<20)
	data, _, _ := dataset(5000)
	spec := ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "logs", End: -1,
		Limits: Limits{MaxOps: 20, MaxBytes: 64 << 10}}
	prog, err := eng.Ingest(ctx, spec, bytesOpener(data), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if eng.Budget.Used() != 0 {
		t.Fatalf("budget holds %d bytes after cancel", eng.Budget.Used())
	}
	if prog.Checkpoint >= int64(len(data)) {
		t.Fatalf("checkpoint %d reached the end despite the cancel", prog.Checkpoint)
	}
}

// Several chunks share one small budget: it is never exceeded and every document arrives.
func TestIngestSharedBudget(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 256<<10)
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, _, _ := dataset(2000)
			spec := ChunkSpec{Bucket: "b", Key: fmt.Sprint("k", c), Format: FormatNDJSON, Index: "logs", End: -1,
				Limits: Limits{MaxOps: 100, MaxBytes: 32 << 10, QueueBytes: 64 << 10}}
			if _, err := eng.Ingest(context.Background(), spec, bytesOpener(data), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	_, valid, _ := dataset(2000)
	if es.Count("logs") != 4*len(valid) {
		t.Fatalf("index holds %d, want %d", es.Count("logs"), 4*len(valid))
	}
	if eng.Budget.Peak() > 256<<10 || eng.Budget.Used() != 0 {
		t.Fatalf("budget peak %d used %d", eng.Budget.Peak(), eng.Budget.Used())
	}
}

func TestIngestCompressedAndCSV(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, sink := newTestEngine(t, es, 16<<20)
	data, valid, invalid := dataset(400)

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	var zs bytes.Buffer
	enc, _ := zstd.NewWriter(&zs)
	enc.Write(data)
	enc.Close()
	for _, c := range []struct {
		key, compression string
		body             []byte
	}{
		{"a.ndjson.gz", CompressionAuto, gz.Bytes()},
		{"b.ndjson", CompressionAuto, zs.Bytes()}, // detected from magic bytes
		{"c.zst", CompressionZstd, zs.Bytes()},
		{"d.ndjson", CompressionGzip, gz.Bytes()}, // the planner's answer is trusted over the name
		{"e.ndjson.gz", CompressionNone, data},    // likewise: no name check, no sniffing
		{"f", "", zs.Bytes()},                     // a chunk planned before chunks carried it: auto
	} {
		spec := ChunkSpec{Bucket: "b", Key: c.key, Format: FormatNDJSON, Compression: c.compression, Index: c.key, End: -1}
		prog, err := eng.Ingest(context.Background(), spec, bytesOpener(c.body), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		if es.Count(c.key) != len(valid) || prog.Stats.DeadLettered != int64(len(invalid)) || prog.Checkpoint != int64(len(data)) {
			t.Fatalf("%s: index %d stats %+v checkpoint %d", c.key, es.Count(c.key), prog.Stats, prog.Checkpoint)
		}
		// Resuming a compressed object re-reads it and skips what was acknowledged.
		mid := int64(len(data) / 2)
		mid += int64(bytes.IndexByte(data[mid:], '\n')) + 1
		before := es.Stats().Items
		spec.Resume = Progress{Checkpoint: mid}
		if _, err := eng.Ingest(context.Background(), spec, bytesOpener(c.body), nil); err != nil {
			t.Fatal(err)
		}
		sent := es.Stats().Items - before
		if sent >= int64(len(valid)) || sent == 0 {
			t.Fatalf("%s: resume sent %d items", c.key, sent)
		}
	}

	csv := "id,name,city\n1,ann,\"Paris, FR\"\n2,bob\n3,cy,Oslo\n"
	spec := ChunkSpec{Bucket: "b", Key: "p.csv", Format: FormatCSV, Index: "people", IDField: "id", End: -1}
	before := len(sink.letters)
	if _, err := eng.Ingest(context.Background(), spec, bytesOpener([]byte(csv)), nil); err != nil {
		t.Fatal(err)
	}
	doc, ok := es.Doc("people", "1")
	var m map[string]string
	if !ok || json.Unmarshal(doc, &m) != nil || m["city"] != "Paris, FR" {
		t.Fatalf("csv doc 1 = %s", doc)
	}
	if es.Count("people") != 2 || len(sink.letters) != before+1 {
		t.Fatalf("people holds %d, %d new dead letters", es.Count("people"), len(sink.letters)-before)
	}
	// A range that starts after the header reads it from the object's start.
	spec.Start = int64(bytes.Index([]byte(csv), []byte("3,cy")))
	spec.IDField = ""
	if prog, err := eng.Ingest(context.Background(), spec, bytesOpener([]byte(csv)), nil); err != nil || prog.Stats.Indexed != 1 {
		t.Fatalf("csv range: %+v %v", prog, err)
	}
}
