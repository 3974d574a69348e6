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
//   - Version says which shape the caller wrote (BackfillVersion when you build an input with
//     this package; 0 from callers that predate the field means 1). A change that cannot be
//     additive would get a new Version, and workers keep accepting the old ones.
//   - Workers decode with encoding/json and ignore fields they do not know, so a newer caller
//     does not break an older worker; it just does not get the new behaviour. Upgrade the
//     workers first when you rely on a new field.
//
// Each job has its own file: backfill.go holds the backfill, reindex.go the reindex.
package sluiceapi
