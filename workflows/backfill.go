package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
)

const (
	planPageTimeout = 5 * time.Minute
	maxErrorBytes   = 512 // of one FailedChunk.Error
	failedInMessage = 5   // failed chunks named in the ChunksFailed message

	// A conservative count of the events a run writes, used for the MaxHistoryEvents bound next
	// to the server's own count (which the test environment does not provide). An activity
	// writes scheduled, started and closed events and wakes the workflow once (a workflow task
	// is three more events); a signal writes one event and wakes the workflow once.
	eventsPerActivity = 6
	eventsPerSignal   = 4
	eventsPerRun      = 5 // started, first workflow task, closing event
)

// nonRetryableErrorTypes are the activity error types a retry cannot fix.
func nonRetryableErrorTypes() []string {
	return []string{
		activities.ErrTypeObjectChanged,
		activities.ErrTypeAccessDenied,
		activities.ErrTypeNotFound,
		activities.ErrTypeUnauthorized,
		activities.ErrTypeBadInput,
		activities.ErrTypeBadConfig,
		activities.ErrTypeIndexNotAllowed,
		activities.ErrTypePermanent,
	}
}

// BackfillWorkflow moves the objects under in.Source.URI (or, for an es:// source, the
// documents of an existing index, one chunk per primary shard) into in.Source.Index.
//
// It plans the listing a page at a time (PlanPage), keeps at most Concurrency IngestChunk
// activities running, and continues-as-new when the server suggests it or the history passes
// MaxHistoryEvents; before that it stops starting chunks and waits for the running ones, since
// continue-as-new would cancel them. A retried chunk resumes from the checkpoint its previous
// attempt heartbeated (the activity reads it from its heartbeat details). A chunk that stops
// unfinished at a checkpoint (canceled) goes back to the pending queue with that offset in
// Chunk.Resume (and, for a slice of an index, its point-in-time cursor in Chunk.Search), so
// whoever starts it again resumes there; likewise FailedChunk.Resume.
//
// It completes with a BackfillResult when at most AllowFailedChunks chunks failed, and fails
// with an ErrTypeChunksFailed application error otherwise. When canceled it cancels the running
// chunks, waits until they have stopped, and returns the cancellation error; the progress query
// still answers with the final state.
func BackfillWorkflow(ctx workflow.Context, in BackfillInput) (BackfillResult, error) {
	if err := in.validate(); err != nil {
		return BackfillResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	in = in.withDefaults()
	st := in.State
	in.State = nil
	if st == nil {
		st = &BackfillState{}
	}
	if st.StartTime.IsZero() {
		st.StartTime = workflow.Now(ctx)
	}
	st.Concurrency = clampConcurrency(st.Concurrency, in.Concurrency)

	b := newBackfill(ctx, in, st)
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) {
		return b.progress(ctx), nil
	}); err != nil {
		return BackfillResult{}, err
	}
	return b.run(ctx)
}

func (in BackfillInput) validate() error {
	if err := checkVersion("backfill", in.Version, BackfillVersion); err != nil {
		return err
	}
	switch {
	case in.Source.URI == "":
		return errors.New("backfill input: Source.URI is empty")
	case in.ChunkSize < 0, in.PageSize < 0, in.Concurrency < 0, in.AllowFailedChunks < 0,
		in.HeartbeatTimeout < 0, in.ChunkTimeout < 0, in.MaxAttempts < 0, in.MaxHistoryEvents < 0,
		in.MaxDocsPerSecond < 0, in.MaxBytesPerSecond < 0:
		return errors.New("backfill input: negative size, count or timeout")
	}
	return nil
}

func (in BackfillInput) withDefaults() BackfillInput {
	if in.ChunkSize == 0 {
		in.ChunkSize = DefaultChunkSize
	}
	if in.PageSize == 0 {
		in.PageSize = DefaultPageSize
	}
	if in.Concurrency == 0 {
		in.Concurrency = DefaultConcurrency
	}
	in.Concurrency = min(in.Concurrency, MaxConcurrency)
	if in.HeartbeatTimeout == 0 {
		in.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if in.ChunkTimeout == 0 {
		in.ChunkTimeout = DefaultChunkTimeout
	}
	if in.MaxAttempts == 0 {
		in.MaxAttempts = DefaultMaxAttempts
	}
	if in.MaxHistoryEvents == 0 {
		in.MaxHistoryEvents = DefaultMaxHistoryEvents
	}
	return in
}

// retryPolicy is the retry policy of every activity the workflow runs.
func (in BackfillInput) retryPolicy() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		MaximumAttempts:        in.MaxAttempts,
		NonRetryableErrorTypes: nonRetryableErrorTypes(),
	}
}

func clampConcurrency(n, fallback int) int {
	if n < 1 {
		return fallback
	}
	return min(n, MaxConcurrency)
}

// backfill is the state of one run. Only the workflow's own coroutine touches it (query
// handlers run between workflow tasks), so it needs no locking.
type backfill struct {
	in BackfillInput // defaults applied, State nil
	st *BackfillState

	chunkCtx workflow.Context
	planCtx  workflow.Context
	logger   log.Logger

	waitCtx workflow.Context  // disconnected from cancellation
	sel     workflow.Selector // wakes the run: activities, signals, cancellation

	running []*runningChunk
	plan    workflow.Future // the PlanPage in flight, or nil

	canceled   bool  // the workflow was canceled
	failErr    error // the backfill failed for good: planning, or errStopped (stopOnConfigError)
	stopReason string
	draining   bool // continue-as-new is due: start nothing, wait for the window to empty
	final      string

	reconciling bool // every chunk is done; the Reconcile activity runs

	activities int // scheduled by this run
	signals    int // received by this run

	pauseCh, resumeCh, concurrencyCh workflow.ReceiveChannel
}

type runningChunk struct {
	chunk  activities.Chunk
	future workflow.Future
}

func newBackfill(ctx workflow.Context, in BackfillInput, st *BackfillState) *backfill {
	retry := in.retryPolicy
	return &backfill{
		in: in,
		st: st,
		chunkCtx: workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: in.ChunkTimeout,
			HeartbeatTimeout:    in.HeartbeatTimeout,
			RetryPolicy:         retry(),
			// On cancellation, wait until the chunk has stopped at a checkpoint and said so.
			WaitForCancellation: true,
		}),
		planCtx: workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: planPageTimeout,
			RetryPolicy:         retry(),
		}),
		logger:        workflow.GetLogger(ctx),
		pauseCh:       workflow.GetSignalChannel(ctx, PauseSignal),
		resumeCh:      workflow.GetSignalChannel(ctx, ResumeSignal),
		concurrencyCh: workflow.GetSignalChannel(ctx, SetConcurrencySignal),
	}
}

func (b *backfill) run(ctx workflow.Context) (BackfillResult, error) {
	// Waiting goes through a disconnected context: after a cancellation the workflow still has
	// to collect its chunks' outcomes and take signals.
	b.waitCtx, _ = workflow.NewDisconnectedContext(ctx)
	// One selector for the whole run: each activity's future is added once, when it is
	// scheduled, and fires once. A selector rebuilt on every wake-up would cost a pass over the
	// window per event.
	b.sel = workflow.NewSelector(b.waitCtx)
	b.addSignals(b.sel)
	b.sel.AddReceive(ctx.Done(), func(c workflow.ReceiveChannel, _ bool) {
		// Consume what woke the selector, or the case fires on every Select; once the closed
		// channel is seen empty, the selector drops the case.
		c.ReceiveAsync(nil)
		if !b.canceled {
			b.canceled = true
			b.logger.Info("Backfill canceled; waiting for running chunks to stop", "running", len(b.running))
		}
	})
	for {
		b.startWork(ctx)
		if len(b.running) == 0 && b.plan == nil {
			switch {
			case b.canceled:
				b.final = PhaseCanceled
				return b.result(ctx), ctx.Err()
			case b.failErr == errStopped:
				b.final = PhaseFailed
				res := b.result(ctx)
				return res, temporal.NewNonRetryableApplicationError(b.stopReason, ErrTypeChunksFailed, nil, res)
			case b.failErr != nil:
				b.final = PhaseFailed
				return b.result(ctx), b.failErr
			case b.st.ListingDone && len(b.st.Pending) == 0:
				return b.finish(ctx)
			case b.draining:
				return b.result(ctx), b.continueAsNew(ctx)
			}
			// Paused with nothing running: wait for a signal.
		}
		b.sel.Select(b.waitCtx)
	}
}

// stopping reports whether the run has stopped starting work. It is where continue-as-new
// becomes due: checked before each activity is scheduled, so a run never schedules past the
// bound, however many chunks a refill would start at once.
func (b *backfill) stopping(ctx workflow.Context) bool {
	if !b.draining && !b.canceled && b.failErr == nil && b.continueAsNewDue(ctx) {
		b.draining = true
		b.logger.Info("Continue-as-new due; draining running chunks",
			"running", len(b.running), "historyLength", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	}
	return b.canceled || b.failErr != nil || b.draining
}

// startWork fills the window from the pending queue and plans the next page when the queue
// runs low. At most one page is in flight, and a page is asked for only when fewer chunks than
// the window are pending, so Pending stays below one page plus one window.
func (b *backfill) startWork(ctx workflow.Context) {
	for !b.stopping(ctx) && !b.st.Paused && len(b.running) < b.st.Concurrency && len(b.st.Pending) > 0 {
		rc := &runningChunk{chunk: b.st.Pending[0]}
		b.st.Pending = b.st.Pending[1:]
		rc.future = workflow.ExecuteActivity(b.chunkCtx, activities.IngestChunkName, activities.IngestChunkInput{
			Source: b.in.Source,
			Chunk:  rc.chunk,
			Limits: b.chunkLimits(),
		})
		b.sel.AddFuture(rc.future, func(f workflow.Future) { b.chunkFinished(rc, f) })
		b.running = append(b.running, rc)
		b.activities++
	}
	if len(b.st.Pending) == 0 {
		b.st.Pending = nil // let the drained page's array go
	}
	if !b.stopping(ctx) && !b.st.Paused && b.plan == nil && !b.st.ListingDone && len(b.st.Pending) < b.st.Concurrency {
		b.plan = workflow.ExecuteActivity(b.planCtx, activities.PlanPageName, activities.PlanPageInput{
			Source:    b.in.Source,
			Cursor:    b.st.Cursor,
			PageSize:  b.in.PageSize,
			ChunkSize: b.in.ChunkSize,
		})
		b.sel.AddFuture(b.plan, b.pageFinished)
		b.activities++
	}
}

func (b *backfill) pageFinished(f workflow.Future) {
	b.plan = nil
	var out activities.PlanPageOutput
	if err := f.Get(b.waitCtx, &out); err != nil {
		if b.canceled && temporal.IsCanceledError(err) {
			return
		}
		b.failErr = planFailed(b.st.Cursor, err)
		b.logger.Warn("Planning failed; waiting for running chunks", "error", err, "running", len(b.running))
		return
	}
	b.st.Pending = append(b.st.Pending, out.Chunks...)
	b.st.ChunksPlanned += int64(len(out.Chunks))
	b.st.Objects += int64(out.Objects)
	b.st.Bytes += out.Bytes
	b.st.Cursor = out.Next
	b.st.ListingDone = out.Next == ""
}

func (b *backfill) chunkFinished(rc *runningChunk, f workflow.Future) {
	for i, r := range b.running {
		if r == rc {
			b.running = append(b.running[:i], b.running[i+1:]...)
			break
		}
	}
	var out activities.ChunkProgress
	err := f.Get(b.waitCtx, &out)
	switch {
	case err == nil:
		b.addProgress(out)
		b.st.BytesDone += sourceBytes(rc.chunk)
		b.st.balance(rc.chunk.Name(), out.Stats)
		b.st.ChunksDone++
	case b.canceled && temporal.IsCanceledError(err):
		// Neither done nor failed: back to the queue, from the checkpoint the chunk stopped at,
		// so the final state says what is left to do.
		c := rc.chunk
		if hb, ok := reached(c, err); ok {
			c.ResumeObject, c.Resume, c.Search = hb.Object, hb.Checkpoint, hb.Search
			b.addProgress(hb)
		}
		b.st.Pending = append([]activities.Chunk{c}, b.st.Pending...)
	default:
		fc := failedChunk(rc.chunk, err)
		if hb, ok := reached(rc.chunk, err); ok {
			fc.ResumeObject, fc.Resume = hb.Object, hb.Checkpoint
			b.addProgress(hb)
		}
		b.chunkFailed(fc)
	}
}

// addProgress adds what a chunk got through to the totals: its counters, and the objects of a
// packed chunk that changed or vanished after planning, each counted as a failed chunk of its
// own (as it would be had it been planned alone).
func (b *backfill) addProgress(p activities.ChunkProgress) {
	b.st.Stats.Add(p.Stats)
	for _, fo := range p.Failed {
		b.st.ObjectsFailed++
		b.chunkFailed(FailedChunk{Key: fo.Key, End: -1, ErrorType: fo.ErrorType, Error: boundMessage(fo.Error), Object: true})
	}
}

// chunkFailed counts a chunk (or object of a packed chunk) that failed for good.
func (b *backfill) chunkFailed(fc FailedChunk) {
	b.st.ChunksFailed++
	if len(b.st.Failed) < MaxFailedListed {
		b.st.Failed = append(b.st.Failed, fc)
	}
	b.logger.Warn("Chunk failed", "key", fc.Key, "start", fc.Start, "end", fc.End,
		"errorType", fc.ErrorType, "error", fc.Error)
	b.stopOnConfigError(fc)
}

// stopOnConfigError fails the backfill when fc failed for a reason every other chunk would
// hit too (credentials, a target that takes no writes, a configuration that cannot work): it
// starts nothing more, waits for the running chunks and fails with that reason, instead of
// failing every chunk of the dataset one by one.
func (b *backfill) stopOnConfigError(fc FailedChunk) {
	switch fc.ErrorType {
	case activities.ErrTypeUnauthorized, activities.ErrTypeIndexNotAllowed, activities.ErrTypeBadConfig:
	default:
		return
	}
	if b.failErr != nil || workflow.GetVersion(b.waitCtx, stopOnConfigErrorChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	b.failErr = errStopped
	b.stopReason = "stopped: a chunk failed for a reason every chunk would meet: " + describeFailed(fc)
	b.logger.Warn("Backfill stopping; waiting for running chunks", "errorType", fc.ErrorType, "running", len(b.running))
}

// errStopped marks failErr when stopOnConfigError stopped the backfill; run returns an
// ErrTypeChunksFailed error with the final result instead.
var errStopped = errors.New("stopped")

// stopOnConfigErrorChange versions stopOnConfigError: histories written before it went on
// after such a failure.
const stopOnConfigErrorChange = "stop-on-config-error"

// sourceBytes is the length of c's range in the stored object, compressed or not.
func sourceBytes(c activities.Chunk) int64 {
	end := c.End
	if end < 0 || end > c.Size {
		end = c.Size
	}
	return max(end-c.Start, 0)
}

// reached returns the checkpoint a chunk that ended with err got to, when err carries one past
// where the chunk started: IngestChunk puts its last ChunkProgress in the details of its canceled
// and non-retryable errors, and the server hands the last heartbeat to a timeout. Its Stats
// count the records from c.Resume (or c.Start) to the checkpoint.
func reached(c activities.Chunk, err error) (activities.ChunkProgress, bool) {
	var hb activities.ChunkProgress
	var canceledErr *temporal.CanceledError
	var appErr *temporal.ApplicationError
	var timeoutErr *temporal.TimeoutError
	var decoded error = errNoDetails
	switch {
	case errors.As(err, &canceledErr):
		if canceledErr.HasDetails() {
			decoded = canceledErr.Details(&hb)
		}
	case errors.As(err, &appErr):
		if appErr.HasDetails() {
			decoded = appErr.Details(&hb)
		}
	case errors.As(err, &timeoutErr):
		if timeoutErr.HasLastHeartbeatDetails() {
			decoded = timeoutErr.LastHeartbeatDetails(&hb)
		}
	}
	return hb, decoded == nil && hb.After(activities.ChunkProgress{Object: c.ResumeObject, Checkpoint: max(c.Start, c.Resume)})
}

var errNoDetails = errors.New("no details")

// failedChunk describes a chunk that failed for good with err.
func failedChunk(c activities.Chunk, err error) FailedChunk {
	fc := FailedChunk{Key: c.Name(), Start: c.Start, End: c.End, Resume: c.Resume, ResumeObject: c.ResumeObject, Error: errorMessage(err)}
	var appErr *temporal.ApplicationError
	var timeoutErr *temporal.TimeoutError
	switch {
	case errors.As(err, &appErr):
		fc.ErrorType = appErr.Type()
	case errors.As(err, &timeoutErr):
		fc.ErrorType = "Timeout"
	}
	return fc
}

// errorMessage is the innermost useful message of an activity error, bounded in size: the
// ActivityError wrapper repeats ids that mean nothing to a user.
// planFailed is the error of a PlanPage that failed on the page after cursor.
func planFailed(cursor string, err error) error {
	page := "the first page"
	if cursor != "" {
		page = fmt.Sprintf("the page after cursor %q", cursor)
	}
	return temporal.NewNonRetryableApplicationError("planning "+page+": "+errorMessage(err), ErrTypePlanFailed, err)
}

func errorMessage(err error) string {
	var msg string
	var appErr *temporal.ApplicationError
	var timeoutErr *temporal.TimeoutError
	switch {
	case errors.As(err, &appErr):
		msg = appErr.Message()
	case errors.As(err, &timeoutErr):
		msg = timeoutErr.Error()
	default:
		msg = err.Error()
	}
	return boundMessage(msg)
}

// boundMessage cuts msg to maxErrorBytes.
func boundMessage(msg string) string {
	if len(msg) > maxErrorBytes {
		msg = strings.ToValidUTF8(msg[:maxErrorBytes], "") + "…"
	}
	return msg
}

// addSignals adds the signal channels to sel; each receive applies one signal.
func (b *backfill) addSignals(sel workflow.Selector) {
	sel.AddReceive(b.pauseCh, func(c workflow.ReceiveChannel, _ bool) { b.applyPause(c) })
	sel.AddReceive(b.resumeCh, func(c workflow.ReceiveChannel, _ bool) { b.applyResume(c) })
	sel.AddReceive(b.concurrencyCh, func(c workflow.ReceiveChannel, _ bool) { b.applyConcurrency(c) })
}

func (b *backfill) applyPause(c workflow.ReceiveChannel) {
	c.ReceiveAsync(nil)
	b.signals++
	b.st.Paused = true
	b.logger.Info("Backfill paused", "running", len(b.running))
}

func (b *backfill) applyResume(c workflow.ReceiveChannel) {
	c.ReceiveAsync(nil)
	b.signals++
	b.st.Paused = false
	b.logger.Info("Backfill resumed")
}

func (b *backfill) applyConcurrency(c workflow.ReceiveChannel) {
	var n int
	c.ReceiveAsync(&n)
	b.signals++
	if n < 1 {
		b.logger.Warn("Ignoring set-concurrency below 1", "value", n)
		return
	}
	b.st.Concurrency = min(n, MaxConcurrency)
	b.logger.Info("Concurrency set", "concurrency", b.st.Concurrency)
}

// drainSignals applies the signals that arrived but were not received yet, so that none is
// lost across continue-as-new. If one arrives after this, the server refuses the
// continue-as-new and the workflow task runs again, seeing it.
func (b *backfill) drainSignals() {
	for _, ch := range []struct {
		c     workflow.ReceiveChannel
		apply func(workflow.ReceiveChannel)
	}{{b.pauseCh, b.applyPause}, {b.resumeCh, b.applyResume}, {b.concurrencyCh, b.applyConcurrency}} {
		for ch.c.Len() > 0 {
			ch.apply(ch.c)
		}
	}
}

// continueAsNewDue reports whether the history is large enough to move to a new run. A run
// that has scheduled nothing never continues, so a suggestion that a fresh run cannot clear
// (a huge input) does not loop.
func (b *backfill) continueAsNewDue(ctx workflow.Context) bool {
	if b.activities == 0 {
		return false
	}
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() ||
		info.GetCurrentHistoryLength() > b.in.MaxHistoryEvents ||
		b.estimatedEvents() > b.in.MaxHistoryEvents
}

func (b *backfill) estimatedEvents() int {
	return eventsPerRun + eventsPerActivity*b.activities + eventsPerSignal*b.signals
}

func (b *backfill) continueAsNew(ctx workflow.Context) error {
	b.drainSignals()
	next := b.in
	st := *b.st
	st.Runs++
	next.State = &st
	b.final = PhaseContinued
	b.logger.Info("Continuing as new", "run", st.Runs+1, "chunksDone", st.ChunksDone,
		"pending", len(st.Pending), "activitiesThisRun", b.activities)
	return workflow.NewContinueAsNewError(ctx, BackfillName, next)
}

func (b *backfill) finish(ctx workflow.Context) (BackfillResult, error) {
	res := b.result(ctx)
	if b.st.ChunksFailed <= int64(b.in.AllowFailedChunks) {
		if err := b.reconcile(ctx, &res); err != nil {
			b.final = PhaseFailed
			if temporal.IsCanceledError(err) {
				b.final = PhaseCanceled
			}
			return res, err
		}
		b.final = PhaseCompleted
		return res, nil
	}
	b.final = PhaseFailed
	shown := b.st.Failed[:min(len(b.st.Failed), failedInMessage)]
	parts := make([]string, 0, len(shown)+1)
	for _, fc := range shown {
		parts = append(parts, describeFailed(fc))
	}
	if n := b.st.ChunksFailed - int64(len(shown)); n > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", n))
	}
	msg := fmt.Sprintf("%s (allowed %d): %s", DescribeFailures(b.st.ChunksFailed, b.st.ObjectsFailed), b.in.AllowFailedChunks, strings.Join(parts, "; "))
	return res, temporal.NewNonRetryableApplicationError(msg,
		ErrTypeChunksFailed, nil, res)
}

func describeFailed(fc FailedChunk) string {
	if fc.Object {
		return fmt.Sprintf("object %s (of a packed chunk): %s: %s", fc.Key, fc.ErrorType, fc.Error)
	}
	end := "end"
	if fc.End >= 0 {
		end = fmt.Sprint(fc.End)
	}
	return fmt.Sprintf("%s [%d,%s): %s: %s", fc.Key, fc.Start, end, fc.ErrorType, fc.Error)
}

// DescribeFailures says what failed for good: "N chunks failed", "M objects failed" or "N
// chunks and M objects failed", where chunksFailed counts both (as AllowFailedChunks does) and
// objectsFailed the objects of packed chunks, which fail alone while their chunk goes on.
func DescribeFailures(chunksFailed, objectsFailed int64) string {
	switch chunks := chunksFailed - objectsFailed; {
	case objectsFailed == 0:
		return fmt.Sprintf("%d chunks failed", chunks)
	case chunks == 0:
		return ObjectCount(objectsFailed) + " failed"
	default:
		return fmt.Sprintf("%d chunks and %s failed", chunks, ObjectCount(objectsFailed))
	}
}

// ObjectCount is "1 object" or "N objects".
func ObjectCount(n int64) string {
	if n == 1 {
		return "1 object"
	}
	return fmt.Sprintf("%d objects", n)
}

func (b *backfill) elapsed(ctx workflow.Context) time.Duration {
	return workflow.Now(ctx).Sub(b.st.StartTime)
}

func (b *backfill) result(ctx workflow.Context) BackfillResult {
	return BackfillResult{
		Stats:         b.st.Stats,
		ChunksPlanned: b.st.ChunksPlanned,
		ChunksDone:    b.st.ChunksDone,
		ChunksFailed:  b.st.ChunksFailed,
		ObjectsFailed: b.st.ObjectsFailed,
		Objects:       b.st.Objects,
		Bytes:         b.st.Bytes,
		Failed:        append([]FailedChunk(nil), b.st.Failed...),
		Duration:      b.elapsed(ctx),
		Runs:          b.st.Runs + 1,
	}
}

func (b *backfill) phase() string {
	switch {
	case b.final != phaseInProgress:
		return b.final
	case b.canceled:
		return PhaseCanceling
	case b.reconciling:
		return PhaseReconciling
	case b.failErr != nil:
		return PhaseFailing
	case b.draining:
		return PhaseDraining
	case b.st.Paused:
		return PhasePaused
	}
	return PhaseRunning
}

func (b *backfill) progress(ctx workflow.Context) Progress {
	elapsed := b.elapsed(ctx)
	p := Progress{
		Phase:             b.phase(),
		ChunksPlanned:     b.st.ChunksPlanned,
		ChunksDone:        b.st.ChunksDone,
		ChunksFailed:      b.st.ChunksFailed,
		ObjectsFailed:     b.st.ObjectsFailed,
		ChunksRunning:     len(b.running),
		ChunksPending:     len(b.st.Pending),
		Objects:           b.st.Objects,
		Bytes:             b.st.Bytes,
		BytesDone:         b.st.BytesDone,
		Stats:             b.st.Stats,
		Elapsed:           elapsed,
		StartTime:         b.st.StartTime,
		Paused:            b.st.Paused,
		Concurrency:       b.st.Concurrency,
		ListingDone:       b.st.ListingDone,
		Failed:            append([]FailedChunk(nil), b.st.Failed...),
		Run:               b.st.Runs + 1,
		HistoryLength:     workflow.GetInfo(ctx).GetCurrentHistoryLength(),
		ActivitiesThisRun: b.activities,
	}
	if elapsed > 0 {
		p.DocsPerSecond = float64(b.st.Stats.Indexed) / elapsed.Seconds()
	}
	return p
}
