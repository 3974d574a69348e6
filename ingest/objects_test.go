package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/sluicehq/sluice/internal/esfake"
)

var errGone = errors.New("object vanished")

// packedFixture is a packed chunk over objects held in memory: every third object gzip
// (one of them named as such, the others recognised by their bytes), object vanished missing.
type packedFixture struct {
	objects []PackedObject
	data    [][]byte // as stored (compressed for the gzip ones)
	plain   [][]byte // as decoded
	vanish  int      // index of the object that is gone; -1: none

	mu     sync.Mutex
	opens  map[int]int // GETs per object
	active int         // GETs open at once, at most
	open_  int
}

func newPackedFixture(t *testing.T, n, vanish int) *packedFixture {
	f := &packedFixture{vanish: vanish, opens: map[int]int{}}
	for i := range n {
		var b bytes.Buffer
		for j := range 5 + i%4 {
			fmt.Fprintf(&b, "{\"obj\":%d,\"n\":%d,\"pad\":\"%s\"}\n", i, j, bytes.Repeat([]byte("x"), 50+i))
		}
		if i == 3 {
			b.WriteString("not json\n") // dead-lettered with its own object and offset
		}
		key, stored := fmt.Sprintf("logs/%03d.ndjson", i), b.Bytes()
		if i%3 == 0 {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			if _, err := zw.Write(b.Bytes()); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			stored = z.Bytes()
			if i == 0 {
				key += ".gz"
			}
		}
		f.objects = append(f.objects, PackedObject{Key: key, Compression: CompressionAuto})
		f.data = append(f.data, stored)
		f.plain = append(f.plain, b.Bytes())
	}
	return f
}

type closeFunc struct {
	io.Reader
	close func()
}

func (c closeFunc) Close() error { c.close(); return nil }

func (f *packedFixture) open(_ context.Context, i int, off int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i == f.vanish {
		return nil, fmt.Errorf("opening object %d: %w", i, errGone)
	}
	f.opens[i]++
	f.open_++
	f.active = max(f.active, f.open_)
	return closeFunc{bytes.NewReader(f.data[i][off:]), func() { f.mu.Lock(); f.open_--; f.mu.Unlock() }}, nil
}

func (f *packedFixture) spec() ObjectsSpec {
	return ObjectsSpec{Bucket: "b", Objects: f.objects, Format: FormatNDJSON, Index: "logs",
		Limits: Limits{MaxOps: 1000, MaxBytes: 1 << 20, FlushInterval: time.Hour},
		Unavailable: func(err error) string {
			if errors.Is(err, errGone) {
				return "Gone"
			}
			return ""
		}}
}

// wantDocs is every record the fixture holds, by its single-object id, from offset resume of
// object from on.
func (f *packedFixture) wantDocs(from int, resume int64) map[string]string {
	docs := map[string]string{}
	for i := from; i < len(f.plain); i++ {
		if i == f.vanish {
			continue
		}
		off := 0
		for _, line := range bytes.SplitAfter(f.plain[i], []byte("\n")) {
			if len(line) > 0 && line[0] == '{' && (i > from || int64(off) >= resume) {
				docs[string(DocumentID("b", f.objects[i].Key, int64(off)))] = string(bytes.TrimSuffix(line, []byte("\n")))
			}
			off += len(line)
		}
	}
	return docs
}

func TestIngestObjectsShareRequestsKeepIDsAndSkipVanished(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, sink := newTestEngine(t, es, 8<<20)
	f := newPackedFixture(t, 40, 17)
	var last Progress
	prog, err := eng.IngestObjects(context.Background(), f.spec(), f.open, sink, func(p Progress) {
		if !p.After(last) {
			t.Errorf("checkpoint went from %+v to %+v", last, p)
		}
		last = p
	})
	if err != nil {
		t.Fatal(err)
	}
	want := f.wantDocs(0, 0)
	if got := es.Count("logs"); got != len(want) {
		t.Fatalf("index holds %d documents, want %d", got, len(want))
	}
	for id, doc := range want {
		if got, ok := es.Doc("logs", id); !ok || string(got) != doc {
			t.Fatalf("document %s = %q (found %v), want %q", id, got, ok, doc)
		}
	}
	if n := es.Stats().BulkRequests; n != 1 {
		t.Errorf("%d _bulk requests for 40 small objects, want 1", n)
	}
	var decoded int64
	for i, p := range f.plain {
		if i != f.vanish {
			decoded += int64(len(p))
		}
	}
	if prog.Object != 39 || prog.Checkpoint != int64(len(f.plain[39])) || prog.Stats.Bytes != decoded {
		t.Errorf("final progress %+v, want object 39 at %d, %d bytes", prog, len(f.plain[39]), decoded)
	}
	if prog.Stats.Read != prog.Stats.Indexed+prog.Stats.DeadLettered || prog.Stats.Indexed != int64(len(want)) || prog.Stats.DeadLettered != 1 {
		t.Errorf("stats %+v", prog.Stats)
	}
	if len(prog.Failed) != 1 || prog.Failed[0].Object != 17 || prog.Failed[0].Key != f.objects[17].Key || prog.Failed[0].Type != "Gone" {
		t.Errorf("failed objects %+v, want object 17", prog.Failed)
	}
	if l := sink.letters; len(l) != 1 || l[0].Object != "s3://b/"+f.objects[3].Key || l[0].Offset != int64(len(f.plain[3]))-int64(len("not json\n")) {
		t.Errorf("dead letters %+v, want object 3's last line", l)
	}
	for i := range f.objects {
		if i != f.vanish && f.opens[i] != 1 {
			t.Errorf("object %d opened %d times", i, f.opens[i])
		}
	}
	if f.active < 2 || f.active > PrefetchObjects+1 {
		t.Errorf("at most %d GETs open at once, want 2..%d (prefetch)", f.active, PrefetchObjects+1)
	}
	if f.open_ != 0 || eng.Budget.Used() != 0 {
		t.Errorf("%d readers left open, %d bytes of budget held", f.open_, eng.Budget.Used())
	}
}

func TestIngestObjectsResumeInsideAnObject(t *testing.T) {
	f := newPackedFixture(t, 12, -1)
	// Resume in object 6 (gzip: re-read and skipped) after its first line, and in object 7
	// (plain: read from the offset).
	for _, obj := range []int{6, 7} {
		es := esfake.New(esfake.Options{})
		defer es.Close()
		eng, sink := newTestEngine(t, es, 8<<20)
		resume := int64(bytes.IndexByte(f.plain[obj], '\n') + 1)
		spec := f.spec()
		spec.Resume = Progress{Object: obj, Checkpoint: resume, Stats: Stats{Read: 3, Indexed: 3, Bytes: 1000 + resume},
			Failed: []ObjectFailure{{Object: 2, Key: "earlier"}}}
		prog, err := eng.IngestObjects(context.Background(), spec, f.open, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := f.wantDocs(obj, resume)
		rest := int64(len(f.plain[obj])) - resume
		for i := obj + 1; i < len(f.plain); i++ {
			rest += int64(len(f.plain[i]))
		}
		if got := es.Stats().Items; got != int64(len(want)) {
			t.Errorf("resumed at object %d: sent %d items, want %d", obj, got, len(want))
		}
		if es.Stats().Duplicates != 0 {
			t.Errorf("resumed at object %d: %d duplicates", obj, es.Stats().Duplicates)
		}
		if prog.Stats.Read != 3+int64(len(want)) || prog.Stats.Bytes != 1000+resume+rest || len(prog.Failed) != 1 {
			t.Errorf("resumed at object %d: progress %+v", obj, prog)
		}
	}
}

func TestIngestObjectsOtherErrorsFailTheChunk(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, sink := newTestEngine(t, es, 8<<20)
	f := newPackedFixture(t, 10, 5)
	spec := f.spec()
	spec.Unavailable = nil
	prog, err := eng.IngestObjects(context.Background(), spec, f.open, sink, nil)
	if !errors.Is(err, errGone) {
		t.Fatalf("err = %v, want the open error", err)
	}
	if prog.Object > 5 || len(prog.Failed) != 0 {
		t.Errorf("progress %+v past the failed object", prog)
	}
	if eng.Budget.Used() != 0 || f.open_ != 0 {
		t.Errorf("budget holds %d bytes, %d readers open", eng.Budget.Used(), f.open_)
	}
}

// TestIngestObjectsChargeEachObjectsDecoding: every object of a packed chunk has its own
// decoding memory, charged from its open to its close. The budget holds one zstd window and
// one big record's reservation, not two: were an object's charge kept past its end, the
// second zstd object would wait for the budget forever (bounded here by the context).
func TestIngestObjectsChargeEachObjectsDecoding(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	const budget = zstdWindowCharge + 4<<20
	eng, sink := newTestEngine(t, es, budget)
	big := fmt.Sprintf("{\"big\":%q}\n", bytes.Repeat([]byte("b"), 2*smallBufferBytes)) // past the small line buffer
	var objects []PackedObject
	var data [][]byte
	docs := 0
	for i := range 6 {
		var b bytes.Buffer
		for j := range 3 {
			fmt.Fprintf(&b, "{\"obj\":%d,\"n\":%d}\n", i, j)
			docs++
		}
		if i%2 == 1 {
			b.WriteString(big)
			docs++
		}
		stored := b.Bytes()
		key := fmt.Sprintf("logs/%d.ndjson", i)
		if i < 4 {
			var z bytes.Buffer
			zw, err := zstd.NewWriter(&z, zstd.WithWindowSize(zstdMaxWindow))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := zw.Write(b.Bytes()); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			stored, key = z.Bytes(), key+".zst"
		}
		objects = append(objects, PackedObject{Key: key, Compression: CompressionAuto})
		data = append(data, stored)
	}
	open := func(_ context.Context, i int, off int64) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data[i][off:])), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spec := ObjectsSpec{Bucket: "b", Objects: objects, Format: FormatNDJSON, Index: "mem",
		Limits: Limits{MaxOps: 1000, MaxBytes: 1 << 20, FlushInterval: time.Hour}}
	prog, err := eng.IngestObjects(ctx, spec, open, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := es.Count("mem"); got != docs || prog.Stats.Indexed != int64(docs) {
		t.Fatalf("index holds %d documents, progress %+v, want %d", got, prog.Stats, docs)
	}
	if peak := eng.Budget.Peak(); peak < zstdWindowCharge || peak > budget {
		t.Errorf("budget peak %d, want a zstd window (%d) and at most the budget", peak, zstdWindowCharge)
	}
	if used := eng.Budget.Used(); used != 0 {
		t.Errorf("%d bytes of budget held after the chunk", used)
	}
}
