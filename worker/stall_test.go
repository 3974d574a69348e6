package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/activities"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/workertest"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

// TestStallTimeoutReachesTheActivities starts a worker with Config.StallTimeout (what
// `sluice worker --stall-timeout` and SLUICE_STALL_TIMEOUT set) of half a second, and hangs
// every _bulk request after the first: the chunk makes no progress, so its attempt must fail
// as stalled within a few seconds. With the activities' default (at least 5 minutes) it would
// keep heartbeating past the test's bound; the heartbeat timeout (30s) cannot explain a
// failure inside the bound either.
func TestStallTimeoutReachesTheActivities(t *testing.T) {
	startS3WithOneObject(t)
	es := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		return esfake.Decision{Hang: r.Endpoint == esfake.Bulk && r.Seq >= 2}
	}})
	t.Cleanup(es.Close)

	const stall, bound = 500 * time.Millisecond, 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := workertest.Start(t, ctx, worker.Config{TaskQueue: "sluice-stall", ES: esclient.Config{Addresses: []string{es.URL()}},
		StallTimeout: stall, StopTimeout: time.Second})
	began := time.Now()
	run, err := w.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "backfill-stall", TaskQueue: "sluice-stall"},
		workflows.BackfillName, workflows.BackfillInput{
			Source:      activities.Source{URI: "s3://data/in/", Index: "logs"},
			Limits:      activities.Limits{MaxOps: 10, Inflight: 1},
			MaxAttempts: 1, // the stalled attempt fails the chunk, and the backfill with it
		})
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, bound)
	defer waitCancel()
	err = run.Get(waitCtx, nil)
	if waitCtx.Err() != nil {
		t.Fatalf("the backfill still runs %s into a hung _bulk request: the worker's stall timeout of %s did not reach the activities", bound, stall)
	}
	var appErr *temporal.ApplicationError
	var res workflows.BackfillResult
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeChunksFailed || appErr.Details(&res) != nil || len(res.Failed) != 1 {
		t.Fatalf("backfill: %v, want ChunksFailed with one failed chunk", err)
	}
	// The first batch of 10 records (80 bytes) was acknowledged before the hang.
	if fc := res.Failed[0]; !strings.Contains(fc.Error, "stalled") || !strings.Contains(fc.Error, "s3://data/in/a.ndjson at offset 80") {
		t.Fatalf("failed chunk %+v, want a stall at the first batch's checkpoint", fc)
	}
	t.Logf("failed as stalled after %s", time.Since(began).Round(time.Millisecond))
}

// startS3WithOneObject starts an S3 server for the test (its AWS_* variables set) holding
// s3://data/in/a.ndjson: 100 records of 8 bytes, {"n":0} to {"n":99}.
func startS3WithOneObject(t *testing.T) {
	t.Helper()
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	s3.CreateBucket(t, "data")
	var data []byte
	for j := range 100 {
		data = fmt.Appendf(data, `{"n":%d}`+"\n", j)
	}
	s3.Put(t, "data", "in/a.ndjson", data)
}
