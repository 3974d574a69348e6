package ingest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
)

// previewBytes is how much of an over-long record is kept for its dead-letter entry: the whole
// record would break the memory budget, and its object and offset say where to find it.
const previewBytes = 64 << 10

// lineReader splits a stream into lines and knows each line's offset in the stream. A line
// longer than maxLine is never held whole: its first previewBytes are returned with tooLong
// set, with its length and SHA-256, and the rest is streamed past. Returned slices are valid
// until the next call.
//
// The buffer starts at small bytes (smallBufferBytes, or maxLine+1 if less). It grows past
// that only inside the big-record reservation of mem (see decodeMemory); while it is big, each
// read asks for at most small bytes, so that what is left after a long line fits the small
// buffer again and shrink can always give the reservation back.
type lineReader struct {
	r       io.Reader
	mem     *decodeMemory
	nl      int // index in buf of the next '\n' at or after start, found by buffered; -1: unknown
	buf     []byte
	small   int
	start   int   // first unread byte in buf
	end     int   // end of valid data in buf
	pos     int64 // stream offset of buf[start]
	maxLine int
	eof     bool
	err     error
	preview []byte
	long    longLine // the last over-long line's length and hash
}

// longLine describes an over-long line that was streamed past.
type longLine struct {
	length int64
	sum    [32]byte
}

func newLineReader(r io.Reader, base int64, maxLine int, mem *decodeMemory) *lineReader {
	size := min(smallBufferBytes, maxLine+1)
	var buf []byte
	if size == smallBufferBytes {
		buf = *lineBufferPool.Get().(*[]byte)
	} else {
		buf = make([]byte, size)
	}
	return &lineReader{r: r, mem: mem, buf: buf, small: size, pos: base, maxLine: maxLine, nl: -1}
}

// Small line buffers of smallBufferBytes are pooled: a packed chunk reads an object of a few
// kilobytes after another, and a fresh zeroed 256 KiB buffer for each would cost more than
// reading it. Only the small buffer, which decodeMemory leaves uncharged (one per chunk, the
// object being read), is pooled; a buffer grown for a big record lives inside the charged
// reservation and is dropped when it shrinks back, never kept in the pool. (Bytes left in a
// reused buffer are never read: start and end bound what is.)
var lineBufferPool = sync.Pool{New: func() any { b := make([]byte, smallBufferBytes); return &b }}

// release gives a small line buffer back to the pool. l, and every line it returned, must not
// be used afterwards.
func (l *lineReader) release() {
	if l.small == smallBufferBytes && len(l.buf) == smallBufferBytes {
		b := l.buf
		lineBufferPool.Put(&b)
	}
	l.buf = nil
}

// buffered reports whether next can return without reading from the source.
func (l *lineReader) buffered() bool {
	if l.eof {
		return true
	}
	if l.nl < 0 {
		i := bytes.IndexByte(l.buf[l.start:l.end], '\n')
		if i < 0 {
			return false
		}
		l.nl = l.start + i
	}
	return true
}

// shrink puts the unread bytes back into a small buffer after a big line, and reports whether
// the buffer is small. Call it only when no returned line is in use any more.
func (l *lineReader) shrink() bool {
	if len(l.buf) == l.small {
		return true
	}
	if l.end-l.start > l.small {
		return false
	}
	nb := make([]byte, l.small)
	l.end = copy(nb, l.buf[l.start:l.end])
	l.start, l.buf, l.nl = 0, nb, -1
	return true
}

// next returns the next line without its "\n" (a "\r" before it is kept: callers decide), the
// offset of its first byte and the offset just past its terminator. At the end of the stream it
// returns io.EOF; a last line without "\n" is returned first. After a read error it returns
// the error, never the partial line before it.
func (l *lineReader) next() (line []byte, off, end int64, tooLong bool, err error) {
	scanned := 0 // bytes of buf[start:end] known to hold no '\n'
	for {
		i := -1
		if l.nl >= 0 {
			i, l.nl = l.nl-l.start, -1
		} else {
			i = bytes.IndexByte(l.buf[l.start+scanned:l.end], '\n')
		}
		if i >= 0 {
			n := scanned + i
			line = l.buf[l.start : l.start+n]
			off = l.pos
			end = off + int64(n) + 1
			l.start += n + 1
			l.pos = end
			return line, off, end, false, nil
		}
		scanned = l.end - l.start
		if l.eof {
			if l.err != nil {
				return nil, l.pos, l.pos, false, l.err
			}
			if scanned == 0 {
				return nil, l.pos, l.pos, false, io.EOF
			}
			line = l.buf[l.start:l.end]
			off = l.pos
			end = off + int64(scanned)
			l.start = l.end
			l.pos = end
			return line, off, end, false, nil
		}
		if scanned > l.maxLine {
			return l.skipLong()
		}
		l.fill()
	}
}

// fill reads more of the stream into buf, compacting or growing it first when it is full.
func (l *lineReader) fill() {
	l.nl = -1
	if l.end == len(l.buf) {
		if l.start > 0 {
			copy(l.buf, l.buf[l.start:l.end])
			l.end -= l.start
			l.start = 0
		} else {
			size := min(2*len(l.buf), l.maxLine+1)
			if size <= len(l.buf) {
				size = len(l.buf) + 1
			}
			if err := l.mem.enterBig(); err != nil {
				l.eof, l.err = true, err
				return
			}
			nb := make([]byte, size)
			copy(nb, l.buf[:l.end])
			l.buf = nb
		}
	}
	n, err := l.r.Read(l.buf[l.end:min(len(l.buf), l.end+l.small)])
	l.end += n
	if err != nil {
		l.eof = true
		if !errors.Is(err, io.EOF) {
			l.err = err
		}
	}
}

// skipLong keeps a preview of the over-long line at buf[start:] and streams past the rest of
// it, hashing it.
func (l *lineReader) skipLong() ([]byte, int64, int64, bool, error) {
	l.preview = append(l.preview[:0], l.buf[l.start:min(l.end, l.start+previewBytes)]...)
	off := l.pos
	h := sha256.New()
	for {
		if i := bytes.IndexByte(l.buf[l.start:l.end], '\n'); i >= 0 {
			h.Write(l.buf[l.start : l.start+i])
			l.pos += int64(i) + 1
			l.start += i + 1
			l.long = longLine{length: l.pos - 1 - off}
			h.Sum(l.long.sum[:0])
			return l.preview, off, l.pos, true, nil
		}
		h.Write(l.buf[l.start:l.end])
		l.pos += int64(l.end - l.start)
		l.start, l.end = 0, 0
		if l.eof {
			if l.err != nil {
				return nil, off, l.pos, false, l.err
			}
			l.long = longLine{length: l.pos - off}
			h.Sum(l.long.sum[:0])
			return l.preview, off, l.pos, true, nil
		}
		l.fill()
	}
}

// Record is one record of a chunk.
type Record struct {
	// Offset is where the record starts in the object (in the decompressed stream for
	// compressed objects); End is just past its line terminator.
	Offset, End int64
	// Data is the document: an NDJSON line as it is, or a CSV row as a JSON object. For a
	// record that could not be decoded it is the raw input (Err says why). Data is only
	// valid until the decoder's next call.
	Data []byte
	// Err is set when the record cannot be indexed as it is; it goes to the dead-letter sink.
	Err error
	// Truncated: Data is only the first bytes of a record over the request cap; Length and
	// SHA256 describe the whole record.
	Truncated bool
	Length    int64
	SHA256    [32]byte
	// ID, when set, is the record's _id unless the chunk has an id field (a hit of an index
	// source keeps its own, a replayed dead letter its original's); Routing, when set, is its
	// _routing. Both are valid until the decoder's next call.
	ID, Routing []byte
	// Origin, when set, is where the record was first read (a replayed dead letter's
	// original): a dead letter of the record names it. Valid until the decoder's next call.
	Origin *Origin
}

// Decoder yields the records a chunk owns, in order.
type Decoder interface {
	// Next returns the next record, or io.EOF after the last one. Other errors are I/O errors
	// of the underlying stream and end the chunk.
	Next() (Record, error)
	// Pos is the offset up to which the stream has been consumed into records: after io.EOF it
	// is the chunk's final checkpoint.
	Pos() int64
	// Buffered reports whether Next can return a record (or the end) without reading from
	// the source, as far as the decoder can tell cheaply.
	Buffered() bool
}

// rangeSpec says which records of a stream a decoder owns.
type rangeSpec struct {
	// base is the object offset of the stream's first byte.
	base int64
	// skipPartial discards everything up to and including the first "\n": the stream starts
	// one byte before the range, inside a record that an earlier range owns.
	skipPartial bool
	// from drops records that start before it (a resumed compressed stream, re-read from 0).
	from int64
	// end stops at the first record starting at or after it; < 0 means no end.
	end int64
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ownedLines applies the record-ownership rule on top of a lineReader: it yields the lines that
// start inside the range, with the BOM at object start and the "\r" of CRLF removed.
type ownedLines struct {
	lr      *lineReader
	spec    rangeSpec
	started bool
	done    bool
	// cut: the lines ended at spec.end, with more of the stream after it (not its real end).
	cut bool
	pos int64
}

func newOwnedLines(r io.Reader, spec rangeSpec, maxLine int, mem *decodeMemory) *ownedLines {
	return &ownedLines{lr: newLineReader(r, spec.base, maxLine, mem), spec: spec, pos: max(spec.base, spec.from)}
}

// settle is called by a decoder before it reads the next record, once the last one is no
// longer in use: the line buffer shrinks back, and when every buffer is small (the caller's
// own included: small) the big record's reservation is given back.
func (o *ownedLines) settle(small bool) {
	if o.lr.shrink() && small {
		o.lr.mem.leaveBig()
	}
}

// tooLongRecord is the record of an over-long line: its preview, length and hash.
func (o *ownedLines) tooLongRecord(line []byte, off, end int64, maxBytes int) Record {
	return Record{Offset: off, End: end, Data: line, Err: tooLongError(o.lr.long.length, maxBytes),
		Truncated: true, Length: o.lr.long.length, SHA256: o.lr.long.sum}
}

func (o *ownedLines) next() (line []byte, off, end int64, tooLong bool, err error) {
	if o.done {
		return nil, o.pos, o.pos, false, io.EOF
	}
	if !o.started {
		o.started = true
		if o.spec.skipPartial {
			if _, _, end, _, err := o.lr.next(); err != nil {
				o.done = true
				if errors.Is(err, io.EOF) {
					o.pos = max(o.pos, o.lr.pos)
				}
				return nil, o.pos, o.pos, false, err
			} else {
				o.pos = end
			}
		}
	}
	for {
		line, off, end, tooLong, err = o.lr.next()
		if err != nil {
			o.done = true
			if errors.Is(err, io.EOF) && o.pos < off {
				o.pos = off
			}
			return nil, o.pos, o.pos, false, err
		}
		if o.spec.end >= 0 && off >= o.spec.end {
			o.done, o.cut = true, true
			o.pos = off
			return nil, off, off, false, io.EOF
		}
		if off < o.spec.from {
			continue
		}
		o.pos = end
		if off == 0 {
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if n := len(line); n > 0 && line[n-1] == '\r' && !tooLong {
			line = line[:n-1]
		}
		return line, off, end, tooLong, nil
	}
}

func (o *ownedLines) buffered() bool { return o.done || o.lr.buffered() }

func isBlank(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

// tooLongError is the reason given for a record over the request cap.
func tooLongError(length int64, maxBytes int) error {
	return fmt.Errorf("record of %d bytes is larger than the largest allowed request (%d bytes); dead-lettered with its first %d bytes, length and SHA-256", length, maxBytes, min(length, previewBytes))
}
