// Package bench runs the same generated documents through sluice's engine, through
// go-elasticsearch's esutil.BulkIndexer and through a raw sender that only splits lines and
// posts bytes, so that the three can be compared on one machine with the same batch limits.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/es"
)

// Config describes one benchmark run.
type Config struct {
	Docs       int       // documents to generate
	MinDocSize int       // bytes per document, drawn uniformly from [MinDocSize, MaxDocSize]
	MaxDocSize int       // bytes
	Seed       uint64    // the generator's seed: the same seed gives the same documents
	URL        string    // the sink's base URL
	Auth       es.Config // the sink's credentials and CA; its Addresses are not read (URL is)
	Index      string
	MaxOps     int
	MaxBytes   int64
	Inflight   int
	MaxMemory  int64 // sluice's byte budget
	// Mix is the documents' shape: MixUniform (the default), MixAdversarial or
	// MixAdversarialCSV (sluice only). An adversarial mix ignores the document sizes.
	Mix string
	// Chunks is how many chunks run at once on the one budget, each with Docs/Chunks
	// documents (sluice only). Defaults to 1.
	Chunks int
	// Adaptive runs the chunks under one adaptive limit on requests in flight
	// (ingest.Adaptive), Inflight per chunk being its upper bound (sluice only).
	Adaptive bool
}

// Result is what one engine did.
type Result struct {
	Engine  string  `json:"engine"`
	Docs    int64   `json:"docs"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	DocsPS  float64 `json:"docs_per_s"`
	MBPS    float64 `json:"mb_per_s"`
	Failed  int64   `json:"failed"`
	// BudgetPeakMiB is the most memory sluice's budget held at once, of BudgetMiB (sluice only).
	BudgetPeakMiB float64 `json:"budget_peak_mib,omitempty"`
	BudgetMiB     float64 `json:"budget_mib,omitempty"`
	// HeapPeakMiB is the largest Go heap (live and unswept objects) seen during the run,
	// sampled every 5ms (sluice only).
	HeapPeakMiB float64 `json:"heap_peak_mib,omitempty"`
	Mix         string  `json:"mix,omitempty"`
	Chunks      int     `json:"chunks,omitempty"`
}

// Generator streams Docs NDJSON documents. It never holds more than one document, so the
// memory a run measures is the engine's own.
type Generator struct {
	cfg   Config
	rng   *rand.Rand
	n     int
	buf   []byte
	off   int
	Bytes int64
}

// NewGenerator returns a reader of cfg.Docs documents.
func NewGenerator(cfg Config) *Generator {
	return &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}
}

const filler = "the quick brown fox jumps over the lazy dog 0123456789 "

func (g *Generator) next() bool {
	if g.n >= g.cfg.Docs {
		return false
	}
	size := g.cfg.MinDocSize
	if g.cfg.MaxDocSize > size {
		size += g.rng.IntN(g.cfg.MaxDocSize - size + 1)
	}
	b := g.buf[:0]
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(g.n), 10)
	b = append(b, `,"ts":"2026-11-25T00:00:00Z","level":"info","msg":"`...)
	for len(b) < size-3 {
		take := min(len(filler), size-3-len(b))
		b = append(b, filler[:take]...)
	}
	b = append(b, "\"}\n"...)
	g.buf, g.off = b, 0
	g.n++
	g.Bytes += int64(len(b))
	return true
}

func (g *Generator) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if g.off == len(g.buf) && !g.next() {
			if n == 0 {
				return 0, io.EOF
			}
			break
		}
		c := copy(p[n:], g.buf[g.off:])
		g.off += c
		n += c
	}
	return n, nil
}

func result(engine string, docs, bytes int64, d time.Duration, failed int64) Result {
	s := d.Seconds()
	return Result{Engine: engine, Docs: docs, Bytes: bytes, Seconds: s, DocsPS: float64(docs) / s, MBPS: float64(bytes) / s / 1e6, Failed: failed}
}

// Sluice runs the documents through the engine: byte budget, ids, checkpoint watermark,
// per-item results, all on. With cfg.Chunks > 1 that many chunks share the budget.
func Sluice(ctx context.Context, cfg Config) (Result, error) {
	bulk, err := es.New(ctx, cfg.esConfig())
	if err != nil {
		return Result{}, err
	}
	eng := &ingest.Engine{Budget: ingest.NewBudget(cfg.MaxMemory), Bulk: bulk}
	if cfg.Adaptive {
		eng.Adaptive = ingest.NewAdaptive(ingest.AdaptiveConfig{})
	}
	chunks := max(cfg.Chunks, 1)
	letters := newDiscardLetters()
	heap := sampleHeap(ctx)
	start := time.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		total    ingest.Stats
		bytesIn  int64
		want     Expected
		firstErr error
	)
	for c := range chunks {
		ccfg := cfg
		ccfg.Docs = cfg.Docs / chunks
		if c == 0 {
			ccfg.Docs += cfg.Docs % chunks
		}
		ccfg.Seed = cfg.Seed + uint64(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats, n, exp, err := sluiceChunk(ctx, eng, letters, ccfg, c)
			mu.Lock()
			defer mu.Unlock()
			total.Add(stats)
			bytesIn += n
			want.Indexed += exp.Indexed
			want.DeadLettered += exp.DeadLettered
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	heapPeak := heap.Stop()
	if firstErr != nil {
		return Result{}, firstErr
	}
	if cfg.Mix != MixUniform && (total.Indexed != want.Indexed || total.DeadLettered != want.DeadLettered) {
		return Result{}, fmt.Errorf("%s mix: indexed %d and dead-lettered %d, want %d and %d", cfg.Mix, total.Indexed, total.DeadLettered, want.Indexed, want.DeadLettered)
	}
	r := result("sluice", total.Indexed, bytesIn, d, total.DeadLettered)
	r.BudgetPeakMiB = float64(eng.Budget.Peak()) / (1 << 20)
	r.BudgetMiB = float64(cfg.MaxMemory) / (1 << 20)
	r.HeapPeakMiB, r.Mix, r.Chunks = heapPeak, cfg.Mix, chunks
	return r, nil
}

// sluiceChunk runs chunk c of a run: its documents as one object.
func sluiceChunk(ctx context.Context, eng *ingest.Engine, letters ingest.DeadLetterSink, cfg Config, c int) (ingest.Stats, int64, Expected, error) {
	var src io.Reader
	var counted func() (int64, Expected)
	spec := ingest.ChunkSpec{
		Bucket: "bench", Key: fmt.Sprintf("bench-%d.ndjson", c), Format: ingest.FormatNDJSON, Compression: ingest.CompressionNone,
		Index: cfg.Index, Start: 0, End: -1,
		Limits: ingest.Limits{MaxOps: cfg.MaxOps, MaxBytes: cfg.MaxBytes, Inflight: cfg.Inflight},
	}
	switch cfg.Mix {
	case MixUniform:
		gen := NewGenerator(cfg)
		src, counted = gen, func() (int64, Expected) { return gen.Bytes, Expected{Indexed: int64(cfg.Docs)} }
	case MixAdversarial, MixAdversarialCSV:
		gen := newAdversarial(cfg)
		src, counted = gen, func() (int64, Expected) { return gen.Bytes, gen.Expected }
		spec.Limits.ValidateJSON = true
		if cfg.Mix == MixAdversarialCSV {
			spec.Format = ingest.FormatCSV
		}
	default:
		return ingest.Stats{}, 0, Expected{}, fmt.Errorf("unknown mix %q (want %q, %q or %q)", cfg.Mix, MixUniform, MixAdversarial, MixAdversarialCSV)
	}
	open := func(context.Context, int64) (io.ReadCloser, error) { return io.NopCloser(src), nil }
	prog, err := eng.Ingest(ctx, spec, open, letters, nil)
	n, exp := counted()
	return prog.Stats, n, exp, err
}

// discardLetters encodes each dead letter, as a file or index sink would, and drops it.
type discardLetters struct {
	mu  *sync.Mutex
	buf *[]byte
}

func newDiscardLetters() discardLetters { return discardLetters{mu: new(sync.Mutex), buf: new([]byte)} }

func (d discardLetters) Write(_ context.Context, letters []ingest.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range letters {
		*d.buf = letters[i].AppendJSON((*d.buf)[:0])
	}
	return nil
}

func (discardLetters) Close() error { return nil }

// Esutil runs the documents through esutil.BulkIndexer the way its documentation shows: one
// Add per document with a bytes.Reader body and OnSuccess/OnFailure callbacks, FlushBytes and
// NumWorkers set to the same limits as the other engines (it has no per-request op limit).
// Each document has the _id sluice gives it.
func Esutil(ctx context.Context, cfg Config) (Result, error) {
	esCfg, err := cfg.esutilConfig()
	if err != nil {
		return Result{}, err
	}
	es, err := elasticsearch.NewClient(esCfg)
	if err != nil {
		return Result{}, err
	}
	var ok, failed atomic.Int64
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:        es,
		Index:         cfg.Index,
		NumWorkers:    cfg.Inflight,
		FlushBytes:    int(cfg.MaxBytes),
		FlushInterval: time.Second,
	})
	if err != nil {
		return Result{}, err
	}
	gen := NewGenerator(cfg)
	sc := bufio.NewScanner(gen)
	sc.Buffer(make([]byte, 1<<20), int(cfg.MaxBytes))
	ids := newIDs()
	var off int64
	start := time.Now()
	for sc.Scan() {
		doc := append([]byte(nil), sc.Bytes()...) // the body must stay valid until flushed
		id := string(ids.append(nil, off))
		off += int64(len(doc)) + 1
		err := bi.Add(ctx, esutil.BulkIndexerItem{
			Action:     "index",
			DocumentID: id,
			Body:       bytes.NewReader(doc),
			OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) {
				ok.Add(1)
			},
			OnFailure: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem, error) {
				failed.Add(1)
			},
		})
		if err != nil {
			return Result{}, err
		}
	}
	if err := bi.Close(ctx); err != nil {
		return Result{}, err
	}
	d := time.Since(start)
	return result("esutil", ok.Load(), gen.Bytes, d, failed.Load()), sc.Err()
}

// Raw is the floor: split lines, prepend an action line with the _id sluice gives the document
// (so that a real node does the same work for each engine), post the bytes with Inflight
// workers, read the response without looking at it. No budget, checkpoint or per-item results.
func Raw(ctx context.Context, cfg Config) (Result, error) {
	client, err := cfg.httpClient(cfg.Inflight * 2)
	if err != nil {
		return Result{}, err
	}
	gen := NewGenerator(cfg)
	sc := bufio.NewScanner(gen)
	sc.Buffer(make([]byte, 1<<20), int(cfg.MaxBytes))
	bodies := make(chan []byte, cfg.Inflight)
	pool := sync.Pool{New: func() any { return []byte(nil) }}
	url := cfg.URL + "/" + cfg.Index + "/_bulk"
	var sent atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range cfg.Inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range bodies {
				n := int64(bytes.Count(body, []byte{'\n'}) / 2)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-ndjson")
				cfg.authorize(req)
				res, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = fmt.Errorf("raw: status %d", res.StatusCode)
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
				}
				sent.Add(n)
				pool.Put(body[:0])
			}
		}()
	}
	ids := newIDs()
	var off int64
	var action []byte
	start := time.Now()
	body := pool.Get().([]byte)
	ops := 0
	for sc.Scan() {
		line := sc.Bytes()
		action = append(ids.append(append(action[:0], `{"index":{"_id":"`...), off), "\"}}\n"...)
		off += int64(len(line)) + 1
		if ops > 0 && (ops == cfg.MaxOps || int64(len(body)+len(action)+len(line)+1) > cfg.MaxBytes) {
			bodies <- body
			body, ops = pool.Get().([]byte), 0
		}
		body = append(body, action...)
		body = append(body, line...)
		body = append(body, '\n')
		ops++
	}
	if ops > 0 {
		bodies <- body
	}
	close(bodies)
	wg.Wait()
	d := time.Since(start)
	if firstErr == nil {
		firstErr = sc.Err()
	}
	return result("raw", sent.Load(), gen.Bytes, d, 0), firstErr
}

// Run runs the named engine.
func Run(ctx context.Context, engine string, cfg Config) (Result, error) {
	switch engine {
	case "sluice":
		return Sluice(ctx, cfg)
	case "esutil":
		return Esutil(ctx, cfg)
	case "raw":
		return Raw(ctx, cfg)
	}
	return Result{}, errors.New("unknown engine " + strconv.Quote(engine) + " (sluice, esutil, raw)")
}
