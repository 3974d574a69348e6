package ingest

import (
	"bytes"
	"strings"
	"testing"
)

// TestLetterRoundTrip: what AppendJSON writes, ParseLetter reads back to the original record
// and id; a letter holding the head of its record only is not replayable.
func TestLetterRoundTrip(t *testing.T) {
	latin1 := []byte("{\"name\":\"caf\xe9\"}")
	long := bytes.Repeat([]byte("y"), previewBytes+10)
	cases := []struct {
		rec      []byte
		wantErr  string
		wantData []byte
	}{
		{[]byte(`{"n":"abc"}`), "", []byte(`{"n":"abc"}`)},
		{latin1, "", latin1},
		{long, NotReplayable, nil},
	}
	for _, c := range cases {
		d := DeadLetter{Object: "s3://data/in/a.ndjson", Offset: 1234, Index: "logs", Status: 400, Reason: "mapper"}
		d.setRecord(Record{Data: c.rec})
		l, err := ParseLetter(d.AppendJSON(nil))
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Original()
		if c.wantErr != "" {
			if err == nil || !IsNotReplayable(err.Error()) {
				t.Errorf("record of %d bytes: %v, want not replayable", len(c.rec), err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, c.wantData) {
			t.Errorf("record %q: got %q, %v", c.rec, got, err)
		}
		if id, err := l.OriginalID(); err != nil || id != DocumentID("data", "in/a.ndjson", 1234) {
			t.Errorf("id %q, %v", id, err)
		}
	}
	if _, err := ParseLetter([]byte("not json")); err == nil || !strings.Contains(err.Error(), "not a dead letter") {
		t.Errorf("garbage: %v", err)
	}
}

// FuzzLetters: whatever a record holds, its letter reads back to the same bytes and the
// original's id, or (cut to 64 KiB) is not replayable; and no line makes ParseLetter panic.
func FuzzLetters(f *testing.F) {
	f.Add([]byte(`{"n":1}`), int64(0), "index:x")
	f.Add([]byte("caf\xe9\x00\n\"\\"), int64(1<<40), `{"object":"s3://b/k","offset":3,"record":"x"}`)
	f.Fuzz(func(t *testing.T, rec []byte, offset int64, line string) {
		_, _ = ParseLetter([]byte(line))
		if offset < 0 {
			offset = -offset
		}
		d := DeadLetter{Object: "s3://b/some key", Offset: offset, Reason: line}
		d.setRecord(Record{Data: rec})
		l, err := ParseLetter(d.AppendJSON(nil))
		if err != nil {
			t.Fatalf("letter of %q: %v", rec, err)
		}
		got, err := l.Original()
		if len(rec) > previewBytes {
			if err == nil || !IsNotReplayable(err.Error()) {
				t.Fatalf("cut letter replayable: %v", err)
			}
			return
		}
		if err != nil || !bytes.Equal(got, rec) {
			t.Fatalf("record %q read back as %q (%v)", rec, got, err)
		}
		if id, err := l.OriginalID(); err != nil || id != DocumentID("b", "some key", offset) {
			t.Fatalf("id %q, %v", id, err)
		}
	})
}
