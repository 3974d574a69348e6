package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/sluiceapi"
)

// CatalogRefreshInput says which export of a product catalog becomes the index readers see.
type CatalogRefreshInput struct {
	Bucket string // the export lands under s3://<Bucket>/catalog/<Export>/
	Export string // the export's name, such as 2026-11-28
	Alias  string // the alias readers query; it moves to the new index
	// KeepOld is how many indices of earlier refreshes to keep for a rollback; older ones are
	// deleted after the swap.
	KeepOld int
}

// CatalogRefreshOutput is what CatalogRefresh hands on: its own use of the reindex's result.
type CatalogRefreshOutput struct {
	Index     string   // the index the alias now points to
	Replaced  []string // the indices it pointed to before
	Deleted   []string // earlier indices deleted (KeepOld)
	Documents int64
	Summary   string
}

// ExportPlan is what your own step found: where the export lies and the mapping it needs.
type ExportPlan struct {
	Source      string
	IndexConfig json.RawMessage
}

// catalogMapping is the new index's settings and mappings: "key" a keyword, "n" a number.
const catalogMapping = `{"settings":{"number_of_shards":1},"mappings":{"properties":{"key":{"type":"keyword"},"n":{"type":"long"}}}}`

// CatalogRefresh is a workflow of yours. It does its own step first (PlanExport, an activity of
// yours), then has sluice build a new index from the export and move the alias to it, as a
// child workflow on the sluice workers' task queue, waits for it, and uses its result. Until the
// swap, a failed reindex leaves the alias where it was, so readers keep the last good catalog.
func CatalogRefresh(ctx workflow.Context, in CatalogRefreshInput) (CatalogRefreshOutput, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var plan ExportPlan
	if err := workflow.ExecuteActivity(actx, PlanExport, in).Get(ctx, &plan); err != nil {
		return CatalogRefreshOutput{}, err
	}

	// A readable child id, so that `sluice status <id>-reindex` follows the reindex and its load.
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID + "-reindex",
	})
	keep := in.KeepOld
	var res sluiceapi.ReindexResult
	err := sluiceapi.ExecuteReindex(cctx, sluiceapi.ReindexInput{
		Version:     sluiceapi.ReindexVersion,
		Alias:       in.Alias,
		IndexConfig: plan.IndexConfig,
		Backfill: sluiceapi.BackfillInput{
			Version:     sluiceapi.BackfillVersion,
			Source:      sluiceapi.Source{URI: plan.Source},
			Concurrency: 4,
		},
		KeepOld: &keep,
	}).Get(ctx, &res)
	if failed, ok := sluiceapi.VerifyFailed(err); ok {
		// Loaded, but the new index does not hold what was indexed: readers stay where they were.
		return CatalogRefreshOutput{}, fmt.Errorf("export %s: new index %s holds %d documents after %d indexed; alias %s not moved: %w",
			in.Export, failed.Index, failed.Count, failed.Backfill.Stats.Indexed, in.Alias, err)
	}
	if partial, ok := sluiceapi.ChunksFailed(err); ok {
		return CatalogRefreshOutput{}, fmt.Errorf("export %s: %d of %d chunks failed; alias %s not moved: %w",
			in.Export, partial.ChunksFailed, partial.ChunksPlanned, in.Alias, err)
	}
	if err != nil {
		return CatalogRefreshOutput{}, fmt.Errorf("export %s: %w", in.Export, err)
	}
	summary := fmt.Sprintf("%s now points to %s: %d documents from %s", in.Alias, res.Index, res.Count, plan.Source)
	if len(res.Previous) > 0 {
		summary += fmt.Sprintf(" (was %s)", strings.Join(res.Previous, ", "))
	}
	return CatalogRefreshOutput{
		Index: res.Index, Replaced: res.Previous, Deleted: res.Deleted, Documents: res.Count, Summary: summary,
	}, nil
}

// PlanExport is the step of yours before the reindex. Here it only names the export's prefix
// and hands over the mapping; yours might wait for the export to finish or derive the mapping
// from a schema registry.
func PlanExport(_ context.Context, in CatalogRefreshInput) (ExportPlan, error) {
	if in.Bucket == "" || strings.ContainsAny(in.Bucket, "/@:") {
		return ExportPlan{}, fmt.Errorf("bucket %q: want a bucket name", in.Bucket)
	}
	if in.Export == "" || strings.ContainsAny(in.Export, "/?*") {
		return ExportPlan{}, fmt.Errorf("export %q: want a name without / ? *", in.Export)
	}
	return ExportPlan{Source: "s3://" + in.Bucket + "/catalog/" + in.Export + "/", IndexConfig: json.RawMessage(catalogMapping)}, nil
}
