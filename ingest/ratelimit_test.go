package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/esfake"
)

// TestRateCaps: a chunk held to MaxDocsPerSecond (or MaxBytesPerSecond) takes at least as long
// as the cap allows after its first request's worth, and indexes everything.
func TestRateCaps(t *testing.T) {
	var data []byte
	for i := range 300 {
		data = fmt.Appendf(data, `{"n":%d,"pad":"0123456789"}`+"\n", i)
	}
	for _, tc := range []struct {
		name string
		lim  Limits
		min  time.Duration
	}{
		// 300 docs, 50 free at once, 250 at 250/s: at least 1s.
		{"docs", Limits{MaxOps: 50, MaxDocsPerSecond: 250}, time.Second},
		// All of it, 4 KiB (the smallest --max-bytes) free at once, the rest within 1s: at least 1s.
		{"bytes", Limits{MaxOps: 50, MaxBytes: 4 << 10, MaxBytesPerSecond: float64(len(data)-4<<10) / 1.0}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := esfake.New(esfake.Options{})
			defer es.Close()
			eng, _ := newTestEngine(t, es, 8<<20)
			tc.lim.FlushInterval = time.Hour
			spec := ChunkSpec{Bucket: "b", Key: "k.ndjson", Format: FormatNDJSON, Index: "capped", End: -1, Limits: tc.lim}
			start := time.Now()
			prog, err := eng.Ingest(context.Background(), spec, bytesOpener(data), nil)
			took := time.Since(start)
			if err != nil || prog.Stats.Indexed != 300 || es.Count("capped") != 300 {
				t.Fatalf("%+v, %v; %d documents", prog, err, es.Count("capped"))
			}
			if took < tc.min-50*time.Millisecond {
				t.Fatalf("took %v, want at least %v under the cap", took, tc.min)
			}
		})
	}
}
