package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/internal/cli"
	"github.com/sluicehq/sluice/workflows"
)

func init() {
	register("reindex", "build a new index from S3 or an existing index, verify it, and move an alias to it atomically", runReindex)
}

const reindexUsage = `usage: sluice reindex --source s3://bucket/prefix --alias NAME [--index-config FILE] [flags]
       sluice reindex --source es://[CLUSTER/]OLD-INDEX --alias NAME [--index-config FILE] [--query FILE] [flags]

Starts a reindex workflow: it creates a new index <alias>-<UTC start time> with the settings and
mappings of --index-config (no refresh and no replicas during the load; the file's values, or the
cluster's defaults, are put back after it), loads it with a backfill (the flags of 'sluice
ingest'), refreshes it and checks its document count, then moves the alias to it in one
_aliases call (removed from every index it pointed to, added to the new one as write index).
An alias that does not exist yet is created; an index named like the alias is an error.
With an es:// source the new index is filled from an existing index (a new mapping for the
same documents, with their _id kept); see 'sluice ingest -h' for es:// sources and --query.

The count check: without --id-field the new index must hold exactly what the backfill indexed;
with --id-field, records that share an id overwrite each other, so it must hold between 1 and
that many. Nothing indexed is a failure: the alias never moves to an empty index.

Until the swap, a failure or a cancel ('sluice cancel ID') leaves the alias and the old indices
untouched and deletes the new index (--keep-failed keeps it). Dead letters go to
<alias>-dead-letters unless --dead-letter says otherwise.

With --wait, follows it and exits with its outcome: 0 when the alias moved; 1 when the reindex
failed or was canceled (the alias did not move); 3 when the alias moved but chunks failed within
--allow-failed-chunks, records were dead-lettered with --fail-on-dead-letters, or deleting
older indices (--keep-old) failed. Ctrl-C stops following; the reindex keeps running.

`

// runReindex starts ReindexWorkflow and, with --wait, follows it to its end.
func runReindex(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice reindex", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), reindexUsage)
		fs.PrintDefaults()
	}
	tf := addTemporalFlags(fs)
	bf := addBackfillFlags(fs, sourceHelp)
	rx := addReindexFlags(fs)
	rf := addRunFlags(fs, "reindex", "sluice-reindex-<alias>-<UTC timestamp>")
	if ok, code := rf.parse(fs, "reindex", args, stderr); !ok {
		return code
	}
	in, err := rx.input(bf, validateIngest)
	if err != nil {
		return usageError(stderr, "reindex", err)
	}
	id := *rf.workflowID
	if id == "" {
		id = defaultWorkflowID("reindex-"+in.Alias, time.Now())
	}

	c, err := tf.Dial(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice reindex: %v\n", err)
		return exitFailed
	}
	defer c.Close()
	run, code, done := startWorkflow(ctx, c, tf, startRequest{
		cmd: "reindex", kind: "reindex", workflow: workflows.ReindexName, input: in,
		opts: client.StartWorkflowOptions{ID: id, TaskQueue: *rf.taskQueue,
			Memo: map[string]any{memoSource: in.Backfill.Source.URI, memoIndex: in.Alias}},
		detail: fmt.Sprintf("%s -> a new index for alias %s", in.Backfill.Source.URI, in.Alias),
		wait:   *rf.wait, asJSON: *rf.asJSON,
	}, stdout, stderr)
	if done {
		return code
	}
	return waitReindex(ctx, c, tf, "reindex", run.GetID(), *rf.asJSON, *rf.failOnDL, stdout, stderr)
}

// reindexFlags are the flags of a reindex beyond its backfill's, shared by `sluice reindex`
// and `sluice schedule create --job reindex`: one parser for both.
type reindexFlags struct {
	alias, indexConfig *string
	keepOld            *int
	keepFailed         *bool
}

func addReindexFlags(fs *flag.FlagSet) *reindexFlags {
	return &reindexFlags{
		alias:       fs.String("alias", "", "alias to move to the new index (required); the new index is <alias>-<UTC start time>"),
		indexConfig: fs.String("index-config", "", fmt.Sprintf(`JSON file with the new index's {"settings":…,"mappings":…}, at most %d KiB (default: the cluster's defaults)`, activities.MaxIndexConfigBytes>>10)),
		keepOld:     fs.Int("keep-old", -1, "after the swap, keep this many older indices of the alias (<alias>-<time>) and delete the rest (default: keep all)"),
		keepFailed:  fs.Bool("keep-failed", false, "keep the new index when the reindex fails or is canceled before the swap (default: delete it)"),
	}
}

// input builds the workflow input from the flags and checks it; checkBackfill checks the
// backfill (its Source.Index set to the alias), as `sluice ingest` would, or with a schedule's
// template filled. --index-config is read here, bounded, and carried in the input (it is
// configuration, not a secret).
func (f *reindexFlags) input(bf *backfillFlags, checkBackfill func(workflows.BackfillInput) error) (workflows.ReindexInput, error) {
	alias := *f.alias
	if alias == "" {
		return workflows.ReindexInput{}, errors.New("--alias is required")
	}
	if err := validateIndexName(alias); err != nil {
		return workflows.ReindexInput{}, fmt.Errorf("--alias: %w", err)
	}
	if example := activities.ReindexIndexName(alias, time.Now()); len(example) > 255 {
		return workflows.ReindexInput{}, fmt.Errorf("--alias: too long for its new indices (%s: longer than 255 bytes)", example)
	}
	in := workflows.ReindexInput{Version: workflows.ReindexVersion, Alias: alias, Backfill: bf.input(alias), KeepFailed: *f.keepFailed}
	if err := checkBackfill(in.Backfill); err != nil {
		return workflows.ReindexInput{}, err
	}
	in.Backfill.Source.Index = "" // the workflow names the new index
	if *f.keepOld >= 0 {
		in.KeepOld = f.keepOld
	}
	if *f.indexConfig != "" {
		config, err := readIndexConfig(*f.indexConfig)
		if err != nil {
			return workflows.ReindexInput{}, err
		}
		in.IndexConfig = config
	}
	return in, nil
}

// readIndexConfig reads at most MaxIndexConfigBytes of an index configuration file and checks it
// as the CreateIndex activity will.
func readIndexConfig(path string) (json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--index-config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, activities.MaxIndexConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--index-config %s: %w", path, err)
	}
	if len(data) > activities.MaxIndexConfigBytes {
		return nil, fmt.Errorf("--index-config %s: larger than %d bytes", path, activities.MaxIndexConfigBytes)
	}
	if _, _, err := activities.LoadConfig(data); err != nil {
		return nil, fmt.Errorf("--index-config %s: %w", path, err)
	}
	var compact bytes.Buffer // the input goes into the history: without the file's indentation
	if err := json.Compact(&compact, data); err != nil {
		return nil, fmt.Errorf("--index-config %s: %w", path, err)
	}
	return compact.Bytes(), nil
}

// reindexReport is what sluice knows of one reindex workflow.
type reindexReport struct {
	WorkflowID, RunID, Status string
	Start, Close              time.Time
	Source, Alias             string // from the memo

	Progress         *workflows.ReindexProgress // the reindex's own progress query
	Load             *workflows.Progress        // the backfill child's, while it loads
	Result           *workflows.ReindexResult   // completed, or failed verification
	ErrorType, Error string
	Detached         bool
}

// inspectReindex describes reindex id and adds its progress (and its child's while loading), or
// its outcome once closed. ok is false when id is not a reindex.
func inspectReindex(ctx context.Context, c client.Client, id string) (r *reindexReport, ok bool, err error) {
	base, err := inspect(ctx, c, id, "")
	if err != nil || !isReindex(base.Type) {
		return nil, false, err
	}
	r = &reindexReport{WorkflowID: id, RunID: base.RunID, Status: base.Status, Start: base.Start, Close: base.Close,
		Source: base.Source, Alias: base.Index}
	timeout := queryTimeout
	if r.Status != statusRunning {
		timeout = closedQueryTimeout
		r.readOutcome(ctx, c)
	}
	r.Progress, _ = queryReindexProgress(ctx, c, id, r.RunID, timeout)
	if r.Status == statusRunning && r.Progress != nil && r.Progress.Phase == workflows.ReindexLoading {
		r.Load, _ = queryProgress(ctx, c, r.Progress.BackfillID, "", queryTimeout)
	}
	return r, true, nil
}

func (r *reindexReport) readOutcome(ctx context.Context, c client.Client) {
	var res workflows.ReindexResult
	err := c.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, &res)
	var (
		appErr   *temporal.ApplicationError
		canceled *temporal.CanceledError
	)
	switch {
	case err == nil:
		r.Result = &res
	case errors.As(err, &canceled):
	case errors.As(err, &appErr):
		r.ErrorType, r.Error = appErr.Type(), appErr.Message()
		if appErr.Type() == workflows.ErrTypeVerifyFailed && appErr.HasDetails() && appErr.Details(&res) == nil {
			r.Result = &res
		}
	default:
		r.Error = err.Error()
	}
}

func queryReindexProgress(ctx context.Context, c client.Client, id, runID string, timeout time.Duration) (*workflows.ReindexProgress, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := c.QueryWorkflow(ctx, id, runID, workflows.ReindexProgressQuery)
	if err != nil {
		return nil, err
	}
	var p workflows.ReindexProgress
	if err := v.Get(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// verdict is the exit code of a --wait on a closed reindex and, when not 0, why.
func (r *reindexReport) verdict(failOnDeadLetters bool) (code int, why string) {
	if r.Status != statusCompleted {
		if r.Error != "" {
			return exitFailed, fmt.Sprintf("reindex %s %s: %s; the alias did not move", r.WorkflowID, r.Status, r.Error)
		}
		return exitFailed, fmt.Sprintf("reindex %s was %s; the alias did not move", r.WorkflowID, r.Status)
	}
	if r.Result == nil {
		return exitOK, ""
	}
	bf := r.Result.Backfill
	switch {
	case bf.ChunksFailed > 0:
		return exitPartial, fmt.Sprintf("reindex %s moved alias %s, but %s (within --allow-failed-chunks)", r.WorkflowID, r.Result.Alias, workflows.DescribeFailures(bf.ChunksFailed, bf.ObjectsFailed))
	case failOnDeadLetters && bf.Stats.DeadLettered > 0:
		return exitPartial, fmt.Sprintf("reindex %s moved alias %s with %d records dead-lettered (--fail-on-dead-letters)", r.WorkflowID, r.Result.Alias, bf.Stats.DeadLettered)
	case r.Result.PruneError != "":
		return exitPartial, fmt.Sprintf("reindex %s moved alias %s, but deleting older indices failed: %s", r.WorkflowID, r.Result.Alias, r.Result.PruneError)
	}
	return exitOK, ""
}

// waitReindex follows reindex id to its end, prints the report and returns the exit code;
// `sluice reindex --wait` and `sluice status --wait` on a reindex share it.
func waitReindex(ctx context.Context, c client.Client, tf *cli.TemporalFlags, cmd, id string,
	asJSON, failOnDeadLetters bool, stdout, stderr io.Writer) int {
	progressOut := stdout
	if asJSON {
		progressOut = stderr
	}
	r, err := followReindex(ctx, c, id, newProgressPrinter(progressOut))
	if err != nil && ctx.Err() != nil {
		detachReindex(ctx, c, tf, cmd, id, asJSON, stdout, stderr)
		return exitInterrupted
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice %s: %v\n", cmd, describeError(id, tf.Namespace(), err))
		return exitFailed
	}
	code, why := r.verdict(failOnDeadLetters)
	if c := r.write(stdout, stderr, asJSON); c != exitOK {
		return c
	}
	if why != "" {
		fmt.Fprintf(stderr, "sluice %s: %s\n", cmd, why)
	}
	return code
}

// followReindex shows the reindex's phase (and, while loading, its backfill's progress) until it
// closes, then inspects it.
func followReindex(ctx context.Context, c client.Client, id string, pp *progressPrinter) (*reindexReport, error) {
	closed := make(chan error, 1)
	go func() { closed <- c.GetWorkflow(ctx, id, "").Get(ctx, nil) }()
	tick := time.NewTicker(progressPollEvery)
	defer tick.Stop()
	for {
		r, _, err := inspectReindex(ctx, c, id)
		if err != nil {
			pp.end()
			return nil, err
		}
		if r.Status != statusRunning {
			pp.end()
			return r, nil
		}
		line := r.progressLine()
		pp.showLine(line, line, time.Now())
		select {
		case <-ctx.Done():
			pp.end()
			return nil, ctx.Err()
		case <-closed:
		case <-tick.C:
		}
	}
}

// progressLine is one line of a running reindex's progress.
func (r *reindexReport) progressLine() string {
	p := r.Progress
	switch {
	case p == nil:
		return "waiting for the progress query to be answered (" + workerHint("") + ")"
	case r.Load != nil:
		return fmt.Sprintf("%s %s: %s", p.Phase, p.Index, progressLine(newSnapshot(r.Load, nil, unitOf(r.Source), time.Now(), nil)))
	case p.Count > 0:
		return fmt.Sprintf("%s %s: %s documents", p.Phase, p.Index, commas(p.Count))
	}
	return fmt.Sprintf("%s %s", p.Phase, p.Index)
}

func detachReindex(ctx context.Context, c client.Client, tf *cli.TemporalFlags, cmd, id string, asJSON bool, stdout, stderr io.Writer) {
	printDetached(stderr, tf, cmd, id)
	if !asJSON {
		return
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
	defer cancel()
	r, _, err := inspectReindex(bg, c, id)
	if err != nil || r == nil {
		r = &reindexReport{WorkflowID: id, Status: statusRunning}
	}
	r.Detached = true
	r.write(stdout, stderr, true)
}

// isReindex reports whether workflow type name is a reindex: ReindexWorkflow, or a scheduled
// run of one (ScheduledReindexWorkflow is the reindex itself).
func isReindex(name string) bool {
	return name == workflows.ReindexName || name == workflows.ScheduledReindexName
}

// statusReindex is `sluice status` of a reindex: ok is false when id is not one.
func statusReindex(ctx context.Context, c client.Client, tf *cli.TemporalFlags, id string, wait, asJSON, failOnDL bool,
	stdout, stderr io.Writer) (code int, ok bool) {
	resp, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil || !isReindex(resp.GetWorkflowExecutionInfo().GetType().GetName()) {
		return 0, false // not a reindex, or an error the generic status reports
	}
	if wait {
		return waitReindex(ctx, c, tf, "status", id, asJSON, failOnDL, stdout, stderr), true
	}
	r, _, err := inspectReindex(ctx, c, id)
	if err != nil {
		fmt.Fprintf(stderr, "sluice status: %v\n", describeError(id, tf.Namespace(), err))
		return exitFailed, true
	}
	return r.write(stdout, stderr, asJSON), true
}
