package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestEngineOnNode runs the engine against each real node `make test` starts (OpenSearch and
// Elasticsearch): invalid lines are rejected by the node itself (per item) and dead-lettered,
// everything else is indexed once, with its contents intact, whatever the ranges.
func TestEngineOnNode(t *testing.T) {
	testenv.ForEachEngine(t, testEngineOnNode)
}

func testEngineOnNode(t *testing.T, node testenv.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bulk, err := esclient.New(ctx, esclient.Config{Addresses: []string{node.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if string(bulk.Flavor()) != node.Name {
		t.Fatalf("flavor %q, want %s", bulk.Flavor(), node.Name)
	}
	index := fmt.Sprintf("sluice-engine-test-%d", time.Now().UnixNano())
	if st, body, err := bulk.Do(ctx, http.MethodPut, "/"+index, []byte(`{"settings":{"number_of_shards":2,"number_of_replicas":0},"mappings":{"properties":{"n":{"type":"integer"}}}}`)); err != nil || st != 200 {
		t.Fatalf("create index: %d %s %v", st, body, err)
	}
	t.Cleanup(func() { _, _, _ = bulk.Do(context.Background(), http.MethodDelete, "/"+index, nil) })

	data, valid, invalid := dataset(2000)
	// A document the mapping refuses: "n" must be an integer.
	mappingErr := int64(len(data)) + 1
	data = append(data, []byte("\n{\"n\":\"not a number\"}\n")...)
	sink := &memSink{}
	eng := &Engine{Budget: NewBudget(4 << 20), Bulk: bulk}
	cuts := []int64{0, int64(len(data)) / 3, int64(len(data)) / 2}
	var total Stats
	for i, start := range cuts {
		end := int64(-1)
		if i+1 < len(cuts) {
			end = cuts[i+1]
		}
		spec := ChunkSpec{Bucket: "b", Key: "k.ndjson", Format: FormatNDJSON, Index: index, Start: start, End: end,
			Limits: Limits{MaxOps: 150, MaxBytes: 256 << 10}}
		prog, err := eng.Ingest(ctx, spec, bytesOpener(data), sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		total.Add(prog.Stats)
	}
	if _, _, err := bulk.Do(ctx, http.MethodPost, "/"+index+"/_refresh", nil); err != nil {
		t.Fatal(err)
	}
	st, body, err := bulk.Do(ctx, http.MethodGet, "/"+index+"/_count", nil)
	var count struct{ Count int }
	if err != nil || st != 200 || json.Unmarshal(body, &count) != nil {
		t.Fatalf("_count: %d %s %v", st, body, err)
	}
	if count.Count != len(valid) || total.Indexed != int64(len(valid)) {
		t.Fatalf("index holds %d documents, engine indexed %d, want %d", count.Count, total.Indexed, len(valid))
	}
	if total.DeadLettered != int64(len(invalid))+1 || total.Read != total.Indexed+total.DeadLettered {
		t.Fatalf("stats %+v, want %d dead letters", total, len(invalid)+1)
	}
	var sawMapping bool
	for _, l := range sink.letters {
		if l.Status != http.StatusBadRequest || l.ErrorType == "" {
			t.Errorf("dead letter without the node's status and error: %+v", l)
		}
		if l.Offset == mappingErr {
			sawMapping = true
		}
	}
	if !sawMapping {
		t.Errorf("the mapping error at offset %d was not dead-lettered: %v", mappingErr, sink.offsets())
	}
	// Spot-check contents: the stored _source is the line as read.
	checked := 0
	for off, doc := range valid {
		if checked == 25 {
			break
		}
		checked++
		st, body, err := bulk.Do(ctx, http.MethodGet, "/"+index+"/_doc/"+DocumentID("b", "k.ndjson", off), nil)
		var got struct {
			Source json.RawMessage `json:"_source"`
		}
		if err != nil || st != 200 || json.Unmarshal(body, &got) != nil || !bytes.Equal(got.Source, []byte(doc)) {
			t.Fatalf("document at offset %d: %d %s, want %s", off, st, body, doc)
		}
	}
}
