package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
)

func benchLines(n, size int) []byte {
	var b bytes.Buffer
	pad := bytes.Repeat([]byte("x"), size-30)
	for i := range n {
		fmt.Fprintf(&b, "{\"n\":%9d,\"pad\":\"%s\"}\n", i, pad)
	}
	return b.Bytes()
}

// BenchmarkNDJSONDecoder measures splitting 1 KiB lines with their offsets (one op: one line).
func BenchmarkNDJSONDecoder(b *testing.B) {
	data := benchLines(10_000, 1024)
	b.SetBytes(int64(len(data) / 10_000))
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		dec := &ndjsonDecoder{lines: newOwnedLines(bytes.NewReader(data), rangeSpec{end: -1}, 5<<20, nil), maxBytes: 5 << 20}
		for ; done < b.N; done++ {
			if _, err := dec.Next(); errors.Is(err, io.EOF) {
				break
			}
		}
	}
}

// benchEngine is an engine with a budget of 256 MiB sending to an in-process discard sink.
func benchEngine(b *testing.B) *Engine {
	es := esfake.NewDiscard()
	b.Cleanup(es.Close)
	bulk, err := esclient.New(context.Background(), esclient.Config{Addresses: []string{es.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	return &Engine{Budget: NewBudget(256 << 20), Bulk: bulk}
}

// BenchmarkIngest measures the whole engine on 1 KiB documents into the in-process discard
// sink (one op: one document); compare with `sluice bench --compare`.
func BenchmarkIngest(b *testing.B) {
	benchIngest(b, benchEngine(b))
}

// BenchmarkIngestAdaptive is BenchmarkIngest with the worker's adaptive limit on requests in
// flight (Engine.Adaptive), which a worker has by default: it must cost nothing measurable.
func BenchmarkIngestAdaptive(b *testing.B) {
	eng := benchEngine(b)
	eng.Adaptive = NewAdaptive(AdaptiveConfig{})
	benchIngest(b, eng)
}

func benchIngest(b *testing.B, eng *Engine) {
	data := benchLines(b.N, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	prog, err := eng.Ingest(context.Background(), ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "bench", End: -1}, bytesOpener(data), &memSink{}, nil)
	if err != nil || prog.Stats.Indexed != int64(b.N) {
		b.Fatalf("indexed %d of %d: %v", prog.Stats.Indexed, b.N, err)
	}
}

// BenchmarkIngestObjects measures a packed chunk of 1,000 objects of 8 KiB (8 documents of
// 1 KiB each) held in memory, into the discard sink (one op: one object): the engine's cost
// per small object, without S3.
func BenchmarkIngestObjects(b *testing.B) {
	eng := benchEngine(b)
	data := benchLines(8, 1024)
	objs := make([]PackedObject, 1000)
	for i := range objs {
		objs[i] = PackedObject{Key: fmt.Sprintf("logs/%04d.ndjson", i), Compression: CompressionAuto}
	}
	open := func(_ context.Context, _ int, off int64) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data[off:])), nil
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += len(objs) {
		spec := ObjectsSpec{Bucket: "b", Objects: objs[:min(len(objs), b.N-done)], Format: FormatNDJSON, Index: "bench"}
		prog, err := eng.IngestObjects(context.Background(), spec, open, &memSink{}, nil)
		if err != nil || prog.Stats.Indexed != 8*int64(len(spec.Objects)) {
			b.Fatalf("indexed %d of %d: %v", prog.Stats.Indexed, 8*len(spec.Objects), err)
		}
	}
}
