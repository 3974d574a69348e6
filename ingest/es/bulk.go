package es

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// ItemResult is the outcome of one item of a _bulk request.
type ItemResult struct {
	Status int
	Type   string // error.type, "" on success
	Reason string // error.reason and its caused_by
}

// BulkResult is what a _bulk call answered. When Status is 2xx and Errors is false every item
// succeeded and Items is not filled in: the answer is not parsed past its "errors" flag.
type BulkResult struct {
	Status int
	Errors bool
	Items  []ItemResult
	Body   []byte // the start of the answer when Status is not 2xx
}

// Class is ClassifyStatus of the answer's status.
func (r BulkResult) Class() Class { return ClassifyStatus(r.Status) }

// Bulk posts one _bulk body of n items to index and reads the per-item results into items
// (reused when it has the capacity). The body is the concatenation of parts, sent as they
// are, without joining them first. An error means no (complete) answer: retryable, unless
// ctx ended.
func (c *Client) Bulk(ctx context.Context, index string, parts [][]byte, n int, items []ItemResult) (BulkResult, error) {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	op := "_bulk to " + index
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/"+url.PathEscape(index)+"/_bulk", nil)
	if err != nil {
		return BulkResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.ContentLength = int64(size)
	req.GetBody = func() (io.ReadCloser, error) {
		bufs := net.Buffers(append([][]byte(nil), parts...))
		return io.NopCloser(&bufs), nil
	}
	req.Body, _ = req.GetBody()
	res, err := c.tr.Transport.Perform(req)
	if err != nil {
		return BulkResult{}, c.requestError(ctx, op, err)
	}
	defer drainClose(res.Body)
	out := BulkResult{Status: res.StatusCode}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		out.Body, _ = io.ReadAll(io.LimitReader(res.Body, 4<<10))
		out.Body = bytes.TrimSpace(out.Body)
		return out, nil
	}
	br := bufio.NewReaderSize(res.Body, 4<<10)
	errorsFlag, err := scanErrorsFlag(br)
	if err != nil {
		return out, c.requestError(ctx, op, fmt.Errorf("reading the answer: %w", err))
	}
	out.Errors = errorsFlag
	if !errorsFlag {
		return out, nil
	}
	out.Items, err = decodeItems(br, n, items[:0])
	if err != nil {
		return out, c.requestError(ctx, op, fmt.Errorf("reading the answer's items: %w", err))
	}
	return out, nil
}

// scanErrorsFlag peeks at the start of the answer for the value of its top-level "errors"
// key, which Elasticsearch and OpenSearch write before "items". Nothing is consumed.
func scanErrorsFlag(br *bufio.Reader) (bool, error) {
	key := []byte(`"errors"`)
	for size := 64; ; size *= 2 {
		size = min(size, br.Size())
		head, err := br.Peek(size)
		if i := bytes.Index(head, key); i >= 0 {
			rest := bytes.TrimLeft(head[i+len(key):], " \t\r\n")
			if len(rest) > 0 && rest[0] == ':' {
				rest = bytes.TrimLeft(rest[1:], " \t\r\n")
				if len(rest) >= 5 || err != nil {
					return bytes.HasPrefix(rest, []byte("true")), nil
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return false, fmt.Errorf("no \"errors\" flag in the response")
			}
			return false, err
		}
		if size == br.Size() {
			return false, fmt.Errorf("no \"errors\" flag near the start of the response")
		}
	}
}

// decodeItems streams the "items" array, one item at a time.
func decodeItems(r io.Reader, n int, items []ItemResult) ([]ItemResult, error) {
	dec := json.NewDecoder(r)
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if s, ok := tok.(string); ok && s == "items" {
			break
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, fmt.Errorf("\"items\" is not an array")
	}
	type itemBody struct {
		Status int          `json:"status"`
		Error  *errorObject `json:"error"`
	}
	for dec.More() {
		var item map[string]itemBody
		if err := dec.Decode(&item); err != nil {
			return nil, err
		}
		for _, v := range item {
			r := ItemResult{Status: v.Status}
			if v.Error != nil {
				r.Type, r.Reason = v.Error.Type, v.Error.reason()
			}
			items = append(items, r)
		}
	}
	if len(items) != n {
		return nil, fmt.Errorf("%d items in the response for %d sent", len(items), n)
	}
	return items, nil
}
