package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// readFrom says where reading a chunk starts and which records of the stream it owns. The
// stream starts at object offset rs.base (a compressed stream at 0, decompressed offsets):
//   - compressed object (always one whole-object chunk): at 0, records before resume dropped;
//   - resumed plain range: at resume, a record boundary;
//   - plain range starting inside the object: one byte before start, skipping the partial
//     record an earlier range owns;
//   - otherwise at 0.
//
// resume is 0 when the chunk does not resume.
func readFrom(compressed bool, start, end, resume int64) rangeSpec {
	switch {
	case compressed:
		return rangeSpec{from: resume, end: -1}
	case resume > 0:
		return rangeSpec{base: resume, end: end}
	case start > 0:
		return rangeSpec{base: start - 1, skipPartial: true, end: end}
	}
	return rangeSpec{end: end}
}

// headerElsewhere reports whether the stream rs describes starts past the object's first
// record, so that a CSV header row must be read separately.
func (rs rangeSpec) headerElsewhere() bool { return rs.base > 0 || rs.skipPartial || rs.from > 0 }

// openDecoder opens the chunk's object where readFrom says and wraps it in the decoders. The
// returned func closes everything it opened.
//
// mem charges the decoding memory (see decodeMemory) to budget, calling beforeWait (the
// producer's flush; may be nil) before it waits for it: in a packed chunk an object is opened
// (its zstd window charged) while the producer holds a request. A nil budget charges nothing.
func openDecoder(ctx context.Context, spec ChunkSpec, open Opener, budget *Budget, beforeWait func(context.Context) error) (Decoder, *decodeMemory, func(), error) {
	maxLine := recordCap(spec.Format, spec.Limits.MaxBytes, budget)
	mem := newDecodeMemory(ctx, budget, spec.Format, maxLine)
	mem.beforeWait = beforeWait
	s := &stream{ctx: ctx, spec: spec, open: open, mem: mem, maxLine: maxLine}
	dec, err := s.decoder()
	if err != nil {
		s.close()
		return nil, nil, nil, err
	}
	return dec, mem, s.close, nil
}

// stream is a chunk's object with the readers opened on it, closed together.
type stream struct {
	ctx     context.Context
	spec    ChunkSpec
	open    Opener
	closers []io.Closer
	mem     *decodeMemory
	maxLine int // the longest record read whole; see recordCap
	// head is the object opened at 0 to recognise its compression; nil when not opened.
	head io.Reader
	// lines is the decoder's line reader, whose buffer close gives back; nil before.
	lines *lineReader
	// peeked is the pooled reader head was, given back by close; nil when not opened.
	peeked *bufio.Reader
}

func (s *stream) decoder() (Decoder, error) {
	maxLine := s.maxLine
	compression, err := s.compression()
	if err != nil {
		return nil, err
	}
	rs := readFrom(compression != CompressionNone, s.spec.Start, s.spec.End, s.spec.resumeAt())
	r, err := s.reader(rs.base, compression)
	if err != nil {
		return nil, err
	}
	lines := newOwnedLines(r, rs, maxLine, s.mem)
	s.lines = lines.lr
	switch s.spec.Format {
	case FormatNDJSON:
		return &ndjsonDecoder{lines: lines, maxBytes: maxLine}, nil
	case FormatDeadLetter:
		return &letterDecoder{Decoder: &ndjsonDecoder{lines: lines, maxBytes: maxLine}}, nil
	}
	var header []string
	if rs.headerElsewhere() {
		if header, err = s.csvHeader(compression); err != nil {
			return nil, err
		}
	}
	return newCSVDecoder(lines, header, maxLine), nil
}

// compression is the chunk's compression as given, unless it is "auto": then the key's
// extension decides, and for a whole object whose name says nothing its first bytes (the
// object is then opened at 0, kept in s.head).
func (s *stream) compression() (string, error) {
	c, err := DetectCompression(s.spec.Compression, s.spec.Key, nil)
	if err != nil || c != CompressionNone || s.spec.Compression == CompressionNone || !s.spec.wholeObject() {
		return c, err
	}
	rc, err := s.openAt(0)
	if err != nil {
		return "", err
	}
	s.closers = append(s.closers, rc)
	br, peek := peekReader(rc)
	s.head, s.peeked = br, br
	return DetectCompression(s.spec.Compression, s.spec.Key, peek)
}

// reader returns the decompressed object from offset on (compressed objects: offset 0).
func (s *stream) reader(offset int64, compression string) (io.Reader, error) {
	var r io.Reader
	if s.head != nil && offset == 0 {
		r = s.head
	} else {
		if s.head != nil { // opened at 0 to look at it: reopen where reading starts instead
			s.closeReaders()
		}
		rc, err := s.openAt(offset)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, rc)
		r = rc
	}
	s.head = nil
	if compression == CompressionNone {
		return r, nil
	}
	zr, err := s.decompress(r, compression)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, zr)
	return zr, nil
}

func (s *stream) openAt(offset int64) (io.ReadCloser, error) {
	rc, err := s.open(s.ctx, offset)
	if err != nil {
		return nil, fmt.Errorf("opening %s at offset %d: %w", s.spec.object(), offset, err)
	}
	return rc, nil
}

// decompress opens the decompressor on r (the object from offset 0), charging a zstd window
// to the chunk's memory. Its errors that come from the data are bad input naming the object.
func (s *stream) decompress(r io.Reader, compression string) (io.ReadCloser, error) {
	if compression == CompressionZstd && s.mem.budget != nil {
		if zstdWindowCharge > s.mem.budget.Max() {
			return nil, fmt.Errorf("%w: %s: a zstd chunk needs %d bytes of the memory budget for its window, the budget is %d bytes", ErrBadConfig, s.spec.object(), zstdWindowCharge, s.mem.budget.Max())
		}
		if err := s.mem.chargeFixed(zstdWindowCharge); err != nil {
			return nil, err
		}
	}
	src := &sourceReader{r: r}
	zr, err := decompress(src, compression)
	if err != nil {
		if err = src.dataError(err, s.spec.object(), compression, 0); errors.Is(err, ErrBadInput) {
			return nil, err
		}
		return nil, fmt.Errorf("opening %s: %w", s.spec.object(), err)
	}
	return &inflater{zr: zr, src: src, object: s.spec.object(), compression: compression}, nil
}

// close closes the readers; once the decoder is done, it gives back its memory too.
func (s *stream) close() {
	s.closeReaders()
	if s.lines != nil {
		s.lines.release()
		s.lines = nil
	}
	s.mem.close()
}

func (s *stream) closeReaders() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i].Close()
	}
	s.closers = s.closers[:0]
	if s.peeked != nil {
		releasePeekReader(s.peeked)
		s.peeked = nil
	}
}

// csvHeader reads the header row at the start of the object, on a reader of its own.
func (s *stream) csvHeader(compression string) ([]string, error) {
	rc, err := s.openAt(0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	zr, err := s.decompress(rc, compression)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	maxLine := s.maxLine
	// Its line buffer is not charged: it lives for one row, which is cut at maxLine.
	d := newCSVDecoder(newOwnedLines(zr, rangeSpec{end: -1}, maxLine, nil), nil, maxLine)
	// Reading the first record reads the header first.
	_, err = d.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the CSV header of %s: %w", s.spec.object(), err)
	}
	if d.keys == nil {
		return nil, fmt.Errorf("%w: %s: no CSV header row", ErrBadInput, s.spec.object())
	}
	header := make([]string, len(d.keys))
	for i, k := range d.keys {
		var h string
		_ = json.Unmarshal(k[:len(k)-1], &h)
		header[i] = h
	}
	return header, nil
}
