package activities_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestReconcileCountsTheIndex runs Reconcile against each real engine: an index holding 5
// documents, judged against what a backfill says it indexed.
func TestReconcileCountsTheIndex(t *testing.T) {
	testenv.ForEachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx, client, env := onNode(t, e, func(a *activities.Activities) any { return a.Reconcile })
		index := fmt.Sprintf("sluice-reconcile-%d", time.Now().UnixNano())
		t.Cleanup(func() { _ = client.DeleteIndex(context.Background(), index) })
		var body strings.Builder
		for i := range 5 {
			fmt.Fprintf(&body, "{\"index\":{\"_id\":\"d%d\"}}\n{\"n\":%d}\n", i, i)
		}
		// No refresh: Reconcile must refresh before it counts.
		if code, out, err := client.Do(ctx, http.MethodPost, "/"+index+"/_bulk", []byte(body.String())); err != nil || code != http.StatusOK {
			t.Fatalf("bulk: %d %s %v", code, out, err)
		}
		for _, tc := range []struct {
			indexed, dl int64
			idField     string
			format      string
			deadLetter  string
			missing     int64
			note        string
		}{
			{indexed: 5},
			{indexed: 3, note: "2 documents more"},
			{indexed: 7, missing: 2},
			{indexed: 7, idField: "id", note: `2 documents fewer than this backfill indexed: records whose --id-field value "id" repeats`},
			{indexed: 4, dl: 1, deadLetter: "index:" + index}, // dead letters into the target count too
			{indexed: 7, format: ingest.FormatDeadLetter, note: "2 documents fewer than this replay indexed: letters stored twice"},
		} {
			in := activities.ReconcileInput{Source: activities.Source{URI: "s3://b/p", Index: index, IDField: tc.idField, Format: tc.format, DeadLetter: tc.deadLetter},
				Indexed: tc.indexed, DeadLettered: tc.dl}
			v, err := env.ExecuteActivity(activities.ReconcileName, in)
			if err != nil {
				t.Fatalf("%+v: %v", tc, err)
			}
			var out activities.ReconcileOutput
			if err := v.Get(&out); err != nil {
				t.Fatal(err)
			}
			if out.Count != 5 || out.Missing != tc.missing || !strings.Contains(out.Note, tc.note) || (tc.note == "") != (out.Note == "") {
				t.Errorf("%+v: %+v", tc, out)
			}
		}
	})
}

// onNode connects to the engine's node and registers the activity method that activity picks
// from Activities whose engine writes there, in a test activity environment. The context ends
// with the test, at most a minute on.
func onNode(t *testing.T, e testenv.Engine, activity func(*activities.Activities) any) (context.Context, *es.Client, *testsuite.TestActivityEnvironment) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	client, err := es.New(ctx, es.Config{Addresses: []string{e.URL}})
	if err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(activity(&activities.Activities{Engine: &ingest.Engine{Bulk: client}}))
	return ctx, client, env
}
