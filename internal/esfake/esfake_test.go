package esfake

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// bulkResponse is the decoded shape of a _bulk answer.
type bulkResponse struct {
	Took   *int64                        `json:"took"`
	Errors bool                          `json:"errors"`
	Items  []map[string]bulkItemResponse `json:"items"`
}

type bulkItemResponse struct {
	Index   string `json:"_index"`
	ID      string `json:"_id"`
	Version int64  `json:"_version"`
	Result  string `json:"result"`
	SeqNo   *int64 `json:"_seq_no"`
	Status  int    `json:"status"`
	Error   *struct {
		Type     string `json:"type"`
		Reason   string `json:"reason"`
		CausedBy *struct {
			Type string `json:"type"`
		} `json:"caused_by"`
	} `json:"error"`
}

type errorResponse struct {
	Error struct {
		RootCause []struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"root_cause"`
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
	Status int `json:"status"`
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, body io.Reader, hdr ...string) response {
	t.Helper()
	resp, err := doErr(context.Background(), method, url, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

func doErr(ctx context.Context, method, url string, body io.Reader, hdr ...string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func bulk(t *testing.T, s *Server, path, body string) (response, bulkResponse) {
	t.Helper()
	resp := do(t, http.MethodPost, s.URL()+path, strings.NewReader(body))
	var br bulkResponse
	if resp.status == http.StatusOK {
		if err := json.Unmarshal(resp.body, &br); err != nil {
			t.Fatalf("decoding %s: %v", resp.body, err)
		}
	}
	return resp, br
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// want describes one expected bulk item: action, index, id ("" = don't check), status,
// result or error type.
type want struct {
	action, index, id string
	status            int
	result            string // for successes
	errType           string // for failures
}

func checkItems(t *testing.T, br bulkResponse, wants []want) {
	t.Helper()
	if len(br.Items) != len(wants) {
		t.Fatalf("got %d items, want %d: %+v", len(br.Items), len(wants), br.Items)
	}
	anyErr := false
	for i, w := range wants {
		got, ok := br.Items[i][w.action]
		if !ok || len(br.Items[i]) != 1 {
			t.Errorf("item %d: want single key %q, got %v", i, w.action, br.Items[i])
			continue
		}
		if got.Index != w.index || (w.id != "" && got.ID != w.id) || got.Status != w.status {
			t.Errorf("item %d: got index=%q id=%q status=%d, want %q %q %d", i, got.Index, got.ID, got.Status, w.index, w.id, w.status)
		}
		if got.ID == "" && w.errType == "" {
			t.Errorf("item %d: empty _id", i)
		}
		if w.errType != "" {
			anyErr = true
			if got.Error == nil || got.Error.Type != w.errType || got.Error.Reason == "" {
				t.Errorf("item %d: error = %+v, want type %q", i, got.Error, w.errType)
			}
			if got.Result != "" || got.SeqNo != nil {
				t.Errorf("item %d: failed item has result %q / _seq_no", i, got.Result)
			}
			continue
		}
		if got.Error != nil || got.Result != w.result || got.Version < 1 || got.SeqNo == nil {
			t.Errorf("item %d: got %+v, want result %q", i, got, w.result)
		}
	}
	if br.Errors != anyErr {
		t.Errorf("errors = %v, want %v", br.Errors, anyErr)
	}
	if br.Took == nil {
		t.Error("no took")
	}
}

func TestInfo(t *testing.T) {
	for _, tc := range []struct {
		name        string
		flavor      Flavor
		product     string
		contentType string
		number      string
		tagline     string
	}{
		{"elasticsearch", Elasticsearch, "Elasticsearch", "application/json", "8.15.0", "You Know, for Search"},
		{"opensearch", OpenSearch, "", "application/json; charset=UTF-8", "2.19.6", "The OpenSearch Project: https://opensearch.org/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{Flavor: tc.flavor})
			defer s.Close()
			resp := do(t, http.MethodGet, s.URL()+"/", nil)
			if resp.status != 200 || resp.header.Get("X-Elastic-Product") != tc.product ||
				resp.header.Get("Content-Type") != tc.contentType {
				t.Fatalf("status %d headers %v", resp.status, resp.header)
			}
			var info struct {
				Name    string `json:"name"`
				Version struct {
					Number       string `json:"number"`
					Distribution string `json:"distribution"`
					BuildFlavor  string `json:"build_flavor"`
				} `json:"version"`
				Tagline string `json:"tagline"`
			}
			if err := json.Unmarshal(resp.body, &info); err != nil {
				t.Fatal(err)
			}
			if info.Version.Number != tc.number || info.Tagline != tc.tagline {
				t.Errorf("info = %+v", info)
			}
			if tc.flavor == OpenSearch && info.Version.Distribution != "opensearch" {
				t.Errorf("distribution = %q", info.Version.Distribution)
			}
			if tc.flavor == Elasticsearch && info.Version.BuildFlavor != "default" {
				t.Errorf("build_flavor = %q", info.Version.BuildFlavor)
			}
			if head := do(t, http.MethodHead, s.URL()+"/", nil); head.status != 200 {
				t.Errorf("HEAD / = %d", head.status)
			}
		})
	}
}

func TestBulkItems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		body  string
		items []want
	}{
		{
			name: "index two",
			path: "/_bulk",
			body: lines(`{"index":{"_index":"x","_id":"1"}}`, `{"a":1}`, `{"index":{"_index":"x","_id":"2"}}`, `{"a":2}`),
			items: []want{
				{action: "index", index: "x", id: "1", status: 201, result: "created"},
				{action: "index", index: "x", id: "2", status: 201, result: "created"},
			},
		},
		{
			name: "same id twice updates",
			path: "/_bulk",
			body: lines(`{"index":{"_index":"x","_id":"1"}}`, `{"a":1}`, `{"index":{"_index":"x","_id":"1"}}`, `{"a":2}`),
			items: []want{
				{action: "index", index: "x", id: "1", status: 201, result: "created"},
				{action: "index", index: "x", id: "1", status: 200, result: "updated"},
			},
		},
		{
			name: "create conflicts",
			path: "/_bulk",
			body: lines(`{"create":{"_index":"x","_id":"1"}}`, `{"a":1}`, `{"create":{"_index":"x","_id":"1"}}`, `{"a":2}`),
			items: []want{
				{action: "create", index: "x", id: "1", status: 201, result: "created"},
				{action: "create", index: "x", id: "1", status: 409, errType: "version_conflict_engine_exception"},
			},
		},
		{
			name: "path index and generated ids",
			path: "/logs/_bulk",
			body: lines(`{"index":{}}`, `{"a":1}`, `{"create":{"_index":"other"}}`, `{"a":2}`),
			items: []want{
				{action: "index", index: "logs", status: 201, result: "created"},
				{action: "create", index: "other", status: 201, result: "created"},
			},
		},
		{
			name: "bad documents fail alone, in order",
			path: "/_bulk",
			body: lines(`{"index":{"_index":"x","_id":"1"}}`, `{"a":`, `{"index":{"_index":"x","_id":"2"}}`, `{"a":2}`,
				`{"index":{"_index":"x","_id":"3"}}`, ``, `{"index":{"_index":"x","_id":"4"}}`, `[1,2]`,
				`{"index":{"_index":"x","_id":"5"}}`, `{"a":5} trailing`),
			items: []want{
				{action: "index", index: "x", id: "1", status: 400, errType: "mapper_parsing_exception"},
				{action: "index", index: "x", id: "2", status: 201, result: "created"},
				{action: "index", index: "x", id: "3", status: 400, errType: "mapper_parsing_exception"},
				{action: "index", index: "x", id: "4", status: 400, errType: "mapper_parsing_exception"},
				{action: "index", index: "x", id: "5", status: 400, errType: "mapper_parsing_exception"},
			},
		},
		{
			name: "invalid index names",
			path: "/_bulk",
			body: lines(`{"index":{"_index":"Upper","_id":"1"}}`, `{}`, `{"index":{"_index":"_x","_id":"2"}}`, `{}`,
				`{"index":{"_index":"ok","_id":"3"}}`, `{}`),
			items: []want{
				{action: "index", index: "Upper", id: "1", status: 400, errType: "invalid_index_name_exception"},
				{action: "index", index: "_x", id: "2", status: 400, errType: "invalid_index_name_exception"},
				{action: "index", index: "ok", id: "3", status: 201, result: "created"},
			},
		},
		{
			name: "deletes",
			path: "/_bulk",
			body: lines(`{"index":{"_index":"x","_id":"1"}}`, `{}`, `{"delete":{"_index":"x","_id":"1"}}`,
				`{"delete":{"_index":"x","_id":"nope"}}`),
			items: []want{
				{action: "index", index: "x", id: "1", status: 201, result: "created"},
				{action: "delete", index: "x", id: "1", status: 200, result: "deleted"},
				{action: "delete", index: "x", id: "nope", status: 404, result: "not_found"},
			},
		},
		{
			name: "ids: empty, numeric; garbage after the action object",
			path: "/_bulk",
			body: lines(`{"index":{"_index":"x","_id":""}}`, `{}`, `{"index":{"_index":"x","_id":42}} ignored`, `{}`),
			items: []want{
				{action: "index", index: "x", id: "", status: 400, errType: "illegal_argument_exception"},
				{action: "index", index: "x", id: "42", status: 201, result: "created"},
			},
		},
		{
			name: "crlf, blank lines, metadata, escapes, trailing action without doc",
			path: "/_bulk",
			body: "\r\n" + `{ "index" : { "_index" : "x", "_id" : "a\"b", "routing": "r", "dynamic_templates": {"f": "t"}, "if_seq_no": 3 } }` + "\r\n" +
				`{"a":1}` + "\r\n" + `{"index":{"_index":"x","_id":"last"}}` + "\n",
			items: []want{
				{action: "index", index: "x", id: `a"b`, status: 201, result: "created"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			defer s.Close()
			resp, br := bulk(t, s, tc.path, tc.body)
			if resp.status != 200 {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			if resp.header.Get("X-Elastic-Product") != "Elasticsearch" || resp.header.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", resp.header)
			}
			checkItems(t, br, tc.items)
			st := s.Stats()
			if st.Items != int64(len(tc.items)) || st.BulkRequests != 1 || st.Responses[200] != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestGeneratedIDsAreUnique(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	seen := map[string]bool{}
	for range 3 {
		_, br := bulk(t, s, "/x/_bulk", lines(`{"index":{}}`, `{}`, `{"index":{}}`, `{}`))
		for _, it := range br.Items {
			id := it["index"].ID
			if len(id) != 20 || seen[id] {
				t.Fatalf("bad or repeated generated id %q", id)
			}
			seen[id] = true
		}
	}
	if s.Count("x") != 6 {
		t.Errorf("count %d", s.Count("x"))
	}
}

func TestBulkRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		path        string
		contentType string
		body        string
		status      int
		errType     string // "" for a top-level string error
		reason      string // substring
	}{
		{"empty body", "/_bulk", "", "", 400, "parse_exception", "request body is required"},
		{"no final newline", "/_bulk", "", `{"index":{"_index":"x"}}` + "\n{}", 400, "illegal_argument_exception", "terminated by a newline"},
		{"no index", "/_bulk", "", lines(`{"index":{}}`, `{}`, `{"index":{}}`, `{}`), 400, "action_request_validation_exception", "1: index is missing;2: index is missing;"},
		{"nothing to do", "/_bulk", "", lines(`{"index":{"_index":"x"}}`), 400, "action_request_validation_exception", "no requests added"},
		{"unknown action", "/_bulk", "", lines(`{"upsert":{"_index":"x"}}`, `{}`), 400, "illegal_argument_exception", "expected one of [create, delete, index, update] but found [upsert]"},
		{"_type", "/_bulk", "", lines(`{"index":{"_index":"x","_type":"_doc"}}`, `{}`), 400, "illegal_argument_exception", "unknown parameter [_type]"},
		{"not json", "/_bulk", "", lines(`index x`, `{}`), 400, "x_content_parse_exception", "[1:1] Malformed action/metadata line [1]"},
		{"not an action object", "/_bulk", "", lines(`{"index":"x"}`, `{}`), 400, "illegal_argument_exception", "Malformed action/metadata line [1], expected START_OBJECT"},
		{"malformed third line", "/_bulk", "", lines(`{"index":{"_index":"x"}}`, `{}`, `{"index":{"_index":x}}`, `{}`), 400, "x_content_parse_exception", "line [3]"},
		{"update unsupported", "/_bulk", "", lines(`{"update":{"_index":"x","_id":"1"}}`, `{"doc":{}}`), 400, "illegal_argument_exception", "not supported"},
		{"unknown parameter", "/_bulk?foo=1", "", lines(`{"index":{"_index":"x"}}`, `{}`), 400, "illegal_argument_exception", "unrecognized parameter: [foo]"},
		{"content type", "/_bulk", "text/plain", lines(`{"index":{"_index":"x"}}`, `{}`), 406, "", "Content-Type header [text/plain] is not supported"},
		{"unknown endpoint", "/x/_search", "", "", 400, "", "no handler found for uri [/x/_search]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			defer s.Close()
			var hdr []string
			if tc.contentType != "" {
				hdr = []string{"Content-Type", tc.contentType}
			}
			resp := do(t, http.MethodPost, s.URL()+tc.path, strings.NewReader(tc.body), hdr...)
			if resp.status != tc.status || resp.header.Get("X-Elastic-Product") != "Elasticsearch" {
				t.Fatalf("status %d headers %v body %s", resp.status, resp.header, resp.body)
			}
			if tc.errType == "" {
				var e struct {
					Error  string `json:"error"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal(resp.body, &e); err != nil || !strings.Contains(e.Error, tc.reason) || e.Status != tc.status {
					t.Fatalf("body %s (%v)", resp.body, err)
				}
			} else {
				var e errorResponse
				if err := json.Unmarshal(resp.body, &e); err != nil {
					t.Fatalf("body %s: %v", resp.body, err)
				}
				if e.Status != tc.status || e.Error.Type != tc.errType || !strings.Contains(e.Error.Reason, tc.reason) ||
					len(e.Error.RootCause) != 1 || e.Error.RootCause[0].Type != tc.errType {
					t.Fatalf("error %+v", e)
				}
			}
			if n := len(s.Indices()); n != 0 {
				t.Errorf("a rejected request created %d indices", n)
			}
			if st := s.Stats(); st.Items != 0 {
				t.Errorf("items counted for a rejected request: %+v", st)
			}
		})
	}
}

func TestStoreCountAndAdmin(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	if resp := do(t, http.MethodPut, s.URL()+"/made", nil); resp.status != 200 || !bytes.Contains(resp.body, []byte(`"acknowledged":true`)) {
		t.Fatalf("PUT index: %d %s", resp.status, resp.body)
	}
	if resp := do(t, http.MethodPut, s.URL()+"/made", nil); resp.status != 400 || !bytes.Contains(resp.body, []byte("resource_already_exists_exception")) {
		t.Fatalf("PUT existing index: %d %s", resp.status, resp.body)
	}
	if resp := do(t, http.MethodPut, s.URL()+"/Made", nil); resp.status != 400 || !bytes.Contains(resp.body, []byte("invalid_index_name_exception")) {
		t.Fatalf("PUT bad index: %d %s", resp.status, resp.body)
	}

	bulk(t, s, "/_bulk", lines(`{"index":{"_index":"x","_id":"1"}}`, ` {"v":1} `, `{"index":{"_index":"x","_id":"2"}}`, `{"v":2}`))
	_, br := bulk(t, s, "/_bulk", lines(`{"index":{"_index":"x","_id":"1"}}`, `{"v":3}`, `{"delete":{"_index":"x","_id":"2"}}`))
	if v := br.Items[0]["index"].Version; v != 2 {
		t.Errorf("version after overwrite = %d", v)
	}
	if doc, ok := s.Doc("x", "1"); !ok || string(doc) != `{"v":3}` {
		t.Errorf("Doc = %s %v", doc, ok)
	}
	if _, ok := s.Doc("x", "2"); ok {
		t.Error("deleted doc still there")
	}
	if got := s.Docs("x"); len(got) != 1 || string(got["1"]) != `{"v":3}` {
		t.Errorf("Docs = %v", got)
	}
	if n := s.Count("x"); n != 1 {
		t.Errorf("Count = %d", n)
	}
	if n := s.Received("x", "1"); n != 2 {
		t.Errorf("Received = %d", n)
	}
	if st := s.Stats(); st.Duplicates != 2 || st.ItemStatuses[201] != 2 || st.ItemStatuses[200] != 2 {
		t.Errorf("stats %+v", st)
	}

	for _, tc := range []struct {
		method, path string
		status       int
		contains     string
	}{
		{http.MethodGet, "/x/_count", 200, `{"count":1,`},
		{http.MethodPost, "/x/_count", 200, `{"count":1,`},
		{http.MethodGet, "/made/_count", 200, `{"count":0,`},
		{http.MethodGet, "/nope/_count", 404, "index_not_found_exception"},
		{http.MethodPost, "/x/_refresh", 200, `"successful":1`},
		{http.MethodPost, "/_refresh", 200, `"successful":1`},
		{http.MethodPost, "/nope/_refresh", 404, "index_not_found_exception"},
		{http.MethodGet, "/_cluster/health", 200, `"status":"green"`},
		{http.MethodHead, "/x", 200, ""},
		{http.MethodHead, "/nope", 404, ""},
		{http.MethodDelete, "/made", 200, `"acknowledged":true`},
		{http.MethodDelete, "/made", 404, "index_not_found_exception"},
	} {
		resp := do(t, tc.method, s.URL()+tc.path, nil)
		if resp.status != tc.status || !bytes.Contains(resp.body, []byte(tc.contains)) {
			t.Errorf("%s %s = %d %s", tc.method, tc.path, resp.status, resp.body)
		}
	}
}

func TestDiscardAndValidation(t *testing.T) {
	body := lines(`{"index":{"_index":"x","_id":"1"}}`, `{"a":`, `{"index":{"_index":"x","_id":"1"}}`, `{"a":1}`,
		`{"delete":{"_index":"x","_id":"1"}}`, `{"index":{"_index":"x","_id":"2"}}`, ``)
	for _, tc := range []struct {
		name  string
		opts  Options
		items []want
		count int
	}{
		{"store validate", Options{}, []want{
			{action: "index", index: "x", id: "1", status: 400, errType: "mapper_parsing_exception"},
			{action: "index", index: "x", id: "1", status: 201, result: "created"},
			{action: "delete", index: "x", id: "1", status: 200, result: "deleted"},
			{action: "index", index: "x", id: "2", status: 400, errType: "mapper_parsing_exception"},
		}, 0},
		{"discard skip validation", Options{Discard: true, SkipValidation: true}, []want{
			{action: "index", index: "x", id: "1", status: 201, result: "created"},
			{action: "index", index: "x", id: "1", status: 201, result: "created"},
			{action: "delete", index: "x", id: "1", status: 200, result: "deleted"},
			{action: "index", index: "x", id: "2", status: 400, errType: "mapper_parsing_exception"},
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.opts)
			defer s.Close()
			_, br := bulk(t, s, "/_bulk", body)
			checkItems(t, br, tc.items)
			if n := s.Count("x"); n != tc.count {
				t.Errorf("Count = %d, want %d", n, tc.count)
			}
			if tc.opts.Discard {
				if _, ok := s.Doc("x", "1"); ok || s.Received("x", "1") != 0 || s.Stats().Duplicates != 0 {
					t.Error("discarding server kept documents or receipts")
				}
			}
		})
	}
}

func TestRequestFaults(t *testing.T) {
	body := lines(`{"index":{"_index":"x","_id":"1"}}`, `{}`)
	for _, tc := range []struct {
		name     string
		decision Decision
		status   int
		errType  string
		header   string // a header that must be set
		rawBody  string // expected body when not an ES error
	}{
		{"429", Decision{Status: 429}, 429, "es_rejected_execution_exception", "", ""},
		{"503", Decision{Status: 503}, 503, "cluster_block_exception", "", ""},
		{"401", Decision{Status: 401}, 401, "security_exception", "Www-Authenticate", ""},
		{"413 custom type", Decision{Status: 413, Type: "content_too_long_exception", Reason: "too big"}, 413, "content_too_long_exception", "", ""},
		{"502 proxy page", Decision{Status: 502, Body: []byte("<html>bad gateway</html>"), ContentType: "text/html"}, 502, "", "", "<html>bad gateway</html>"},
		{"413 empty body", Decision{Status: 413, Body: []byte{}}, 413, "", "", ""},
		{"delay", Decision{Delay: time.Millisecond}, 200, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{Fault: func(r *Request) Decision {
				if r.Endpoint == Bulk && r.Seq == 1 {
					return tc.decision
				}
				return Decision{}
			}})
			defer s.Close()
			resp := do(t, http.MethodPost, s.URL()+"/_bulk", strings.NewReader(body))
			if resp.status != tc.status || resp.header.Get("X-Elastic-Product") != "Elasticsearch" {
				t.Fatalf("status %d headers %v body %s", resp.status, resp.header, resp.body)
			}
			if tc.header != "" && resp.header.Get(tc.header) == "" {
				t.Errorf("no %s header", tc.header)
			}
			switch {
			case tc.errType != "":
				var e errorResponse
				if err := json.Unmarshal(resp.body, &e); err != nil || e.Status != tc.status || e.Error.Type != tc.errType ||
					e.Error.Reason == "" || len(e.Error.RootCause) != 1 {
					t.Errorf("body %s (%v)", resp.body, err)
				}
				if tc.decision.Reason != "" && e.Error.Reason != tc.decision.Reason {
					t.Errorf("reason %q", e.Error.Reason)
				}
			case tc.status != 200:
				if string(resp.body) != tc.rawBody {
					t.Errorf("body %q, want %q", resp.body, tc.rawBody)
				}
			}
			wantCount := 0
			if tc.status == 200 {
				wantCount = 1
			}
			if s.Count("x") != wantCount {
				t.Errorf("Count = %d, want %d", s.Count("x"), wantCount)
			}
			// The second request is not faulted.
			if resp := do(t, http.MethodPost, s.URL()+"/_bulk", strings.NewReader(body)); resp.status != 200 {
				t.Errorf("second request: %d", resp.status)
			}
			st := s.Stats()
			if st.Requests != 2 || st.Responses[tc.status] < 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestMaxContentLength(t *testing.T) {
	s := New(Options{MaxContentLength: 64})
	defer s.Close()
	small := lines(`{"index":{"_index":"x"}}`, `{}`)
	big := lines(`{"index":{"_index":"x"}}`, `{"padding":"`+strings.Repeat("p", 100)+`"}`)
	for _, tc := range []struct {
		name    string
		body    io.Reader
		status  int
		chunked bool
	}{
		{"small", strings.NewReader(small), 200, false},
		{"big", strings.NewReader(big), 413, false},
		{"big chunked", io.MultiReader(strings.NewReader(big)), 413, true}, // unknown length
		{"small after", strings.NewReader(small), 200, false},
	} {
		resp := do(t, http.MethodPost, s.URL()+"/_bulk", tc.body)
		if resp.status != tc.status {
			t.Errorf("%s: status %d %s", tc.name, resp.status, resp.body)
		}
		if tc.status == 413 && len(resp.body) != 0 {
			t.Errorf("%s: 413 body %q", tc.name, resp.body)
		}
	}
	if n := s.Count("x"); n != 2 {
		t.Errorf("Count = %d", n)
	}
	if st := s.Stats(); st.Responses[413] != 2 || st.BulkRequests != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestGzipBody(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(lines(`{"index":{"_index":"x","_id":"z"}}`, `{"zipped":true}`)))
	_ = zw.Close()
	resp := do(t, http.MethodPost, s.URL()+"/_bulk", &buf, "Content-Encoding", "gzip")
	if resp.status != 200 {
		t.Fatalf("status %d %s", resp.status, resp.body)
	}
	if doc, _ := s.Doc("x", "z"); string(doc) != `{"zipped":true}` {
		t.Errorf("doc %s", doc)
	}
}

// TestNoAnswer covers the faults that send no response.
func TestNoAnswer(t *testing.T) {
	body := lines(`{"index":{"_index":"x","_id":"1"}}`, `{}`)
	for _, tc := range []struct {
		name     string
		decision Decision
		cancel   bool // the client gives up (else the server is closed)
		count    int  // documents indexed in the end
	}{
		{"hang until client gives up", Decision{Hang: true}, true, 0},
		{"hang until close", Decision{Hang: true}, false, 0},
		{"delay cut short by client, then indexed", Decision{Delay: time.Hour}, true, 1},
		{"reset", Decision{Reset: true}, false, 0},
		{"lose response", Decision{LoseResponse: true}, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entered := make(chan struct{})
			s := New(Options{Fault: func(r *Request) Decision {
				close(entered)
				return tc.decision
			}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := doErr(ctx, http.MethodPost, s.URL()+"/_bulk", strings.NewReader(body))
				done <- err
			}()
			<-entered
			switch {
			case tc.decision.Reset || tc.decision.LoseResponse:
			case tc.cancel:
				cancel()
			default:
				s.Close()
			}
			if err := <-done; err == nil {
				t.Fatal("request succeeded")
			} else if tc.cancel && !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v", err)
			}
			s.Close() // waits for the handler: its effects are final
			if n := s.Count("x"); n != tc.count {
				t.Errorf("Count = %d, want %d", n, tc.count)
			}
			// A delayed request is answered into the void, like a cluster answers a gone client.
			wantResponses := "map[]"
			if tc.decision.Delay > 0 {
				wantResponses = "map[200:1]"
			}
			if st := s.Stats(); fmt.Sprint(st.Responses) != wantResponses {
				t.Errorf("responses %v, want %s", st.Responses, wantResponses)
			}
		})
	}
}

func TestItemFault(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := New(Options{ItemFault: func(it *Item) ItemError {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s/%s #%d seq%d pos%d %s", it.Action, it.Index, it.ID, it.Attempt, it.Seq, it.Pos, it.Doc))
		mu.Unlock()
		switch {
		case it.ID == "b" && it.Attempt == 1:
			return Rejected()
		case it.ID == "c":
			return MapperParsing("failed to parse field [n] of type [long]")
		case it.ID == "d" && it.Attempt < 3:
			return Unavailable()
		}
		return ItemError{}
	}})
	defer s.Close()

	body := lines(`{"index":{"_index":"x","_id":"a"}}`, `{"n":1}`, `{"index":{"_index":"x","_id":"b"}}`, `{"n":2}`,
		`{"index":{"_index":"x","_id":"c"}}`, `{"n":"c"}`, `{"index":{"_index":"x","_id":"d"}}`, `{"n":4}`,
		`{"index":{"_index":"Bad","_id":"e"}}`, `{}`)
	_, br := bulk(t, s, "/_bulk", body)
	checkItems(t, br, []want{
		{action: "index", index: "x", id: "a", status: 201, result: "created"},
		{action: "index", index: "x", id: "b", status: 429, errType: "es_rejected_execution_exception"},
		{action: "index", index: "x", id: "c", status: 400, errType: "mapper_parsing_exception"},
		{action: "index", index: "x", id: "d", status: 503, errType: "unavailable_shards_exception"},
		{action: "index", index: "Bad", id: "e", status: 400, errType: "invalid_index_name_exception"},
	})
	retry := lines(`{"index":{"_index":"x","_id":"b"}}`, `{"n":2}`, `{"index":{"_index":"x","_id":"d"}}`, `{"n":4}`)
	_, br = bulk(t, s, "/_bulk", retry)
	checkItems(t, br, []want{
		{action: "index", index: "x", id: "b", status: 201, result: "created"},
		{action: "index", index: "x", id: "d", status: 503, errType: "unavailable_shards_exception"},
	})
	_, br = bulk(t, s, "/_bulk", retry)
	checkItems(t, br, []want{
		{action: "index", index: "x", id: "b", status: 200, result: "updated"},
		{action: "index", index: "x", id: "d", status: 201, result: "created"},
	})

	wantSeen := []string{
		`index x/a #1 seq1 pos0 {"n":1}`, `index x/b #1 seq1 pos1 {"n":2}`, `index x/c #1 seq1 pos2 {"n":"c"}`, `index x/d #1 seq1 pos3 {"n":4}`,
		`index x/b #2 seq2 pos0 {"n":2}`, `index x/d #2 seq2 pos1 {"n":4}`,
		`index x/b #3 seq3 pos0 {"n":2}`, `index x/d #3 seq3 pos1 {"n":4}`,
	}
	if strings.Join(seen, "\n") != strings.Join(wantSeen, "\n") {
		t.Errorf("hook saw\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(wantSeen, "\n"))
	}
	st := s.Stats()
	wantStatuses := map[int]int64{201: 3, 200: 1, 429: 1, 400: 2, 503: 2}
	if fmt.Sprint(st.ItemStatuses) != fmt.Sprint(wantStatuses) || st.Items != 9 || st.Duplicates != 4 {
		t.Errorf("stats %+v", st)
	}
	if s.Count("x") != 3 || s.Received("x", "d") != 3 {
		t.Errorf("count %d received %d", s.Count("x"), s.Received("x", "d"))
	}
	s.SetItemFault(nil)
	_, br = bulk(t, s, "/_bulk", lines(`{"index":{"_index":"x","_id":"c"}}`, `{"n":3}`))
	checkItems(t, br, []want{{action: "index", index: "x", id: "c", status: 201, result: "created"}})
}

func TestConcurrentCounters(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	const workers, perWorker = 4, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				body := lines(fmt.Sprintf(`{"index":{"_index":"x","_id":"%d-%d"}}`, w, i), `{}`,
					`{"index":{"_index":"x","_id":"shared"}}`, `{}`)
				resp, err := doErr(context.Background(), http.MethodPost, s.URL()+"/_bulk", strings.NewReader(body))
				if err != nil || resp.status != 200 {
					t.Errorf("bulk: %v %d", err, resp.status)
					return
				}
				_ = s.Stats()
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	n := int64(workers * perWorker)
	if st.BulkRequests != n || st.Items != 2*n || st.Duplicates != n-1 || s.Count("x") != int(n)+1 ||
		s.Received("x", "shared") != int(n) {
		t.Errorf("stats %+v count %d", st, s.Count("x"))
	}
}

func TestHandlerInProcess(t *testing.T) {
	s := NewHandler(Options{})
	defer s.Close()
	if s.URL() != "" {
		t.Errorf("URL = %q", s.URL())
	}
	req, _ := http.NewRequest(http.MethodPost, "/x/_bulk", strings.NewReader(lines(`{"index":{"_id":"1"}}`, `{}`)))
	rec := &recorder{header: http.Header{}}
	s.ServeHTTP(rec, req)
	if rec.status != 200 || !bytes.Contains(rec.body.Bytes(), []byte(`"result":"created"`)) || s.Count("x") != 1 {
		t.Errorf("status %d body %s", rec.status, rec.body.Bytes())
	}
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// FuzzBulk feeds arbitrary bodies to the bulk parser: it must not panic, must answer valid
// JSON, and a 200 must list one item per item it counted.
func FuzzBulk(f *testing.F) {
	for _, seed := range []string{
		lines(`{"index":{"_index":"x","_id":"1"}}`, `{"a":1}`),
		lines(`{"create":{"_index":"x"}}`, `{}`, `{"delete":{"_index":"x","_id":"1"}}`),
		lines(`{ "index" : { "_index" : "x", "_id" : "a\"b", "routing": "r", "dynamic_templates": {"f": ["t"]} } } x`, `{"a":[1,{"b":"}"}]}`),
		lines(`{"index":{"_index":"x","_id":42}}`, `{"a":`),
		"\r\n\n" + `{"index":{}}` + "\n",
	} {
		f.Add([]byte(seed))
	}
	s := NewHandler(Options{})
	defer s.Close()
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _ := http.NewRequest(http.MethodPost, "/p/_bulk", bytes.NewReader(body))
		rec := &recorder{header: http.Header{}}
		before := s.Stats().Items
		s.ServeHTTP(rec, req)
		if !json.Valid(rec.body.Bytes()) {
			t.Fatalf("status %d, invalid JSON answer %q", rec.status, rec.body.Bytes())
		}
		if rec.status != http.StatusOK {
			if rec.status != 400 {
				t.Fatalf("status %d", rec.status)
			}
			return
		}
		var br bulkResponse
		if err := json.Unmarshal(rec.body.Bytes(), &br); err != nil {
			t.Fatal(err)
		}
		if got := int64(len(br.Items)); got != s.Stats().Items-before {
			t.Fatalf("%d items answered, %d counted", got, s.Stats().Items-before)
		}
	})
}
