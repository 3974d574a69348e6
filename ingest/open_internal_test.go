package ingest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadFrom(t *testing.T) {
	cases := []struct {
		name              string
		compressed        bool
		start, end, resum int64
		want              rangeSpec
	}{
		{"whole plain object", false, 0, -1, 0, rangeSpec{end: -1}},
		{"first range", false, 0, 100, 0, rangeSpec{end: 100}},
		{"range inside the object", false, 100, 200, 0, rangeSpec{base: 99, skipPartial: true, end: 200}},
		{"last range", false, 100, -1, 0, rangeSpec{base: 99, skipPartial: true, end: -1}},
		{"resumed first range", false, 0, 100, 42, rangeSpec{base: 42, end: 100}},
		{"resumed range inside the object", false, 100, 200, 150, rangeSpec{base: 150, end: 200}},
		{"compressed object", true, 0, -1, 0, rangeSpec{end: -1}},
		{"resumed compressed object", true, 0, -1, 4096, rangeSpec{from: 4096, end: -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := readFrom(c.compressed, c.start, c.end, c.resum); got != c.want {
				t.Fatalf("readFrom(%v, %d, %d, %d) = %+v, want %+v", c.compressed, c.start, c.end, c.resum, got, c.want)
			}
		})
	}
}

func TestChunkSpecFrom(t *testing.T) {
	st := Stats{Read: 3, Indexed: 3, Bytes: 30}
	cases := []struct {
		name     string
		spec     ChunkSpec
		want     Progress
		resumeAt int64
	}{
		{"fresh", ChunkSpec{Start: 100, End: 200}, Progress{Checkpoint: 100}, 0},
		{"resumed", ChunkSpec{Start: 100, End: 200, Resume: Progress{Checkpoint: 130, Stats: st}}, Progress{Checkpoint: 130, Stats: st}, 130},
		{"checkpoint at start is no resume", ChunkSpec{Start: 100, End: 200, Resume: Progress{Checkpoint: 100}}, Progress{Checkpoint: 100}, 0},
		{"resumed at offset 0 object", ChunkSpec{End: -1, Resume: Progress{Checkpoint: 10, Stats: st}}, Progress{Checkpoint: 10, Stats: st}, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.spec.From(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("From() = %+v, want %+v", got, c.want)
			}
			if got := c.spec.resumeAt(); got != c.resumeAt {
				t.Fatalf("resumeAt() = %d, want %d", got, c.resumeAt)
			}
		})
	}
}

func TestParseDeadLetter(t *testing.T) {
	cases := []struct {
		in      string
		want    DeadLetterTarget
		wantStr string
	}{
		{"", DeadLetterTarget{Index: "logs-dead-letters"}, "index:logs-dead-letters"},
		{"index", DeadLetterTarget{Index: "logs-dead-letters"}, "index:logs-dead-letters"},
		{"index:rejects", DeadLetterTarget{Index: "rejects"}, "index:rejects"},
		{"file:dl.ndjson", DeadLetterTarget{File: "dl.ndjson"}, "file:dl.ndjson"},
		{"file:jobs/./a.ndjson", DeadLetterTarget{File: "jobs/a.ndjson"}, "file:jobs/a.ndjson"},
		{"s3://b/k", DeadLetterTarget{S3Bucket: "b", S3Prefix: "k"}, "s3://b/k"},
		{"s3://b", DeadLetterTarget{S3Bucket: "b"}, "s3://b/"},
	}
	for _, c := range cases {
		got, err := ParseDeadLetter(c.in, "logs")
		if err != nil || got != c.want || got.String() != c.wantStr {
			t.Errorf("ParseDeadLetter(%q) = %+v (%q), %v; want %+v (%q)", c.in, got, got.String(), err, c.want, c.wantStr)
		}
	}
	for _, bad := range []string{"index:", "file:", "files:/x", "s3://", "s3://b/a/../x", "s3://b/./x", "Index",
		"file:/var/dl.ndjson", "file:../dl.ndjson", "file:a/../../dl.ndjson", "file:.."} {
		if _, err := ParseDeadLetter(bad, "logs"); !errors.Is(err, ErrBadInput) {
			t.Errorf("ParseDeadLetter(%q): %v, want ErrBadInput", bad, err)
		}
	}
}

func TestFileSinkModeAndRotation(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenFileSink(dir, "dl.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	letter := func(off int64) []DeadLetter {
		return []DeadLetter{{Object: "s3://b/k", Offset: off, Record: []byte("x")}}
	}
	if err := s.Write(context.Background(), letter(1)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dl.ndjson")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dead-letter file: %v, %v; want mode 0600", fi, err)
	}
	// Rotated away: the next letter goes to a new file under the same name.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), letter(2)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"dl.ndjson": `"offset":2`, "dl.ndjson.1": `"offset":1`} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || bytes.Count(b, []byte("\n")) != 1 || !bytes.Contains(b, []byte(want)) {
			t.Fatalf("%s: %q, %v; want one letter with %s", name, b, err, want)
		}
	}
	if _, err := OpenFileSink("", "dl.ndjson"); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("no directory: %v, want ErrBadConfig", err)
	}
	// A symbolic link cannot lead out of the directory.
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileSink(dir, "out/dl.ndjson"); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("through a symbolic link out of the directory: %v, want ErrBadConfig", err)
	}
}
