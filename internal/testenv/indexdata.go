package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// CreateIndex creates index with shards primary shards and no replica, deleted when the test
// ends.
func CreateIndex(ctx context.Context, t testing.TB, c *es.Client, index string, shards int) {
	t.Helper()
	body := fmt.Sprintf(`{"settings":{"number_of_shards":%d,"number_of_replicas":0}}`, shards)
	if err := c.CreateIndex(ctx, index, []byte(body)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteIndex(context.Background(), index) })
}

// LoadDocs indexes documents first..first+n-1 of a source for migration tests, in _bulk
// requests of about 4 MiB, and refreshes: ids that need JSON escaping (`doc "N"`), sizes from
// tens to hundreds of bytes, and a custom _routing on every tenth.
func LoadDocs(ctx context.Context, t testing.TB, c *es.Client, index string, first, n int) {
	t.Helper()
	var b bytes.Buffer
	flush := func() {
		if b.Len() == 0 {
			return
		}
		st, out, err := c.Do(ctx, http.MethodPost, "/"+index+"/_bulk", b.Bytes())
		if err != nil || st != 200 || bytes.Contains(out[:min(len(out), 64)], []byte(`"errors":true`)) {
			t.Fatalf("loading %s: %d %v %.300s", index, st, err, out)
		}
		b.Reset()
	}
	for i := first; i < first+n; i++ {
		routing := ""
		if i%10 == 0 {
			routing = fmt.Sprintf(`,"routing":"r%d"`, i%7)
		}
		fmt.Fprintf(&b, "{\"index\":{\"_id\":\"doc \\\"%d\\\"\"%s}}\n{\"n\":%d,\"pad\":%q}\n", i, routing, i, strings.Repeat("x", i%300))
		if b.Len() > 4<<20 {
			flush()
		}
	}
	flush()
	if err := c.Refresh(ctx, index); err != nil {
		t.Fatal(err)
	}
}

// IndexDigest reads every document of index (after a refresh) and returns their count and a
// hash over the sorted ids, routings and sources (normalised JSON), so that two indexes with
// the same documents have the same digest.
func IndexDigest(ctx context.Context, t testing.TB, c *es.Client, index string) string {
	t.Helper()
	if err := c.Refresh(ctx, index); err != nil {
		t.Fatal(err)
	}
	pit, err := c.OpenPIT(ctx, index, time.Minute, es.NoShard)
	if err != nil {
		t.Fatal(err)
	}
	hits, pit, err := c.SearchAll(ctx, es.SearchRequest{PIT: pit, Size: 5000})
	_ = c.ClosePIT(ctx, pit)
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(hits))
	for i, h := range hits {
		var src any
		if err := json.Unmarshal(h.Source, &src); err != nil {
			t.Fatal(err)
		}
		norm, _ := json.Marshal(src)
		lines[i] = h.ID + "\x00" + h.Routing + "\x00" + string(norm)
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return fmt.Sprintf("%d documents, sha256 %x", len(lines), sum[:12])
}
