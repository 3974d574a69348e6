package ingest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
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
	d.lines.settle(true)
	for {
		line, off, end, tooLong, err := d.lines.next()
		if err != nil {
			return Record{}, err
		}
		if tooLong {
			return d.lines.tooLongRecord(line, off, end, d.maxBytes), nil
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
// fall inside one, so objects with quoted newlines should not be split (see the planner). A
// range whose last row goes on past its end inside a quoted field fails with ErrBadInput: the
// next range would read the rest of the field as rows.
type csvDecoder struct {
	lines    *ownedLines
	maxBytes int
	keys     [][]byte // header names, already JSON-escaped with quotes and colon
	keyBytes int      // bytes of keys together
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
	d.keys, d.keyBytes = d.keys[:0], 0
	for _, h := range header {
		k := appendJSONString(nil, []byte(h))
		d.keys = append(d.keys, append(k, ':'))
		d.keyBytes += len(k) + 2
	}
}

func (d *csvDecoder) Pos() int64     { return d.lines.pos }
func (d *csvDecoder) Buffered() bool { return d.lines.buffered() }

func (d *csvDecoder) Next() (Record, error) {
	d.lines.settle(d.shrink())
	for {
		line, off, end, tooLong, err := d.lines.next()
		if err != nil {
			return Record{}, err
		}
		if tooLong {
			if d.keys == nil {
				return Record{}, fmt.Errorf("%w: CSV header row at offset %d is longer than %d bytes", ErrBadInput, off, d.maxBytes)
			}
			return d.lines.tooLongRecord(line, off, end, d.maxBytes), nil
		}
		raw := line
		if bytes.Count(line, []byte{'"'})%2 == 1 {
			var rec *Record
			if raw, end, rec, err = d.gather(line, off, end); err != nil || rec != nil {
				if err == nil && d.keys == nil {
					err = fmt.Errorf("%w: CSV header row at offset %d: %v", ErrBadInput, off, rec.Err)
				}
				if err != nil {
					return Record{}, err
				}
				return *rec, nil
			}
		}
		if isBlank(raw) {
			continue
		}
		if d.keys == nil {
			// The header row: the first row of the object.
			if err := d.readHeader(raw, off); err != nil {
				return Record{}, err
			}
			continue
		}
		return d.row(raw, off, end)
	}
}

// gather reads the lines of a row whose quoted field goes on past the newline, until the
// quotes balance. It returns the row, or a record to dead-letter instead (not closed, or
// longer than maxBytes).
func (d *csvDecoder) gather(line []byte, off, end int64) ([]byte, int64, *Record, error) {
	d.raw = append(d.raw[:0], line...)
	quotes := 1
	for quotes%2 == 1 {
		more, _, mend, long, err := d.lines.next()
		if errors.Is(err, io.EOF) && d.lines.cut {
			// The quoted field goes on past the range's end: the next range starts inside it
			// and would read the rest of the field as rows of its own. No range of this object
			// can be trusted; reading it whole (a larger chunk size) is the way.
			return nil, end, nil, fmt.Errorf("%w: CSV row at offset %d has a quoted field that holds a newline and goes on past the chunk's end at offset %d: the next chunk would start inside it; load CSV with quoted newlines with a --chunk-size larger than the object", ErrBadInput, off, d.lines.spec.end)
		}
		if errors.Is(err, io.EOF) {
			return nil, end, &Record{Offset: off, End: end, Data: d.raw, Err: fmt.Errorf("csv: quoted field not closed before the end of the input")}, nil
		}
		if err != nil {
			return nil, end, nil, err
		}
		end = mend
		if long || len(d.raw)+1+len(more) > d.maxBytes {
			// The row is over the cap: the rest of it is not gathered, so its head is what is kept.
			rec := headRecord(d.raw, off, end, tooLongError(end-off, d.maxBytes))
			rec.Truncated = true
			return nil, end, &rec, nil
		}
		if len(d.raw)+1+len(more) > smallBufferBytes {
			if err := d.lines.lr.mem.enterBig(); err != nil {
				return nil, end, nil, err
			}
		}
		d.raw = append(d.raw, '\n')
		d.raw = append(d.raw, more...)
		quotes += bytes.Count(more, []byte{'"'})
	}
	return d.raw, end, nil, nil
}

// readHeader takes raw, the object's first row, as the header. A header that does not parse
// is bad input: the object cannot be read as CSV.
func (d *csvDecoder) readHeader(raw []byte, off int64) error {
	fields, err := d.split(raw)
	if err != nil {
		return fmt.Errorf("%w: CSV header row at offset %d: %v", ErrBadInput, off, err)
	}
	header := make([]string, len(fields))
	for i, f := range fields {
		header[i] = string(f)
	}
	d.setHeader(header)
	return nil
}

// row turns one data row into its JSON object, or a record to dead-letter.
func (d *csvDecoder) row(raw []byte, off, end int64) (Record, error) {
	if err := d.reserveFor(raw); err != nil {
		return Record{}, err
	}
	fields, err := d.split(raw)
	if err != nil {
		return Record{Offset: off, End: end, Data: raw, Err: fmt.Errorf("csv: %w", err)}, nil
	}
	if len(fields) != len(d.keys) {
		return Record{Offset: off, End: end, Data: raw, Err: fmt.Errorf("csv: row has %d fields, the header has %d", len(fields), len(d.keys))}, nil
	}
	size := 2 + len(fields) - 1 // braces and commas
	for i, f := range fields {
		size += len(d.keys[i]) + jsonStringLen(f)
	}
	if size > d.maxBytes {
		return headRecord(raw, off, end, fmt.Errorf("csv: row of %d bytes makes a JSON document of %d bytes, larger than the largest allowed request (%d bytes)", len(raw), size, d.maxBytes)), nil
	}
	if cap(d.out) < size {
		d.out = make([]byte, 0, size) // exact: inside the reservation when big (see reserveFor)
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

// headRecord is a record to dead-letter by its head: its first previewBytes, length and hash.
func headRecord(raw []byte, off, end int64, err error) Record {
	return Record{Offset: off, End: end, Data: raw[:min(len(raw), previewBytes)], Err: err,
		Truncated: len(raw) > previewBytes, Length: int64(len(raw)), SHA256: sha256.Sum256(raw)}
}

// reserveFor enters the big-record reservation before the buffers of a row grow past
// smallBufferBytes: the JSON object of raw is at most 6 bytes per input byte (control bytes
// are escaped as \u00XX) plus the keys.
func (d *csvDecoder) reserveFor(raw []byte) error {
	if 6*len(raw)+d.keyBytes+2 <= smallBufferBytes {
		return nil
	}
	return d.lines.lr.mem.enterBig()
}

// shrink drops row buffers that grew past smallBufferBytes, and reports whether all are small.
func (d *csvDecoder) shrink() bool {
	for _, b := range []*[]byte{&d.raw, &d.out, &d.scratch} {
		if cap(*b) > smallBufferBytes {
			*b = nil
		}
	}
	return true
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

// jsonStringLen is len(appendJSONString(nil, s)), without building it.
func jsonStringLen(s []byte) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20:
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 6 // \ufffd
		} else {
			n += size
		}
		i += size
	}
	return n
}

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

// zstdMaxWindow is the largest zstd window a chunk accepts: 8 MiB, what zstd's levels up to
// 19 use. A frame that asks for more (zstd --long, --ultra, or a crafted header) is bad input:
// honouring it would allocate up to the frame's word (2 GiB) outside the budget.
// zstdWindowCharge is what a zstd chunk charges to the budget from open to close: the window
// and the low-memory decoder's block buffers. gzip's window is fixed by the format (32 KiB);
// with its tables and buffers a gzip reader holds under 64 KiB, a stated per-chunk constant.
const (
	zstdMaxWindow    = 8 << 20
	zstdWindowCharge = zstdMaxWindow + 512<<10
)

// decompress wraps r, which starts at object offset 0, in the named decompressor.
func decompress(r io.Reader, compression string) (io.ReadCloser, error) {
	switch compression {
	case CompressionGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err // "gzip: invalid header" already says gzip
		}
		return zr, nil
	case CompressionZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdMaxWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(r), nil
	}
}

// sourceReader counts the bytes read from a compressed object and keeps its read error, so
// that a decompressor's error can be told apart: the source's own (a network failure, worth a
// retry) or the data's (corrupt or truncated: bad input).
type sourceReader struct {
	r   io.Reader
	n   int64
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil {
		s.err = err
	}
	return n, err
}

// dataError turns a decompressor's error into bad input naming object and offsets, unless it
// is the source's own read error.
func (s *sourceReader) dataError(err error, object, compression string, out int64) error {
	if err == nil || errors.Is(err, io.EOF) || (s.err != nil && !errors.Is(s.err, io.EOF) && errors.Is(err, s.err)) {
		return err
	}
	return fmt.Errorf("%w: %s: %s data corrupt or truncated at compressed offset %d (decompressed offset %d): %v", ErrBadInput, object, compression, s.n, out, err)
}

// inflater is a decompressor whose data errors are bad input (see sourceReader.dataError).
type inflater struct {
	zr                  io.ReadCloser
	src                 *sourceReader
	object, compression string
	out                 int64 // decompressed bytes read
}

func (z *inflater) Read(p []byte) (int, error) {
	n, err := z.zr.Read(p)
	z.out += int64(n)
	return n, z.src.dataError(err, z.object, z.compression, z.out)
}

func (z *inflater) Close() error { return z.zr.Close() }

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
