package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// Limits tune one chunk's pipeline. The zero value of a field means its default.
type Limits struct {
	MaxOps          int           // documents per _bulk request. Defaults to 1000.
	MaxBytes        int64         // bytes per _bulk request body. Defaults to 5 MiB. A record that cannot fit alone is dead-lettered.
	FlushInterval   time.Duration // a partial batch is sent after waiting this long. Defaults to 1s.
	Inflight        int           // _bulk requests in flight per chunk. Defaults to 2.
	QueueBytes      int64         // bytes of records queued ahead of the batcher. Defaults to 2 x MaxBytes, at most the whole budget.
	RetryInitial    time.Duration // first backoff after a 429/5xx. Defaults to 100ms; doubles, jittered.
	RetryMax        time.Duration // longest single backoff. Defaults to 10s.
	RetryMaxElapsed time.Duration // give up on a batch that keeps failing after this long. Defaults to 5m.
	ValidateJSON    bool          // check each NDJSON line is valid JSON before sending. Defaults to off: Elasticsearch validates each document anyway, and its rejections are dead-lettered.
}

// WithDefaults fills in the zero fields.
func (l Limits) WithDefaults() Limits {
	if l.MaxOps <= 0 {
		l.MaxOps = 1000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 5 << 20
	}
	if l.FlushInterval <= 0 {
		l.FlushInterval = time.Second
	}
	if l.Inflight <= 0 {
		l.Inflight = 2
	}
	r := es.RetryPolicy{Initial: l.RetryInitial, Max: l.RetryMax, MaxElapsed: l.RetryMaxElapsed}.WithDefaults()
	l.RetryInitial, l.RetryMax, l.RetryMaxElapsed = r.Initial, r.Max, r.MaxElapsed
	return l
}

// Engine runs chunks. One Engine serves a whole worker process: its Budget is the process's
// memory budget, shared by every chunk running at once. An Engine is safe for concurrent use.
type Engine struct {
	Budget      *Budget
	Bulk        *es.Client
	DeadLetters DeadLetterSink
	Logger      *slog.Logger // nil: slog.Default()
}

// ChunkSpec names the records to ingest: those that start in [Start, End) of one object.
type ChunkSpec struct {
	Bucket, Key string
	Format      string // FormatNDJSON or FormatCSV
	Compression string // CompressionAuto, None, Gzip or Zstd; compressed objects are read whole
	Index       string
	IDField     string // top-level field (CSV: column) whose value is the _id; empty: DocumentID
	Start, End  int64  // End < 0: to the end of the object
	// Resume is the checkpoint of an earlier attempt, a record boundary; 0 for none.
	Resume int64
	// ResumeStats are the counters of the earlier attempt up to Resume.
	ResumeStats Stats
	Limits      Limits
}

// Opener opens the object for reading from offset to its end. The engine reads past the
// chunk's end only to finish its last record, then closes the reader.
type Opener func(ctx context.Context, offset int64) (io.ReadCloser, error)

func (s ChunkSpec) object() string { return "s3://" + s.Bucket + "/" + s.Key }

// Ingest runs one chunk to its end, or until ctx is done or an error stops it. It calls
// onProgress (which may be nil) each time the checkpoint advances, from one goroutine at a
// time. It returns the final progress; on error that is the last checkpoint reached, from
// which a retry can resume.
func (e *Engine) Ingest(ctx context.Context, spec ChunkSpec, open Opener, onProgress func(Progress)) (Progress, error) {
	spec.Limits = spec.Limits.WithDefaults()
	lim := spec.Limits
	if lim.QueueBytes <= 0 {
		lim.QueueBytes = min(2*lim.MaxBytes, e.Budget.Max())
	}
	if lim.MaxBytes > e.Budget.Max() || lim.QueueBytes > e.Budget.Max() {
		return Progress{}, fmt.Errorf("%w: request cap (%d bytes) and queue (%d bytes) must fit in the memory budget (%d bytes)", ErrBadConfig, lim.MaxBytes, lim.QueueBytes, e.Budget.Max())
	}
	if spec.Format != FormatNDJSON && spec.Format != FormatCSV {
		return Progress{}, fmt.Errorf("%w: unknown format %q (want ndjson or csv)", ErrBadConfig, spec.Format)
	}
	log := e.Logger
	if log == nil {
		log = slog.Default()
	}
	dec, closeSrc, err := e.openDecoder(ctx, spec, open)
	if err != nil {
		return Progress{Checkpoint: max(spec.Start, spec.Resume), Stats: spec.ResumeStats}, err
	}
	defer closeSrc()

	start := Progress{Checkpoint: max(spec.Start, spec.Resume), Stats: spec.ResumeStats}
	p := &pipeline{
		e: e, spec: spec, lim: lim, log: log,
		queue:      NewMemQueue[*batch](e.Budget, lim.QueueBytes),
		batches:    make(chan *batch),
		wm:         newWatermark(start, spec.Start, spec.End),
		onProgress: onProgress,
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.cancel = cancel

	var wg sync.WaitGroup
	wg.Add(2 + lim.Inflight)
	go func() { defer wg.Done(); p.fail(p.produce(ctx, dec)) }()
	go func() { defer wg.Done(); p.fail(p.batch(ctx)) }()
	for range lim.Inflight {
		go func() {
			defer wg.Done()
			if err := p.sendLoop(ctx); !errors.Is(err, errPipelineDone) {
				p.fail(err)
				// Stop the batcher, and give back what it still hands over.
				for b := range p.batches {
					p.e.Budget.Release(b.reserved)
				}
			}
		}()
	}
	wg.Wait()
	p.drain()

	prog := p.wm.current()
	if p.onProgress != nil && prog.Checkpoint > p.reported {
		p.onProgress(prog)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, errPipelineDone) {
		return prog, err
	}
	return prog, nil
}

var errPipelineDone = errors.New("pipeline done")

// openDecoder opens the stream at the right place and wraps it in the decoders.
//
// Where reading starts:
//   - compressed object (always one whole-object chunk): at 0, decompressed, records before
//     Resume dropped;
//   - resumed plain range: at Resume, a record boundary;
//   - plain range starting inside the object: one byte before Start, skipping the partial
//     record an earlier range owns;
//   - otherwise at 0.
//
// With compression "auto" a whole-object chunk whose name says nothing is opened at 0 first
// and recognised by its magic bytes.
func (e *Engine) openDecoder(ctx context.Context, spec ChunkSpec, open Opener) (Decoder, func(), error) {
	maxLine := int(spec.Limits.MaxBytes)
	compression, err := DetectCompression(spec.Compression, spec.Key, nil)
	if err != nil {
		return nil, nil, err
	}
	readAt := func(off int64) (io.ReadCloser, error) {
		rc, err := open(ctx, off)
		if err != nil {
			return nil, fmt.Errorf("opening %s at offset %d: %w", spec.object(), off, err)
		}
		return rc, nil
	}
	var closers []io.Closer
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close()
		}
	}
	fail := func(err error) (Decoder, func(), error) {
		closeAll()
		return nil, nil, err
	}

	var src io.Reader
	autoWhole := compression == CompressionNone && spec.Compression != CompressionNone && spec.Start == 0 && spec.End < 0
	if compression != CompressionNone || autoWhole {
		rc, err := readAt(0)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, rc)
		src = rc
		if autoWhole {
			br, peek := peekReader(rc)
			compression, _ = DetectCompression(spec.Compression, spec.Key, peek)
			src = br
		}
	}
	var rs rangeSpec
	switch {
	case compression != CompressionNone:
		zr, err := decompress(src, compression)
		if err != nil {
			return fail(fmt.Errorf("%w: %s: %v", ErrBadInput, spec.object(), err))
		}
		closers = append(closers, zr)
		src = zr
		rs = rangeSpec{from: spec.Resume, end: -1}
	case spec.Resume > 0:
		if src != nil { // opened at 0 to look at it: reopen where we resume instead
			closeAll()
			closers = closers[:0]
		}
		rc, err := readAt(spec.Resume)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, rc)
		src = rc
		rs = rangeSpec{base: spec.Resume, end: spec.End}
	case spec.Start > 0:
		rc, err := readAt(spec.Start - 1)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, rc)
		src = rc
		rs = rangeSpec{base: spec.Start - 1, skipPartial: true, end: spec.End}
	default:
		if src == nil {
			rc, err := readAt(0)
			if err != nil {
				return nil, nil, err
			}
			closers = append(closers, rc)
			src = rc
		}
		rs = rangeSpec{end: spec.End}
	}
	lines := newOwnedLines(src, rs, maxLine)
	if spec.Format == FormatNDJSON {
		return &ndjsonDecoder{lines: lines, maxBytes: maxLine}, closeAll, nil
	}
	var header []string
	if rs.base > 0 || rs.skipPartial || rs.from > 0 {
		// The header row is not in the part of the stream we decode: read it at the start.
		header, err = e.readCSVHeader(ctx, spec, compression, readAt)
		if err != nil {
			return fail(err)
		}
	}
	return newCSVDecoder(lines, header, maxLine), closeAll, nil
}

func (e *Engine) readCSVHeader(ctx context.Context, spec ChunkSpec, compression string, readAt func(int64) (io.ReadCloser, error)) ([]string, error) {
	rc, err := readAt(0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	zr, err := decompress(rc, compression)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadInput, spec.object(), err)
	}
	defer zr.Close()
	d := newCSVDecoder(newOwnedLines(zr, rangeSpec{end: -1}, int(spec.Limits.MaxBytes)), nil, int(spec.Limits.MaxBytes))
	// Reading the first record reads the header first.
	_, err = d.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the CSV header of %s: %w", spec.object(), err)
	}
	if d.keys == nil {
		return nil, fmt.Errorf("%w: %s: no CSV header row", ErrBadInput, spec.object())
	}
	header := make([]string, len(d.keys))
	for i, k := range d.keys {
		var s string
		_ = json.Unmarshal(k[:len(k)-1], &s)
		header[i] = s
	}
	return header, nil
}
