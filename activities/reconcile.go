package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/ingest"
)

// ReconcileName is the name the Reconcile activity is registered under.
const ReconcileName = "Reconcile"

// ReconcileInput asks how many documents the target index holds, to compare with what a
// backfill indexed.
type ReconcileInput struct {
	Source       Source
	Indexed      int64 // documents the backfill indexed: the sum of its chunks' Stats.Indexed
	DeadLettered int64 // records it dead-lettered; they count when the dead-letter index is the target
}

// ReconcileOutput is the index's count and what it means.
type ReconcileOutput struct {
	Count int64 // the target's _count after a refresh
	// Expected is how many documents of this backfill the target must hold at least: Indexed,
	// plus DeadLettered when the dead letters go to the target index itself.
	Expected int64
	// Missing is Expected - Count when the ids are distinct (no IDField: every record has its
	// own _id) and Count is short of Expected: documents acknowledged but not in the index. 0
	// otherwise.
	Missing int64
	Note    string // explains a difference that is not a failure; empty when Count == Expected
}

// Reconcile refreshes the target index and counts its documents. It judges the count against
// the input (see ReconcileOutput); the workflow fails when documents are missing.
func (a *Activities) Reconcile(ctx context.Context, in ReconcileInput) (ReconcileOutput, error) {
	if a.Engine == nil || a.Engine.Bulk == nil {
		err := errors.New("activities built without an Elasticsearch client")
		return ReconcileOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadConfig, err)
	}
	// An index that does not exist holds no document: nothing was indexed into it (every chunk
	// failed or dead-lettered all it read), which judgeCount then judges like any count.
	count, err := refreshAndCount(ctx, a.Engine.Bulk, in.Source.Index, true)
	if err != nil {
		return ReconcileOutput{}, err
	}
	return judgeCount(in, count), nil
}

// judgeCount compares the index's count with what the backfill indexed.
//
// With the default ids every record has its own _id, so the index holds at least every
// document the backfill indexed: fewer is a loss. It may hold more: documents that were there
// before (a rerun overwrites its own, which does not count twice), or written by others.
// With --id-field, records that repeat an id overwrite each other, so fewer documents than
// indexed records is what duplicate ids in the data look like, and is not a failure. So it is
// for a replay of dead letters (FormatDeadLetter): a letter stored twice keeps one id.
func judgeCount(in ReconcileInput, count int64) ReconcileOutput {
	out := ReconcileOutput{Count: count, Expected: in.Indexed}
	if dl, err := ingest.ParseDeadLetter(in.Source.DeadLetter, in.Source.Index); err == nil && dl.Index == in.Source.Index {
		out.Expected += in.DeadLettered
	}
	diff := count - out.Expected
	switch {
	case diff > 0:
		out.Note = fmt.Sprintf("the index holds %d documents more than this backfill indexed: documents that were there before, or written by others", diff)
	case diff < 0 && in.Source.Format == ingest.FormatDeadLetter && in.Source.IDField == "":
		out.Note = fmt.Sprintf("the index holds %d documents fewer than this replay indexed: letters stored twice (a resumed chunk stores again what it had stored past its checkpoint) carry their record's original id, and overwrote each other", -diff)
	case diff < 0 && in.Source.IDField != "":
		out.Note = fmt.Sprintf("the index holds %d documents fewer than this backfill indexed: records whose --id-field value %q repeats another's overwrote it", -diff, in.Source.IDField)
	case diff < 0:
		out.Missing = -diff
	}
	return out
}
