package activities_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/esfake"
)

// smallObjects puts n small NDJSON objects under prefix: every fourth gzip with a .gz name,
// every fourth+1 gzip with a plain name (recognised at read time), the others plain. It
// returns their keys and the records of each.
func smallObjects(t *testing.T, f *fixture, prefix string, n int) (keys []string, recs [][]int64) {
	t.Helper()
	for i := range n {
		data, offs := records(3 + i%5)
		key := fmt.Sprintf("%s%03d.ndjson", prefix, i)
		stored := data
		switch i % 4 {
		case 0:
			key, stored = key+".gz", gzipped(t, data)
		case 1:
			stored = gzipped(t, data)
		}
		f.s3.Put(t, bucket, key, stored)
		keys, recs = append(keys, key), append(recs, offs)
	}
	return keys, recs
}

func TestPlanPagePacksSmallObjects(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	keys, _ := smallObjects(t, f, "s/", 30)
	big, _ := records(400) // about 45 KiB: cut into ranges
	f.s3.Put(t, bucket, "s/big.ndjson", big)
	f.s3.Put(t, bucket, "s/empty.ndjson", nil)

	const chunkSize = 8 << 10
	out := f.plan(t, activities.PlanPageInput{Source: source("s/"), ChunkSize: chunkSize})
	if out.Objects != 32 || out.Next != "" {
		t.Fatalf("page of %d objects, next %q", out.Objects, out.Next)
	}
	seen := map[string]int{}
	var ranges []activities.Chunk
	for _, c := range out.Chunks {
		if c.Key == "s/big.ndjson" {
			ranges = append(ranges, c)
			continue
		}
		objs := c.Objects
		if len(objs) == 0 {
			objs = []activities.PackedObject{{Key: c.Key, ETag: c.ETag, Size: c.Size, Compression: c.Compression}}
		}
		var sum int64
		for _, o := range objs {
			seen[o.Key]++
			sum += o.Size
			// Small objects are never read while planning: a gzip object with a plain name
			// is still "auto", for the engine to recognise.
			want := ingest.CompressionAuto
			if strings.HasSuffix(o.Key, ".gz") {
				want = ingest.CompressionGzip
			}
			if o.Compression != want || o.ETag == "" {
				t.Errorf("%s planned with compression %q etag %q, want %q", o.Key, o.Compression, o.ETag, want)
			}
		}
		if sum > chunkSize || c.Size != sum || len(c.Objects) > 0 && c.Key != "" {
			t.Errorf("chunk %+v: %d bytes of objects, at most %d", c, sum, chunkSize)
		}
	}
	for _, k := range keys {
		if seen[k] != 1 {
			t.Errorf("%s in %d chunks", k, seen[k])
		}
	}
	if len(out.Chunks)-len(ranges) >= len(keys)/2 {
		t.Errorf("%d chunks for %d small objects: not packed", len(out.Chunks)-len(ranges), len(keys))
	}
	checkTiling(t, "s/big.ndjson", ranges, int64(len(big)))
}

func TestIngestPackedChunk(t *testing.T) {
	f := newFixture(t, esfake.Options{})
	keys, recs := smallObjects(t, f, "k/", 24)
	out := f.plan(t, activities.PlanPageInput{Source: source("k/"), ChunkSize: 64 << 20})
	if len(out.Chunks) != 1 || len(out.Chunks[0].Objects) != 24 {
		t.Fatalf("planned %d chunks, want one packed chunk of 24 objects: %+v", len(out.Chunks), out.Chunks)
	}
	chunk := out.Chunks[0]
	// After planning, object 5 is replaced and object 9 deleted: each is reported, the
	// others are indexed.
	replaced, _ := records(2)
	f.s3.Put(t, bucket, keys[5], replaced)
	if _, err := f.s3.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(keys[9])}); err != nil {
		t.Fatal(err)
	}

	hb := &heartbeats{}
	got, err := f.ingest(t, f.env(hb), activities.IngestChunkInput{Source: source("k/"), Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i, k := range keys {
		for _, off := range recs[i] {
			_, ok := f.es.Doc("logs", ingest.DocumentID(bucket, k, off))
			if gone := i == 5 || i == 9; ok == gone {
				t.Fatalf("%s record at %d stored: %v", k, off, ok)
			}
		}
		if i != 5 && i != 9 {
			want += len(recs[i])
		}
	}
	if got.Stats.Indexed != int64(want) || got.Stats.Read != int64(want) || got.Object != 23 {
		t.Errorf("progress %+v, want %d indexed, at object 23", got, want)
	}
	if len(got.Failed) != 2 || got.Failed[0].Key != keys[5] || got.Failed[0].ErrorType != activities.ErrTypeObjectChanged ||
		got.Failed[1].Key != keys[9] || got.Failed[1].ErrorType != activities.ErrTypeNotFound {
		t.Errorf("failed objects %+v, want %s changed and %s not found", got.Failed, keys[5], keys[9])
	}
	if got.SourceBytes != chunk.Size { // the last object is plain: read to its end
		t.Errorf("source bytes %d, want the chunk's %d", got.SourceBytes, chunk.Size)
	}
	if n := f.es.Stats().BulkRequests; n > 2 {
		t.Errorf("%d _bulk requests for 24 small objects", n)
	}

	// A retried attempt resumes inside object 12 from its heartbeat: it sends only the rest,
	// and keeps the failed objects the earlier attempt reported.
	sent := f.es.Stats().Items
	env := f.env(nil)
	env.SetHeartbeatDetails(activities.ChunkProgress{Object: 12, Checkpoint: recs[12][1],
		Stats: activities.ChunkStats{Read: 40, Indexed: 40}, Failed: got.Failed})
	again, err := f.ingest(t, env, activities.IngestChunkInput{Source: source("k/"), Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	rest := len(recs[12]) - 1
	for i := 13; i < len(keys); i++ {
		rest += len(recs[i])
	}
	if n := f.es.Stats().Items - sent; n != int64(rest) || again.Stats.Read != 40+int64(rest) || len(again.Failed) != 2 {
		t.Errorf("resumed attempt sent %d items (want %d), progress %+v", n, rest, again)
	}
}
