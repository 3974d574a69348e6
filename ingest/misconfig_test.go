package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/testenv"
)

// misconfigNode is a client of a real node and a unique name prefix for what a test creates
// there; everything under the prefix is deleted when the test ends.
func misconfigNode(t *testing.T, e testenv.Engine) (*esclient.Client, string) {
	t.Helper()
	ctx := context.Background()
	bulk, err := esclient.New(ctx, esclient.Config{Addresses: []string{e.URL}})
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("sluice-misconfig-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		_, _, _ = bulk.Do(ctx, http.MethodDelete, "/_data_stream/"+prefix+"-*", nil)
		_, _, _ = bulk.Do(ctx, http.MethodDelete, "/_index_template/"+prefix, nil)
		_, _, _ = bulk.Do(ctx, http.MethodDelete, "/"+prefix+"-*", nil)
	})
	return bulk, prefix
}

func mustDo(t *testing.T, bulk *esclient.Client, method, path, body string) {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	st, out, err := bulk.Do(context.Background(), method, path, b)
	if err != nil || st/100 != 2 {
		t.Fatalf("%s %s: %d %s %v", method, path, st, out, err)
	}
}

// timestamped makes n NDJSON records with an @timestamp, as a data stream wants them, and
// three fields in all.
func timestamped(n int) []byte {
	var data []byte
	for i := range n {
		data = fmt.Appendf(data, `{"@timestamp":"2026-11-30T00:00:%02dZ","n":%d,"m":"x"}`+"\n", i%60, i)
	}
	return data
}

// TestTargetRefusalsStopTheRun: on both real engines, a target that refuses every document for
// a reason about itself (an alias without a write index, the mapping's field limit, an index
// action into a data stream, a write block) stops the chunk with a permanent error that says
// why, instead of dead-lettering every record.
func TestTargetRefusalsStopTheRun(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		bulk, prefix := misconfigNode(t, e)
		mustDo(t, bulk, http.MethodPut, "/"+prefix+"-a1", "")
		mustDo(t, bulk, http.MethodPut, "/"+prefix+"-a2", "")
		mustDo(t, bulk, http.MethodPost, "/_aliases", fmt.Sprintf(
			`{"actions":[{"add":{"index":"%[1]s-a1","alias":"%[1]s-alias"}},{"add":{"index":"%[1]s-a2","alias":"%[1]s-alias"}}]}`, prefix))
		mustDo(t, bulk, http.MethodPut, "/"+prefix+"-limit", `{"settings":{"index.mapping.total_fields.limit":2}}`)
		mustDo(t, bulk, http.MethodPut, "/"+prefix+"-blocked", "")
		mustDo(t, bulk, http.MethodPut, "/"+prefix+"-blocked/_block/write", "")
		mustDo(t, bulk, http.MethodPut, "/_index_template/"+prefix, fmt.Sprintf(`{"index_patterns":["%s-ds*"],"data_stream":{},"priority":900}`, prefix))

		for _, tc := range []struct {
			name, index string
			want        error
			says        string
		}{
			{"alias without a write index", prefix + "-alias", ErrIndexNotAllowed, "no write index is defined for alias"},
			{"field limit", prefix + "-limit", ErrBadConfig, "Limit of total fields"},
			{"index action into a data stream", prefix + "-ds", ErrIndexNotAllowed, "op_type of create"},
			{"write block", prefix + "-blocked", ErrIndexNotAllowed, "cluster_block_exception"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				data := timestamped(300)
				sink := &memSink{}
				eng := &Engine{Budget: NewBudget(16 << 20), Bulk: bulk}
				spec := ChunkSpec{Bucket: "b", Key: "k.ndjson", Format: FormatNDJSON, Index: tc.index, End: -1,
					Limits: Limits{MaxOps: 100}}
				_, err := eng.Ingest(context.Background(), spec, bytesOpener(data), sink, nil)
				if !errors.Is(err, tc.want) || !IsPermanent(err) || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.says)
				}
				if len(sink.letters) != 0 {
					t.Fatalf("%d records dead-lettered, want none", len(sink.letters))
				}
			})
		}
	})
}

// TestDataStreamTarget: a data stream takes only the create action. The engine, told so
// (ChunkSpec.Op, as the activity decides from IsDataStream), indexes every record; a resumed
// chunk that sends records again finds them there (409) and counts them indexed, so the
// stream holds each record once and nothing is dead-lettered.
func TestDataStreamTarget(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		bulk, prefix := misconfigNode(t, e)
		mustDo(t, bulk, http.MethodPut, "/_index_template/"+prefix, fmt.Sprintf(`{"index_patterns":["%s-ds*"],"data_stream":{},"priority":900}`, prefix))
		stream := prefix + "-ds"
		ctx := context.Background()
		if ds, err := bulk.IsDataStream(ctx, stream); err != nil || ds {
			t.Fatalf("IsDataStream before it exists = %v, %v", ds, err)
		}
		// The stream exists before the backfill (here made by its first document), as the
		// README asks: the activity picks create for what IsDataStream finds.
		mustDo(t, bulk, http.MethodPut, "/"+stream+"/_create/seed", `{"@timestamp":"2026-11-30T00:00:00Z"}`)
		data := timestamped(500)
		eng := &Engine{Budget: NewBudget(16 << 20), Bulk: bulk}
		sink := &memSink{}
		spec := ChunkSpec{Bucket: "b", Key: "k.ndjson", Format: FormatNDJSON, Index: stream, End: -1, Op: OpCreate,
			Limits: Limits{MaxOps: 100}}
		if ds, err := bulk.IsDataStream(ctx, stream); err != nil || !ds {
			t.Fatalf("IsDataStream = %v, %v, want true", ds, err)
		}
		first, err := eng.Ingest(ctx, spec, bytesOpener(data), sink, nil)
		if err != nil || first.Stats.Indexed != 500 {
			t.Fatalf("first run: %+v, %v", first.Stats, err)
		}
		if ds, err := bulk.IsDataStream(ctx, prefix+"-nothing"); err != nil || ds {
			t.Fatalf("IsDataStream of nothing = %v, %v", ds, err)
		}
		// The same records again, as a resumed attempt sends its tail.
		again, err := eng.Ingest(ctx, spec, bytesOpener(data), sink, nil)
		if err != nil || again.Stats.Indexed != 500 || again.Stats.DeadLettered != 0 {
			t.Fatalf("second run: %+v, %v", again.Stats, err)
		}
		if n := countDocs(context.Background(), t, bulk, stream); n != 501 || len(sink.letters) != 0 {
			t.Fatalf("stream holds %d documents, %d dead letters; want 501 (with the first) and none", n, len(sink.letters))
		}
	})
}

// TestIDFieldThatNoRecordHas stops the chunk with a bad configuration after the first records
// instead of dead-lettering them all; a field that only some records lack dead-letters those.
func TestIDFieldThatNoRecordHas(t *testing.T) {
	es := esfake.New(esfake.Options{})
	t.Cleanup(es.Close)
	eng, sink := newTestEngine(t, es, 16<<20)
	data, _, _ := dataset(1000)
	spec := ChunkSpec{Bucket: "b", Key: "k.ndjson", Format: FormatNDJSON, Index: "logs", IDField: "no_such_field", End: -1}
	_, err := eng.Ingest(context.Background(), spec, bytesOpener(data), nil)
	if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), `"no_such_field"`) || !strings.Contains(err.Error(), "s3://b/k.ndjson") {
		t.Fatalf("err = %v, want a bad configuration naming the field and the object", err)
	}
	if len(sink.letters) != 0 || es.Stats().Items != 0 {
		t.Fatalf("%d dead letters, %d items sent; want none", len(sink.letters), es.Stats().Items)
	}

	// A small object none of whose records has it: stopped at its end.
	small := []byte("{\"a\":1}\n{\"a\":2}\n")
	if _, err := eng.Ingest(context.Background(), spec, bytesOpener(small), nil); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("small object: err = %v, want a bad configuration", err)
	}

	// Some records have it: those without are dead-lettered, the rest indexed.
	var mixed []byte
	for i := range 300 {
		if i%3 == 0 {
			mixed = fmt.Appendf(mixed, `{"n":%d}`+"\n", i)
		} else {
			mixed = fmt.Appendf(mixed, `{"id":"r%d","n":%d}`+"\n", i, i)
		}
	}
	spec.IDField = "id"
	sink.letters = nil
	prog, err := eng.Ingest(context.Background(), spec, bytesOpener(mixed), nil)
	if err != nil || prog.Stats.Indexed != 200 || prog.Stats.DeadLettered != 100 {
		t.Fatalf("mixed: %+v, %v; want 200 indexed, 100 dead-lettered", prog.Stats, err)
	}
	for _, l := range sink.letters {
		var doc map[string]any
		if err := json.Unmarshal(l.Record, &doc); err != nil || doc["id"] != nil {
			t.Fatalf("dead letter %s: a record with an id, or unreadable (%v)", l.Record, err)
		}
	}
}
