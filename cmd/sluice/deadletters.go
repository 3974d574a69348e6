package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/s3source"
)

func init() {
	register("dead-letters", "look at dead letters in S3 (list) and load them again once their cause is fixed (replay)", runDeadLetters)
}

// deadLetterCommands are the subcommands of `sluice dead-letters`: list here, replay in
// deadletters_replay.go.
var deadLetterCommands = map[string]command{
	"list":   {"count the dead letters under s3://bucket/prefix by status and error type", runDeadLettersList},
	"replay": {"load the records of dead letters into an index again (a backfill of format deadletter)", runDeadLettersReplay},
}

func deadLettersUsage(w io.Writer) {
	fmt.Fprint(w, `usage: sluice dead-letters list|replay SOURCE [flags]

SOURCE is where an s3:// dead-letter target wrote (--dead-letter s3://bucket/prefix): every
object under it holds letters, one JSON object a line. This command reads S3 with the AWS
SDK's own variables (AWS_ENDPOINT_URL_S3, AWS_REGION, credentials), as a worker does.

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

// letterCounts are the dead letters under a prefix, counted.
type letterCounts struct {
	Source        string        `json:"source"`
	Objects       int           `json:"objects"`
	Letters       int64         `json:"letters"`
	NotReplayable int64         `json:"not_replayable"` // cut to their first 64 KiB, or unreadable
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

// scanLetters reads every letter object under the S3 URI source and counts its letters.
func scanLetters(ctx context.Context, source string) (letterCounts, error) {
	bucket, prefix, err := s3source.ParseURI(source)
	if err != nil {
		return letterCounts{}, err
	}
	src, err := s3source.New(ctx, s3source.Config{})
	if err != nil {
		return letterCounts{}, err
	}
	lc := letterCounts{Source: source}
	byKind := map[[2]string]*reasonCount{}
	for cursor := ""; ; {
		objs, next, err := src.ListPage(ctx, bucket, prefix, cursor, 1000)
		if err != nil {
			return lc, fmt.Errorf("listing %s: %w", source, err)
		}
		for _, o := range objs {
			if err := lc.addObject(ctx, src, bucket, o, byKind); err != nil {
				return lc, err
			}
		}
		if next == "" {
			break
		}
		cursor = next
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
		lc.Letters++
		l, err := ingest.ParseLetter(line)
		if err == nil {
			_, err = l.Original()
		}
		if err != nil {
			lc.NotReplayable++
		}
		if l.ErrorType == "" && err != nil {
			l.ErrorType, l.Reason = "unreadable", fmt.Sprintf("s3://%s/%s at offset %d: %v", bucket, o.Key, at, err)
		}
		k := [2]string{fmt.Sprint(l.Status), l.ErrorType}
		if byKind[k] == nil {
			byKind[k] = &reasonCount{Status: l.Status, ErrorType: l.ErrorType, Example: l.Reason}
		}
		byKind[k].Letters++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading s3://%s/%s at offset %d: %w", bucket, o.Key, off, err)
	}
	return nil
}

func (lc letterCounts) writeText(w io.Writer) {
	fmt.Fprintf(w, "%s: %d dead letters in %d objects (%d not replayable)\n", lc.Source, lc.Letters, lc.Objects, lc.NotReplayable)
	for _, r := range lc.Reasons {
		ex := r.Example
		if len(ex) > 120 {
			ex = ex[:120] + "..."
		}
		fmt.Fprintf(w, "  %8d  %3d %-32s  %s\n", r.Letters, r.Status, r.ErrorType, ex)
	}
}

// letterSource takes SOURCE, the first positional argument, which must be an s3:// URI.
func letterSource(pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return "", errors.New("SOURCE is required: s3://bucket/prefix, where an s3:// dead-letter target wrote")
	case len(pos) > 1:
		return "", fmt.Errorf("unexpected arguments %q", pos[1:])
	case strings.HasPrefix(pos[0], "index:"):
		return "", errors.New("replaying from a dead-letter index is not supported yet: write dead letters to S3 (--dead-letter s3://bucket/prefix) to replay them")
	}
	if _, _, err := s3source.ParseURI(pos[0]); err != nil {
		return "", err
	}
	return pos[0], nil
}

func runDeadLettersList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice dead-letters list", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sluice dead-letters list s3://bucket/prefix [--json]

Reads every letter object under the prefix and counts its dead letters by HTTP status (0: sluice
refused the record itself) and error type, with one reason of each kind, and how many cannot
be replayed (their letter holds only the first 64 KiB of the record).

`)
		fs.PrintDefaults()
	}
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, ok, code := parseArgs(fs, args, stderr)
	if !ok {
		return code
	}
	source, err := letterSource(pos)
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
