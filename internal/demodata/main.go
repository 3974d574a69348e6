// Command demodata writes the sample dataset of `make demo` into a directory, laid out as the
// S3 keys it is uploaded under:
//
//	logs/web/access-2026-11-29.ndjson      web access logs, plain: large enough to be split
//	logs/web/access-2026-11-30.ndjson.gz   web access logs, gzip
//	logs/app/events-2026-11-29.ndjson      application events, plain
//	logs/app/events-2026-11-30.ndjson.zst  application events, zstd
//	orders/orders-2026-11.csv              orders, CSV with a header row
//
// A few lines are broken on purpose (a line cut short, a plain-text line among the JSON, a
// trailing comma, a CSV row with a missing field), so that the demo shows dead letters.
// The data is the same on every run (fixed seed).
//
// It prints one line per object (key, bytes, good records, bad records), then the totals as
// KEY=VALUE lines that scripts/demo.sh reads to check the counts in the index:
//
//	go run ./internal/demodata -out DIR
//
// It is a separate program under internal/ so that nothing of it ends up in the sluice binary.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	out := flag.String("out", "", "directory to write the objects into (created)")
	accessLines := flag.Int("access-lines", 12000, "records of the large plain access log")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/demodata -out DIR [-access-lines N]")
		os.Exit(2)
	}
	objs, err := generate(*out, *accessLines)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demodata: %v\n", err)
		os.Exit(1)
	}
	printManifest(os.Stdout, objs)
}

// printManifest writes one line per object, then the totals per format as KEY=VALUE lines.
func printManifest(w io.Writer, objs []object) {
	var ndjsonGood, ndjsonBad, csvGood, csvBad int
	for _, o := range objs {
		fmt.Fprintf(w, "  %-40s %9d bytes  %6d records  %d bad\n", o.Key, o.Bytes, o.Good, o.Bad)
		if o.Format == "csv" {
			csvGood += o.Good
			csvBad += o.Bad
		} else {
			ndjsonGood += o.Good
			ndjsonBad += o.Bad
		}
	}
	fmt.Fprintf(w, "NDJSON_GOOD=%d\nNDJSON_BAD=%d\nCSV_GOOD=%d\nCSV_BAD=%d\n", ndjsonGood, ndjsonBad, csvGood, csvBad)
}
