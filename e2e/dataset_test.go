package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The datasets are generated from fixed seeds: the same bytes on every run, and every record's
// object and offset (in the decompressed stream) known, hence its default _id.

// line is one line a generated object holds, and what sluice must make of it.
type line struct {
	Key    string
	Offset int64  // of the line's first byte in the (decompressed) object
	Text   string // without its line terminator
	Valid  bool   // an indexable record; false: it must be dead-lettered
}

// object is a generated S3 object.
type object struct {
	Key   string
	Body  []byte // as stored (compressed when Codec is set)
	Codec string // "", "gzip" or "zstd"
	Lines []line // the records (valid or not); blank lines are not records
}

// objectBuilder writes the lines of one object and remembers their offsets.
type objectBuilder struct {
	key   string
	buf   bytes.Buffer
	lines []line
}

func newObject(key string) *objectBuilder { return &objectBuilder{key: key} }

// record appends a record followed by eol ("\n", "\r\n" or "" for a last line without one).
func (b *objectBuilder) record(text string, valid bool, eol string) {
	b.lines = append(b.lines, line{Key: b.key, Offset: int64(b.buf.Len()), Text: text, Valid: valid})
	b.buf.WriteString(text)
	b.buf.WriteString(eol)
}

// raw appends bytes that hold no record (blank lines, a byte-order mark).
func (b *objectBuilder) raw(s string) { b.buf.WriteString(s) }

func (b *objectBuilder) plain() object {
	return object{Key: b.key, Body: bytes.Clone(b.buf.Bytes()), Lines: b.lines}
}

func (b *objectBuilder) gzip(t *testing.T) object {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b.buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return object{Key: b.key, Body: out.Bytes(), Codec: "gzip", Lines: b.lines}
}

func (b *objectBuilder) zstd(t *testing.T) object {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return object{Key: b.key, Body: zw.EncodeAll(b.buf.Bytes(), nil), Codec: "zstd", Lines: b.lines}
}

// doc is the JSON of generated record seq of key: strings with escapes and non-ASCII text,
// numbers, a boolean, an array and a nested object. pad adds that many bytes of text.
func doc(r *rand.Rand, key string, seq int, pad int) string {
	words := []string{"alpha", "beta", "gamma", "delta", "épsilon", "ζήτα", "eta \"quoted\"", "the\\slash", "tab\there", "日本語"}
	var msg strings.Builder
	for msg.Len() < pad {
		msg.WriteString(words[r.IntN(len(words))])
		msg.WriteByte(' ')
	}
	d := map[string]any{
		"object": key,
		"seq":    seq,
		"n":      r.Int64N(1 << 40),
		"ok":     r.IntN(2) == 0,
		"msg":    msg.String(),
		"tags":   []string{words[r.IntN(len(words))], words[r.IntN(len(words))]},
		"nested": map[string]any{"level": r.IntN(5), "name": fmt.Sprintf("n-%d", seq%97)},
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Lines that are not documents: OpenSearch (and Elasticsearch) reject each of them with
// mapper_parsing_exception. The last one is valid JSON at odds with the index's mapping
// ("n" is a long).
var invalidLines = []string{
	`this is not json`,
	`{"unterminated": "abc`,
	`{"a":1,,"b":2}`,
	`[1,2,3]`,
	`{"x":1}}`,
	`{"n":"not-a-number","object":"mapping conflict"}`,
}

// eolFor picks a line ending: mostly "\n", sometimes "\r\n".
func eolFor(r *rand.Rand) string {
	if r.IntN(4) == 0 {
		return "\r\n"
	}
	return "\n"
}

// blankFor sometimes returns blank lines to put between records: empty, spaces, tabs, CRLF.
func blankFor(r *rand.Rand) string {
	switch r.IntN(12) {
	case 0:
		return "\n"
	case 1:
		return "   \n"
	case 2:
		return "\t\r\n"
	case 3:
		return "\n \n\n"
	}
	return ""
}

// ndjsonObject generates key with n records of about pad bytes each, with mixed line endings
// and blank lines, the invalid lines listed in bad (by record index, each taking the next line
// of invalidLines), and no newline after the last record when noFinalNewline.
func ndjsonObject(r *rand.Rand, key string, n, pad int, bad map[int]bool, noFinalNewline bool) *objectBuilder {
	b := newObject(key)
	inv := 0
	for i := range n {
		b.raw(blankFor(r))
		eol := eolFor(r)
		if i == n-1 && noFinalNewline {
			eol = ""
		}
		if bad[i] {
			b.record(invalidLines[inv%len(invalidLines)], false, eol)
			inv++
			continue
		}
		b.record(doc(r, key, i, pad), true, eol)
	}
	return b
}

// count returns the valid and invalid records of objs.
func count(objs []object) (valid, invalid int64) {
	for _, o := range objs {
		for _, l := range o.Lines {
			if l.Valid {
				valid++
			} else {
				invalid++
			}
		}
	}
	return valid, invalid
}

// bulkObjects generates n NDJSON objects of at most size bytes each under prefix, valid
// records only, puts them and returns the number of records.
func bulkObjects(t *testing.T, e *env, r *rand.Rand, prefix string, n, size int) int64 {
	t.Helper()
	var records int64
	var buf bytes.Buffer
	for i := range n {
		buf.Reset()
		key := fmt.Sprintf("%sobject-%02d.ndjson", prefix, i)
		for seq := 0; ; seq++ {
			d := doc(r, key, seq, 150+r.IntN(100))
			if buf.Len()+len(d)+1 > size {
				break
			}
			buf.WriteString(d)
			buf.WriteByte('\n')
			records++
		}
		e.s3.Put(t, e.bucket, key, buf.Bytes())
	}
	return records
}

// createBulkIndex creates index with one primary shard and no replica, so that the primaries'
// index_total counts every index operation exactly once.
func createBulkIndex(t *testing.T, e *env, index string) {
	t.Helper()
	e.es.createIndex(t, index, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`)
}
