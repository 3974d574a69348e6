package activities

import (
	"io"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/ingest"
)

func TestSourceCounter(t *testing.T) {
	p := ingest.Progress{Checkpoint: 900, Stats: ingest.Stats{Read: 3, Bytes: 800}}
	// A plain range: the bytes behind the checkpoint, bounded by the range.
	plain := newSourceCounter(ingest.ChunkSpec{Key: "a.ndjson", Compression: ingest.CompressionNone, Start: 100, End: 600}, 1000)
	if got := plain.progress(p); got.SourceBytes != 500 || got.Stats.Read != 3 || got.Checkpoint != 900 {
		t.Fatalf("plain: %+v, want SourceBytes 500 (the range)", got)
	}
	last := newSourceCounter(ingest.ChunkSpec{Key: "a.ndjson", Compression: ingest.CompressionAuto, Start: 100, End: -1}, 10000)
	if got := last.progress(p).SourceBytes; got != 800 {
		t.Fatalf("plain to the end: SourceBytes %d, want 800", got)
	}
	// A compressed object: what its readers delivered, whatever the decompressed counts say.
	gz := newSourceCounter(ingest.ChunkSpec{Key: "a.ndjson.gz", Compression: ingest.CompressionAuto, End: -1}, 50)
	r := gz.reader(io.NopCloser(strings.NewReader(strings.Repeat("x", 30))))
	if _, err := io.ReadAll(r); err != nil {
		t.Fatal(err)
	}
	if got := gz.progress(p).SourceBytes; got != 30 {
		t.Fatalf("gzip: SourceBytes %d, want the 30 bytes read", got)
	}
}
