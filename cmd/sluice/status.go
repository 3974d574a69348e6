package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/term"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/workflows"
)

func init() {
	register("status", "show a backfill: progress while it runs, result or failure once closed", runStatus)
}

// Statuses of a workflow as sluice prints them (text and JSON).
const (
	statusRunning        = "running"
	statusCompleted      = "completed"
	statusFailed         = "failed"
	statusCanceled       = "canceled"
	statusTerminated     = "terminated"
	statusTimedOut       = "timed_out"
	statusContinuedAsNew = "continued_as_new"
)

// Memo keys `sluice ingest` sets on the workflows it starts, so that status can say what a
// backfill reads and writes. The memo is in the history: it never holds a secret.
const (
	memoSource     = "source"
	memoIndex      = "index"
	memoDeadLetter = "dead_letter"
)

// Timings of following a workflow. The progress poll refreshes the display; closing is
// detected by a long poll on the workflow's result, not by the poll.
const (
	progressPollEvery  = time.Second
	plainProgressEvery = 5 * time.Second  // plain (not a terminal) progress lines, at most this often...
	plainProgressQuiet = time.Minute      // ...and, while nothing changes, only this often
	queryTimeout       = 5 * time.Second  // a running workflow's progress query
	closedQueryTimeout = 3 * time.Second  // a closed one's: a worker must replay it, and may be gone
	detachTimeout      = 10 * time.Second // describing the workflow after an interrupt
)

// runStatus prints what is known of one workflow. Without --wait it exits 0 whenever it could
// say (the outcome is in the output); with --wait it follows the workflow to its end and exits
// with its outcome, exactly like `sluice ingest --wait`, of which it is the re-attach.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice status", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice status WORKFLOW-ID [flags]

Shows a backfill: its progress while it runs (the progress query), its result or its failure
once closed. With --wait, follows it until it closes and exits with its outcome, as
'sluice ingest --wait' does: 0 success, 1 failed/canceled/terminated, 3 partial, 130 when
interrupted (the workflow keeps running).

`)
		fs.PrintDefaults()
	}
	tf := addTemporalFlags(fs)
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	wait := fs.Bool("wait", false, "follow the backfill until it closes, showing progress, and exit with its outcome")
	failOnDL := fs.Bool("fail-on-dead-letters", false, "with --wait: exit 3 when records were dead-lettered")
	pos, ok, code := parseArgs(fs, args, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, "status", fmt.Errorf("want one workflow id, got %d arguments (see sluice status -h)", len(pos)))
	}
	id := pos[0]
	c, err := tf.dial(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice status: %v\n", err)
		return exitFailed
	}
	defer c.Close()
	if *wait {
		return waitAndReport(ctx, c, tf, "status", id, "", *asJSON, *failOnDL, stdout, stderr)
	}
	r, err := inspect(ctx, c, id, "")
	if err != nil {
		_, ns := tf.resolve()
		fmt.Fprintf(stderr, "sluice status: %v\n", describeError(id, ns, err))
		return exitFailed
	}
	if *asJSON {
		return writeJSON(stdout, stderr, r.toJSON())
	}
	r.writeText(stdout)
	return exitOK
}

// report is what sluice knows of one backfill workflow.
type report struct {
	WorkflowID string
	RunID      string
	Type       string
	TaskQueue  string
	Status     string // status... constants
	Start      time.Time
	Close      time.Time // zero while running

	Source, Index, DeadLetter string // from the memo of `sluice ingest`; empty otherwise

	// Progress is the answer to the progress query: while running, and for a closed workflow
	// without a result (canceled, terminated) its final state, when a worker answered.
	Progress *workflows.Progress
	// ProgressErr says why there is no Progress while running.
	ProgressErr error
	// Result is the result of a completed backfill, or of one that failed with ChunksFailed.
	Result *workflows.BackfillResult
	// ErrorType and Error describe a failure (application error type and message).
	ErrorType, Error string
	// Detached: --wait stopped following before the workflow closed.
	Detached bool
}

// inspect describes workflow id (runID "": its latest run) and adds the progress query while it
// runs, or its outcome once closed.
func inspect(ctx context.Context, c client.Client, id, runID string) (*report, error) {
	resp, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return nil, err
	}
	info := resp.GetWorkflowExecutionInfo()
	r := &report{
		WorkflowID: id,
		RunID:      info.GetExecution().GetRunId(),
		Type:       info.GetType().GetName(),
		TaskQueue:  info.GetTaskQueue(),
		Status:     statusName(info.GetStatus()),
		Start:      info.GetStartTime().AsTime(),
	}
	if info.GetCloseTime() != nil {
		r.Close = info.GetCloseTime().AsTime()
	}
	dc := converter.GetDefaultDataConverter()
	for k, p := range info.GetMemo().GetFields() {
		var s string
		if dc.FromPayload(p, &s) != nil {
			continue
		}
		switch k {
		case memoSource:
			r.Source = s
		case memoIndex:
			r.Index = s
		case memoDeadLetter:
			r.DeadLetter = s
		}
	}
	if r.Type != workflows.BackfillName {
		return r, nil // not ours: status only
	}
	if r.Status == statusRunning {
		r.Progress, r.ProgressErr = queryProgress(ctx, c, id, "", queryTimeout)
		return r, nil
	}
	var res workflows.BackfillResult
	err = c.GetWorkflow(ctx, id, r.RunID).Get(ctx, &res)
	var wee *temporal.WorkflowExecutionError
	switch {
	case err == nil:
		r.Result = &res
	case errors.As(err, &wee):
		r.setFailure(wee.Unwrap())
	default:
		return nil, fmt.Errorf("getting the result: %w", err)
	}
	if r.Result == nil {
		// Canceled, terminated or failed without a result: the final progress, if a worker
		// replays the run to answer.
		r.Progress, _ = queryProgress(ctx, c, id, r.RunID, closedQueryTimeout)
	}
	return r, nil
}

// setFailure records why a closed workflow did not complete.
func (r *report) setFailure(cause error) {
	var (
		appErr      *temporal.ApplicationError
		canceledErr *temporal.CanceledError
	)
	switch {
	case errors.As(cause, &canceledErr):
		// The status says it all.
	case errors.As(cause, &appErr):
		r.ErrorType = appErr.Type()
		r.Error = appErr.Message() // the workflow's messages carry their cause's

		if appErr.Type() == workflows.ErrTypeChunksFailed && appErr.HasDetails() {
			var res workflows.BackfillResult
			if appErr.Details(&res) == nil {
				r.Result = &res
			}
		}
	case cause != nil:
		r.Error = cause.Error()
	}
}

func queryProgress(ctx context.Context, c client.Client, id, runID string, timeout time.Duration) (*workflows.Progress, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := c.QueryWorkflow(ctx, id, runID, workflows.ProgressQuery)
	if err != nil {
		return nil, err
	}
	var p workflows.Progress
	if err := v.Get(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return statusRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return statusCompleted
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return statusFailed
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return statusCanceled
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return statusTerminated
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return statusTimedOut
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return statusContinuedAsNew
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "WorkflowExecutionStatus"))
}

// verdict is the exit code of a --wait on a closed workflow, and, when it is not 0, why.
//
// 0: completed, and every record read was indexed or dead-lettered (with --fail-on-dead-letters,
// none dead-lettered). 3 (exitPartial): completed with records dead-lettered under
// --fail-on-dead-letters, or with chunks failed within --allow-failed-chunks (the records
// after their checkpoints were not read). 1: failed, canceled, terminated or timed out.
func (r *report) verdict(failOnDeadLetters bool) (code int, why string) {
	switch r.Status {
	case statusCompleted:
		if r.Result == nil {
			return exitOK, ""
		}
		s := r.Result.Stats
		switch {
		case r.Result.ChunksFailed > 0:
			return exitPartial, fmt.Sprintf("backfill %s completed, but %d chunks failed (within --allow-failed-chunks): their records after the checkpoint were not indexed",
				r.WorkflowID, r.Result.ChunksFailed)
		case s.Read != s.Indexed+s.DeadLettered:
			return exitPartial, fmt.Sprintf("backfill %s completed, but %d of %d records read were neither indexed nor dead-lettered",
				r.WorkflowID, s.Read-s.Indexed-s.DeadLettered, s.Read)
		case failOnDeadLetters && s.DeadLettered > 0:
			return exitPartial, fmt.Sprintf("backfill %s completed with %d records dead-lettered (--fail-on-dead-letters)", r.WorkflowID, s.DeadLettered)
		}
		return exitOK, ""
	case statusFailed:
		if r.ErrorType == workflows.ErrTypeChunksFailed && r.Result != nil {
			return exitFailed, fmt.Sprintf("backfill %s failed: %d chunks failed", r.WorkflowID, r.Result.ChunksFailed)
		}
		return exitFailed, fmt.Sprintf("backfill %s failed: %s", r.WorkflowID, r.Error)
	case statusCanceled, statusTerminated:
		return exitFailed, fmt.Sprintf("backfill %s was %s", r.WorkflowID, r.Status)
	case statusTimedOut:
		return exitFailed, fmt.Sprintf("backfill %s timed out", r.WorkflowID)
	}
	return exitFailed, fmt.Sprintf("workflow %s is %s", r.WorkflowID, r.Status)
}

// follow shows the progress of workflow id on pp until it closes, then inspects it. runID ""
// follows the latest run; continue-as-new is followed either way. It returns ctx's error when
// ctx is done first.
func follow(ctx context.Context, c client.Client, id, runID string, pp *progressPrinter) (*report, error) {
	closed := make(chan error, 1)
	go func() { closed <- c.GetWorkflow(ctx, id, runID).Get(ctx, nil) }()
	tick := time.NewTicker(progressPollEvery)
	defer tick.Stop()
	var last *workflows.Progress
	poll := func() {
		p, err := queryProgress(ctx, c, id, "", queryTimeout)
		if ctx.Err() != nil {
			return
		}
		if p != nil {
			last = p
		}
		pp.show(p, err, time.Now())
	}
	poll()
	for {
		select {
		case <-ctx.Done():
			pp.end()
			return nil, ctx.Err()
		case err := <-closed:
			pp.end()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var wee *temporal.WorkflowExecutionError
			if err != nil && !errors.As(err, &wee) {
				return nil, err // a failed call, not the workflow's outcome
			}
			r, err := inspect(ctx, c, id, "")
			if err != nil {
				return nil, err
			}
			if r.Progress == nil && r.Result == nil {
				r.Progress = last
			}
			return r, nil
		case <-tick.C:
			poll()
		}
	}
}

// waitAndReport follows workflow id to its end, prints the report and returns the exit code;
// `sluice ingest --wait` and `sluice status --wait` share it. On SIGINT/SIGTERM it stops
// following, leaves the workflow running, and says how to re-attach.
func waitAndReport(ctx context.Context, c client.Client, tf *temporalFlags, cmd, id, runID string,
	asJSON, failOnDeadLetters bool, stdout, stderr io.Writer) int {
	progressOut := stdout
	if asJSON {
		progressOut = stderr // stdout holds the JSON object only
	}
	// Describe first: an unknown id fails at once, and a closed workflow needs no following.
	// The latest run, not runID: a backfill that continued as new is still running.
	r, err := inspect(ctx, c, id, "")
	if err == nil && r.Status == statusRunning {
		r, err = follow(ctx, c, id, runID, newProgressPrinter(progressOut))
	}
	if err != nil && ctx.Err() != nil {
		fmt.Fprintf(stderr, "sluice %s: stopped following; workflow %s keeps running (it was not canceled)\n", cmd, id)
		fmt.Fprintf(stderr, "  re-attach: sluice status %s --wait%s\n", id, tf.hintArgs())
		fmt.Fprintf(stderr, "  cancel:    sluice cancel %s%s\n", id, tf.hintArgs())
		if asJSON {
			bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
			defer cancel()
			r, err := inspect(bg, c, id, "")
			if err != nil {
				r = &report{WorkflowID: id, RunID: runID, Status: statusRunning}
			}
			r.Detached = true
			writeJSON(stdout, stderr, r.toJSON())
		}
		return exitInterrupted
	}
	if err != nil {
		_, ns := tf.resolve()
		fmt.Fprintf(stderr, "sluice %s: %v\n", cmd, describeError(id, ns, err))
		return exitFailed
	}
	code, why := r.verdict(failOnDeadLetters)
	if asJSON {
		if c := writeJSON(stdout, stderr, r.toJSON()); c != exitOK {
			return c
		}
	} else {
		r.writeText(stdout)
	}
	if why != "" {
		fmt.Fprintf(stderr, "sluice %s: %s\n", cmd, why)
	}
	return code
}

// progressPrinter draws progress: one line redrawn in place on a terminal, plain lines at
// most every plainProgressEvery otherwise (and only every plainProgressQuiet while nothing
// changes). A nil writer prints nothing.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	width int // terminal columns; 0: unknown

	drawn    bool // tty: a line is on screen
	lastTime time.Time
	lastKey  string
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	pp := &progressPrinter{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		pp.tty = true
		if width, _, err := term.GetSize(int(f.Fd())); err == nil {
			pp.width = width
		}
	}
	return pp
}

// show draws p, or says that the workflow does not answer when err is not nil.
func (pp *progressPrinter) show(p *workflows.Progress, err error, now time.Time) {
	if pp.w == nil {
		return
	}
	var line, key string
	if err != nil {
		line = "waiting for the progress query to be answered (is a worker polling the task queue?)"
		key = line
	} else {
		line, key = progressLine(p), progressKey(p)
	}
	if pp.tty {
		if pp.width > 1 && len(line) >= pp.width {
			line = line[:pp.width-1] // a wrapped line cannot be redrawn with \r
		}
		fmt.Fprint(pp.w, "\r\033[K"+line)
		pp.drawn = true
		return
	}
	since := now.Sub(pp.lastTime)
	if !pp.lastTime.IsZero() && (since < plainProgressEvery || key == pp.lastKey && since < plainProgressQuiet) {
		return
	}
	fmt.Fprintln(pp.w, line)
	pp.lastTime, pp.lastKey = now, key
}

// end finishes the line on a terminal, so that what follows starts on its own.
func (pp *progressPrinter) end() {
	if pp.tty && pp.drawn {
		fmt.Fprintln(pp.w)
		pp.drawn = false
	}
}

// progressLine is one line of progress, ASCII only (its length is its width).
func progressLine(p *workflows.Progress) string {
	phase := p.Phase
	if phase == "" {
		phase = workflows.PhaseRunning
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: chunks %s/%s", phase, commas(p.ChunksDone), planned(p))
	if p.ChunksRunning > 0 {
		fmt.Fprintf(&b, ", %d running", p.ChunksRunning)
	}
	if p.ChunksFailed > 0 {
		fmt.Fprintf(&b, ", %s failed", commas(p.ChunksFailed))
	}
	fmt.Fprintf(&b, " | %s indexed", commas(p.Stats.Indexed))
	if p.Stats.DeadLettered > 0 {
		fmt.Fprintf(&b, ", %s dead-lettered", commas(p.Stats.DeadLettered))
	}
	fmt.Fprintf(&b, " | %s docs/s | %s of %s | %s", commas(int64(p.DocsPerSecond+0.5)),
		humanBytes(p.Stats.Bytes), humanBytes(p.Bytes), p.Elapsed.Round(time.Second))
	return b.String()
}

// progressKey changes when the work done changes, not with the clock.
func progressKey(p *workflows.Progress) string {
	return fmt.Sprint(p.Phase, p.ChunksPlanned, p.ChunksDone, p.ChunksFailed, p.ChunksRunning, p.Stats, p.Paused, p.Concurrency)
}

// planned is the number of chunks planned, with a "+" while the listing goes on.
func planned(p *workflows.Progress) string {
	s := commas(p.ChunksPlanned)
	if !p.ListingDone {
		s += "+"
	}
	return s
}

// writeText prints r for a person.
func (r *report) writeText(w io.Writer) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-12s %s\n", label, fmt.Sprintf(format, args...))
	}
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
	if res := r.Result; res != nil {
		writeStats(line, res.Stats)
		line("chunks", "%s done of %s planned, %s failed; %s objects, %s", commas(res.ChunksDone), commas(res.ChunksPlanned),
			commas(res.ChunksFailed), commas(res.Objects), humanBytes(res.Bytes))
		runs := ""
		if res.Runs > 1 {
			runs = fmt.Sprintf(" (%d runs: continued as new %d times)", res.Runs, res.Runs-1)
		}
		line("duration", "%s, %s docs/s%s", res.Duration.Round(time.Second), commas(int64(docsPerSecond(res)+0.5)), runs)
		writeFailed(w, res.Failed, res.ChunksFailed)
	} else if p := r.Progress; p != nil {
		phase := p.Phase
		if phase == "" {
			phase = workflows.PhaseRunning
		}
		line("phase", "%s; concurrency %d, run %d", phase, p.Concurrency, p.Run)
		line("chunks", "%s done of %s planned, %d running, %d pending, %s failed; %s objects, %s",
			commas(p.ChunksDone), planned(p), p.ChunksRunning, p.ChunksPending, commas(p.ChunksFailed), commas(p.Objects), humanBytes(p.Bytes))
		writeStats(line, p.Stats)
		line("rate", "%s docs/s over %s (records of finished chunks only)", commas(int64(p.DocsPerSecond+0.5)), p.Elapsed.Round(time.Second))
		writeFailed(w, p.Failed, p.ChunksFailed)
	} else if r.ProgressErr != nil {
		line("progress", "no answer to the progress query: %v", r.ProgressErr)
	}
}

func writeStats(line func(label, format string, args ...any), st activities.ChunkStats) {
	line("records", "%s read, %s indexed, %s dead-lettered, %s retried; %s read from S3",
		commas(st.Read), commas(st.Indexed), commas(st.DeadLettered), commas(st.Retried), humanBytes(st.Bytes))
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

func describeChunk(fc workflows.FailedChunk) string {
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
	}
	recordsJSON struct {
		Read         int64 `json:"read"`
		Indexed      int64 `json:"indexed"`
		DeadLettered int64 `json:"dead_lettered"`
		Retried      int64 `json:"retried"`
		BytesRead    int64 `json:"bytes_read"`
	}
	failedChunkJSON struct {
		Key        string `json:"key"`
		Start      int64  `json:"start"`
		End        int64  `json:"end"` // -1: to the end of the object
		Checkpoint int64  `json:"checkpoint,omitempty"`
		ErrorType  string `json:"error_type"`
		Error      string `json:"error"`
	}
	resultJSON struct {
		Records         recordsJSON       `json:"records"`
		ChunksPlanned   int64             `json:"chunks_planned"`
		ChunksDone      int64             `json:"chunks_done"`
		ChunksFailed    int64             `json:"chunks_failed"`
		Objects         int64             `json:"objects"`
		Bytes           int64             `json:"bytes"` // source bytes planned
		DurationSeconds float64           `json:"duration_seconds"`
		DocsPerSecond   float64           `json:"docs_per_second"`
		Runs            int               `json:"runs"`
		FailedChunks    []failedChunkJSON `json:"failed_chunks,omitempty"`
	}
	progressJSON struct {
		Phase          string            `json:"phase"`
		Records        recordsJSON       `json:"records"` // finished chunks only
		ChunksPlanned  int64             `json:"chunks_planned"`
		ChunksDone     int64             `json:"chunks_done"`
		ChunksFailed   int64             `json:"chunks_failed"`
		ChunksRunning  int               `json:"chunks_running"`
		ChunksPending  int               `json:"chunks_pending"`
		ListingDone    bool              `json:"listing_done"`
		Objects        int64             `json:"objects"`
		Bytes          int64             `json:"bytes"`
		DocsPerSecond  float64           `json:"docs_per_second"`
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
		ErrorType: r.ErrorType, Error: r.Error, Detached: r.Detached,
	}
	if !r.Start.IsZero() {
		j.StartTime = &r.Start
	}
	if !r.Close.IsZero() {
		j.CloseTime = &r.Close
	}
	if res := r.Result; res != nil {
		j.Result = &resultJSON{
			Records:       recordsOf(res.Stats),
			ChunksPlanned: res.ChunksPlanned, ChunksDone: res.ChunksDone, ChunksFailed: res.ChunksFailed,
			Objects: res.Objects, Bytes: res.Bytes,
			DurationSeconds: res.Duration.Seconds(), DocsPerSecond: docsPerSecond(res), Runs: res.Runs,
			FailedChunks: failedOf(res.Failed),
		}
	}
	if p := r.Progress; p != nil {
		j.Progress = &progressJSON{
			Phase: p.Phase, Records: recordsOf(p.Stats),
			ChunksPlanned: p.ChunksPlanned, ChunksDone: p.ChunksDone, ChunksFailed: p.ChunksFailed,
			ChunksRunning: p.ChunksRunning, ChunksPending: p.ChunksPending, ListingDone: p.ListingDone,
			Objects: p.Objects, Bytes: p.Bytes, DocsPerSecond: p.DocsPerSecond, ElapsedSeconds: p.Elapsed.Seconds(),
			Paused: p.Paused, Concurrency: p.Concurrency, Run: p.Run, FailedChunks: failedOf(p.Failed),
		}
	}
	return j
}

func recordsOf(s activities.ChunkStats) recordsJSON {
	return recordsJSON{Read: s.Read, Indexed: s.Indexed, DeadLettered: s.DeadLettered, Retried: s.Retried, BytesRead: s.Bytes}
}

func failedOf(failed []workflows.FailedChunk) []failedChunkJSON {
	var out []failedChunkJSON
	for _, fc := range failed {
		out = append(out, failedChunkJSON{Key: fc.Key, Start: fc.Start, End: fc.End, Checkpoint: fc.Resume, ErrorType: fc.ErrorType, Error: fc.Error})
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
