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
	"strings"
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
	return c.count(ctx, indexPath(index, "/_count"), query)
}

func (c *Client) count(ctx context.Context, path string, query json.RawMessage) (int64, error) {
	var body any
	if query != nil {
		body = map[string]json.RawMessage{"query": query}
	}
	var out struct {
		Count int64 `json:"count"`
	}
	return out.Count, c.call(ctx, http.MethodPost, path, body, &out)
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
