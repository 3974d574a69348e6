package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sluicehq/sluice/activities"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/essource"
	"github.com/sluicehq/sluice/internal/units"
	"github.com/sluicehq/sluice/worker"
	"github.com/sluicehq/sluice/workflows"
)

// sourceHelp is the --source help of the commands that load one S3 prefix or index.
const sourceHelp = "what to load (required): s3://bucket/prefix, or an existing index to copy: es://INDEX on the workers' own cluster, es://CLUSTER/INDEX on a cluster whose address and credentials each worker has in SLUICE_CLUSTER_<CLUSTER>_URL, _USERNAME, _PASSWORD, _API_KEY, _CA_CERT"

// backfillFlags are the flags of a backfill's input, shared by `sluice ingest` and
// `sluice reindex` (which loads its new index with a backfill): one parser for both.
type backfillFlags struct {
	source, format, compression, idField, deadLetter, pipeline *string
	query                                                      queryFlag
	maxBytesPerSecond                                          units.Bytes
	maxDocsPerSecond                                           *float64
	chunkSize, maxBytes                                        units.Bytes
	concurrency, maxOps, inflight, allowFailed                 *int
	flushInterval, retryMaxElapsed, heartbeatTimeout           *time.Duration
}

// addBackfillFlags registers the backfill flags on fs; sourceHelp describes --source (a prefix,
// or a schedule's template). The target index is not among them: each
// command names it its own way (--index, --alias).
func addBackfillFlags(fs *flag.FlagSet, sourceHelp string) *backfillFlags {
	lim := ingest.Limits{}.WithDefaults()
	f := &backfillFlags{chunkSize: units.Bytes(workflows.DefaultChunkSize), maxBytes: units.Bytes(lim.MaxBytes)}
	f.source = fs.String("source", "", sourceHelp)
	f.format = fs.String("format", ingest.FormatNDJSON, "record format: ndjson or csv (deadletter: dead letters to replay, as 'sluice dead-letters replay' does)")
	f.compression = fs.String("compression", ingest.CompressionAuto, "auto (from the extension and magic bytes), none, gzip or zstd")
	f.idField = fs.String("id-field", "", "top-level field (CSV: column) whose value becomes _id (default: a hash of bucket, key and offset)")
	fs.Var(&f.query, "query", fmt.Sprintf("es:// sources only: JSON file holding a query clause (such as {\"range\":{\"@timestamp\":{\"gte\":\"2024-01-01\"}}}) that selects the documents to copy, at most %d KiB (default: all)", essource.MaxQueryBytes>>10))
	f.pipeline = fs.String("pipeline", "", "ingest pipeline every document goes through (default: the index's own default pipeline, if any)")
	fs.Var(&f.chunkSize, "chunk-size", "cut uncompressed objects into byte ranges of this size, one activity each")
	f.concurrency = fs.Int("concurrency", workflows.DefaultConcurrency, fmt.Sprintf("chunks running at once, at most %d (change it later with set-concurrency)", workflows.MaxConcurrency))
	f.maxOps = fs.Int("max-ops", lim.MaxOps, "documents per _bulk request")
	fs.Var(&f.maxBytes, "max-bytes", "bytes per _bulk request body; a larger record is dead-lettered")
	f.flushInterval = fs.Duration("flush-interval", lim.FlushInterval, "send a partial batch after waiting this long")
	f.inflight = fs.Int("inflight", lim.Inflight, "_bulk requests in flight per chunk")
	f.retryMaxElapsed = fs.Duration("retry-max-elapsed", lim.RetryMaxElapsed, "stop retrying a batch whose items keep getting 429/5xx after this long (the chunk attempt fails and is retried)")
	f.maxDocsPerSecond = fs.Float64("max-docs-per-second", 0, "cap on documents sent per second by the whole backfill, across all workers (each running chunk gets 1/--concurrency of it); 0: none")
	fs.Var(&f.maxBytesPerSecond, "max-bytes-per-second", "cap on _bulk body bytes sent per second by the whole backfill, shared like --max-docs-per-second; 0: none")
	f.allowFailed = fs.Int("allow-failed-chunks", 0, "chunks that may fail for good before the backfill fails")
	f.heartbeatTimeout = fs.Duration("heartbeat-timeout", workflows.DefaultHeartbeatTimeout, "a chunk whose worker is silent this long is resumed elsewhere from its last checkpoint (heartbeats go out every 0.8 x this)")
	f.deadLetter = fs.String("dead-letter", "index", `where rejected records go: "index" (<index>`+ingest.DeadLetterIndexSuffix+`), "index:NAME", "file:NAME" (relative, under each worker's --dead-letter-dir), or "s3://bucket/prefix" (NDJSON objects; the worker must allow it with --dead-letter-s3)`)
	return f
}

// input is the backfill input the flags describe, loading into index.
func (f *backfillFlags) input(index string) workflows.BackfillInput {
	return workflows.BackfillInput{
		Version: workflows.BackfillVersion,
		Source: activities.Source{
			URI: *f.source, Format: *f.format, Compression: *f.compression, Index: index,
			IDField: *f.idField, DeadLetter: *f.deadLetter, Pipeline: *f.pipeline, Query: f.query.raw,
		},
		Limits: activities.Limits{
			MaxOps: *f.maxOps, MaxBytes: int64(f.maxBytes), FlushInterval: *f.flushInterval,
			Inflight: *f.inflight, RetryMaxElapsed: *f.retryMaxElapsed,
		},
		ChunkSize:         int64(f.chunkSize),
		Concurrency:       *f.concurrency,
		AllowFailedChunks: *f.allowFailed,
		MaxDocsPerSecond:  *f.maxDocsPerSecond,
		MaxBytesPerSecond: float64(f.maxBytesPerSecond),
		HeartbeatTimeout:  *f.heartbeatTimeout,
	}
}

// queryFlag is --query: the file is read, bounded and checked when the flag is parsed, and
// its JSON travels in the input (a query is configuration, not a secret).
type queryFlag struct {
	path string
	raw  json.RawMessage
}

func (q *queryFlag) String() string { return q.path }

func (q *queryFlag) Set(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, essource.MaxQueryBytes+1))
	switch {
	case err != nil:
		return err
	case len(data) > essource.MaxQueryBytes:
		return fmt.Errorf("%s is larger than %d KiB", path, essource.MaxQueryBytes>>10)
	case !json.Valid(data):
		return fmt.Errorf("%s is not valid JSON", path)
	}
	var clause map[string]json.RawMessage
	if json.Unmarshal(data, &clause) != nil || len(clause) == 0 {
		return fmt.Errorf(`%s: want a query clause, a JSON object such as {"term":{"status":"active"}}`, path)
	}
	if _, ok := clause["query"]; ok && len(clause) == 1 {
		return fmt.Errorf(`%s: give the clause itself, without the outer {"query": ...}`, path)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return err
	}
	q.path, q.raw = path, compact.Bytes()
	return nil
}

// runFlags are the flags of a command that starts a workflow and may follow it.
type runFlags struct {
	workflowID, taskQueue  *string
	wait, failOnDL, asJSON *bool
}

// addRunFlags registers the flags of starting and following a workflow of kind (backfill,
// reindex) whose default id is defaultID.
func addRunFlags(fs *flag.FlagSet, kind, defaultID string) *runFlags {
	return &runFlags{
		workflowID: fs.String("workflow-id", "", "workflow id (default: "+defaultID+")"),
		taskQueue:  fs.String("task-queue", worker.DefaultTaskQueue, "task queue the workers poll"),
		wait:       fs.Bool("wait", false, "follow the "+kind+" until it closes, showing progress, and exit with its outcome"),
		failOnDL:   fs.Bool("fail-on-dead-letters", false, "with --wait: exit 3 when records were dead-lettered"),
		asJSON:     fs.Bool("json", false, "print one JSON object instead of text: {workflow_id, run_id}, or with --wait the final status"),
	}
}

// parse parses args, which take no positional argument, and checks the run flags.
func (f *runFlags) parse(fs *flag.FlagSet, cmd string, args []string, stderr io.Writer) (ok bool, code int) {
	pos, ok, code := parseArgs(fs, args, stderr)
	switch {
	case !ok:
		return false, code
	case len(pos) > 0:
		return false, usageError(stderr, cmd, fmt.Errorf("unexpected arguments %q (the source is --source)", pos))
	case *f.taskQueue == "":
		return false, usageError(stderr, cmd, errors.New("--task-queue is empty"))
	}
	return true, 0
}
