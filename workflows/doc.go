// Package workflows holds sluice's Temporal workflows. It is deterministic workflow code only:
// it schedules the activities of package activities by name and imports nothing else of sluice
// but their input and output types (and package sluiceapi's names).
//
// BackfillWorkflow (registered as "Backfill") lists a source page by page, runs its chunks with
// a bounded window of IngestChunk activities, answers the "progress" query, takes the "pause",
// "resume" and "set-concurrency" signals, and continues-as-new before its history grows large.
// ReindexWorkflow ("Reindex") builds a new index with a backfill child and moves an alias to
// it. ScheduledBackfillWorkflow and ScheduledReindexWorkflow are what a schedule starts: they
// fill a source template from the scheduled time and run the job.
//
// Every input carries a Version; a worker refuses one newer than it reads (version.go).
package workflows
