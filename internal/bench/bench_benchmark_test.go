package bench

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/internal/esfake"
)

// BenchmarkEngines runs each engine over 1 KiB documents into the discard sink. One op is one
// document: compare ns/op across engines (and see `sluice bench --compare`).
func BenchmarkEngines(b *testing.B) {
	for _, engine := range []string{"sluice", "esutil", "raw"} {
		b.Run(engine, func(b *testing.B) {
			srv := esfake.NewDiscard()
			defer srv.Close()
			cfg := Config{Docs: b.N, MinDocSize: 1024, MaxDocSize: 1024, Seed: 1, URL: srv.URL(), Index: "bench",
				MaxOps: 1000, MaxBytes: 5 << 20, Inflight: 2, MaxMemory: 256 << 20}
			b.ReportAllocs()
			b.SetBytes(1024)
			b.ResetTimer()
			res, err := Run(context.Background(), engine, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if res.Docs != int64(b.N) {
				b.Fatalf("%s delivered %d of %d", engine, res.Docs, b.N)
			}
		})
	}
}
