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

// SearchSpec names one slice of an index source: every hit of a point in time restricted to
// one primary shard of one concrete index (preference=_shards:N). Shards never share a
// document, so slices that cover every shard read each document exactly once, and a slice's
// hits come in the same order in every search of its point in time, so a checkpoint (a count
// of hits) stays valid while the point in time lives.
type SearchSpec struct {
	Source *es.Client // the cluster read
	// Name is how errors, logs and dead letters name the slice, such as "es://old shard 2";
	// their offsets are hit numbers in the slice.
	Name  string
	Index string          // the concrete index read
	Shard int             // its primary shard number
	Query json.RawMessage // a query clause filtering the hits; nil: every document
	// Format is FormatDeadLetter when the hits are dead letters (a dead-letter index's) to
	// replay: each is sent as the record it holds, with its original's id (see
	// FormatDeadLetter). Otherwise ("" or FormatNDJSON) a hit is sent as it is.
	Format string
	// Target, Op and Pipeline are the index written, the bulk action and the ingest pipeline,
	// as ChunkSpec.Index, Op and Pipeline.
	Target, Op, Pipeline string
	// Resume is where an earlier attempt got to: its Checkpoint (hits acknowledged), Stats and
	// Search cursor. Without a cursor, or when its point in time is gone, the slice starts
	// over from its first hit with its counters reset.
	Resume Progress
	Limits Limits
	// KeepAlive is how long the point in time lives past each search. Defaults to
	// DefaultSearchKeepAlive (5m).
	KeepAlive time.Duration
}

// SearchCursor is where a slice's checkpoint is in its point in time: the hit at the
// checkpoint is hit number Skip of the page that search_after After starts (After nil: the
// first page). Keeping the start of a page and a count, not the sort values of every hit in
// flight, bounds what a slice holds to one entry per page not yet acknowledged.
type SearchCursor struct {
	PIT   string
	After json.RawMessage // sort values of the hit before that page; nil: the slice's start
	Skip  int64
}

// Defaults and bounds of a slice's reading.
const (
	DefaultSearchKeepAlive = 5 * time.Minute
	// searchPageBytes is the size a page of hits aims at: the page size adapts to the hits'
	// mean size so that a page holds about this many bytes of answer.
	searchPageBytes = 4 << 20
	firstPageHits   = 500
	minPageHits     = 10
	maxPageHits     = 10_000 // index.max_result_window's default
	// formatSearch is the decoding-memory format of a slice (see bigRecordBuffers).
	formatSearch = "search"
)

// IngestSearch runs one slice of an index source to its end, or until ctx is done or an error
// stops it, as Ingest runs a chunk of an object: through the same budget, queue, batcher,
// senders, dead-letter sink and watermark. Documents keep their _id (and _routing). A hit's
// Offset is its number in the slice, so Progress.Checkpoint N means "the first N hits are
// acknowledged" and Progress.Search says where hit N is; Stats.Bytes counts hits.
//
// When the slice completes its point in time is closed; when it stops early it stays open
// (for KeepAlive) for the next attempt.
func (e *Engine) IngestSearch(ctx context.Context, spec SearchSpec, sink DeadLetterSink, onProgress func(Progress)) (Progress, error) {
	common := ChunkSpec{Name: spec.Name, Format: FormatNDJSON, Index: spec.Target, Op: spec.Op, Pipeline: spec.Pipeline, End: -1, Limits: spec.Limits}
	lim, err := e.limits(common)
	if err != nil {
		return spec.Resume, err
	}
	switch {
	case spec.Format != "" && spec.Format != FormatNDJSON && spec.Format != FormatDeadLetter:
		return spec.Resume, fmt.Errorf("%w: format %q of %s: want %s or %s", ErrBadConfig, spec.Format, spec.Name, FormatNDJSON, FormatDeadLetter)
	case sink == nil:
		return spec.Resume, fmt.Errorf("%w: no dead-letter sink", ErrBadConfig)
	case spec.Source == nil:
		return spec.Resume, fmt.Errorf("%w: no source cluster client", ErrBadConfig)
	}
	common.Limits = lim
	if spec.KeepAlive <= 0 {
		spec.KeepAlive = DefaultSearchKeepAlive
	}
	src := &searchSource{spec: spec, budget: e.Budget, log: e.logger(), maxLine: recordCap(formatSearch, lim.MaxBytes, e.Budget)}
	from, err := src.start(ctx)
	if err != nil {
		return spec.Resume, fmt.Errorf("reading %s: %w", spec.Name, err)
	}
	common.Resume = from
	report := func(p Progress) Progress {
		p.Search = src.cursorAt(p.Checkpoint)
		return p
	}
	var progress func(Progress)
	if onProgress != nil {
		progress = func(p Progress) { onProgress(report(p)) }
	}
	p := e.newPipeline(common, lim, sink, newWatermark(from, 0, -1), progress)
	p.objects = []string{spec.Name}
	prog, err := p.runChunk(ctx, src)
	src.closePage()
	prog = report(prog)
	if err == nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), spec.Source.RequestTimeout())
		defer cancel()
		if cerr := spec.Source.ClosePIT(cctx, src.pit()); cerr != nil {
			src.log.Warn("closing the point in time of a finished slice; it expires on its own", "slice", spec.Name, "err", cerr)
		}
	}
	return prog, err
}

// searchSource is the objectSource of a slice: one "object", its hits, read page by page.
type searchSource struct {
	spec    SearchSpec
	budget  *Budget
	log     *slog.Logger
	maxLine int
	opened  bool

	mu    sync.Mutex
	pages []pageStart // pages not wholly behind the checkpoint, oldest first
	pitID string      // the newest id of the point in time

	dec *searchDecoder
}

// pageStart is where a page starts: its first hit's number, and the search_after that asked
// for it.
type pageStart struct {
	ordinal int64
	after   json.RawMessage
}

// start opens the slice's point in time, or takes up the earlier attempt's, and returns the
// progress reading starts from. A first page on the earlier point in time is requested here,
// so that a point in time that is gone is found before any counter is reused.
func (s *searchSource) start(ctx context.Context) (Progress, error) {
	r, c := s.spec.Resume, s.spec.Resume.Search
	s.dec = &searchDecoder{src: s, ctx: ctx, size: firstPageHits}
	if c != nil && c.PIT != "" && c.Skip >= 0 && c.Skip <= r.Checkpoint {
		s.pitID = c.PIT
		s.dec.ordinal, s.dec.skip, s.dec.after = r.Checkpoint-c.Skip, c.Skip, c.After
		err := s.dec.openPage()
		if err == nil {
			return Progress{Checkpoint: r.Checkpoint, Stats: r.Stats}, nil
		}
		if !errors.Is(err, es.ErrPITMissing) {
			return r, err
		}
		s.log.Warn("the point in time of the slice expired or was closed; reading the slice again from its start with a new one, so documents written to the source since the migration started may be seen", "slice", s.spec.Name, "checkpoint", r.Checkpoint)
	} else if r.Checkpoint > 0 {
		s.log.Warn("resuming a slice without its point in time; reading it again from its start with a new one", "slice", s.spec.Name, "checkpoint", r.Checkpoint)
	}
	pit, err := s.spec.Source.OpenPIT(ctx, s.spec.Index, s.spec.KeepAlive, s.spec.Shard)
	if err != nil {
		return r, fmt.Errorf("opening a point in time on %s shard %d: %w", s.spec.Index, s.spec.Shard, err)
	}
	s.pitID = pit
	s.dec = &searchDecoder{src: s, ctx: ctx, size: firstPageHits}
	return Progress{}, nil
}

func (s *searchSource) next(ctx context.Context, beforeWait func(context.Context) error) (*chunkObject, error) {
	if s.opened {
		return nil, io.EOF
	}
	s.opened = true
	mem := newDecodeMemory(ctx, s.budget, formatSearch, s.maxLine)
	mem.beforeWait = beforeWait
	s.dec.mem, s.dec.ctx = mem, ctx
	spec := ChunkSpec{Name: s.spec.Name, Index: s.spec.Target, Op: s.spec.Op, Pipeline: s.spec.Pipeline, End: -1, Resume: s.spec.Resume}
	var dec Decoder = s.dec
	if s.spec.Format == FormatDeadLetter {
		dec = &letterDecoder{Decoder: s.dec}
	}
	return &chunkObject{spec: spec, dec: dec, mem: mem, close: func() { s.closePage(); mem.close() }}, nil
}

func (s *searchSource) closePage() {
	if s.dec != nil && s.dec.page != nil {
		s.dec.page.Close()
		s.dec.page = nil
	}
}

func (s *searchSource) pit() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pitID
}

// pageOpened records a new page.
func (s *searchSource) pageOpened(p pageStart) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pages = append(s.pages, p)
}

// setPIT keeps the point in time's newest id (an answer may change it).
func (s *searchSource) setPIT(pit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pit != "" {
		s.pitID = pit
	}
}

// cursorAt is the cursor of checkpoint n, and forgets the pages wholly behind it.
func (s *searchSource) cursorAt(n int64) *SearchCursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i+1 < len(s.pages) && s.pages[i+1].ordinal <= n {
		i++
	}
	s.pages = s.pages[i:]
	if len(s.pages) == 0 || s.pages[0].ordinal > n {
		return nil
	}
	return &SearchCursor{PIT: s.pitID, After: s.pages[0].after, Skip: n - s.pages[0].ordinal}
}

// searchDecoder yields a slice's hits as records, streaming each page.
type searchDecoder struct {
	src     *searchSource
	ctx     context.Context
	mem     *decodeMemory
	page    *es.SearchPage
	after   json.RawMessage // search_after of the next page: the sort of the last hit read
	ordinal int64           // number of the next hit
	skip    int64           // hits of the page to drop: read before the checkpoint
	size    int             // hits per page asked for
	hits    int             // hits of the current page so far
	done    bool
	hitMark int64  // bytes of the answer read before the current hit
	origin  Origin // the current hit's: its slice, number, _id and routing
}

func (d *searchDecoder) openPage() error {
	page, err := d.src.spec.Source.Search(d.ctx, es.SearchRequest{
		PIT: d.src.pit(), KeepAlive: d.src.spec.KeepAlive, Size: d.size, Query: d.src.spec.Query, Sort: d.src.spec.Source.ShardSort(),
		SearchAfter: d.after, WrapBody: d.limitHit,
	})
	if err != nil {
		return err
	}
	d.page, d.hits, d.hitMark = page, 0, 0
	d.src.pageOpened(pageStart{ordinal: d.ordinal, after: d.after})
	return nil
}

// limitHit wraps a page's body so that what the JSON decoder buffers for one hit is charged:
// past smallBufferBytes the big-record reservation is taken (see decodeMemory), and a hit
// longer than the record cap fails the slice instead of growing the buffer without bound.
func (d *searchDecoder) limitHit(r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		held := d.page.BytesRead() - d.hitMark
		if held > smallBufferBytes {
			if err := d.mem.enterBig(); err != nil {
				return 0, err
			}
		}
		if held > int64(d.maxHitBytes()) {
			return 0, fmt.Errorf("%w: a hit of more than %d bytes (the largest record a request of --max-bytes can hold)", ErrBadInput, d.maxHitBytes())
		}
		return r.Read(p)
	})
}

func (d *searchDecoder) maxHitBytes() int { return 2*d.src.maxLine + 64<<10 }

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// Next returns the next hit as a record.
func (d *searchDecoder) Next() (Record, error) {
	for {
		if d.done {
			return Record{}, io.EOF
		}
		if d.page == nil {
			d.mem.leaveBig() // the last page's decoder, and its buffer, are gone
			if err := d.openPage(); err != nil {
				return Record{}, err
			}
		}
		d.hitMark = d.page.BytesRead()
		hit, err := d.page.Next()
		if errors.Is(err, io.EOF) {
			if err := d.endPage(); err != nil {
				return Record{}, err
			}
			continue
		}
		if err != nil {
			return Record{}, err
		}
		d.hits++
		d.after = hit.Sort
		if d.skip > 0 {
			d.skip--
			d.ordinal++
			continue
		}
		rec := Record{Offset: d.ordinal, End: d.ordinal + 1, Data: hit.Source, ID: []byte(hit.ID)}
		if hit.Routing != "" {
			rec.Routing = []byte(hit.Routing)
		}
		// A dead letter of the hit names its _id and routing, so a replay of it writes the
		// document under its own id.
		d.origin = Origin{Object: d.src.spec.Name, Offset: d.ordinal, ID: hit.ID, Routing: hit.Routing}
		rec.Origin = &d.origin
		if len(hit.Source) == 0 || string(hit.Source) == "null" {
			rec.Err = fmt.Errorf("hit %q of %s has no _source (the source index does not store it)", hit.ID, d.src.spec.Index)
		}
		d.ordinal++
		return rec, nil
	}
}

// endPage closes a finished page; an empty one ends the slice. The next page's size aims at
// searchPageBytes from this one's mean hit size.
func (d *searchDecoder) endPage() error {
	page := d.page
	d.page = nil
	page.Close()
	d.src.setPIT(page.PIT())
	if d.hits == 0 && d.skip > 0 {
		return fmt.Errorf("%w: the slice ended %d hits before its checkpoint", ErrBadInput, d.skip)
	}
	if d.hits == 0 {
		d.done = true
		return nil
	}
	mean := max(page.BytesRead()/int64(d.hits), 1)
	d.size = int(min(max(searchPageBytes/mean, minPageHits), maxPageHits))
	return nil
}

// Pos is the number of the next hit: the slice's final checkpoint after io.EOF.
func (d *searchDecoder) Pos() int64 { return d.ordinal }

// Buffered reports whether the page's answer has bytes buffered: hits are read from the
// answer at hand rather than waiting for the network.
func (d *searchDecoder) Buffered() bool { return d.done || d.page != nil && d.page.Buffered() > 0 }
