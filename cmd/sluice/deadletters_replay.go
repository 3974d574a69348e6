package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/workflows"
)

// runDeadLettersReplay replays the dead letters under an S3 prefix or in a dead-letter index
// as a backfill of format deadletter: the workflow gives it what every backfill has (chunks,
// checkpoints, resume, a bounded memory, reconciliation), and the decoder turns each letter
// back into its record with its original _id, so a replay run twice writes each document once.
func runDeadLettersReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice dead-letters replay", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice dead-letters replay s3://bucket/prefix|index:NAME --index NAME [--query FILE] [--wait] [flags]

Loads the records of dead letters into the index again, once their cause is fixed (a mapping
changed, a pipeline repaired). SOURCE is the letter objects under an S3 prefix, or a
dead-letter index of the workers' cluster (index:NAME, read as the backfill source
es://NAME; --query FILE picks which letters, such as {"term":{"status":400}}). It counts the
letters first (as 'list' does), then starts a backfill that reads them (format deadletter):
each record is sent as it was, with the _id it had (or its --id-field value: pass the same
one), so replaying twice does not duplicate. A letter that holds only the head of its record
(64 KiB; 4 KiB in an index that refused a larger letter) is not replayable: it is never sent
cut short. Records that fail again go to --dead-letter again, naming their original object,
offset and id, so a later replay of those letters still gives the original ids; replayed
into the index whose dead-letter index is SOURCE, a letter that fails again replaces itself.

With --wait it follows the backfill and reports: replayed = indexed + still failing + not
replayable. Exit 0 when every letter was indexed, 3 when some still fail or are not
replayable, 1 when the backfill failed.

`)
		fs.PrintDefaults()
	}
	tf := addTemporalFlags(fs)
	bf := addBackfillFlags(fs, "the letters: s3://bucket/prefix or index:NAME (or give it as the first argument)")
	index := fs.String("index", "", "index to load the records into (required)")
	rf := addRunFlags(fs, "replay", "sluice-replay-<index>-<UTC timestamp>")
	pos, ok, code := parseArgs(fs, args, stderr)
	if !ok {
		return code
	}
	if *bf.source != "" {
		pos = append([]string{*bf.source}, pos...)
	}
	source, err := parseLetterSource(pos, bf.query.raw)
	if err != nil {
		return usageError(stderr, "dead-letters replay", err)
	}
	*bf.source, *bf.format = source.uri(), ingest.FormatDeadLetter
	in := bf.input(*index)
	if err := validateIngest(in); err != nil {
		return usageError(stderr, "dead-letters replay", err)
	}
	if err := source.readsItsTarget(in.Source.DeadLetter); err != nil {
		return usageError(stderr, "dead-letters replay", err)
	}
	counts, err := scanLetters(ctx, source)
	if err != nil {
		fmt.Fprintf(stderr, "sluice dead-letters replay: %v\n", err)
		return exitFailed
	}
	if !*rf.asJSON {
		counts.writeText(stdout)
	}
	id := *rf.workflowID
	if id == "" {
		id = "sluice-replay-" + *index + "-" + time.Now().UTC().Format("20060102T150405.000Z")
	}
	c, err := tf.Dial(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice dead-letters replay: %v\n", err)
		return exitFailed
	}
	defer c.Close()
	run, code, done := startWorkflow(ctx, c, tf, startRequest{
		cmd: "dead-letters replay", kind: "replay", workflow: workflows.BackfillName, input: in,
		opts: client.StartWorkflowOptions{ID: id, TaskQueue: *rf.taskQueue, TypedSearchAttributes: workflows.SearchAttributes(in.Source), Memo: map[string]any{
			memoSource: in.Source.URI, memoIndex: in.Source.Index, memoDeadLetter: deadLetterTarget(in.Source),
		}},
		detail: fmt.Sprintf("%d dead letters from %s -> index %s", counts.Letters, source.arg, in.Source.Index),
		wait:   *rf.wait, asJSON: *rf.asJSON,
	}, stdout, stderr)
	if done {
		return code
	}
	r, code := awaitClose(ctx, c, tf, "dead-letters replay", run.GetID(), run.GetRunID(), *rf.asJSON, stdout, stderr)
	if r == nil {
		return code
	}
	return reportReplay(r, counts, deadLetterTarget(in.Source), *rf.asJSON, stdout, stderr)
}

// replayCounts is what became of the letters a replay read.
type replayCounts struct {
	Replayed      int64 `json:"replayed"` // letters read: indexed + still failing + not replayable
	Indexed       int64 `json:"indexed"`
	StillFailing  int64 `json:"still_failing"`
	NotReplayable int64 `json:"not_replayable"`
	// DeadLetter is where the still failing and the not replayable letters went again.
	DeadLetter string `json:"dead_letter"`
}

// reportReplay prints the backfill's report with the replay's counts and returns the exit code:
// the backfill's verdict, else 3 when letters remain.
func reportReplay(r *report, scanned letterCounts, target string, asJSON bool, stdout, stderr io.Writer) int {
	code, why := r.verdict(false)
	var rc *replayCounts
	if r.Result != nil {
		s := r.Result.Stats
		// The replay dead-letters the letters it cannot replay, and the records that fail again:
		// the scan told the first apart.
		notReplayable := min(scanned.NotReplayable, s.DeadLettered)
		rc = &replayCounts{Replayed: s.Read, Indexed: s.Indexed, StillFailing: s.DeadLettered - notReplayable,
			NotReplayable: notReplayable, DeadLetter: target}
		if code == exitOK && (rc.StillFailing > 0 || rc.NotReplayable > 0) {
			code, why = exitPartial, fmt.Sprintf("replay %s: %d letters still fail and %d are not replayable; they are in %s", r.WorkflowID, rc.StillFailing, rc.NotReplayable, target)
		}
		if s.Read != scanned.Letters {
			fmt.Fprintf(stderr, "sluice dead-letters replay: note: %d letters counted before the replay, %d read by it (letters were added or removed meanwhile)\n", scanned.Letters, s.Read)
		}
	}
	if asJSON {
		if c := writeJSON(stdout, stderr, struct {
			Letters  letterCounts  `json:"letters"`
			Replay   *replayCounts `json:"replay"`
			Backfill statusJSON    `json:"backfill"`
		}{scanned, rc, r.toJSON()}); c != exitOK {
			return c
		}
	} else {
		r.writeText(stdout)
		if rc != nil {
			fmt.Fprintf(stdout, "replayed %d dead letters: %d indexed, %d still failing, %d not replayable (those in %s)\n",
				rc.Replayed, rc.Indexed, rc.StillFailing, rc.NotReplayable, target)
		}
	}
	if why != "" {
		fmt.Fprintf(stderr, "sluice dead-letters replay: %s\n", why)
	}
	return code
}
