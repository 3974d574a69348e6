package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/sluiceapi"
)

const (
	adminTimeout        = 5 * time.Minute  // start-to-close of an admin activity but the count
	refreshCountTimeout = 30 * time.Minute // a refresh of a large index after a load without one
)

// ReindexWorkflow builds a new index for in.Alias and moves the alias to it:
//
//  1. creating: check the alias (a concrete index of its name fails the reindex before
//     anything is done), create <alias>-<start time> from in.IndexConfig with load-friendly
//     settings (no refresh, no replicas);
//  2. loading: BackfillWorkflow as a child, into the new index;
//  3. verifying: restore the configuration's refresh interval and replicas, refresh, count
//     (see verifyCount);
//  4. swapping: one _aliases call removes the alias from every index it points to and adds it
//     to the new one as the write index;
//  5. pruning (in.KeepOld set): delete older indices of the alias's naming scheme.
//
// Until the swap, a failure or a cancellation leaves the alias and the indices it points to
// untouched, and deletes the new index (kept with in.KeepFailed) once the child has stopped
// writing to it. The swap is the commit point: from its start, a cancellation is ignored and
// the reindex completes. A failure to prune after the swap does not fail the reindex; the
// result says it.
func ReindexWorkflow(ctx workflow.Context, in ReindexInput) (ReindexResult, error) {
	if err := in.validate(); err != nil {
		return ReindexResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	r := &reindex{in: in, start: workflow.Now(ctx)}
	r.progress = ReindexProgress{
		Phase: ReindexCreating, Alias: in.Alias, Index: activities.ReindexIndexName(in.Alias, r.start),
		BackfillID: workflow.GetInfo(ctx).WorkflowExecution.ID + ReindexChildSuffix,
	}
	if err := workflow.SetQueryHandler(ctx, ReindexProgressQuery, func() (ReindexProgress, error) {
		p := r.progress
		p.Elapsed = workflow.Now(ctx).Sub(r.start)
		return p, nil
	}); err != nil {
		return ReindexResult{}, err
	}
	res, err := r.run(ctx)
	if err != nil {
		r.progress.Phase, r.progress.Error = ReindexFailed, err.Error()
		return res, err
	}
	r.progress.Phase = ReindexDone
	return res, nil
}

func (in ReindexInput) validate() error {
	if err := checkVersion("reindex", in.Version, ReindexVersion); err != nil {
		return err
	}
	switch {
	case in.Alias == "":
		return errors.New("reindex input: Alias is empty")
	case len(in.IndexConfig) > activities.MaxIndexConfigBytes:
		return fmt.Errorf("reindex input: IndexConfig of %d bytes, larger than %d", len(in.IndexConfig), activities.MaxIndexConfigBytes)
	case in.KeepOld != nil && *in.KeepOld < 0:
		return errors.New("reindex input: negative KeepOld")
	}
	return in.Backfill.validate()
}

// reindex is the state of one ReindexWorkflow; only its coroutine touches it.
type reindex struct {
	in       ReindexInput
	start    time.Time
	progress ReindexProgress
}

func (r *reindex) run(ctx workflow.Context) (ReindexResult, error) {
	p := &r.progress
	res := ReindexResult{Alias: r.in.Alias, Index: p.Index}
	var alias activities.AliasState
	if err := workflow.ExecuteActivity(adminContext(ctx, r.in, adminTimeout), activities.CheckAliasName,
		activities.AliasInput{Alias: r.in.Alias}).Get(ctx, &alias); err != nil {
		return res, err
	}
	p.Previous = alias.Indices

	var created activities.CreateIndexOutput
	err := workflow.ExecuteActivity(adminContext(ctx, r.in, adminTimeout), activities.CreateIndexName,
		activities.CreateIndexInput{Index: p.Index, Config: r.in.IndexConfig}).Get(ctx, &created)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeIndexExists {
		return res, err // not ours: nothing to clean up
	}
	if err == nil {
		err = r.load(ctx, created, &res)
	}
	if err != nil {
		return res, r.abandon(ctx, err)
	}

	// The commit point: from here on a cancellation is not honoured.
	commit, _ := workflow.NewDisconnectedContext(ctx)
	p.Phase = ReindexSwapping
	var swapped activities.SwapAliasOutput
	if err := workflow.ExecuteActivity(adminContext(commit, r.in, adminTimeout), activities.SwapAliasName,
		activities.SwapAliasInput{Alias: r.in.Alias, Index: p.Index}).Get(commit, &swapped); err != nil {
		return res, r.abandon(ctx, err)
	}
	res.Previous, p.Previous = swapped.Previous, swapped.Previous
	if r.in.KeepOld != nil {
		p.Phase = ReindexPruning
		var pruned activities.PruneIndicesOutput
		err := workflow.ExecuteActivity(adminContext(commit, r.in, adminTimeout), activities.PruneIndicesName,
			activities.PruneIndicesInput{Alias: r.in.Alias, Current: p.Index, Keep: *r.in.KeepOld}).Get(commit, &pruned)
		res.Deleted = pruned.Deleted
		if err != nil {
			res.PruneError = err.Error()
			workflow.GetLogger(ctx).Warn("deleting older indices failed; the alias points to the new index", "alias", r.in.Alias, "error", err)
		}
	}
	res.Duration = workflow.Now(ctx).Sub(r.start)
	return res, nil
}

// load fills the new index with the backfill child, restores the configured settings, and
// verifies the count.
func (r *reindex) load(ctx workflow.Context, created activities.CreateIndexOutput, res *ReindexResult) error {
	p := &r.progress
	p.Phase = ReindexLoading
	bf := r.in.Backfill
	bf.Source.Index = p.Index
	if bf.Source.DeadLetter == "" || bf.Source.DeadLetter == "index" {
		bf.Source.DeadLetter = "index:" + r.in.Alias + "-dead-letters"
	}
	child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: p.BackfillID,
		// A canceled reindex deletes the new index only once the child's chunks have stopped
		// writing to it: a write to a deleted index would create it again.
		WaitForCancellation: true,
		// The memo names source and index, as for every backfill sluice starts, so that
		// `sluice list` and `sluice status` show them (not recorded in the history's matching).
		Memo: map[string]any{sluiceapi.MemoSource: bf.Source.URI, sluiceapi.MemoIndex: bf.Source.Index},
	})
	if err := workflow.ExecuteChildWorkflow(child, BackfillName, bf).Get(ctx, &res.Backfill); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("loading index %s: %s", p.Index, errorMessage(err)), ErrTypeLoadFailed, err)
	}

	p.Phase = ReindexVerifying
	if err := workflow.ExecuteActivity(adminContext(ctx, r.in, adminTimeout), activities.PutSettingsName,
		activities.IndexSettingsInput{Index: p.Index, Settings: created.Restore}).Get(ctx, nil); err != nil {
		return err
	}
	var count activities.CountOutput
	if err := workflow.ExecuteActivity(adminContext(ctx, r.in, refreshCountTimeout), activities.RefreshCountName,
		activities.IndexInput{Index: p.Index}).Get(ctx, &count); err != nil {
		return err
	}
	res.Count, p.Count = count.Count, count.Count
	if err := verifyCount(count.Count, res.Backfill, bf.Source.IDField != ""); err != nil {
		res.Duration = workflow.Now(ctx).Sub(r.start)
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("verifying index %s: %v", p.Index, err), ErrTypeVerifyFailed, nil, *res)
	}
	return nil
}

// abandon deletes the new index (unless KeepFailed) after a failure or a cancellation before
// the swap, and returns the error the reindex ends with. The deletion runs on a disconnected
// context, so that it happens after a cancellation too, and refuses an index the alias points
// to (a swap whose answer was lost may have happened).
func (r *reindex) abandon(ctx workflow.Context, cause error) error {
	if ctx.Err() != nil {
		cause = workflow.ErrCanceled
	}
	if r.in.KeepFailed {
		return cause
	}
	r.progress.Phase = ReindexCleaning
	cleanup, _ := workflow.NewDisconnectedContext(ctx)
	err := workflow.ExecuteActivity(adminContext(cleanup, r.in, adminTimeout), activities.DeleteIndexName,
		activities.DeleteIndexInput{Index: r.progress.Index, UnlessAlias: r.in.Alias}).Get(cleanup, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("deleting the new index after a failed reindex", "index", r.progress.Index, "error", err)
	}
	return cause
}

// verifyCount is the rule a new index must pass before the alias moves to it. count is what
// the refreshed index holds; res what the backfill reports. Nothing indexed is a failure: the
// alias never moves to an empty index. Without an id field every record has its own id
// (replayed records overwrite themselves), so the index holds exactly what was indexed; with
// one, records that share an id overwrite each other, so it holds between 1 and that many.
// Records after the checkpoint of a chunk that failed (within AllowFailedChunks) may be in the
// index without being counted, which lifts the upper bound.
func verifyCount(count int64, res BackfillResult, idField bool) error {
	indexed := res.Stats.Indexed
	partial := res.ChunksFailed > 0
	switch {
	case indexed == 0:
		return fmt.Errorf("nothing was indexed (%d records read); the alias is not moved to an empty index", res.Stats.Read)
	case !idField && !partial && count != indexed:
		return fmt.Errorf("it holds %d documents, the backfill indexed %d", count, indexed)
	case !idField && count < indexed:
		return fmt.Errorf("it holds %d documents, fewer than the %d the backfill indexed", count, indexed)
	case idField && count < 1:
		return fmt.Errorf("it holds no document, the backfill indexed %d", indexed)
	case idField && !partial && count > indexed:
		return fmt.Errorf("it holds %d documents, more than the %d the backfill indexed", count, indexed)
	}
	return nil
}

// adminContext is ctx with the options of the admin activities: short, retried with backoff,
// non-retryable errors not retried.
func adminContext(ctx workflow.Context, in ReindexInput, timeout time.Duration) workflow.Context {
	attempts := in.Backfill.MaxAttempts
	if attempts == 0 {
		attempts = DefaultMaxAttempts
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    attempts,
			NonRetryableErrorTypes: append(nonRetryableErrorTypes(),
				activities.ErrTypeAliasIndex, activities.ErrTypeIndexExists, activities.ErrTypeAliasServes),
		},
	})
}
