package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// reindexJSON is the JSON of a reindex's status. Field names are snake_case and stable.
type reindexJSON struct {
	WorkflowID   string        `json:"workflow_id"`
	RunID        string        `json:"run_id"`
	WorkflowType string        `json:"workflow_type"`
	Status       string        `json:"status"`
	StartTime    *time.Time    `json:"start_time,omitempty"`
	CloseTime    *time.Time    `json:"close_time,omitempty"`
	Source       string        `json:"source,omitempty"`
	Alias        string        `json:"alias,omitempty"`
	Phase        string        `json:"phase,omitempty"`
	Index        string        `json:"index,omitempty"`    // the new index
	Previous     []string      `json:"previous,omitempty"` // what the alias pointed to
	Deleted      []string      `json:"deleted,omitempty"`  // older indices deleted (--keep-old)
	Count        int64         `json:"count,omitempty"`    // documents in the new index
	PruneError   string        `json:"prune_error,omitempty"`
	Load         *progressJSON `json:"load,omitempty"`     // the backfill's progress while it loads
	Backfill     *resultJSON   `json:"backfill,omitempty"` // the backfill's result
	ErrorType    string        `json:"error_type,omitempty"`
	Error        string        `json:"error,omitempty"`
	Detached     bool          `json:"detached,omitempty"`
}

func (r *reindexReport) toJSON() reindexJSON {
	j := reindexJSON{WorkflowID: r.WorkflowID, RunID: r.RunID, WorkflowType: "Reindex", Status: r.Status,
		Source: r.Source, Alias: r.Alias, ErrorType: r.ErrorType, Error: r.Error, Detached: r.Detached}
	if !r.Start.IsZero() {
		j.StartTime = &r.Start
	}
	if !r.Close.IsZero() {
		j.CloseTime = &r.Close
	}
	if p := r.Progress; p != nil {
		j.Phase, j.Index, j.Previous, j.Count = p.Phase, p.Index, p.Previous, p.Count
	}
	if res := r.Result; res != nil {
		j.Index, j.Previous, j.Deleted, j.Count, j.PruneError = res.Index, res.Previous, res.Deleted, res.Count, res.PruneError
		j.Backfill = resultOf(&res.Backfill, unitOf(r.Source))
	}
	if r.Load != nil {
		j.Load = progressOf(newSnapshot(r.Load, nil, unitOf(r.Source), time.Now(), nil))
	}
	return j
}

// write prints r as text or as one JSON object, and returns the exit code of printing.
func (r *reindexReport) write(stdout, stderr io.Writer, asJSON bool) int {
	if asJSON {
		return writeJSON(stdout, stderr, r.toJSON())
	}
	r.writeText(stdout)
	return exitOK
}

func (r *reindexReport) writeText(w io.Writer) {
	line := textLine(func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-12s %s\n", label, fmt.Sprintf(format, args...))
	})
	line("workflow", "%s (run %s)", r.WorkflowID, r.RunID)
	line("type", "Reindex")
	status := r.Status
	if r.Detached {
		status += " (no longer followed)"
	}
	if !r.Close.IsZero() {
		line("status", "%s; started %s, closed %s (%s)", status, stamp(r.Start), stamp(r.Close), r.Close.Sub(r.Start).Round(time.Second))
	} else {
		line("status", "%s; started %s", status, stamp(r.Start))
	}
	if r.Source != "" {
		line("data", "%s -> alias %s", r.Source, r.Alias)
	}
	if r.Error != "" {
		line("error", "%s", r.Error)
	}
	p, res := r.Progress, r.Result
	switch {
	case res != nil && r.Status == statusCompleted:
		line("alias", "%s -> %s (was: %s)", res.Alias, res.Index, listOrNone(res.Previous))
		line("count", "%s documents in %s (verified)", commas(res.Count), res.Index)
		if len(res.Deleted) > 0 {
			line("deleted", "%s", strings.Join(res.Deleted, ", "))
		}
		if res.PruneError != "" {
			line("prune", "deleting older indices failed: %s", res.PruneError)
		}
		writeResult(w, line, &res.Backfill, unitOf(r.Source))
	case p != nil:
		line("phase", "%s; new index %s, alias %s on %s", p.Phase, p.Index, p.Alias, listOrNone(p.Previous))
		if p.Count > 0 {
			line("count", "%s documents in %s", commas(p.Count), p.Index)
		}
		if r.Load != nil {
			writeProgress(w, line, newSnapshot(r.Load, nil, unitOf(r.Source), time.Now(), nil))
		}
		if res != nil {
			writeResult(w, line, &res.Backfill, unitOf(r.Source))
		}
	}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
