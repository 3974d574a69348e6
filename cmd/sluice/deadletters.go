package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/ingest/essource"
	"github.com/sluicehq/sluice/ingest/s3source"
)

func init() {
	register("dead-letters", "look at dead letters in S3 or a dead-letter index (list) and load them again once their cause is fixed (replay)", runDeadLetters)
}

// deadLetterCommands are the subcommands of `sluice dead-letters`: list here, replay in
// deadletters_replay.go.
var deadLetterCommands = map[string]command{
	"list":   {"count the dead letters under s3://bucket/prefix or in index:NAME by status and error type", runDeadLettersList},
	"replay": {"load the records of dead letters into an index again (a backfill of format deadletter)", runDeadLettersReplay},
}

func deadLettersUsage(w io.Writer) {
	fmt.Fprint(w, `usage: sluice dead-letters list|replay SOURCE [flags]

SOURCE is where the dead letters are:
  s3://bucket/prefix  where an s3:// dead-letter target wrote (--dead-letter s3://bucket/prefix):
                      every object under it holds letters, one JSON object a line; read with
                      the AWS SDK's own variables (AWS_ENDPOINT_URL_S3, AWS_REGION, credentials)
  index:NAME          a dead-letter index of the workers' cluster (the default target,
                      <index>`+ingest.DeadLetterIndexSuffix+`, or --dead-letter index:NAME); read with the
                      ELASTICSEARCH_* variables, as a worker does; --query FILE picks letters

subcommands:
`)
	listCommands(w, deadLetterCommands, 8)
}

func runDeadLetters(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub, ok, code := pick(deadLetterCommands, args, "sluice dead-letters: unknown subcommand", deadLettersUsage, stderr)
	if !ok {
		return code
	}
	return sub.run(ctx, args[1:], stdout, stderr)
}

// letterCounts are the dead letters of a source, counted.
type letterCounts struct {
	Source        string        `json:"source"`
	Objects       int           `json:"objects"` // letter objects read (0 for an index)
	Letters       int64         `json:"letters"`
	NotReplayable int64         `json:"not_replayable"` // cut to their first 64 KiB (4 KiB in an index, on a 413), or unreadable
	Reasons       []reasonCount `json:"reasons"`        // by status and error type, most first
}

type reasonCount struct {
	Status    int    `json:"status"`
	ErrorType string `json:"error_type"`
	Letters   int64  `json:"letters"`
	Example   string `json:"example"` // the reason of the first such letter
}

// maxLetterLine bounds a line of a letter object: a letter holds at most 64 KiB of record,
// which JSON escaping can make six times longer.
const maxLetterLine = 1 << 20

// letterSource is SOURCE of `sluice dead-letters`: letter objects under an S3 prefix, or a
// dead-letter index of the workers' own cluster.
type letterSource struct {
	arg   string          // as given: s3://bucket/prefix or index:NAME
	index string          // the dead-letter index; "" for S3
	query json.RawMessage // --query: which letters of an index; nil: all
}

// uri is the backfill source that reads the letters: the S3 prefix as a folder (ending in
// "/", as the letter store writes <prefix>/<index>/..., so that s3://b/run1 does not read the
// letters of s3://b/run10), or es://NAME.
func (s letterSource) uri() string {
	if s.index != "" {
		return essource.Scheme + s.index
	}
	if _, prefix, err := s3source.ParseURI(s.arg); err == nil && prefix != "" && !strings.HasSuffix(prefix, "/") {
		return s.arg + "/"
	}
	return s.arg
}

// readsItsTarget refuses a dead-letter target that is inside the S3 folder the letters are
// read from: a replay would read the letters it writes again.
func (s letterSource) readsItsTarget(deadLetter string) error {
	if s.index != "" || !strings.HasPrefix(deadLetter, "s3://") {
		return nil
	}
	folder := strings.TrimSuffix(s.uri(), "/") + "/"
	if strings.HasPrefix(strings.TrimSuffix(deadLetter, "/")+"/", folder) {
		return fmt.Errorf("--dead-letter %s is inside %s, the letters this replay reads, so it would read what it writes: pick another prefix (such as %s-again)",
			deadLetter, folder, strings.TrimSuffix(folder, "/"))
	}
	return nil
}

// scanLetters reads every letter of the source and counts them, through the same
// ingest.Letter.Replay that the replay's decoder asks, so that "not replayable" means the same.
func scanLetters(ctx context.Context, source letterSource) (letterCounts, error) {
	lc := letterCounts{Source: source.arg}
	byKind := map[[2]string]*reasonCount{}
	var err error
	if source.index != "" {
		err = lc.addIndex(ctx, source, byKind)
	} else {
		err = lc.addPrefix(ctx, source.uri(), byKind)
	}
	if err != nil {
		return lc, err
	}
	for _, r := range byKind {
		lc.Reasons = append(lc.Reasons, *r)
	}
	slices.SortFunc(lc.Reasons, func(a, b reasonCount) int {
		if a.Letters != b.Letters {
			return int(b.Letters - a.Letters)
		}
		return strings.Compare(a.ErrorType, b.ErrorType)
	})
	return lc, nil
}

// addPrefix counts the letters of every object under the S3 URI source.
func (lc *letterCounts) addPrefix(ctx context.Context, source string, byKind map[[2]string]*reasonCount) error {
	bucket, prefix, err := s3source.ParseURI(source)
	if err != nil {
		return err
	}
	src, err := s3source.New(ctx, s3source.Config{})
	if err != nil {
		return err
	}
	for cursor := ""; ; {
		objs, next, err := src.ListPage(ctx, bucket, prefix, cursor, 1000)
		if err != nil {
			return fmt.Errorf("listing %s: %w", source, err)
		}
		for _, o := range objs {
			if err := lc.addObject(ctx, src, bucket, o, byKind); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// addObject counts the letters of one object.
func (lc *letterCounts) addObject(ctx context.Context, src *s3source.Source, bucket string, o s3source.Object, byKind map[[2]string]*reasonCount) error {
	rc, err := src.Open(ctx, bucket, o.Key, o.ETag, 0)
	if err != nil {
		return fmt.Errorf("reading s3://%s/%s: %w", bucket, o.Key, err)
	}
	defer rc.Close()
	lc.Objects++
	sc := bufio.NewScanner(rc)
	sc.Buffer(nil, maxLetterLine)
	var off int64
	for sc.Scan() {
		line := sc.Bytes()
		at := off
		off += int64(len(line)) + 1
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		lc.addLetter(line, byKind, func() string { return fmt.Sprintf("s3://%s/%s at offset %d", bucket, o.Key, at) })
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading s3://%s/%s at offset %d: %w", bucket, o.Key, off, err)
	}
	return nil
}

// addIndex counts the letters of a dead-letter index (those --query selects), read with a
// point-in-time search of the cluster the ELASTICSEARCH_* variables name, as a worker's.
func (lc *letterCounts) addIndex(ctx context.Context, source letterSource, byKind map[[2]string]*reasonCount) error {
	client, err := es.New(ctx, es.ConfigFromEnv(os.Getenv))
	if err != nil {
		return fmt.Errorf("connecting to the cluster of %s (ELASTICSEARCH_URL): %w", source.arg, err)
	}
	// Letters stored in the last refresh interval are not searchable yet: make them so, where
	// the user may (a 403 only means counting what is searchable).
	var se *es.StatusError
	if err := client.Refresh(ctx, source.index); err != nil && !(errors.As(err, &se) && se.Status == http.StatusForbidden) {
		return fmt.Errorf("refreshing %s: %w", source.arg, err)
	}
	const keep = time.Minute
	pit, err := client.OpenPIT(ctx, source.index, keep, es.NoShard)
	if err != nil {
		return fmt.Errorf("reading %s: %w", source.arg, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), client.RequestTimeout())
		defer cancel()
		_ = client.ClosePIT(cctx, pit)
	}()
	req := es.SearchRequest{PIT: pit, KeepAlive: keep, Size: 500, Query: source.query}
	for hits := -1; hits != 0; {
		page, err := client.Search(ctx, req)
		if err != nil {
			return fmt.Errorf("reading %s after %d letters: %w", source.arg, lc.Letters, err)
		}
		hits, req.SearchAfter, err = lc.addPage(page, source.arg, byKind, req.SearchAfter)
		page.Close()
		if err != nil {
			return fmt.Errorf("reading %s after %d letters: %w", source.arg, lc.Letters, err)
		}
		req.PIT = page.PIT()
	}
	return nil
}

// addPage counts the letters of one page of hits and returns how many it held and the sort
// values of its last (after, when it held none).
func (lc *letterCounts) addPage(page *es.SearchPage, name string, byKind map[[2]string]*reasonCount, after json.RawMessage) (int, json.RawMessage, error) {
	for n := 0; ; n++ {
		h, err := page.Next()
		if errors.Is(err, io.EOF) {
			return n, after, nil
		}
		if err != nil {
			return n, after, err
		}
		after = h.Sort
		lc.addLetter(h.Source, byKind, func() string { return fmt.Sprintf("%s document %s", name, h.ID) })
	}
}

// addLetter counts one letter; where names it in the example reason of an unreadable one.
func (lc *letterCounts) addLetter(data []byte, byKind map[[2]string]*reasonCount, where func() string) {
	lc.Letters++
	l, err := ingest.ParseLetter(data)
	if err == nil {
		_, _, err = l.Replay()
	}
	if err != nil {
		lc.NotReplayable++
	}
	if l.ErrorType == "" && err != nil {
		l.ErrorType, l.Reason = "unreadable", fmt.Sprintf("%s: %v", where(), err)
	}
	k := [2]string{fmt.Sprint(l.Status), l.ErrorType}
	if byKind[k] == nil {
		byKind[k] = &reasonCount{Status: l.Status, ErrorType: l.ErrorType, Example: l.Reason}
	}
	byKind[k].Letters++
}

func (lc letterCounts) writeText(w io.Writer) {
	in := fmt.Sprintf(" in %d objects", lc.Objects)
	if strings.HasPrefix(lc.Source, "index:") {
		in = ""
	}
	fmt.Fprintf(w, "%s: %d dead letters%s (%d not replayable)\n", lc.Source, lc.Letters, in, lc.NotReplayable)
	for _, r := range lc.Reasons {
		ex := r.Example
		if len(ex) > 120 {
			ex = ex[:120] + "..."
		}
		fmt.Fprintf(w, "  %8d  %3d %-32s  %s\n", r.Letters, r.Status, r.ErrorType, ex)
	}
}

// parseLetterSource takes SOURCE, the first positional argument: s3://bucket/prefix or
// index:NAME, with --query (index sources only).
func parseLetterSource(pos []string, query json.RawMessage) (letterSource, error) {
	switch {
	case len(pos) == 0:
		return letterSource{}, errors.New("SOURCE is required: s3://bucket/prefix (where an s3:// dead-letter target wrote) or index:NAME (a dead-letter index)")
	case len(pos) > 1:
		return letterSource{}, fmt.Errorf("unexpected arguments %q", pos[1:])
	}
	src := letterSource{arg: pos[0], query: query}
	if name, ok := strings.CutPrefix(pos[0], "index:"); ok {
		if _, err := essource.Parse(essource.Scheme + name); err != nil || strings.Contains(name, "/") {
			return letterSource{}, fmt.Errorf("SOURCE index:NAME: %q is not an index name of the workers' cluster", name)
		}
		src.index = name
		return src, nil
	}
	if _, _, err := s3source.ParseURI(pos[0]); err != nil {
		return letterSource{}, err
	}
	if query != nil {
		return letterSource{}, errors.New("--query applies to index:NAME sources only")
	}
	return src, nil
}

func runDeadLettersList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice dead-letters list", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice dead-letters list s3://bucket/prefix|index:NAME [--query FILE] [--json]

Reads every dead letter of the source (the objects under the prefix, or the documents of the
dead-letter index that --query selects) and counts them by HTTP status (0: sluice refused the
record itself) and error type, with one reason of each kind, and how many cannot be replayed
(their letter holds only the head of the record: 64 KiB, or 4 KiB in an index that refused a
larger letter). An index keeps the letters of records replayed since: pick with --query.

`)
		fs.PrintDefaults()
	}
	asJSON := fs.Bool("json", false, "print one JSON object")
	var query queryFlag
	fs.Var(&query, "query", "index:NAME only: JSON file holding a query clause that picks the letters (such as {\"term\":{\"status\":400}})")
	pos, ok, code := parseArgs(fs, args, stderr)
	if !ok {
		return code
	}
	source, err := parseLetterSource(pos, query.raw)
	if err != nil {
		return usageError(stderr, "dead-letters list", err)
	}
	lc, err := scanLetters(ctx, source)
	if err != nil {
		fmt.Fprintf(stderr, "sluice dead-letters list: %v\n", err)
		return exitFailed
	}
	if *asJSON {
		return writeJSON(stdout, stderr, lc)
	}
	lc.writeText(stdout)
	return exitOK
}
