package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/workflows"
)

// writeText prints r for a person.
func (r *report) writeText(w io.Writer) {
	line := textLine(func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-12s %s\n", label, fmt.Sprintf(format, args...))
	})
	line("workflow", "%s (run %s)", r.WorkflowID, r.RunID)
	if r.Type != "" {
		line("type", "%s on task queue %s", r.Type, r.TaskQueue)
	}
	if r.Source != "" || r.Index != "" {
		dl := ""
		if r.DeadLetter != "" {
			dl = ", dead letters to " + r.DeadLetter
		}
		line("data", "%s -> index %s%s", r.Source, r.Index, dl)
	}
	status := r.Status
	if r.Detached {
		status += " (no longer followed)"
	}
	switch {
	case !r.Close.IsZero():
		line("status", "%s; started %s, closed %s (%s)", status, stamp(r.Start), stamp(r.Close), r.Close.Sub(r.Start).Round(time.Second))
	case !r.Start.IsZero():
		line("status", "%s; started %s", status, stamp(r.Start))
	default:
		line("status", "%s", status)
	}
	if r.Error != "" {
		line("error", "%s", r.Error)
	}
	for _, warning := range r.warnings() {
		line("warning", "%s", warning)
	}
	switch {
	case r.Result != nil:
		writeResult(w, line, r.Result, r.unit())
	case r.Progress != nil:
		writeProgress(w, line, r.snapshot())
	case r.ProgressErr != nil:
		line("progress", "no answer to the progress query: %v (%s)", r.ProgressErr, workerHint(r.TaskQueue))
	}
}

// textLine prints one labelled line of the text report.
type textLine func(label, format string, args ...any)

// writeResult prints the result of a closed backfill.
// unit counts the sizes of res's source.
func writeResult(w io.Writer, line textLine, res *workflows.BackfillResult, unit sourceUnit) {
	writeStats(line, res.Stats, unit)
	line("chunks", "%s done of %s planned%s; %s, %s", commas(res.ChunksDone), commas(res.ChunksPlanned),
		failedCounts(res.ChunksFailed, res.ObjectsFailed), unit.parts(res.Objects), unit.amount(res.Bytes))
	runs := ""
	if res.Runs > 1 {
		runs = fmt.Sprintf(" (%d runs: continued as new %d times)", res.Runs, res.Runs-1)
	}
	line("duration", "%s, %s docs/s%s", res.Duration.Round(time.Second), commas(int64(docsPerSecond(res)+0.5)), runs)
	writeReconciliation(w, line, res.Reconciliation)
	writeFailed(w, res.Failed, res.ChunksFailed)
}

// writeReconciliation prints the end-of-run check, when it ran.
func writeReconciliation(w io.Writer, line textLine, rec *workflows.Reconciliation) {
	if rec == nil {
		return
	}
	verdict := "adds up"
	if !rec.OK() {
		verdict = "DOES NOT ADD UP"
	}
	line("reconcile", "%s: the index holds %s documents, this backfill indexed %s", verdict, commas(rec.Count), commas(rec.Expected))
	if rec.Missing > 0 {
		line("", "%s documents missing from the index", commas(rec.Missing))
	}
	if rec.Note != "" {
		line("", "%s", rec.Note)
	}
	if rec.UnbalancedChunks == 0 {
		return
	}
	fmt.Fprintf(w, "objects whose records read != indexed + dead-lettered (%d chunks):\n", rec.UnbalancedChunks)
	for _, u := range rec.Unbalanced {
		fmt.Fprintf(w, "  %s: %s read, %s indexed, %s dead-lettered\n", u.Key, commas(u.Read), commas(u.Indexed), commas(u.DeadLettered))
	}
}

// writeProgress prints the progress of a running backfill (or the last of one without result).
func writeProgress(w io.Writer, line textLine, p *snapshot) {
	phase := p.Phase
	if phase == "" {
		phase = workflows.PhaseRunning
	}
	line("phase", "%s; concurrency %d, run %d", phase, p.Concurrency, p.Run)
	line("chunks", "%s done of %s planned, %d running, %d pending%s; %s, %s",
		commas(p.ChunksDone), planned(p.Progress), p.ChunksRunning, p.ChunksPending, failedCounts(p.ChunksFailed, p.ObjectsFailed), p.Unit.parts(p.Objects), p.Unit.amount(p.Bytes))
	writeStats(line, p.Done, p.Unit)
	if p.Running.Heartbeated > 0 {
		line("running", "%d chunks, as of their last heartbeats: %s read, %s indexed, %s dead-lettered (included above)",
			p.Running.Chunks, commas(p.Running.Stats.Read), commas(p.Running.Stats.Indexed), commas(p.Running.Stats.DeadLettered))
	}
	eta := "ETA unknown until the listing is done"
	switch {
	case !p.running():
		eta = "stopped"
	case p.Paused:
		eta = "no ETA while paused"
	case p.ETA > 0:
		eta = "ETA " + p.ETA.Round(time.Second).String()
	case p.ListingDone && p.BytesDone < p.Bytes:
		eta = "no ETA before the first " + p.Unit.String() + " are done"
	case p.ListingDone:
		eta = "all " + p.Unit.String() + " done"
	}
	line(p.Unit.String(), "%s done (%s), %s; %s", p.Unit.of(p.BytesDone, p.Bytes), percent(p.BytesDone, p.Bytes), p.Unit.rate(p.BytesPerSecond), eta)
	line("rate", "%s docs/s over %s", commas(int64(p.DocsPerSecond+0.5)), p.Elapsed.Round(time.Second))
	writeFailed(w, p.Failed, p.ChunksFailed)
}

// percent is done of total, rounded down, so that 100% means all.
func percent(done, total int64) string {
	if total <= 0 {
		return "0%"
	}
	return strconv.FormatInt(done*100/total, 10) + "%"
}

// writeStats prints the record counts; st.Bytes only for objects (an es:// source's counts hits).
func writeStats(line textLine, st activities.ChunkStats, unit sourceUnit) {
	data := ""
	if unit == unitBytes {
		data = fmt.Sprintf("; %s of data after decompression", humanBytes(st.Bytes))
	}
	line("records", "%s read, %s indexed, %s dead-lettered, %s retried%s",
		commas(st.Read), commas(st.Indexed), commas(st.DeadLettered), commas(st.Retried), data)
}

func writeFailed(w io.Writer, failed []workflows.FailedChunk, total int64) {
	if len(failed) == 0 {
		return
	}
	fmt.Fprintf(w, "failed chunks (%d", len(failed))
	if total > int64(len(failed)) {
		fmt.Fprintf(w, " of %d", total)
	}
	fmt.Fprintln(w, "):")
	for _, fc := range failed {
		fmt.Fprintf(w, "  %s\n", describeChunk(fc))
	}
}

// failedCounts is the failure part of a chunks line: ", N failed" for whole chunks (also when
// none failed), then "; M objects failed" for objects of packed chunks, which fail alone while
// their chunk goes on (chunksFailed counts both, as --allow-failed-chunks does).
func failedCounts(chunksFailed, objectsFailed int64) string {
	s := ""
	if chunks := chunksFailed - objectsFailed; chunks > 0 || objectsFailed == 0 {
		s = ", " + commas(chunks) + " failed"
	}
	if objectsFailed > 0 {
		s += "; " + workflows.ObjectCount(objectsFailed) + " failed"
	}
	return s
}

func describeChunk(fc workflows.FailedChunk) string {
	if fc.Object {
		return fmt.Sprintf("object %s (of a packed chunk): %s: %s", fc.Key, fc.ErrorType, fc.Error)
	}
	end := "end"
	if fc.End >= 0 {
		end = strconv.FormatInt(fc.End, 10)
	}
	s := fmt.Sprintf("%s [%d,%s): %s: %s", fc.Key, fc.Start, end, fc.ErrorType, fc.Error)
	if fc.Resume > 0 {
		s += fmt.Sprintf(" (checkpoint %d)", fc.Resume)
	}
	return s
}

func docsPerSecond(res *workflows.BackfillResult) float64 {
	if res.Duration <= 0 {
		return 0
	}
	return float64(res.Stats.Indexed) / res.Duration.Seconds()
}

func stamp(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

// commas prints n with thousands separators: 1,234,567.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// humanBytes rounds n for display (1.2 GiB); units.FormatBytes prints sizes exactly, for flags.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	i := -1
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + string("KMGTP"[i]) + "iB"
}
