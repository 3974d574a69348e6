// Package workflows holds sluice's Temporal workflows. It is deterministic workflow code only:
// it schedules the activities of package activities by name and imports nothing else of sluice
// but their input and output types.
//
// BackfillWorkflow (registered as "Backfill") lists a source page by page, runs its chunks with
// a bounded window of IngestChunk activities, answers the "progress" query, takes the "pause",
// "resume" and "set-concurrency" signals, and continues-as-new before its history grows large.
package workflows
