package e2e

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Settings of TestCrashAndResumePacked: about 800 objects of 5 KiB, packed about 100 to a
// chunk, so that eight packed chunks run for several seconds each behind slowProxy.
const (
	packedCrashObjects   = 800
	packedCrashRecords   = 16 // per object
	packedCrashChunkSize = 480 << 10
	packedCrashMaxOps    = 20
)

// TestCrashAndResumePacked is TestCrashAndResume with packed chunks: many small objects (a third
// of them gzip) read by one activity each. Kills land inside chunks, between and inside objects;
// a resumed chunk skips its acknowledged objects and continues inside the current one, so that
// every record is indexed once and the re-sent records stay within the same bounds as for
// ranges.
func TestCrashAndResumePacked(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewPCG(7, 8))
	var total int64
	for i := range packedCrashObjects {
		key := fmt.Sprintf("packed/%04d.ndjson", i)
		if i%3 == 0 {
			key += ".gz"
		}
		b := newObject(key)
		for seq := range packedCrashRecords {
			b.record(doc(r, key, seq, 150+r.IntN(100)), true, "\n")
			total++
		}
		obj := b.plain()
		if i%3 == 0 {
			obj = b.gzip(t)
		}
		e.s3.Put(t, e.bucket, key, obj.Body)
	}
	t.Logf("dataset: %d small objects, %d records", packedCrashObjects, total)

	res := runCrash(t, e, crashSetup{prefix: "packed/", records: total, chunkSize: packedCrashChunkSize, maxOps: packedCrashMaxOps})
	if res.Objects != packedCrashObjects || res.ChunksPlanned < 4 || res.ChunksPlanned > packedCrashObjects/50 {
		t.Errorf("%d objects in %d chunks; want %d objects packed into a few chunks", res.Objects, res.ChunksPlanned, packedCrashObjects)
	}
}
