// Package sluiceapi lets your own Temporal workflows run sluice's jobs as child workflows:
// the workflow type names, the task queue sluice workers poll, and the versioned input and
// output types of each job, in the exact wire shape the workers decode.
//
// A workflow of yours finishes its own step, starts a backfill and reads its result:
//
//	fut := sluiceapi.ExecuteBackfill(ctx, sluiceapi.BackfillInput{
//		Version: sluiceapi.BackfillVersion,
//		Source:  sluiceapi.Source{URI: "s3://logs/2026/11/28/", Index: "logs-2026.11.28"},
//	})
//	var res sluiceapi.BackfillResult
//	if err := fut.Get(ctx, &res); err != nil {
//		if partial, ok := sluiceapi.ChunksFailed(err); ok { ... partial.ChunksFailed ... }
//		return err
//	}
//
// A reindex builds a new index for an alias from a backfill, verifies it and moves the alias
// to it in one _aliases call; until that swap, a failure leaves the alias where it was:
//
//	fut := sluiceapi.ExecuteReindex(ctx, sluiceapi.ReindexInput{
//		Version:     sluiceapi.ReindexVersion,
//		Alias:       "products",
//		IndexConfig: mapping, // {"settings":…,"mappings":…}
//		Backfill:    sluiceapi.BackfillInput{Source: sluiceapi.Source{URI: "s3://exports/products/"}},
//		KeepOld:     &keep,
//	})
//	var res sluiceapi.ReindexResult // res.Index, res.Previous, res.Count, res.Backfill
//	if err := fut.Get(ctx, &res); err != nil {
//		if r, ok := sluiceapi.VerifyFailed(err); ok { ... r.Count, r.Backfill.Stats.Indexed ... }
//		if partial, ok := sluiceapi.ChunksFailed(err); ok { ... the load lost chunks ... }
//		return err // the alias did not move
//	}
//
// Give the child a readable WorkflowID (workflow.WithChildOptions before ExecuteBackfill or
// ExecuteReindex): `sluice status <id>` then follows it, and a reindex's load runs as
// <id>-load.
//
// The job runs on sluice workers (`sluice worker`, on TaskQueue unless you say otherwise),
// with their credentials: inputs carry the source URI, the index and tuning, never a secret.
// Your worker registers nothing of sluice's; it only needs this package, which imports the
// Temporal SDK and the standard library and nothing else (no ingest engine, no Elasticsearch
// or S3 client, no Temporal server).
//
// # Versions and compatibility
//
// Inputs and results are stored in workflow histories (and in schedules) for as long as those
// live, so their shape only grows:
//
//   - Fields are only ever added, never renamed, retyped or removed. The zero value of a new
//     field means what sluice did before the field existed, so an input written by an older
//     caller means the same to a newer worker, and histories recorded before an upgrade replay.
//   - Version says which shape the caller wrote (BackfillVersion, ReindexVersion when you build an input with
//     this package; 0 from callers that predate the field means 1). A change that cannot be
//     additive would get a new Version, and workers keep accepting the old ones.
//   - A worker refuses an input whose Version is higher than it understands: the job fails at
//     once with a non-retryable ErrTypeBadInput error ("written by a newer sluice: version N,
//     this worker understands up to M"), instead of running without the fields it would not
//     know. Fields added within a version are ignored by older workers (encoding/json drops
//     fields it does not know), so upgrade the workers first when you rely on a new field.
//
// Each job has its own file: backfill.go holds the backfill, reindex.go the reindex.
package sluiceapi
