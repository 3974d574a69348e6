package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/sluicehq/sluice/workflows"
)

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

	meter rateMeter // the rates of the lines shown

	taskQueue string // the workflow's, for the hint when it does not answer; "" when not known
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
func (pp *progressPrinter) show(p *snapshot, err error, now time.Time) {
	if pp.w == nil {
		return
	}
	var line, key string
	if err != nil {
		line = "waiting for the progress query to be answered (" + workerHint(pp.taskQueue) + ")"
		key = line
	} else {
		line, key = progressLine(p), progressKey(p)
	}
	pp.showLine(line, key, now)
}

// showLine draws one line of progress; key changes when what it says changes.
func (pp *progressPrinter) showLine(line, key string, now time.Time) {
	if pp.w == nil {
		return
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

// workerHint is what sluice says when a workflow gets no answer from a worker (a progress
// query, a plan): the task queue it waits on, and how to start a worker there.
func workerHint(taskQueue string) string {
	if taskQueue == "" {
		return "is a worker polling the task queue?"
	}
	return fmt.Sprintf("is a worker polling task queue %q? start one with 'sluice worker --task-queue %s'", taskQueue, taskQueue)
}

// progressLine is one line of progress, ASCII only (its length is its width). Its counts
// include the running chunks' heartbeats. For an es:// source the source's progress is in
// documents, with their rate.
func progressLine(p *snapshot) string {
	phase := p.Phase
	if phase == "" {
		phase = workflows.PhaseRunning
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: chunks %s/%s", phase, commas(p.ChunksDone), planned(p.Progress))
	if p.ChunksRunning > 0 {
		fmt.Fprintf(&b, ", %d running", p.ChunksRunning)
	}
	if p.ChunksFailed > 0 {
		b.WriteString(failedCounts(p.ChunksFailed, p.ObjectsFailed))
	}
	fmt.Fprintf(&b, " | %s indexed", commas(p.Done.Indexed))
	if p.Done.DeadLettered > 0 {
		fmt.Fprintf(&b, ", %s dead-lettered", commas(p.Done.DeadLettered))
	}
	if p.Unit == unitDocs {
		// One rate: the documents read from the source, whose remainder the ETA is of.
		fmt.Fprintf(&b, " | %s, %s", p.Unit.of(p.BytesDone, p.Bytes), p.Unit.rate(p.BytesPerSecond))
	} else {
		fmt.Fprintf(&b, " | %s docs/s | %s, %s", commas(int64(p.DocsPerSecond+0.5)), p.Unit.of(p.BytesDone, p.Bytes), p.Unit.rate(p.BytesPerSecond))
	}
	if p.ETA > 0 {
		fmt.Fprintf(&b, ", ETA %s", p.ETA.Round(time.Second))
	}
	fmt.Fprintf(&b, " | %s", p.Elapsed.Round(time.Second))
	return b.String()
}

// progressKey changes when the work done changes, not with the clock.
func progressKey(p *snapshot) string {
	return fmt.Sprint(p.Phase, p.ChunksPlanned, p.ChunksDone, p.ChunksFailed, p.ChunksRunning, p.Done, p.BytesDone, p.Paused, p.Concurrency)
}

// planned is the number of chunks planned, with a "+" while the listing goes on.
func planned(p *workflows.Progress) string {
	s := commas(p.ChunksPlanned)
	if !p.ListingDone {
		s += "+"
	}
	return s
}
