package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Formats and compressions understood by the decoders.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"

	CompressionAuto = "auto"
	CompressionNone = "none"
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
)

// ndjsonDecoder yields every non-blank line as a record.
type ndjsonDecoder struct {
	lines    *ownedLines
	maxBytes int
}

func (d *ndjsonDecoder) Next() (Record, error) {
	for {
		line, off, end, tooLong, err := d.lines.next()
		if err != nil {
			return Record{}, err
		}
		if tooLong {
			return Record{Offset: off, End: end, Data: line, Err: tooLongError(end, off, d.maxBytes), Truncated: true}, nil
		}
		if isBlank(line) {
			continue
		}
		return Record{Offset: off, End: end, Data: line}, nil
	}
}

func (d *ndjsonDecoder) Pos() int64     { return d.lines.pos }
func (d *ndjsonDecoder) Buffered() bool { return d.lines.buffered() }

// csvDecoder turns each row into a JSON object keyed by the header row. Fields stay strings.
// A quoted field may hold newlines; such rows are read whole, but a range boundary must not
// fall inside one, so objects with quoted newlines should not be split (see the planner).
type csvDecoder struct {
	lines    *ownedLines
	maxBytes int
	keys     [][]byte // header names, already JSON-escaped with quotes and colon
	raw      []byte   // the row being assembled (rows with quoted newlines span lines)
	out      []byte
	fields   [][]byte
	scratch  []byte
}

func newCSVDecoder(lines *ownedLines, header []string, maxBytes int) *csvDecoder {
	d := &csvDecoder{lines: lines, maxBytes: maxBytes}
	d.setHeader(header)
	return d
}

func (d *csvDecoder) setHeader(header []string) {
	d.keys = d.keys[:0]
	for _, h := range header {
		k := appendJSONString(nil, []byte(h))
		d.keys = append(d.keys, append(k, ':'))
	}
}

func (d *csvDecoder) Pos() int64     { return d.lines.pos }
func (d *csvDecoder) Buffered() bool { return d.lines.buffered() }

func (d *csvDecoder) Next() (Record, error) {
	for {
		line, off, end, tooLong, err := d.lines.next()
		if err != nil {
			return Record{}, err
		}
		if tooLong {
			return Record{Offset: off, End: end, Data: line, Err: tooLongError(end, off, d.maxBytes), Truncated: true}, nil
		}
		raw := line
		if bytes.Count(line, []byte{'"'})%2 == 1 {
			// A quoted field goes on past the newline: gather lines until the quotes balance.
			d.raw = append(d.raw[:0], line...)
			quotes := 1
			for quotes%2 == 1 {
				more, _, mend, long, err := d.lines.next()
				if errors.Is(err, io.EOF) {
					return Record{Offset: off, End: end, Data: d.raw, Err: fmt.Errorf("csv: quoted field not closed before the end of the input")}, nil
				}
				if err != nil {
					return Record{}, err
				}
				end = mend
				d.raw = append(d.raw, '\n')
				d.raw = append(d.raw, more...)
				if long || len(d.raw) > d.maxBytes {
					return Record{Offset: off, End: end, Data: d.raw[:min(len(d.raw), previewBytes)], Err: tooLongError(end, off, d.maxBytes), Truncated: true}, nil
				}
				quotes += bytes.Count(more, []byte{'"'})
			}
			raw = d.raw
		}
		if isBlank(raw) {
			continue
		}
		if d.keys == nil {
			// The header row: the first row of the object.
			fields, err := d.split(raw)
			if err != nil {
				return Record{}, fmt.Errorf("csv header at offset %d: %w", off, err)
			}
			header := make([]string, len(fields))
			for i, f := range fields {
				header[i] = string(f)
			}
			d.setHeader(header)
			continue
		}
		fields, err := d.split(raw)
		if err != nil {
			return Record{Offset: off, End: end, Data: raw, Err: fmt.Errorf("csv: %w", err)}, nil
		}
		if len(fields) != len(d.keys) {
			return Record{Offset: off, End: end, Data: raw, Err: fmt.Errorf("csv: row has %d fields, the header has %d", len(fields), len(d.keys))}, nil
		}
		d.out = append(d.out[:0], '{')
		for i, f := range fields {
			if i > 0 {
				d.out = append(d.out, ',')
			}
			d.out = append(d.out, d.keys[i]...)
			d.out = appendJSONString(d.out, f)
		}
		d.out = append(d.out, '}')
		return Record{Offset: off, End: end, Data: d.out}, nil
	}
}

// split parses one CSV row (RFC 4180: comma separated, fields optionally quoted, "" inside
// quotes is a quote). The fields alias the row or d.scratch and are valid until the next call.
func (d *csvDecoder) split(row []byte) ([][]byte, error) {
	d.fields = d.fields[:0]
	d.scratch = d.scratch[:0]
	// Unquoted fields alias row; quoted ones are unescaped into scratch. Record scratch
	// positions first and slice them at the end, since scratch may grow.
	type span struct {
		inScratch  bool
		start, end int
	}
	var spans [64]span
	sp := spans[:0]
	i := 0
	for {
		if i < len(row) && row[i] == '"' {
			start := len(d.scratch)
			i++
			for {
				j := bytes.IndexByte(row[i:], '"')
				if j < 0 {
					return nil, fmt.Errorf("quoted field not closed")
				}
				d.scratch = append(d.scratch, row[i:i+j]...)
				i += j + 1
				if i < len(row) && row[i] == '"' {
					d.scratch = append(d.scratch, '"')
					i++
					continue
				}
				break
			}
			sp = append(sp, span{true, start, len(d.scratch)})
			if i < len(row) && row[i] != ',' {
				return nil, fmt.Errorf("unexpected %q after a quoted field at column %d", row[i], len(sp))
			}
		} else {
			j := bytes.IndexByte(row[i:], ',')
			if j < 0 {
				j = len(row) - i
			}
			field := row[i : i+j]
			if bytes.IndexByte(field, '"') >= 0 {
				return nil, fmt.Errorf("bare quote in unquoted field at column %d", len(sp)+1)
			}
			sp = append(sp, span{false, i, i + j})
			i += j
		}
		if i >= len(row) {
			break
		}
		i++ // the comma
		if i == len(row) {
			sp = append(sp, span{false, i, i}) // trailing empty field
			break
		}
	}
	for _, s := range sp {
		if s.inScratch {
			d.fields = append(d.fields, d.scratch[s.start:s.end])
		} else {
			d.fields = append(d.fields, row[s.start:s.end])
		}
	}
	return d.fields, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as encoding/json
// does.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// DetectCompression decides the compression of an object from its name and, for "auto" with
// an unhelpful name, from the first bytes of its content (peek may be nil).
func DetectCompression(setting, key string, peek []byte) (string, error) {
	switch setting {
	case CompressionNone, CompressionGzip, CompressionZstd:
		return setting, nil
	case "", CompressionAuto:
	default:
		return "", fmt.Errorf("%w: unknown compression %q (want auto, none, gzip or zstd)", ErrBadConfig, setting)
	}
	lower := strings.ToLower(key)
	switch {
	case strings.HasSuffix(lower, ".gz"), strings.HasSuffix(lower, ".gzip"):
		return CompressionGzip, nil
	case strings.HasSuffix(lower, ".zst"), strings.HasSuffix(lower, ".zstd"):
		return CompressionZstd, nil
	}
	switch {
	case bytes.HasPrefix(peek, []byte{0x1f, 0x8b}):
		return CompressionGzip, nil
	case bytes.HasPrefix(peek, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return CompressionZstd, nil
	}
	return CompressionNone, nil
}

// decompress wraps r, which starts at object offset 0, in the named decompressor.
func decompress(r io.Reader, compression string) (io.ReadCloser, error) {
	switch compression {
	case CompressionGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case CompressionZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(r), nil
	}
}

// peekReader lets DetectCompression look at the first bytes without consuming them. Give the
// reader back with releasePeekReader once done with it.
func peekReader(r io.Reader) (*bufio.Reader, []byte) {
	br := peekReaderPool.Get().(*bufio.Reader)
	br.Reset(r)
	peek, _ := br.Peek(4)
	return br, peek
}

// The 64 KiB readers of peekReader are pooled: a packed chunk peeks at one small object after
// another.
var peekReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// releasePeekReader gives br back to the pool; br must not be used afterwards.
func releasePeekReader(br *bufio.Reader) {
	br.Reset(nil)
	peekReaderPool.Put(br)
}
