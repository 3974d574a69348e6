package ingest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestIngestPipeline sends documents through an ingest pipeline (ChunkSpec.Pipeline, `sluice
// ingest --pipeline`) on each real engine: with the pipeline every document is indexed; with a
// pipeline that does not exist the node refuses every item, and every record is dead-lettered.
func TestIngestPipeline(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		bulk, err := esclient.New(ctx, esclient.Config{Addresses: []string{e.URL}})
		if err != nil {
			t.Fatal(err)
		}
		suffix := time.Now().UnixNano()
		index, pipeline := fmt.Sprintf("sluice-pipeline-test-%d", suffix), fmt.Sprintf("sluice-test-%d", suffix)
		if st, body, err := bulk.Do(ctx, http.MethodPut, "/_ingest/pipeline/"+pipeline,
			// No processor: the test nodes ship without the ingest-common module (and count
			// nothing for an empty pipeline). That the parameter reaches the node shows in the
			// second half: a pipeline that does not exist refuses every item.
			[]byte(`{"description":"sluice test","processors":[]}`)); err != nil || st != http.StatusOK {
			t.Fatalf("creating the pipeline: %d %s %v", st, body, err)
		}
		t.Cleanup(func() {
			_, _, _ = bulk.Do(context.Background(), http.MethodDelete, "/_ingest/pipeline/"+pipeline, nil)
			_ = bulk.DeleteIndex(context.Background(), index)
		})
		var data []byte
		for i := range 50 {
			data = fmt.Appendf(data, `{"n":%d}`+"\n", i)
		}
		eng := &Engine{Budget: NewBudget(4 << 20), Bulk: bulk}
		spec := ChunkSpec{Bucket: "b", Key: "k.ndjson", Format: FormatNDJSON, Index: index, Pipeline: pipeline, End: -1,
			Limits: Limits{MaxOps: 20, MaxBytes: 256 << 10}}
		prog, err := eng.Ingest(ctx, spec, bytesOpener(data), &memSink{}, nil)
		if err != nil || prog.Stats.Indexed != 50 {
			t.Fatalf("ingest: %+v, %v", prog, err)
		}

		sink := &memSink{}
		spec.Pipeline = pipeline + "-missing"
		prog, err = eng.Ingest(ctx, spec, bytesOpener(data), sink, nil)
		if err != nil || prog.Stats.Indexed != 0 || prog.Stats.DeadLettered != 50 || len(sink.letters) != 50 {
			t.Fatalf("missing pipeline: %+v, %d dead letters, %v; want all 50 dead-lettered", prog, len(sink.letters), err)
		}
	})
}
