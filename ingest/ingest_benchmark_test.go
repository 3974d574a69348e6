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

// BenchmarkIngest measures the whole engine on 1 KiB documents into the in-process discard
// sink (one op: one document); compare with `sluice bench --compare`.
func BenchmarkIngest(b *testing.B) {
	es := esfake.NewDiscard()
	defer es.Close()
	bulk, err := esclient.New(context.Background(), esclient.Config{Addresses: []string{es.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	eng := &Engine{Budget: NewBudget(256 << 20), Bulk: bulk}
	data := benchLines(b.N, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	prog, err := eng.Ingest(context.Background(), ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "bench", End: -1}, bytesOpener(data), &memSink{}, nil)
	if err != nil || prog.Stats.Indexed != int64(b.N) {
		b.Fatalf("indexed %d of %d: %v", prog.Stats.Indexed, b.N, err)
	}
}
