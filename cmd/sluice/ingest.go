package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/essource"
	"github.com/sluicehq/sluice/ingest/s3source"
	"github.com/sluicehq/sluice/workflows"
)

func init() {
	register("ingest", "start a backfill from S3, or a copy of an existing index (es://), into an index (--wait: follow it to the end)", runIngest)
}

// runIngest starts BackfillWorkflow and, with --wait, follows it to its end. The workflow input
// holds the source, the index and tuning only: credentials stay in the workers' environment.
func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice ingest", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice ingest --source s3://bucket/prefix --index NAME [flags]
       sluice ingest --source es://[CLUSTER/]OLD-INDEX --index NAME [--query FILE] [flags]

Starts a backfill workflow that loads every object under the prefix into the index, and prints
its workflow id.

With an es:// source it copies the documents of an existing index (or alias, comma list or
pattern) instead, each keeping its _id (and _routing): es://INDEX reads the workers' own cluster
(ELASTICSEARCH_URL...), es://CLUSTER/INDEX a cluster each worker knows from its environment as
SLUICE_CLUSTER_<CLUSTER>_URL, _USERNAME, _PASSWORD, _API_KEY, _CA_CERT (CLUSTER upper-cased,
'-' as '_'); no address or credential goes in the source. Each primary shard is one chunk, read
through a point in time, so the copy is the source as of each shard's start; a chunk that
stops resumes after its last acknowledged document. --query FILE keeps only the documents a
query clause matches. --format, --compression and --id-field do not apply, and progress
(chunk sizes, bytes) counts documents instead of bytes. Workers ('sluice worker', 'sluice dev') on the task queue do the work, with
their own credentials. With --wait, follows it and exits with its outcome: 0 when every
record was indexed or dead-lettered, 1 when it failed or was canceled or terminated, 3 when it
completed with dead letters and --fail-on-dead-letters (or with chunks failed within
--allow-failed-chunks). Ctrl-C stops following; the backfill keeps running.

`)
		fs.PrintDefaults()
	}
	tf := addTemporalFlags(fs)
	bf := addBackfillFlags(fs, sourceHelp)
	index := fs.String("index", "", "target index or alias (required)")
	rf := addRunFlags(fs, "backfill", "sluice-<index>-<UTC timestamp>")
	plan := fs.Bool("plan", false, "load nothing: list the source (on a worker) and print what would be loaded (objects, chunks, bytes, compression) and an estimate")
	planWait := fs.Duration("plan-wait", defaultPlanWait, "with --plan: how long to wait for the plan; past it the plan is canceled and sluice says whether a worker took it up")
	if ok, code := rf.parse(fs, "ingest", args, stderr); !ok {
		return code
	}
	in := bf.input(*index)
	if err := validateIngest(in); err != nil {
		return usageError(stderr, "ingest", err)
	}
	id := *rf.workflowID
	if id == "" {
		id = defaultWorkflowID(in.Source.Index, time.Now())
		if *plan {
			id = "sluice-plan-" + id[len("sluice-"):]
		}
	}

	c, err := tf.Dial(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice ingest: %v\n", err)
		return exitFailed
	}
	defer c.Close()
	if *plan {
		return runPlan(ctx, c, tf, planRequest{in: in, id: id, taskQueue: *rf.taskQueue, wait: *planWait}, *rf.asJSON, stdout, stderr)
	}
	run, code, done := startWorkflow(ctx, c, tf, startRequest{
		cmd: "ingest", kind: "backfill", workflow: workflows.BackfillName, input: in,
		opts: client.StartWorkflowOptions{ID: id, TaskQueue: *rf.taskQueue, TypedSearchAttributes: workflows.SearchAttributes(in.Source), Memo: map[string]any{
			memoSource:     in.Source.URI,
			memoIndex:      in.Source.Index,
			memoDeadLetter: deadLetterTarget(in.Source),
		}},
		detail: fmt.Sprintf("%s -> index %s", in.Source.URI, in.Source.Index),
		wait:   *rf.wait, asJSON: *rf.asJSON,
	}, stdout, stderr)
	if done {
		return code
	}
	return waitAndReport(ctx, c, tf, "ingest", run.GetID(), run.GetRunID(), *rf.asJSON, *rf.failOnDL, stdout, stderr)
}

// validateIngest checks what the CLI can check before starting anything; the worker checks the
// rest (that the bucket exists, that its limits fit in its memory budget).
func validateIngest(in workflows.BackfillInput) error {
	src := in.Source
	if err := validateSource(src); err != nil {
		return err
	}
	if err := validateIndexName(src.Index); err != nil {
		return err
	}
	dl, err := ingest.ParseDeadLetter(src.DeadLetter, src.Index)
	if err != nil {
		return fmt.Errorf("--dead-letter: %w", err)
	}
	if src.DeadLetter == "" {
		return errors.New(`--dead-letter "": want "index", "index:NAME", "file:NAME" or "s3://bucket/prefix"`)
	}
	if src.DeadLetter != "index" && dl.Index != "" {
		if err := validateIndexName(dl.Index); err != nil {
			return fmt.Errorf("--dead-letter: %w", err)
		}
	}
	l := in.Limits
	switch {
	case in.ChunkSize <= 0:
		return errors.New("--chunk-size must be positive")
	case in.Concurrency < 1 || in.Concurrency > workflows.MaxConcurrency:
		return fmt.Errorf("--concurrency %d: want 1 to %d", in.Concurrency, workflows.MaxConcurrency)
	case l.MaxOps < 1:
		return errors.New("--max-ops must be at least 1")
	case l.MaxBytes < 1:
		return errors.New("--max-bytes must be positive")
	case l.FlushInterval <= 0:
		return errors.New("--flush-interval must be positive")
	case l.Inflight < 1:
		return errors.New("--inflight must be at least 1")
	case l.RetryMaxElapsed <= 0:
		return errors.New("--retry-max-elapsed must be positive")
	case in.MaxDocsPerSecond < 0 || in.MaxBytesPerSecond < 0:
		return errors.New("--max-docs-per-second and --max-bytes-per-second must not be negative")
	case in.AllowFailedChunks < 0:
		return errors.New("--allow-failed-chunks must not be negative")
	case in.HeartbeatTimeout < time.Second:
		return errors.New("--heartbeat-timeout must be at least 1s")
	}
	return ingest.Limits{MaxOps: l.MaxOps, MaxBytes: l.MaxBytes, Inflight: l.Inflight}.Validate()
}

// validateSource checks --source and the flags that describe how to read it.
func validateSource(src activities.Source) error {
	if src.URI == "" {
		return errors.New("--source is required (s3://bucket/prefix or es://[CLUSTER/]INDEX)")
	}
	if essource.Is(src.URI) {
		return validateIndexSource(src)
	}
	bucket, _, err := s3source.ParseURI(src.URI)
	if err != nil {
		return fmt.Errorf("--source: %w", err)
	}
	if strings.ContainsAny(bucket, "@:") {
		// s3://key:secret@bucket would put a credential into the workflow history.
		// Not echoed: it may hold a secret.
		return errors.New("--source: the bucket name holds '@' or ':'; credentials never go in the URI (workers read them from their environment)")
	}
	if src.Query != nil {
		return errors.New("--query applies to es:// sources only")
	}
	switch src.Format {
	case ingest.FormatNDJSON, ingest.FormatCSV, ingest.FormatDeadLetter:
	default:
		return fmt.Errorf("--format %q: want %s or %s (or %s: dead letters to replay)", src.Format, ingest.FormatNDJSON, ingest.FormatCSV, ingest.FormatDeadLetter)
	}
	switch src.Compression {
	case ingest.CompressionAuto, ingest.CompressionNone, ingest.CompressionGzip, ingest.CompressionZstd:
	default:
		return fmt.Errorf("--compression %q: want auto, none, gzip or zstd", src.Compression)
	}
	return nil
}

// validateIndexSource checks an es:// source: the flags about objects do not apply to it.
func validateIndexSource(src activities.Source) error {
	if _, err := essource.Parse(src.URI); err != nil {
		// Not echoed beyond what Parse says: the message names the source's parts only.
		return fmt.Errorf("--source: %w", err)
	}
	switch {
	case src.IDField != "":
		return errors.New("--id-field does not apply to an es:// source: documents keep their own _id")
	case src.Format != ingest.FormatNDJSON && src.Format != ingest.FormatDeadLetter:
		return errors.New("--format does not apply to an es:// source: documents are read as JSON from the index (deadletter: the index holds dead letters to replay)")
	case src.Compression != ingest.CompressionAuto:
		return errors.New("--compression does not apply to an es:// source")
	}
	return nil
}

// validateIndexName applies Elasticsearch's rules for index (and alias) names, so that a typo
// fails here rather than in every chunk.
func validateIndexName(name string) error {
	switch {
	case name == "":
		return errors.New("--index is required")
	case name == "." || name == "..":
		return fmt.Errorf("index name %q is not allowed", name)
	case strings.ContainsAny(name, `\/*?"<>|, #:`) || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' }):
		return fmt.Errorf(`index name %q: must not contain \ / * ? " < > | , # : spaces or control characters`, name)
	case strings.ToLower(name) != name:
		return fmt.Errorf("index name %q: must be lowercase", name)
	case strings.IndexAny(name, "-_+") == 0:
		return fmt.Errorf("index name %q: must not start with -, _ or +", name)
	case len(name) > 255:
		return fmt.Errorf("index name %q: longer than 255 bytes", name)
	}
	return nil
}

// defaultWorkflowID is sluice-<index>-<UTC time to the millisecond>: readable, sorted by start
// time, and distinct for two runs started by hand.
func defaultWorkflowID(index string, now time.Time) string {
	return "sluice-" + index + "-" + now.UTC().Format("20060102T150405.000Z")
}

// deadLetterTarget names where rejected records of src go, for the memo.
func deadLetterTarget(src activities.Source) string {
	if dl, err := ingest.ParseDeadLetter(src.DeadLetter, src.Index); err == nil {
		return dl.String()
	}
	return src.DeadLetter
}

// How long `sluice ingest` looks for a worker on the task queue before warning that there is
// none: a worker started a moment ago may not have polled yet.
const (
	noWorkerGrace      = 3 * time.Second
	noWorkerRetryEvery = 250 * time.Millisecond
)

// warnNoWorker says so when no worker polls the task queue within noWorkerGrace: what was
// started ("the backfill", "the plan") would wait for one without a sign. Best effort: any
// error is ignored.
func warnNoWorker(ctx context.Context, c client.Client, taskQueue, what string, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, noWorkerGrace+5*time.Second)
	defer cancel()
	deadline := time.Now().Add(noWorkerGrace)
	tick := time.NewTicker(noWorkerRetryEvery)
	defer tick.Stop()
	for {
		resp, err := c.DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil || len(resp.GetPollers()) > 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	fmt.Fprintf(stderr, "sluice ingest: warning: no worker has polled task queue %q lately; %s starts when one does ('sluice worker --task-queue %s')\n",
		taskQueue, what, taskQueue)
}
