package e2e

import (
	"bytes"
	"compress/gzip"
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
	var buf bytes.Buffer
	for i := range packedCrashObjects {
		buf.Reset()
		key := fmt.Sprintf("packed/%04d.ndjson", i)
		for seq := range packedCrashRecords {
			buf.WriteString(doc(r, key, seq, 150+r.IntN(100)))
			buf.WriteByte('\n')
			total++
		}
		data := buf.Bytes()
		if i%3 == 0 {
			key += ".gz"
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			if _, err := zw.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			data = z.Bytes()
		}
		e.s3.Put(t, e.bucket, key, data)
	}
	t.Logf("dataset: %d small objects, %d records", packedCrashObjects, total)

	res := runCrash(t, e, crashSetup{prefix: "packed/", records: total, chunkSize: packedCrashChunkSize, maxOps: packedCrashMaxOps})
	if res.Objects != packedCrashObjects || res.ChunksPlanned < 4 || res.ChunksPlanned > packedCrashObjects/50 {
		t.Errorf("%d objects in %d chunks; want %d objects packed into a few chunks", res.Objects, res.ChunksPlanned, packedCrashObjects)
	}
}
