package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/workflows"
)

// The JSON output. Field names are snake_case and stable: scripts read them.
type (
	statusJSON struct {
		WorkflowID   string        `json:"workflow_id"`
		RunID        string        `json:"run_id"`
		WorkflowType string        `json:"workflow_type,omitempty"`
		TaskQueue    string        `json:"task_queue,omitempty"`
		Status       string        `json:"status"`
		StartTime    *time.Time    `json:"start_time,omitempty"`
		CloseTime    *time.Time    `json:"close_time,omitempty"`
		Source       string        `json:"source,omitempty"`
		Index        string        `json:"index,omitempty"`
		DeadLetter   string        `json:"dead_letter,omitempty"`
		Progress     *progressJSON `json:"progress,omitempty"`
		Result       *resultJSON   `json:"result,omitempty"`
		ErrorType    string        `json:"error_type,omitempty"`
		Error        string        `json:"error,omitempty"`
		Detached     bool          `json:"detached,omitempty"`
		Warnings     []string      `json:"warnings,omitempty"` // what a run that succeeded should still tell (an empty source)
	}
	recordsJSON struct {
		Read         int64  `json:"read"`
		Indexed      int64  `json:"indexed"`
		DeadLettered int64  `json:"dead_lettered"`
		Retried      int64  `json:"retried"`
		BytesRead    *int64 `json:"bytes_read,omitempty"` // of the records, after decompression; absent for an es:// source
	}
	runningJSON struct {
		Chunks      int         `json:"chunks"`                 // IngestChunk activities pending
		Heartbeated int         `json:"heartbeated"`            // of them, those that reported progress
		Records     recordsJSON `json:"records"`                // as of their last heartbeats
		SourceBytes *int64      `json:"source_bytes,omitempty"` // s3:// sources
		SourceDocs  *int64      `json:"source_docs,omitempty"`  // es:// sources: documents behind their checkpoints
	}
	// sourceJSON is a source's size, done and rate under names that say their unit: the
	// bytes_* fields for an s3:// source, the source_docs* fields for an es:// source, whose
	// sizes count documents. SourceUnit says which ("bytes" or "documents").
	sourceJSON struct {
		SourceUnit          string   `json:"source_unit"`
		Bytes               *int64   `json:"bytes,omitempty"` // source bytes planned
		BytesDone           *int64   `json:"bytes_done,omitempty"`
		BytesPerSecond      *float64 `json:"bytes_per_second,omitempty"`
		SourceDocs          *int64   `json:"source_docs,omitempty"` // source documents planned
		SourceDocsDone      *int64   `json:"source_docs_done,omitempty"`
		SourceDocsPerSecond *float64 `json:"source_docs_per_second,omitempty"`
	}
	failedChunkJSON struct {
		Key        string `json:"key"`
		Start      int64  `json:"start"`
		End        int64  `json:"end"` // -1: to the end of the object
		Checkpoint int64  `json:"checkpoint,omitempty"`
		ErrorType  string `json:"error_type"`
		Error      string `json:"error"`
		Object     bool   `json:"object,omitempty"` // an object of a packed chunk, which went on
	}
	resultJSON struct {
		Records         recordsJSON       `json:"records"`
		ChunksPlanned   int64             `json:"chunks_planned"`
		ChunksDone      int64             `json:"chunks_done"`
		ChunksFailed    int64             `json:"chunks_failed"`  // chunks and objects of packed chunks, as --allow-failed-chunks counts
		ObjectsFailed   int64             `json:"objects_failed"` // of chunks_failed, objects of packed chunks
		Objects         int64             `json:"objects"`        // concrete indices of an es:// source
		sourceJSON                        // bytes planned, or source_docs
		DurationSeconds float64           `json:"duration_seconds"`
		DocsPerSecond   float64           `json:"docs_per_second"`
		Runs            int               `json:"runs"`
		FailedChunks    []failedChunkJSON `json:"failed_chunks,omitempty"`
		Reconciliation  *reconcileJSON    `json:"reconciliation,omitempty"` // absent when it did not run
	}
	reconcileJSON struct {
		OK               bool             `json:"ok"`
		Count            int64            `json:"count"`    // the index's _count
		Expected         int64            `json:"expected"` // documents this backfill indexed (there)
		Missing          int64            `json:"missing"`
		Note             string           `json:"note,omitempty"`
		UnbalancedChunks int64            `json:"unbalanced_chunks"`
		Unbalanced       []unbalancedJSON `json:"unbalanced_objects,omitempty"`
	}
	unbalancedJSON struct {
		Key          string `json:"key"`
		Read         int64  `json:"read"`
		Indexed      int64  `json:"indexed"`
		DeadLettered int64  `json:"dead_lettered"`
	}
	progressJSON struct {
		Phase          string            `json:"phase"`
		Records        recordsJSON       `json:"records"`  // finished and running chunks
		Finished       recordsJSON       `json:"finished"` // finished chunks only
		Running        *runningJSON      `json:"running,omitempty"`
		sourceJSON                       // bytes, bytes_done, bytes_per_second or source_docs...
		ETASeconds     *float64          `json:"eta_seconds,omitempty"` // absent while unknown
		ChunksPlanned  int64             `json:"chunks_planned"`
		ChunksDone     int64             `json:"chunks_done"`
		ChunksFailed   int64             `json:"chunks_failed"`  // see resultJSON
		ObjectsFailed  int64             `json:"objects_failed"` // of chunks_failed, objects of packed chunks
		ChunksRunning  int               `json:"chunks_running"`
		ChunksPending  int               `json:"chunks_pending"`
		ListingDone    bool              `json:"listing_done"`
		Objects        int64             `json:"objects"`
		DocsPerSecond  float64           `json:"docs_per_second"` // documents indexed
		ElapsedSeconds float64           `json:"elapsed_seconds"`
		Paused         bool              `json:"paused"`
		Concurrency    int               `json:"concurrency"`
		Run            int               `json:"run"`
		FailedChunks   []failedChunkJSON `json:"failed_chunks,omitempty"`
	}
)

func (r *report) toJSON() statusJSON {
	j := statusJSON{
		WorkflowID: r.WorkflowID, RunID: r.RunID, WorkflowType: r.Type, TaskQueue: r.TaskQueue, Status: r.Status,
		Source: r.Source, Index: r.Index, DeadLetter: r.DeadLetter,
		ErrorType: r.ErrorType, Error: r.Error, Detached: r.Detached, Warnings: r.warnings(),
	}
	if !r.Start.IsZero() {
		j.StartTime = &r.Start
	}
	if !r.Close.IsZero() {
		j.CloseTime = &r.Close
	}
	if res := r.Result; res != nil {
		j.Result = resultOf(res, r.unit())
	}
	if p := r.snapshot(); p != nil {
		j.Progress = progressOf(p)
	}
	return j
}

// resultOf is res in JSON; unit counts the sizes of its source.
func resultOf(res *workflows.BackfillResult, unit sourceUnit) *resultJSON {
	j := &resultJSON{
		Records:       recordsOf(res.Stats, unit),
		ChunksPlanned: res.ChunksPlanned, ChunksDone: res.ChunksDone, ChunksFailed: res.ChunksFailed,
		ObjectsFailed: res.ObjectsFailed, Objects: res.Objects, sourceJSON: sourceOf(unit, res.Bytes, nil, nil),
		DurationSeconds: res.Duration.Seconds(), DocsPerSecond: docsPerSecond(res), Runs: res.Runs,
		FailedChunks: failedOf(res.Failed),
	}
	if rec := res.Reconciliation; rec != nil {
		j.Reconciliation = &reconcileJSON{OK: rec.OK(), Count: rec.Count, Expected: rec.Expected, Missing: rec.Missing,
			Note: rec.Note, UnbalancedChunks: rec.UnbalancedChunks}
		for _, u := range rec.Unbalanced {
			j.Reconciliation.Unbalanced = append(j.Reconciliation.Unbalanced,
				unbalancedJSON{Key: u.Key, Read: u.Read, Indexed: u.Indexed, DeadLettered: u.DeadLettered})
		}
	}
	return j
}

func progressOf(p *snapshot) *progressJSON {
	j := &progressJSON{
		Phase: p.Phase, Records: recordsOf(p.Done, p.Unit), Finished: recordsOf(p.Stats, p.Unit),
		sourceJSON:    sourceOf(p.Unit, p.Bytes, &p.BytesDone, &p.BytesPerSecond),
		ChunksPlanned: p.ChunksPlanned, ChunksDone: p.ChunksDone, ChunksFailed: p.ChunksFailed,
		ObjectsFailed: p.ObjectsFailed, ChunksRunning: p.ChunksRunning, ChunksPending: p.ChunksPending, ListingDone: p.ListingDone,
		Objects: p.Objects, DocsPerSecond: p.DocsPerSecond, ElapsedSeconds: p.Elapsed.Seconds(),
		Paused: p.Paused, Concurrency: p.Concurrency, Run: p.Run, FailedChunks: failedOf(p.Failed),
	}
	if p.Running.Chunks > 0 {
		j.Running = &runningJSON{Chunks: p.Running.Chunks, Heartbeated: p.Running.Heartbeated,
			Records: recordsOf(p.Running.Stats, p.Unit)}
		if n := p.Running.SourceBytes; p.Unit == unitDocs {
			j.Running.SourceDocs = &n
		} else {
			j.Running.SourceBytes = &n
		}
	}
	if p.ETA > 0 {
		eta := p.ETA.Seconds()
		j.ETASeconds = &eta
	}
	return j
}

// recordsOf is s in JSON; bytes_read only for objects (an es:// source's Stats.Bytes counts hits).
func recordsOf(s activities.ChunkStats, unit sourceUnit) recordsJSON {
	j := recordsJSON{Read: s.Read, Indexed: s.Indexed, DeadLettered: s.DeadLettered, Retried: s.Retried}
	if unit == unitBytes {
		j.BytesRead = &s.Bytes
	}
	return j
}

// sourceOf puts planned, done and perSecond (nil: not part of the object) under the names of
// unit.
func sourceOf(unit sourceUnit, planned int64, done *int64, perSecond *float64) sourceJSON {
	j := sourceJSON{SourceUnit: unit.String()}
	if unit == unitDocs {
		j.SourceDocs, j.SourceDocsDone, j.SourceDocsPerSecond = &planned, done, perSecond
	} else {
		j.Bytes, j.BytesDone, j.BytesPerSecond = &planned, done, perSecond
	}
	return j
}

func failedOf(failed []workflows.FailedChunk) []failedChunkJSON {
	var out []failedChunkJSON
	for _, fc := range failed {
		out = append(out, failedChunkJSON{Key: fc.Key, Start: fc.Start, End: fc.End, Checkpoint: fc.Resume, ErrorType: fc.ErrorType, Error: fc.Error, Object: fc.Object})
	}
	return out
}

// writeJSON prints v as one line of JSON.
func writeJSON(stdout, stderr io.Writer, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(stderr, "sluice: encoding JSON: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return exitOK
}
