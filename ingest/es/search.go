package es

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// ErrPITMissing: the point in time a search named has expired or was closed
// (search_context_missing_exception). Not permanent: open a new one.
var ErrPITMissing = errors.New("point in time expired or closed")

// keepAlive renders a duration as Elasticsearch's time unit, whole seconds (at least one).
func keepAlive(d time.Duration) string {
	return strconv.FormatInt(max(int64(d/time.Second), 1), 10) + "s"
}

// NoShard is the shard argument of OpenPIT that reads every shard.
const NoShard = -1

// OpenPIT opens a point in time on index that lives keepAlive past each use, and returns its
// id. shard >= 0 restricts it to that primary shard number (preference=_shards:N, honoured by
// both Elasticsearch 8 and OpenSearch 2: its searches see that shard's documents only);
// NoShard reads them all. Elasticsearch: POST /{index}/_pit; OpenSearch: POST
// /{index}/_search/point_in_time.
func (c *Client) OpenPIT(ctx context.Context, index string, keep time.Duration, shard int) (string, error) {
	var out struct {
		ID    string `json:"id"`     // Elasticsearch
		PITID string `json:"pit_id"` // OpenSearch
	}
	path := indexPath(index, "/_pit?keep_alive=", keepAlive(keep))
	if c.flavor == OpenSearch {
		path = indexPath(index, "/_search/point_in_time?keep_alive=", keepAlive(keep))
	}
	if shard >= 0 {
		path += "&preference=_shards:" + strconv.Itoa(shard)
	}
	if err := c.call(ctx, http.MethodPost, path, nil, &out); err != nil {
		return "", err
	}
	return out.ID + out.PITID, nil
}

// ClosePIT frees a point in time. One that expired already is not an error.
func (c *Client) ClosePIT(ctx context.Context, id string) error {
	var err error
	if c.flavor == OpenSearch {
		err = c.call(ctx, http.MethodDelete, "/_search/point_in_time", map[string][]string{"pit_id": {id}}, nil)
	} else {
		err = c.call(ctx, http.MethodDelete, "/_pit", map[string]string{"id": id}, nil)
	}
	if se, ok := err.(*StatusError); ok && se.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// IndexShards is one concrete index and its number of primary shards.
type IndexShards struct {
	Index  string
	Shards int
}

// PrimaryShards resolves index (an index, alias, comma list or pattern) to its concrete open
// indices, sorted by name, with their primary shard counts (GET /{index}/_settings).
func (c *Client) PrimaryShards(ctx context.Context, index string) ([]IndexShards, error) {
	var out map[string]struct {
		Settings map[string]string `json:"settings"`
	}
	path := indexPath(index, "/_settings/index.number_of_shards?flat_settings=true")
	if err := c.call(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	shards := make([]IndexShards, 0, len(out))
	for name, s := range out {
		n, err := strconv.Atoi(s.Settings["index.number_of_shards"])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("GET %s: index %s has no usable index.number_of_shards (%q)", path, name, s.Settings["index.number_of_shards"])
		}
		shards = append(shards, IndexShards{Index: name, Shards: n})
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i].Index < shards[j].Index })
	return shards, nil
}

// CountShard is Count restricted to one primary shard of index (preference=_shards:N).
func (c *Client) CountShard(ctx context.Context, index string, shard int, query json.RawMessage) (int64, error) {
	return c.count(ctx, indexPath(index, "/_count?preference=_shards:", strconv.Itoa(shard)), query)
}

// SearchRequest is one page of a point-in-time search.
type SearchRequest struct {
	PIT       string          // from OpenPIT
	KeepAlive time.Duration   // extends the point in time; 0: 1m
	Size      int             // hits per page; 0: 1000
	Query     json.RawMessage // a query clause; nil: all documents
	// Sort must be total so that SearchAfter resumes exactly; nil: DefaultSort().
	Sort        json.RawMessage
	SearchAfter json.RawMessage // the sort values (a JSON array) of the hit before this page; nil: from the start
	// Slice (when SliceMax > 1) reads only slice SliceID of SliceMax disjoint parts. Slices
	// cut by Lucene doc ids, which differ between points in time: never resume a slice of one
	// point in time in another.
	SliceID, SliceMax int
	// WrapBody, when set, wraps the answer's body before the JSON decoder reads it (the
	// engine charges and bounds what is buffered for one hit). Defaults to none.
	WrapBody func(io.Reader) io.Reader
}

// Hit is one document of a search answer.
type Hit struct {
	Index   string          `json:"_index"`
	ID      string          `json:"_id"`
	Routing string          `json:"_routing"`
	Source  json.RawMessage `json:"_source"`
	Sort    json.RawMessage `json:"sort"` // a JSON array
}

// DefaultSort is a total order of a point in time: _shard_doc on Elasticsearch; OpenSearch
// has no _shard_doc and sorts by _id ("_doc" alone repeats across shards).
func (c *Client) DefaultSort() json.RawMessage {
	if c.flavor == OpenSearch {
		return json.RawMessage(`[{"_id":"asc"}]`)
	}
	return json.RawMessage(`[{"_shard_doc":"asc"}]`)
}

// ShardSort is a total order within a point in time on one shard (OpenPIT with a shard),
// needing no field data: _shard_doc on Elasticsearch, _doc on OpenSearch (Lucene doc ids are
// unique within one shard's reader, which a point in time holds still). DefaultSort's _id on
// OpenSearch loads the _id field data of every segment into the heap.
func (c *Client) ShardSort() json.RawMessage {
	if c.flavor == OpenSearch {
		return json.RawMessage(`[{"_doc":"asc"}]`)
	}
	return json.RawMessage(`[{"_shard_doc":"asc"}]`)
}

// Search sends one page of a point-in-time search (POST /_search with pit, search_after and
// slice) and returns the answer as a stream of hits: the page is never held whole. The caller
// must Close the page. A point in time that expired or was closed is ErrPITMissing.
//
// The request timeout bounds the wait for the answer's headers only: the body is read as fast
// as the caller takes hits, and the caller's context (and its own stall detection) bounds that.
func (c *Client) Search(ctx context.Context, r SearchRequest) (*SearchPage, error) {
	body, err := c.searchBody(r)
	if err != nil {
		return nil, err
	}
	const op = "POST /_search"
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(c.timeout, cancel)
	res, err := c.perform(ctx, op, http.MethodPost, "/_search", bytes.NewReader(body), "application/json")
	stopped := timer.Stop()
	if err != nil {
		cancel()
		if !stopped {
			return nil, fmt.Errorf("%s: %w within %s", op, ErrTimeout, c.timeout)
		}
		return nil, err
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		defer cancel()
		defer drainClose(res.Body)
		data, _ := io.ReadAll(io.LimitReader(res.Body, 16<<10))
		se := newStatusError(op, res.StatusCode, data)
		if res.StatusCode == http.StatusNotFound || bytes.Contains(data, []byte("search_context_missing_exception")) {
			return nil, fmt.Errorf("%w: %w", ErrPITMissing, se)
		}
		return nil, se
	}
	p := &SearchPage{c: c, ctx: ctx, cancel: cancel, body: res.Body, pit: r.PIT}
	p.count = &countingReader{r: res.Body}
	var answer io.Reader = p.count
	if r.WrapBody != nil {
		answer = r.WrapBody(answer)
	}
	p.dec = json.NewDecoder(answer)
	return p, nil
}

func (c *Client) searchBody(r SearchRequest) ([]byte, error) {
	if r.KeepAlive <= 0 {
		r.KeepAlive = time.Minute
	}
	if r.Size <= 0 {
		r.Size = 1000
	}
	if r.Sort == nil {
		r.Sort = c.DefaultSort()
	}
	body := map[string]any{
		"size":             r.Size,
		"pit":              map[string]string{"id": r.PIT, "keep_alive": keepAlive(r.KeepAlive)},
		"sort":             r.Sort,
		"track_total_hits": false,
	}
	if r.Query != nil {
		body["query"] = r.Query
	}
	if r.SearchAfter != nil {
		body["search_after"] = r.SearchAfter
	}
	if r.SliceMax > 1 {
		body["slice"] = map[string]int{"id": r.SliceID, "max": r.SliceMax}
	}
	return json.Marshal(body)
}

// SearchPage is one answer of Search, read hit by hit. It is not safe for concurrent use.
type SearchPage struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	body   io.ReadCloser
	count  *countingReader
	dec    *json.Decoder
	pit    string
	inHits bool // positioned inside the hits.hits array
	done   bool
}

// countingReader counts the bytes read through it, so that a caller can bound (and charge
// for) what the JSON decoder buffers for one hit.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// BytesRead is how many bytes of the answer have been read so far.
func (p *SearchPage) BytesRead() int64 { return p.count.n }

// Buffered is how many bytes of the answer the decoder holds unread.
func (p *SearchPage) Buffered() int {
	if l, ok := p.dec.Buffered().(interface{ Len() int }); ok {
		return l.Len()
	}
	return 0
}

// PIT is the point in time's id to use for the next page (it may change with each answer).
// It is known once Next returned io.EOF; before, it is the one the request named.
func (p *SearchPage) PIT() string { return p.pit }

// Next decodes the next hit, or returns io.EOF after the last one of the page. Returned
// values do not share memory with the page.
func (p *SearchPage) Next() (Hit, error) {
	if p.done {
		return Hit{}, io.EOF
	}
	if !p.inHits {
		if err := p.seekHits(); err != nil {
			return Hit{}, p.fail(err)
		}
	}
	if p.dec.More() {
		var h Hit
		if err := p.dec.Decode(&h); err != nil {
			return Hit{}, p.fail(err)
		}
		return h, nil
	}
	// The end of hits.hits; pit_id may come after it.
	if _, err := p.dec.Token(); err != nil { // ]
		return Hit{}, p.fail(err)
	}
	p.inHits = false
	if err := p.rest(2); err != nil {
		return Hit{}, p.fail(err)
	}
	p.done = true
	return Hit{}, io.EOF
}

// seekHits walks the top-level object up to the start of hits.hits, taking pit_id on the way.
func (p *SearchPage) seekHits() error {
	if t, err := p.dec.Token(); err != nil {
		return err
	} else if t != json.Delim('{') {
		return fmt.Errorf("the answer is not a JSON object")
	}
	depth := 1
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return err
		}
		switch {
		case depth == 1 && key == "pit_id":
			if err := p.dec.Decode(&p.pit); err != nil {
				return err
			}
		case depth == 1 && key == "hits":
			if t, err := p.dec.Token(); err != nil || t != json.Delim('{') {
				return fmt.Errorf("hits is not an object (%v)", err)
			}
			depth = 2
		case depth == 2 && key == "hits":
			if t, err := p.dec.Token(); err != nil || t != json.Delim('[') {
				return fmt.Errorf("hits.hits is not an array (%v)", err)
			}
			p.inHits = true
			return nil
		default:
			var skip json.RawMessage
			if err := p.dec.Decode(&skip); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("the answer has no hits.hits")
}

// rest reads the remaining keys of the open objects (depth of them), taking pit_id.
func (p *SearchPage) rest(depth int) error {
	for depth > 0 {
		if !p.dec.More() {
			if _, err := p.dec.Token(); err != nil { // }
				return err
			}
			depth--
			continue
		}
		key, err := p.key()
		if err != nil {
			return err
		}
		if depth == 1 && key == "pit_id" {
			if err := p.dec.Decode(&p.pit); err != nil {
				return err
			}
			continue
		}
		var skip json.RawMessage
		if err := p.dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

func (p *SearchPage) key() (string, error) {
	t, err := p.dec.Token()
	if err != nil {
		return "", err
	}
	k, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("unexpected %v in the answer", t)
	}
	return k, nil
}

func (p *SearchPage) fail(err error) error {
	p.done = true
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || p.ctx.Err() != nil {
		return p.c.requestError(p.ctx, "POST /_search", fmt.Errorf("reading the answer: %w", err))
	}
	return fmt.Errorf("POST /_search: reading the answer: %w", p.c.scrub(err))
}

// Close ends the page; what is left of the answer is discarded.
func (p *SearchPage) Close() {
	p.cancel()
	_ = p.body.Close()
}

// SearchAll reads every hit of a point-in-time search into memory, page by page: for tests
// and small reads only (the engine streams pages instead).
func (c *Client) SearchAll(ctx context.Context, r SearchRequest) ([]Hit, string, error) {
	var all []Hit
	for {
		page, err := c.Search(ctx, r)
		if err != nil {
			return all, r.PIT, err
		}
		n := 0
		for {
			h, err := page.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				page.Close()
				return all, r.PIT, err
			}
			all = append(all, h)
			r.SearchAfter = h.Sort
			n++
		}
		page.Close()
		r.PIT = page.PIT()
		if n == 0 {
			return all, r.PIT, nil
		}
	}
}
