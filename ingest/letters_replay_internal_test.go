package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
)

// TestReplayedLettersNameTheirOrigin: a replay whose records fail again dead-letters them
// naming the original object, offset and id (not the letter object's), through requests that
// the batcher joins; a letter that is not replayable is written again as it was (its head,
// length and hash); and replaying those second-generation letters indexes the records under
// their original ids.
func TestReplayedLettersNameTheirOrigin(t *testing.T) {
	const object = "s3://data/in/a.ndjson"
	long := bytes.Repeat([]byte("y"), previewBytes+100)
	var gen1 []byte
	originals := map[int64][]byte{} // offset in the original object -> record
	for i := range 120 {
		off := int64(1000 + 37*i)
		rec := fmt.Appendf(nil, `{"n":%d,"bad":%t}`, i, i%3 == 0)
		if i == 50 {
			rec = long
		}
		originals[off] = rec
		d := DeadLetter{Index: "logs", Object: object, Offset: off, Status: 400, ErrorType: "mapper_parsing_exception", Reason: "first"}
		d.setRecord(Record{Data: rec})
		gen1 = append(d.AppendJSON(gen1), '\n')
	}

	fake := esfake.New(esfake.Options{ItemFault: func(it *esfake.Item) esfake.ItemError {
		if bytes.Contains(it.Doc, []byte(`"bad":true`)) {
			return esfake.MapperParsing("still bad")
		}
		return esfake.ItemError{}
	}})
	defer fake.Close()
	bulk, err := esclient.New(context.Background(), esclient.Config{Addresses: []string{fake.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	eng := &Engine{Budget: NewBudget(8 << 20), Bulk: bulk}
	replay := func(letters []byte, key string) *memSink {
		t.Helper()
		sink := &memSink{}
		spec := ChunkSpec{Bucket: "letters", Key: key, Format: FormatDeadLetter, Index: "fixed", End: -1,
			Limits: Limits{MaxOps: 7, Inflight: 3}}
		prog, err := eng.Ingest(context.Background(), spec, bytesOpener(letters), sink, nil)
		if err != nil || prog.Stats.Read != prog.Stats.Indexed+prog.Stats.DeadLettered {
			t.Fatalf("replay of %s: %+v, %v", key, prog.Stats, err)
		}
		if eng.Budget.Used() != 0 {
			t.Fatalf("replay of %s left %d bytes of budget taken", key, eng.Budget.Used())
		}
		return sink
	}

	sink := replay(gen1, "dl/gen1.ndjson")
	if len(sink.letters) != 41 { // 40 still bad, 1 not replayable
		t.Fatalf("%d letters again, want 41", len(sink.letters))
	}
	var gen2 []byte
	for _, l := range sink.letters {
		rec, ok := originals[l.Offset]
		if l.Object != object || !ok || l.ID != DocumentID("data", "in/a.ndjson", l.Offset) {
			t.Fatalf("letter again names %s at %d id %q, want the original", l.Object, l.Offset, l.ID)
		}
		switch {
		case bytes.Equal(rec, long):
			if !IsNotReplayable(l.Reason) || !l.Truncated || l.Length != int64(len(long)) || l.SHA256 != sha256.Sum256(long) || !bytes.Equal(l.Record, long[:previewBytes]) {
				t.Fatalf("letter of the cut record again: %q truncated %v length %d", l.Reason, l.Truncated, l.Length)
			}
		case l.Reason != "still bad" || !bytes.Equal(l.Record, rec):
			t.Fatalf("letter at %d again: %q %q", l.Offset, l.Reason, l.Record)
		}
		gen2 = append(l.AppendJSON(gen2), '\n')
	}
	for off, rec := range originals {
		id := DocumentID("data", "in/a.ndjson", off)
		if _, ok := fake.Doc("fixed", id); ok == (bytes.Contains(rec, []byte(`"bad":true`)) || bytes.Equal(rec, long)) {
			t.Fatalf("record at %d: indexed %v under its original id", off, ok)
		}
	}

	// The cause fixed: the second generation goes in under the original ids.
	fake.SetItemFault(nil)
	sink = replay(gen2, "dl/gen2.ndjson")
	if len(sink.letters) != 1 || sink.letters[0].Object != object || !IsNotReplayable(sink.letters[0].Reason) {
		t.Fatalf("second replay dead-lettered %+v, want the cut record only", sink.letters)
	}
	if n := fake.Count("fixed"); n != len(originals)-1 {
		t.Fatalf("%d documents, want %d", n, len(originals)-1)
	}
	for off, rec := range originals {
		if bytes.Equal(rec, long) {
			continue
		}
		if doc, ok := fake.Doc("fixed", DocumentID("data", "in/a.ndjson", off)); !ok || !bytes.Equal(doc, rec) {
			t.Fatalf("record at %d under its original id: %q, %v", off, doc, ok)
		}
	}
}

// TestLetterIDWins: a letter's id (written when a replay dead-letters a record again, or
// for a record whose id is not its object's and offset's) is the id a replay sends it with.
func TestLetterIDWins(t *testing.T) {
	d := DeadLetter{Object: "es://old (index old shard 0)", Offset: 7, ID: "doc-7"}
	d.setRecord(Record{Data: []byte(`{"a":1}`)})
	line := d.AppendJSON(nil)
	if !strings.Contains(string(line), `"id":"doc-7"`) {
		t.Fatalf("letter %s without its id", line)
	}
	l, err := ParseLetter(line)
	if err != nil {
		t.Fatal(err)
	}
	if rec, id, err := l.Replay(); err != nil || id != "doc-7" || string(rec) != `{"a":1}` {
		t.Fatalf("replay: %q %q %v", rec, id, err)
	}
	d.ID = "" // an object that is no s3:// URI, and no id: not replayable
	l, _ = ParseLetter(d.AppendJSON(nil))
	if _, _, err := l.Replay(); err == nil || !IsNotReplayable(err.Error()) {
		t.Fatalf("letter without an id or an S3 object: %v", err)
	}
}

// TestRequestJoinKeepsOrigins: joined requests keep each document's origin with its item,
// whichever of them had origins.
func TestRequestJoinKeepsOrigins(t *testing.T) {
	budget := NewBudget(1 << 20)
	build := func(origins ...*Origin) *request {
		r := newRequest(budget)
		if !budget.TryAcquire(1 << 10) {
			t.Fatal("budget spent")
		}
		r.addBlock(1 << 10) // charged to r: given back by r.free
		for i, o := range origins {
			r.addDoc(0, int64(i), int64(i+1), []byte("{}\n"), []byte("{}"))
			r.keepOrigin(o, 0)
		}
		return r
	}
	a, b := &Origin{Object: "s3://x/a", Offset: 1, ID: "a"}, &Origin{Object: "s3://x/b", Offset: 2, ID: "b"}
	r := build(nil, nil)
	r.join(build(a, nil))
	r.join(build(nil, b))
	r.join(build(nil))
	want := []*Origin{nil, nil, a, nil, nil, b, nil}
	if len(r.items) != len(want) {
		t.Fatalf("%d items, want %d", len(r.items), len(want))
	}
	for i, w := range want {
		if got := r.origin(i); (got == nil) != (w == nil) || got != nil && *got != *w {
			t.Errorf("item %d: origin %+v, want %+v", i, got, w)
		}
	}
	r.free()
	if budget.Used() != 0 {
		t.Fatalf("%d bytes of budget still taken", budget.Used())
	}
}
