package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/workflows"
)

func init() {
	register("list", "list recent and running backfills (newest first)", runList)
}

// runList lists backfills through Temporal's visibility API.
func runList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice list", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice list [flags]

Lists backfills, newest first: id, status, start, duration, source and index. --index and
--source filter by the search attributes SluiceIndex and SluiceSource, which 'sluice ingest'
sets (workers register them in the namespace); in the Temporal UI, search for
SluiceIndex = 'NAME'.

`)
		fs.PrintDefaults()
	}
	tf := addTemporalFlags(fs)
	limit := fs.Int("limit", 20, "show at most this many backfills")
	onlyRunning := fs.Bool("running", false, "only running backfills")
	index := fs.String("index", "", "only backfills into this index")
	source := fs.String("source", "", "only backfills of this source URI")
	asJSON := fs.Bool("json", false, "print one JSON object: {backfills: [...]}")
	pos, ok, code := parseArgs(fs, args, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "list", fmt.Errorf("unexpected arguments %q", pos))
	}
	if *limit < 1 {
		return usageError(stderr, "list", errors.New("--limit must be at least 1"))
	}
	c, err := tf.Dial(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice list: %v\n", err)
		return exitFailed
	}
	defer c.Close()
	rows, err := listBackfills(ctx, c, tf.Namespace(), listQuery(*onlyRunning, *index, *source), *limit)
	if err != nil {
		var inv *serviceerror.InvalidArgument
		if errors.As(err, &inv) && (*index != "" || *source != "") {
			err = fmt.Errorf("%w (are the search attributes SluiceIndex and SluiceSource registered? a sluice worker registers them when it starts)", err)
		}
		fmt.Fprintf(stderr, "sluice list: %v\n", err)
		return exitFailed
	}
	if *asJSON {
		return writeJSON(stdout, stderr, struct {
			Backfills []statusJSON `json:"backfills"`
		}{rows})
	}
	writeList(stdout, rows, time.Now())
	return exitOK
}

// listQuery is the visibility query of the backfills wanted.
func listQuery(onlyRunning bool, index, source string) string {
	q := []string{fmt.Sprintf("WorkflowType = '%s'", workflows.BackfillName)}
	if onlyRunning {
		q = append(q, "ExecutionStatus = 'Running'")
	}
	if index != "" {
		q = append(q, fmt.Sprintf("%s = %s", workflows.SearchAttributeIndex.GetName(), quoteQuery(index)))
	}
	if source != "" {
		q = append(q, fmt.Sprintf("%s = %s", workflows.SearchAttributeSource.GetName(), quoteQuery(source)))
	}
	return strings.Join(q, " AND ")
}

// quoteQuery quotes s as a string of the visibility query language.
func quoteQuery(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// listBackfills pages through the visibility API until it has limit rows.
func listBackfills(ctx context.Context, c client.Client, namespace, query string, limit int) ([]statusJSON, error) {
	var rows []statusJSON
	var token []byte
	for len(rows) < limit {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, PageSize: int32(min(limit-len(rows), 100)), NextPageToken: token, Query: query,
		})
		if err != nil {
			return nil, err
		}
		for _, info := range resp.GetExecutions() {
			r := &report{
				WorkflowID: info.GetExecution().GetWorkflowId(), RunID: info.GetExecution().GetRunId(),
				Type: info.GetType().GetName(), TaskQueue: info.GetTaskQueue(), Status: statusName(info.GetStatus()),
				Start: info.GetStartTime().AsTime(),
			}
			if info.GetCloseTime() != nil {
				r.Close = info.GetCloseTime().AsTime()
			}
			r.readMemo(info.GetMemo())
			rows = append(rows, r.toJSON())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	return rows[:min(len(rows), limit)], nil
}

// writeList prints one line per backfill.
func writeList(w io.Writer, rows []statusJSON, now time.Time) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no backfills")
		return
	}
	// The id column is as wide as the longest id (a reindex's load is <reindex id>-load), so
	// that the columns stay aligned.
	idWidth := len("WORKFLOW ID")
	for _, r := range rows {
		idWidth = max(idWidth, utf8.RuneCountInString(r.WorkflowID))
	}
	fmt.Fprintf(w, "%-*s %-16s %-24s %-9s %s\n", idWidth, "WORKFLOW ID", "STATUS", "STARTED", "DURATION", "SOURCE -> INDEX")
	for _, r := range rows {
		var started, took string
		if r.StartTime != nil {
			started = stamp(*r.StartTime)
			end := now
			if r.CloseTime != nil {
				end = *r.CloseTime
			}
			took = end.Sub(*r.StartTime).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%-*s %-16s %-24s %-9s %s -> %s\n", idWidth, r.WorkflowID, r.Status, started, took, r.Source, r.Index)
	}
}
