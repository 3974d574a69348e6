package activities

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest"
)

// TestChunkSpec is the table of the one mapping from a chunk's input and an earlier attempt's
// heartbeat to the engine's spec.
func TestChunkSpec(t *testing.T) {
	src := Source{URI: "s3://bkt/logs/", Index: "logs"}
	chunk := Chunk{Key: "logs/a.ndjson", ETag: `"e"`, Size: 300, Start: 100, End: 200}
	base := ingest.ChunkSpec{
		Bucket: "bkt", Key: "logs/a.ndjson", Format: ingest.FormatNDJSON, Compression: ingest.CompressionAuto,
		Index: "logs", Start: 100, End: 200,
	}
	stats := ChunkStats{Read: 4, Indexed: 3, Retried: 2, DeadLettered: 1, Bytes: 40}
	with := func(f func(*ingest.ChunkSpec)) ingest.ChunkSpec { s := base; f(&s); return s }
	cases := []struct {
		name    string
		in      IngestChunkInput
		earlier *ChunkProgress
		want    ingest.ChunkSpec
	}{
		{"defaults", IngestChunkInput{Source: src, Chunk: chunk}, nil, base},
		{"source settings", IngestChunkInput{
			Source: Source{URI: src.URI, Index: "logs", Format: ingest.FormatCSV, Compression: ingest.CompressionNone, IDField: "id"},
			Chunk:  chunk,
		}, nil, with(func(s *ingest.ChunkSpec) {
			s.Format, s.Compression, s.IDField = ingest.FormatCSV, ingest.CompressionNone, "id"
		})},
		{"the planner's compression wins", IngestChunkInput{
			Source: Source{URI: src.URI, Index: "logs", Compression: ingest.CompressionAuto},
			Chunk:  Chunk{Key: chunk.Key, Start: 100, End: 200, Compression: ingest.CompressionGzip},
		}, nil, with(func(s *ingest.ChunkSpec) { s.Compression = ingest.CompressionGzip })},
		{"limits", IngestChunkInput{Source: src, Chunk: chunk, Limits: Limits{
			MaxOps: 10, MaxBytes: 1 << 20, FlushInterval: time.Second, Inflight: 3, RetryMaxElapsed: time.Minute,
		}}, nil, with(func(s *ingest.ChunkSpec) {
			s.Limits = ingest.Limits{MaxOps: 10, MaxBytes: 1 << 20, FlushInterval: time.Second, Inflight: 3, RetryMaxElapsed: time.Minute}
		})},
		{"resume from the chunk, without counters", IngestChunkInput{Source: src, Chunk: withResume(chunk, 150)}, nil,
			with(func(s *ingest.ChunkSpec) { s.Resume = ingest.Progress{Checkpoint: 150} })},
		{"the earlier attempt got further", IngestChunkInput{Source: src, Chunk: withResume(chunk, 150)},
			&ChunkProgress{Checkpoint: 170, Stats: stats},
			with(func(s *ingest.ChunkSpec) { s.Resume = ingest.Progress{Checkpoint: 170, Stats: stats.engine()} })},
		{"the earlier attempt is behind the chunk's resume", IngestChunkInput{Source: src, Chunk: withResume(chunk, 150)},
			&ChunkProgress{Checkpoint: 120, Stats: stats},
			with(func(s *ingest.ChunkSpec) { s.Resume = ingest.Progress{Checkpoint: 150} })},
		{"the earlier attempt made no progress", IngestChunkInput{Source: src, Chunk: chunk},
			&ChunkProgress{Checkpoint: 100},
			with(func(s *ingest.ChunkSpec) { s.Resume = ingest.Progress{Checkpoint: 100} })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := chunkSpec(c.in, c.earlier)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("chunkSpec:\n got  %+v\n want %+v", got, c.want)
			}
		})
	}
	for _, bad := range []IngestChunkInput{
		{Source: Source{URI: "http://x/", Index: "logs"}, Chunk: chunk},
		{Source: Source{URI: src.URI}, Chunk: chunk},
		{Source: src, Chunk: Chunk{Start: 0, End: -1}},
		{Source: src, Chunk: Chunk{Key: "k", Start: 10, End: 5}},
		{Source: src, Chunk: Chunk{Key: "k", Start: -1, End: 5}},
	} {
		if _, err := chunkSpec(bad, nil); err == nil {
			t.Errorf("chunkSpec(%+v) accepted", bad)
		}
	}
}

func withResume(c Chunk, resume int64) Chunk { c.Resume = resume; return c }

// TestWireTypesStayAsRecorded pins the JSON field names that recorded histories and running
// workflows hold.
func TestWireTypesStayAsRecorded(t *testing.T) {
	for _, c := range []struct {
		v     any
		names []string
	}{
		{Limits{}, []string{"MaxOps", "MaxBytes", "FlushInterval", "Inflight", "RetryMaxElapse", "MaxDocsPerSecond", "MaxBytesPerSecond"}},
		{ChunkStats{}, []string{"Read", "Indexed", "Retried", "DeadLettered", "Bytes"}},
		// Fields added later are omitted when empty, or absent in old heartbeats, so older
		// payloads decode as they did.
		{ChunkProgress{}, []string{"Checkpoint", "Stats", "Object", "Failed", "SourceBytes", "Search"}},
		{Chunk{}, []string{"Key", "ETag", "Size", "Start", "End", "Compression", "Resume", "Objects", "ResumeObject", "Slice", "Search"}},
		{Slice{}, []string{"Index", "Shard"}},
		{SearchCursor{}, []string{"PIT", "After", "Skip"}},
		{PackedObject{}, []string{"Key", "ETag", "Size", "Compression"}},
		{FailedObject{}, []string{"Key", "Offset", "ErrorType", "Error"}},
	} {
		typ := reflect.TypeOf(c.v)
		var got []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" {
				name = tag
			}
			got = append(got, name)
		}
		if !reflect.DeepEqual(got, c.names) {
			t.Errorf("%s encodes as %v, want %v", typ, got, c.names)
		}
	}
}
