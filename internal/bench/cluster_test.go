package bench

import (
	"testing"

	"github.com/sluicehq/sluice/ingest"
)

// TestIDs: esutil and raw send the ids sluice sends.
func TestIDs(t *testing.T) {
	x := newIDs()
	for _, off := range []int64{0, 1, 35, 36, 1 << 20, 1<<40 + 7} {
		if got, want := string(x.append(nil, off)), ingest.DocumentID(benchBucket, benchKey, off); got != want {
			t.Errorf("offset %d: %s, want %s", off, got, want)
		}
	}
}
