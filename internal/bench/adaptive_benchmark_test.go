package bench

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/esfake"
)

// capacityNode is the cluster of BenchmarkAdaptive: a node that indexes 20,000 documents per
// second, queues at most 3,000 (six requests of 500) and answers 100ms later than its
// queue alone would (network and coordination). Fixed settings of 4 chunks x --inflight N
// under-use it (N=1: 4 requests in flight cover only 4 x 500 documents per 125ms round trip)
// or overflow its queue (N>=4) and drown in 429s; only N=2 fits.
var capacityNode = esfake.Capacity{DocsPerSecond: 20_000, QueueDocs: 3_000, Latency: 100 * time.Millisecond}

// BenchmarkAdaptive runs 4 chunks of 50,000 documents of 256 bytes (500 per request) at once
// into capacityNode with each fixed --inflight, then with the adaptive limit (bounded by
// --inflight 32 per chunk). One op is one run of 200,000 documents; run it with -benchtime 1x.
// It reports documents indexed per second and the items answered 429 per 100 documents (a
// document rejected and resent three times counts three). When every mode ran, it fails
// unless adaptive reached 90% of the best fixed setting's docs/s with under 1% rejected.
func BenchmarkAdaptive(b *testing.B) {
	type result struct{ docsPS, rejectedPct float64 }
	results := map[string]result{}
	modes := []struct {
		name     string
		inflight int
		adaptive bool
	}{
		{"fixed-1", 1, false}, {"fixed-2", 2, false}, {"fixed-4", 4, false}, {"fixed-8", 8, false},
		{"fixed-16", 16, false}, {"fixed-32", 32, false}, {"adaptive", 32, true},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			srv := esfake.New(esfake.Options{Discard: true, SkipValidation: true, Capacity: capacityNode})
			defer srv.Close()
			cfg := Config{Docs: 200_000, MinDocSize: 256, MaxDocSize: 256, Seed: 1, URL: srv.URL(), Index: "bench",
				MaxOps: 500, MaxBytes: 5 << 20, Inflight: m.inflight, MaxMemory: 256 << 20, Chunks: 4, Adaptive: m.adaptive}
			var docs int64
			var elapsed time.Duration
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				res, err := Run(context.Background(), "sluice", cfg)
				elapsed += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if res.Docs != int64(cfg.Docs) {
					b.Fatalf("%s indexed %d of %d", m.name, res.Docs, cfg.Docs)
				}
				docs += res.Docs
			}
			r := result{float64(docs) / elapsed.Seconds(), 100 * float64(srv.Stats().ItemStatuses[429]) / float64(docs)}
			results[m.name] = r
			b.ReportMetric(r.docsPS, "docs/s")
			b.ReportMetric(r.rejectedPct, "%rejected")
			b.ReportMetric(0, "ns/op")
		})
	}
	if len(results) < len(modes) {
		return
	}
	best := ""
	for name, r := range results {
		if name != "adaptive" && (best == "" || r.docsPS > results[best].docsPS) {
			best = name
		}
	}
	a := results["adaptive"]
	b.Logf("adaptive: %.0f docs/s, %.1f%% of the best fixed setting (%s, %.0f docs/s, %.2f%% rejected); %.2f%% rejected",
		a.docsPS, 100*a.docsPS/results[best].docsPS, best, results[best].docsPS, results[best].rejectedPct, a.rejectedPct)
	if a.docsPS < 0.9*results[best].docsPS || a.rejectedPct >= 1 {
		b.Errorf("adaptive: want at least 90%% of the best fixed setting's docs/s with under 1%% of items rejected")
	}
}
