package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sluicehq/sluice/activities"
)

// The reconciliation at the end of a backfill: every record read was indexed or dead-lettered
// (checked per object, from the counters of its completed chunks), and the index holds the
// documents indexed (the Reconcile activity's _count).

const (
	// ErrTypeReconcileFailed is the type of the application error the workflow fails with when
	// the counts do not add up. Its details hold the BackfillResult, with its Reconciliation.
	ErrTypeReconcileFailed = "ReconcileFailed"
	// PhaseReconciling: every chunk is done; counting the index.
	PhaseReconciling = "reconciling"

	// reconcileChange is the workflow.GetVersion change id of the Reconcile activity, which
	// histories recorded before it do not schedule.
	reconcileChange  = "reconcile"
	reconcileTimeout = 5 * time.Minute
)

// Unbalanced is an object whose completed chunks read records that were neither indexed nor
// dead-lettered (their counters summed over the object's chunks counted so far).
type Unbalanced struct {
	Key          string
	Read         int64
	Indexed      int64
	DeadLettered int64
}

// Reconciliation is what the end-of-run check found.
type Reconciliation struct {
	Count    int64  // the index's _count after a refresh
	Expected int64  // documents of this backfill it must hold (see activities.ReconcileOutput)
	Missing  int64  // documents indexed but not in the index; > 0 fails the run
	Note     string // explains a count that differs without failing (ids repeated, documents there before)
	// UnbalancedChunks counts the completed chunks whose records read != indexed +
	// dead-lettered; > 0 fails the run. Unbalanced names their objects (at most
	// MaxFailedListed).
	UnbalancedChunks int64
	Unbalanced       []Unbalanced
}

// OK reports whether the counts add up.
func (r *Reconciliation) OK() bool { return r.Missing == 0 && r.UnbalancedChunks == 0 }

// balance checks a completed chunk's counters and notes its object when they do not add up.
func (st *BackfillState) balance(key string, s activities.ChunkStats) {
	if s.Read == s.Indexed+s.DeadLettered {
		return
	}
	st.UnbalancedChunks++
	for i := range st.Unbalanced {
		if u := &st.Unbalanced[i]; u.Key == key {
			u.Read, u.Indexed, u.DeadLettered = u.Read+s.Read, u.Indexed+s.Indexed, u.DeadLettered+s.DeadLettered
			return
		}
	}
	if len(st.Unbalanced) < MaxFailedListed {
		st.Unbalanced = append(st.Unbalanced, Unbalanced{Key: key, Read: s.Read, Indexed: s.Indexed, DeadLettered: s.DeadLettered})
	}
}

// reconcile runs the Reconcile activity and puts its answer with the per-object check into
// res. It returns the error the run fails with, or nil. Runs recorded before the activity
// existed skip it (res.Reconciliation stays nil).
func (b *backfill) reconcile(ctx workflow.Context, res *BackfillResult) error {
	if workflow.GetVersion(ctx, reconcileChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	b.reconciling = true
	defer func() { b.reconciling = false }()
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: reconcileTimeout,
		RetryPolicy:         b.in.retryPolicy(),
	})
	var out activities.ReconcileOutput
	err := workflow.ExecuteActivity(actx, activities.ReconcileName, activities.ReconcileInput{
		Source: b.in.Source, Indexed: b.st.Stats.Indexed, DeadLettered: b.st.Stats.DeadLettered,
	}).Get(ctx, &out)
	if err != nil {
		if temporal.IsCanceledError(err) {
			return err
		}
		return temporal.NewNonRetryableApplicationError("reconciling: "+errorMessage(err), ErrTypeReconcileFailed, err, *res)
	}
	rec := &Reconciliation{Count: out.Count, Expected: out.Expected, Missing: out.Missing, Note: out.Note,
		UnbalancedChunks: b.st.UnbalancedChunks, Unbalanced: append([]Unbalanced(nil), b.st.Unbalanced...)}
	res.Reconciliation = rec
	if rec.OK() {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(rec.problem(b.in.Source.Index), ErrTypeReconcileFailed, nil, *res)
}

// problem says what does not add up.
func (r *Reconciliation) problem(index string) string {
	var parts []string
	if r.Missing > 0 {
		parts = append(parts, fmt.Sprintf("index %s holds %d documents, %d fewer than this backfill indexed", index, r.Count, r.Missing))
	}
	if r.UnbalancedChunks > 0 {
		objs := make([]string, 0, failedInMessage+1)
		for _, u := range r.Unbalanced[:min(len(r.Unbalanced), failedInMessage)] {
			objs = append(objs, fmt.Sprintf("%s (%d read, %d indexed, %d dead-lettered)", u.Key, u.Read, u.Indexed, u.DeadLettered))
		}
		if n := len(r.Unbalanced) - len(objs); n > 0 {
			objs = append(objs, fmt.Sprintf("and %d more objects", n))
		}
		parts = append(parts, fmt.Sprintf("%d chunks read records neither indexed nor dead-lettered: %s", r.UnbalancedChunks, strings.Join(objs, "; ")))
	}
	return "reconciliation failed: " + strings.Join(parts, "; ")
}
