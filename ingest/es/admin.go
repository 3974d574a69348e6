package es

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// call sends one index operation with a JSON body (nil for none) and decodes a 2xx answer into
// out (nil: discard it). A non-2xx answer is a *StatusError.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	op := method + " " + path
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		rd = bytes.NewReader(data)
	}
	res, err := c.perform(ctx, op, method, path, rd, "application/json")
	if err != nil {
		return err
	}
	defer drainClose(res.Body)
	if res.StatusCode < 200 || res.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return newStatusError(op, res.StatusCode, data)
	}
	if out == nil || method == http.MethodHead {
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return c.requestError(ctx, op, fmt.Errorf("reading the answer: %w", err))
	}
	return nil
}

func indexPath(index string, rest ...string) string {
	return "/" + url.PathEscape(index) + strings.Join(rest, "")
}

// CreateIndex creates index with body, the JSON of its settings, mappings and aliases (nil:
// the cluster's defaults). An index that exists already is a *StatusError of type
// resource_already_exists_exception (see IsAlreadyExists).
func (c *Client) CreateIndex(ctx context.Context, index string, body []byte) error {
	return c.call(ctx, http.MethodPut, indexPath(index), body, nil)
}

// IsAlreadyExists reports whether err says the index existed already.
func IsAlreadyExists(err error) bool {
	se, ok := err.(*StatusError)
	return ok && se.Type == "resource_already_exists_exception"
}

// IndexExists reports whether an index, alias or data stream of that name exists.
func (c *Client) IndexExists(ctx context.Context, index string) (bool, error) {
	err := c.call(ctx, http.MethodHead, indexPath(index), nil, nil)
	if se, ok := err.(*StatusError); ok && se.Status == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// DeleteIndex deletes index.
func (c *Client) DeleteIndex(ctx context.Context, index string) error {
	return c.call(ctx, http.MethodDelete, indexPath(index), nil, nil)
}

// GetSettings returns the settings of index as the cluster answers them:
// {"<index>":{"settings":{"index":{...}}}}. flat asks for flat keys ("index.refresh_interval").
func (c *Client) GetSettings(ctx context.Context, index string, flat bool) (json.RawMessage, error) {
	var out json.RawMessage
	path := indexPath(index, "/_settings")
	if flat {
		path += "?flat_settings=true"
	}
	return out, c.call(ctx, http.MethodGet, path, nil, &out)
}

// PutSettings updates the dynamic settings of index, body being {"index":{...}} or flat keys.
func (c *Client) PutSettings(ctx context.Context, index string, body []byte) error {
	return c.call(ctx, http.MethodPut, indexPath(index, "/_settings"), body, nil)
}

// Refresh makes everything indexed so far in index visible to search and _count.
func (c *Client) Refresh(ctx context.Context, index string) error {
	return c.call(ctx, http.MethodPost, indexPath(index, "/_refresh"), nil, nil)
}

// Count returns the number of documents in index that match query (the JSON of a query
// clause, such as {"term":{"status":400}}; nil: all of them).
func (c *Client) Count(ctx context.Context, index string, query json.RawMessage) (int64, error) {
	var body any
	if query != nil {
		body = map[string]json.RawMessage{"query": query}
	}
	var out struct {
		Count int64 `json:"count"`
	}
	return out.Count, c.call(ctx, http.MethodPost, indexPath(index, "/_count"), body, &out)
}

// IsDataStream reports whether name is an existing data stream (GET /_resolve/index/NAME,
// answered alike by Elasticsearch 8 and OpenSearch 2), which takes only the create action.
// A name that resolves to nothing, or a cluster that does not serve the endpoint (400, 405),
// is not one. A data stream that an index template would create on the first write is not
// seen here: its first request is refused for the index action, which stops the run.
func (c *Client) IsDataStream(ctx context.Context, name string) (bool, error) {
	var out struct {
		DataStreams []struct {
			Name string `json:"name"`
		} `json:"data_streams"`
	}
	err := c.call(ctx, http.MethodGet, "/_resolve/index/"+url.PathEscape(name), nil, &out)
	var se *StatusError
	if errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusBadRequest || se.Status == http.StatusMethodNotAllowed) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, ds := range out.DataStreams {
		if ds.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// AliasIndices returns the indices that alias points to, sorted as the cluster answers, and
// which of them is its write index ("" when none is marked). An alias that does not exist
// answers no indices and no error.
func (c *Client) AliasIndices(ctx context.Context, alias string) (indices []string, writeIndex string, err error) {
	var out map[string]struct {
		Aliases map[string]struct {
			IsWriteIndex *bool `json:"is_write_index"`
		} `json:"aliases"`
	}
	err = c.call(ctx, http.MethodGet, "/_alias/"+url.PathEscape(alias), nil, &out)
	if se, ok := err.(*StatusError); ok && se.Status == http.StatusNotFound {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	for index, a := range out {
		indices = append(indices, index)
		if w := a.Aliases[alias].IsWriteIndex; w != nil && *w {
			writeIndex = index
		}
	}
	if writeIndex == "" && len(indices) == 1 {
		writeIndex = indices[0] // an alias of one index writes to it
	}
	return indices, writeIndex, nil
}

// AliasAction is one action of an _aliases call: exactly one of Add, Remove, RemoveIndex.
type AliasAction struct {
	Add         *AliasRef `json:"add,omitempty"`
	Remove      *AliasRef `json:"remove,omitempty"`
	RemoveIndex *AliasRef `json:"remove_index,omitempty"` // deletes the index itself
}

// AliasRef names an index and (but for RemoveIndex) an alias.
type AliasRef struct {
	Index        string `json:"index"`
	Alias        string `json:"alias,omitempty"`
	IsWriteIndex *bool  `json:"is_write_index,omitempty"`
	MustExist    *bool  `json:"must_exist,omitempty"` // Remove only
}

// UpdateAliases applies actions in one atomic _aliases call: all of them or none.
func (c *Client) UpdateAliases(ctx context.Context, actions []AliasAction) error {
	return c.call(ctx, http.MethodPost, "/_aliases", map[string]any{"actions": actions}, nil)
}

// keepAlive renders a duration as Elasticsearch's time unit, whole seconds (at least one).
func keepAlive(d time.Duration) string {
	return strconv.FormatInt(max(int64(d/time.Second), 1), 10) + "s"
}

// OpenPIT opens a point in time on index that lives keepAlive past each use, and returns its
// id. Elasticsearch: POST /{index}/_pit; OpenSearch: POST /{index}/_search/point_in_time.
func (c *Client) OpenPIT(ctx context.Context, index string, keep time.Duration) (string, error) {
	var out struct {
		ID    string `json:"id"`     // Elasticsearch
		PITID string `json:"pit_id"` // OpenSearch
	}
	path := indexPath(index, "/_pit?keep_alive=", keepAlive(keep))
	if c.flavor == OpenSearch {
		path = indexPath(index, "/_search/point_in_time?keep_alive=", keepAlive(keep))
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

// SearchRequest is one page of a point-in-time search.
type SearchRequest struct {
	PIT       string          // from OpenPIT
	KeepAlive time.Duration   // extends the point in time; 0: 1m
	Size      int             // hits per page; 0: 1000
	Query     json.RawMessage // a query clause; nil: all documents
	// Sort must be total so that SearchAfter resumes exactly; nil: DefaultSort().
	Sort        json.RawMessage
	SearchAfter []json.RawMessage // the Sort of the last hit of the previous page; nil: from the start
	// Slice (when SliceMax > 1) reads only slice SliceID of SliceMax disjoint parts.
	SliceID, SliceMax int
}

// Hit is one document of a search answer.
type Hit struct {
	Index  string            `json:"_index"`
	ID     string            `json:"_id"`
	Source json.RawMessage   `json:"_source"`
	Sort   []json.RawMessage `json:"sort"`
}

// SearchResult is one page: its hits and the point in time's id to use next (it may change).
type SearchResult struct {
	PIT  string
	Hits []Hit
}

// DefaultSort is a total order of a point in time: _shard_doc on Elasticsearch; OpenSearch
// has no _shard_doc and sorts by _id ("_doc" alone repeats across shards).
func (c *Client) DefaultSort() json.RawMessage {
	if c.flavor == OpenSearch {
		return json.RawMessage(`[{"_id":"asc"}]`)
	}
	return json.RawMessage(`[{"_shard_doc":"asc"}]`)
}

// Search reads one page of a point-in-time search (POST /_search with pit, search_after and
// slice). An empty Hits means the slice is read.
func (c *Client) Search(ctx context.Context, r SearchRequest) (SearchResult, error) {
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
		"size": r.Size,
		"pit":  map[string]string{"id": r.PIT, "keep_alive": keepAlive(r.KeepAlive)},
		"sort": r.Sort,
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
	var out struct {
		PITID string `json:"pit_id"`
		Hits  struct {
			Hits []Hit `json:"hits"`
		} `json:"hits"`
	}
	if err := c.call(ctx, http.MethodPost, "/_search", body, &out); err != nil {
		return SearchResult{}, err
	}
	res := SearchResult{PIT: out.PITID, Hits: out.Hits.Hits}
	if res.PIT == "" {
		res.PIT = r.PIT
	}
	return res, nil
}
