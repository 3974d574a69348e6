package sluiceapi_test

import (
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/sluiceapi"
)

// TestTypedFailuresAlongTheCauses sends a reindex's failures through Temporal's failure
// converter, as the server hands them to the parent: ChunksFailed finds the backfill's result
// as the cause of LoadFailed, VerifyFailed the reindex's result, and neither answers for the
// other's error.
func TestTypedFailuresAlongTheCauses(t *testing.T) {
	wire := func(err error) error {
		fc := temporal.GetDefaultFailureConverter()
		return fc.FailureToError(fc.ErrorToFailure(err))
	}
	backfill := sluiceapi.BackfillResult{ChunksPlanned: 5, ChunksFailed: 2, Stats: sluiceapi.Stats{Indexed: 300}}
	loadFailed := wire(temporal.NewNonRetryableApplicationError("loading index logs-1", sluiceapi.ErrTypeLoadFailed,
		temporal.NewNonRetryableApplicationError("2 of 5 chunks failed", sluiceapi.ErrTypeChunksFailed, nil, backfill)))
	if got, ok := sluiceapi.ChunksFailed(loadFailed); !ok || got.ChunksFailed != 2 || got.Stats.Indexed != 300 {
		t.Fatalf("ChunksFailed(LoadFailed) = %+v, %v; want the backfill's result", got, ok)
	}
	if _, ok := sluiceapi.VerifyFailed(loadFailed); ok {
		t.Fatal("VerifyFailed answers for a LoadFailed error")
	}

	reindex := sluiceapi.ReindexResult{Alias: "logs", Index: "logs-1", Count: 7, Backfill: sluiceapi.BackfillResult{Stats: sluiceapi.Stats{Indexed: 9}}}
	verifyFailed := wire(temporal.NewNonRetryableApplicationError("verifying index logs-1", sluiceapi.ErrTypeVerifyFailed, nil, reindex))
	if got, ok := sluiceapi.VerifyFailed(verifyFailed); !ok || got.Count != 7 || got.Backfill.Stats.Indexed != 9 || got.Index != "logs-1" {
		t.Fatalf("VerifyFailed = %+v, %v; want the reindex's result", got, ok)
	}
	if _, ok := sluiceapi.ChunksFailed(verifyFailed); ok {
		t.Fatal("ChunksFailed answers for a VerifyFailed error")
	}
	if _, ok := sluiceapi.ChunksFailed(wire(temporal.NewApplicationError("no", sluiceapi.ErrTypeBadInput))); ok {
		t.Fatal("ChunksFailed answers for a BadInput error")
	}
}
