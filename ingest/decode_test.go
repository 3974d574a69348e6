package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// readAll decodes the records a range owns, as the engine does.
func readRange(t testing.TB, data []byte, format string, start, end int64, header []string) ([]Record, int64) {
	t.Helper()
	spec := rangeSpec{end: end}
	var src io.Reader = bytes.NewReader(data)
	if start > 0 {
		spec.base, spec.skipPartial = start-1, true
		src = bytes.NewReader(data[start-1:])
	}
	lines := newOwnedLines(src, spec, 1<<20, nil)
	var dec Decoder = &ndjsonDecoder{lines: lines, maxBytes: 1 << 20}
	if format == FormatCSV {
		dec = newCSVDecoder(lines, header, 1<<20)
	}
	var out []Record
	for {
		r, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return out, dec.Pos()
		}
		if err != nil {
			t.Fatal(err)
		}
		r.Data = append([]byte(nil), r.Data...)
		out = append(out, r)
	}
}

func TestNDJSONDecoder(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string
		offs []int64
	}{
		{"lf", "{\"a\":1}\n{\"a\":2}\n", []string{`{"a":1}`, `{"a":2}`}, []int64{0, 8}},
		{"crlf", "{\"a\":1}\r\n{\"a\":2}\r\n", []string{`{"a":1}`, `{"a":2}`}, []int64{0, 9}},
		{"blank lines", "\n{\"a\":1}\n  \n\r\n{\"a\":2}\n\n", []string{`{"a":1}`, `{"a":2}`}, []int64{1, 14}},
		{"no final newline", "{\"a\":1}\n{\"a\":2}", []string{`{"a":1}`, `{"a":2}`}, []int64{0, 8}},
		{"bom", "\xEF\xBB\xBF{\"a\":1}\n", []string{`{"a":1}`}, []int64{0}},
		{"empty", "", nil, nil},
		{"invalid passes through", "not json\n", []string{"not json"}, []int64{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, pos := readRange(t, []byte(c.in), FormatNDJSON, 0, -1, nil)
			if len(recs) != len(c.want) {
				t.Fatalf("got %d records, want %d: %+v", len(recs), len(c.want), recs)
			}
			for i, r := range recs {
				if string(r.Data) != c.want[i] || r.Offset != c.offs[i] || r.Err != nil {
					t.Errorf("record %d = %q at %d (err %v), want %q at %d", i, r.Data, r.Offset, r.Err, c.want[i], c.offs[i])
				}
			}
			if pos != int64(len(c.in)) {
				t.Errorf("final position %d, want %d", pos, len(c.in))
			}
		})
	}
}

func TestNDJSONTooLong(t *testing.T) {
	long := strings.Repeat("x", 100)
	in := "{\"a\":1}\n" + long + "\n{\"a\":2}\n"
	lines := newOwnedLines(strings.NewReader(in), rangeSpec{end: -1}, 50, nil)
	dec := &ndjsonDecoder{lines: lines, maxBytes: 50}
	var got []Record
	for {
		r, err := dec.Next()
		if err != nil {
			break
		}
		r.Data = append([]byte(nil), r.Data...)
		got = append(got, r)
	}
	if len(got) != 3 || got[1].Err == nil || !got[1].Truncated || got[1].Offset != 8 || got[1].End != 109 || string(got[2].Data) != `{"a":2}` {
		t.Fatalf("got %+v", got)
	}
}

func TestCSVDecoder(t *testing.T) {
	in := "id,name,note\r\n1,ann,\"hello, world\"\r\n2,\"bo \"\"b\"\"\",\"two\nlines\"\n3,cy\n4,dee,\"bad\"x\n5,é,\n"
	recs, _ := readRange(t, []byte(in), FormatCSV, 0, -1, nil)
	want := []string{
		`{"id":"1","name":"ann","note":"hello, world"}`,
		`{"id":"2","name":"bo \"b\"","note":"two\nlines"}`,
		"", // 3,cy: wrong field count
		"", // bad quote
		`{"id":"5","name":"é","note":""}`,
	}
	if len(recs) != len(want) {
		t.Fatalf("got %d records: %+v", len(recs), recs)
	}
	for i, r := range recs {
		if want[i] == "" {
			if r.Err == nil {
				t.Errorf("record %d: want an error, got %s", i, r.Data)
			}
			continue
		}
		if r.Err != nil || string(r.Data) != want[i] {
			t.Errorf("record %d = %s (%v), want %s", i, r.Data, r.Err, want[i])
		}
	}
	// With the header given, a range starting mid-object reads rows only.
	second := strings.Index(in, "2,")
	recs, _ = readRange(t, []byte(in), FormatCSV, int64(second-1), -1, []string{"id", "name", "note"})
	if len(recs) != 4 || string(recs[0].Data) != want[1] {
		t.Fatalf("mid-object range: got %+v", recs)
	}
}

func TestFieldValue(t *testing.T) {
	cases := []struct {
		doc, field, want string
		err              bool
	}{
		{`{"id":"abc","x":1}`, "id", "abc", false},
		{`{"x":{"id":"nested"},"id":42}`, "id", "42", false},
		{`{ "a" : [1,"]",{"b":"}"}] , "id" : "q\"x" }`, "id", `q"x`, false},
		{`{"id":null}`, "id", "", true},
		{`{"x":1}`, "id", "", true},
		{`[1]`, "id", "", true},
		{`{"id":""}`, "id", "", true},
	}
	for _, c := range cases {
		v, err := fieldValue([]byte(c.doc), c.field)
		if (err != nil) != c.err || (!c.err && string(v) != c.want) {
			t.Errorf("fieldValue(%s, %s) = %q, %v; want %q (error %v)", c.doc, c.field, v, err, c.want, c.err)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	got := string(appendJSONString(nil, []byte("a\"b\\c\n\x01é\xff")))
	if want := `"a\"b\\c\n\u0001é\ufffd"`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// cutsFrom turns fuzz bytes into sorted cut points inside [0, n).
func cutsFrom(n int, seed []byte) []int64 {
	var cuts []int64
	for _, b := range seed {
		if n == 0 {
			break
		}
		c := int64(b) * int64(n) / 256
		if c > 0 && (len(cuts) == 0 || c > cuts[len(cuts)-1]) {
			cuts = append(cuts, c)
		}
	}
	return cuts
}

// FuzzRanges checks the ownership rule: however an object is cut into ranges, the records
// read from the ranges are exactly the records read whole, each once, at the same offsets.
func FuzzRanges(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"a\":2}\r\n\n{\"a\":3}"), []byte{10, 20, 200})
	f.Add([]byte("a,b\n1,2\n3,4\n\n5,6\n"), []byte{1, 2, 3, 4, 5})
	f.Add([]byte("\n\n\nx\n"), []byte{0, 128, 255})
	f.Fuzz(func(t *testing.T, data []byte, seed []byte) {
		for _, format := range []string{FormatNDJSON, FormatCSV} {
			var header []string
			if format == FormatCSV {
				// Ranges need CSV without quoted newlines.
				if bytes.IndexByte(data, '"') >= 0 {
					continue
				}
				first, _, _ := bytes.Cut(data, []byte("\n"))
				first = bytes.TrimSuffix(bytes.TrimPrefix(first, utf8BOM), []byte("\r"))
				if isBlank(first) {
					continue
				}
				header = strings.Split(string(first), ",")
			}
			whole, _ := readRange(t, data, format, 0, -1, nil)
			bounds := append([]int64{0}, cutsFrom(len(data), seed)...)
			var pieces []Record
			for i, s := range bounds {
				e := int64(-1)
				if i+1 < len(bounds) {
					e = bounds[i+1]
				}
				h := header
				if s == 0 {
					h = nil // the range at 0 reads the header row itself
				}
				recs, _ := readRange(t, data, format, s, e, h)
				pieces = append(pieces, recs...)
			}
			if len(pieces) != len(whole) {
				t.Fatalf("%s cuts %v: %d records from ranges, %d whole", format, bounds, len(pieces), len(whole))
			}
			for i := range whole {
				if whole[i].Offset != pieces[i].Offset || !bytes.Equal(whole[i].Data, pieces[i].Data) || (whole[i].Err == nil) != (pieces[i].Err == nil) {
					t.Fatalf("%s cuts %v: record %d differs: %q@%d vs %q@%d", format, bounds, i, whole[i].Data, whole[i].Offset, pieces[i].Data, pieces[i].Offset)
				}
			}
		}
	})
}

// FuzzDecoders feeds arbitrary bytes to both decoders: they must not panic, must return
// records in increasing offset order inside the input, and must end at the input's end.
func FuzzDecoders(f *testing.F) {
	f.Add([]byte("a,b\n\"x\ny\",2\n"))
	f.Add([]byte("{\"a\":1}\r\n\xEF\xBB\xBF\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []string{FormatNDJSON, FormatCSV} {
			lines := newOwnedLines(bytes.NewReader(data), rangeSpec{end: -1}, 64, nil)
			var dec Decoder = &ndjsonDecoder{lines: lines, maxBytes: 64}
			if format == FormatCSV {
				dec = newCSVDecoder(lines, nil, 64)
			}
			last := int64(-1)
			for {
				r, err := dec.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if format == FormatCSV && strings.Contains(err.Error(), "header") {
						return // a header that does not parse ends the object, with an error
					}
					t.Fatal(err)
				}
				if r.Offset <= last || r.End <= r.Offset || r.End > int64(len(data)) {
					t.Fatalf("%s: record at %d..%d after %d (len %d)", format, r.Offset, r.End, last, len(data))
				}
				last = r.Offset
			}
			if dec.Pos() != int64(len(data)) {
				t.Fatalf("%s: ended at %d of %d", format, dec.Pos(), len(data))
			}
		}
	})
}

func ExampleDocumentID() {
	fmt.Println(DocumentID("bucket", "logs/2026-11-24.ndjson", 1024))
	// Output: ziyuVPeXEJizh6Du.sg
}

// FuzzCompressedDecoders reads arbitrary bytes as gzip and as zstd: the decoder yields records,
// the end, or one permanent bad-input error naming the object; it never panics, never asks
// for a window over the cap, and gives back all the memory it charged.
func FuzzCompressedDecoders(f *testing.F) {
	lines := []byte("{\"a\":1}\n{\"a\":2}\r\n\n" + strings.Repeat("x", 5000) + "\n")
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(lines)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(lines)
	zw.Close()
	f.Add(gz.Bytes(), false)
	f.Add(gz.Bytes()[:gz.Len()/2], false)
	f.Add(zs.Bytes(), true)
	f.Add(zs.Bytes()[:zs.Len()-3], true)
	f.Add(zstdBomb(), true)
	f.Fuzz(func(t *testing.T, data []byte, isZstd bool) {
		compression := CompressionGzip
		if isZstd {
			compression = CompressionZstd
		}
		budget := NewBudget(64 << 20)
		spec := ChunkSpec{Bucket: "b", Key: "fuzz", Format: FormatNDJSON, Compression: compression, End: -1, Limits: Limits{MaxBytes: 4096}}
		dec, _, closeDec, err := openDecoder(context.Background(), spec, bytesOpener(data), budget, nil)
		if err == nil {
			for dec.Pos() < 64<<20 { // a small input may decompress to a lot: read a bounded part
				if _, err = dec.Next(); err != nil {
					break
				}
			}
			closeDec()
		}
		if err != nil && !errors.Is(err, io.EOF) && (!errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "s3://b/fuzz")) {
			t.Fatalf("%s: error %v is not bad input naming the object", compression, err)
		}
		if budget.Used() != 0 {
			t.Fatalf("%s: %d bytes of budget not given back", compression, budget.Used())
		}
	})
}

// TestCSVQuotedNewlineAcrossRangeEnd: a range whose last row's quoted field holds a newline
// past the range's end fails with ErrBadInput naming the row's offset, instead of
// dead-lettering a half row while the next range reads the rest of the field as rows of its own.
// A quoted newline inside the range, or past the end of a whole object, is not an error.
func TestCSVQuotedNewlineAcrossRangeEnd(t *testing.T) {
	in := "id,text\n1,\"a\n2,fake\n3,fake\"\n4,b\n"
	row := int64(strings.Index(in, "1,"))
	cut := int64(strings.Index(in, "2,fake")) // the next range starts inside row 1's quoted field
	lines := newOwnedLines(strings.NewReader(in), rangeSpec{end: cut}, 1<<20, nil)
	dec := newCSVDecoder(lines, nil, 1<<20)
	_, err := dec.Next()
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), fmt.Sprintf("CSV row at offset %d", row)) ||
		!strings.Contains(err.Error(), "--chunk-size") {
		t.Fatalf("range ending inside a quoted field: %v, want ErrBadInput naming offset %d and --chunk-size", err, row)
	}
	// The whole object, and a range ending after the row, read it as one row.
	for _, end := range []int64{-1, int64(strings.Index(in, "4,"))} {
		recs, _ := readRange(t, []byte(in), FormatCSV, 0, end, nil)
		if len(recs) == 0 || recs[0].Err != nil || string(recs[0].Data) != `{"id":"1","text":"a\n2,fake\n3,fake"}` {
			t.Fatalf("end %d: records %+v, want row 1 whole", end, recs)
		}
	}
	// A quoted field still open at the object's real end stays a dead letter.
	recs, _ := readRange(t, []byte("id,text\n1,\"open\nmore\n"), FormatCSV, 0, -1, nil)
	if len(recs) != 1 || recs[0].Err == nil || !strings.Contains(recs[0].Err.Error(), "not closed") {
		t.Fatalf("unclosed field at the end: %+v, want one dead letter", recs)
	}
}
