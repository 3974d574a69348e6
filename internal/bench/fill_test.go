package bench

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/internal/esfake"
)

// TestSluiceFillsRequests: 20,000 documents of 1 KiB at 1000 per request arrive in 20 requests,
// as a raw sender sends them: the batcher fills each request to its limit by splitting a
// queued piece (at most a 256 KiB block) at a document boundary. (Without the split it sent
// 26 here: a piece that did not fit whole started the next request.)
func TestSluiceFillsRequests(t *testing.T) {
	srv := esfake.NewDiscard()
	defer srv.Close()
	cfg := Config{Docs: 20_000, MinDocSize: 1024, MaxDocSize: 1024, Seed: 1, URL: srv.URL(), Index: "fill",
		MaxOps: 1000, MaxBytes: 5 << 20, Inflight: 2, MaxMemory: 256 << 20}
	res, err := Run(context.Background(), "sluice", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Docs != int64(cfg.Docs) {
		t.Fatalf("indexed %d of %d", res.Docs, cfg.Docs)
	}
	if n := srv.Stats().BulkRequests; n != 20 {
		t.Fatalf("%d bulk requests for 20,000 documents at 1000 per request, want 20", n)
	}
}
