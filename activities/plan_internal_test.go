package activities

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/s3source"
)

// TestPackedChunksStayBounded checks a packed chunk's three bounds: bytes, objects and encoded
// size, and that every object is planned once.
func TestPackedChunksStayBounded(t *testing.T) {
	for _, c := range []struct {
		name      string
		keyBytes  int
		size      int64
		chunkSize int64
	}{
		{"objects", 10, 100, 64 << 20},
		{"bytes", 10, 100, 10_000},
		{"encoded size", 1000, 100, 64 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			var objs []s3source.Object
			var comps []string
			for i := range 2500 {
				key := fmt.Sprintf("%0*d", c.keyBytes, i)
				objs = append(objs, s3source.Object{Key: key, ETag: `"0123456789abcdef0123456789abcdef"`, Size: c.size})
				comps = append(comps, ingest.CompressionAuto)
			}
			chunks := planChunks(objs, comps, c.chunkSize, MaxPlanPageBytes)
			seen := 0
			for _, ch := range chunks {
				b, _ := json.Marshal(ch)
				var bytes int64
				for _, o := range ch.Objects {
					bytes += o.Size
					if o.Key != objs[seen].Key {
						t.Fatalf("object %d is %q, want %q (listing order)", seen, o.Key, objs[seen].Key)
					}
					seen++
				}
				if len(ch.Objects) > MaxPackedObjects || len(b) > MaxPackedChunkJSON || bytes > c.chunkSize || len(ch.Objects) < 2 {
					t.Errorf("chunk of %d objects, %d bytes, %d encoded", len(ch.Objects), bytes, len(b))
				}
			}
			if seen != len(objs) {
				t.Errorf("%d objects planned, want %d", seen, len(objs))
			}
			// A worker that predates packing refuses a chunk without a key instead of reading
			// nothing.
			if page, _ := json.Marshal(chunks); strings.Count(string(page), `"Key":""`) != len(chunks) {
				t.Errorf("packed chunks with a key: %.200s", page)
			}
		})
	}
}
