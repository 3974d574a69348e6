package esfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
)

// TestConformanceOpenSearch sends the same requests to a real OpenSearch node and to esfake
// (OpenSearch flavour) and compares what a client acts on: statuses, error types, item order,
// ids, results, versions and sequence numbers, and the count afterwards.
func TestConformanceOpenSearch(t *testing.T) {
	osURL := strings.TrimSuffix(testenv.OpenSearchURL(t), "/")
	fake := New(Options{Flavor: OpenSearch})
	defer fake.Close()

	prefix := fmt.Sprintf("esfake-conformance-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, osURL+"/"+prefix+"-*", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})

	for i, tc := range []struct {
		name, path, contentType, body string
	}{
		{"versions and conflicts", "/_bulk", "", lines(
			`{"index":{"_index":"{i}","_id":"1"}}`, `{"a":1}`,
			`{"index":{"_index":"{i}","_id":"1"}}`, `{"a":2}`,
			`{"create":{"_index":"{i}","_id":"1"}}`, `{"a":3}`,
			`{"create":{"_index":"{i}","_id":"2"}}`, `{"a":4}`,
			`{"delete":{"_index":"{i}","_id":"1"}}`,
			`{"delete":{"_index":"{i}","_id":"1"}}`,
			`{"delete":{"_index":"{i}","_id":"nope"}}`,
			`{"index":{"_index":"{i}","_id":"1"}}`, `{"a":5}`,
			`{"create":{"_index":"{i}","_id":"2"}}`, `{"a":6}`)},
		{"bad documents", "/_bulk", "", lines(
			`{"index":{"_index":"{i}","_id":"1"}}`, `{"a":`,
			`{"index":{"_index":"{i}","_id":"2"}}`, ``,
			`{"index":{"_index":"{i}","_id":"3"}}`, `   `,
			`{"index":{"_index":"{i}","_id":"4"}}`, `[1,2]`,
			`{"index":{"_index":"{i}","_id":"5"}}`, `{"a":5} trailing`,
			`{"index":{"_index":"{i}","_id":"6"}}`, `"text"`,
			`{"index":{"_index":"{i}","_id":"7"}}`, `{"ok":true}`)},
		{"index names", "/_bulk", "", lines(
			`{"index":{"_index":"{i}-Upper","_id":"1"}}`, `{}`,
			`{"index":{"_index":"_{i}","_id":"2"}}`, `{}`,
			`{"index":{"_index":"{i} x","_id":"3"}}`, `{}`,
			`{"index":{"_index":"{i}","_id":"4"}}`, `{}`)},
		{"ids", "/_bulk", "", lines(
			`{"index":{"_index":"{i}","_id":""}}`, `{}`,
			`{"index":{"_index":"{i}","_id":42}}`, `{}`,
			`{"index":{"_index":"{i}","_id":"a\"b"}}`, `{}`,
			`{"index":{"_index":"{i}","_id":"caf\u00e9"}}`, `{}`)},
		{"deletes without id", "/_bulk", "", lines(
			`{"delete":{"_index":"{i}","_id":""}}`, `{"index":{}}`, `{}`, `{"delete":{"_index":"{i}"}}`)},
		{"path index, generated ids", "/{i}/_bulk", "", lines(
			`{"index":{}}`, `{"a":1}`, `{"create":{}}`, `{"a":2}`, `{"index":{"_index":"{i}-other"}}`, `{"a":3}`)},
		{"crlf, blank lines, metadata, trailing garbage, action without doc", "/_bulk", "",
			"\r\n" + `{ "index" : { "_index" : "{i}", "_id" : "1", "routing": "r" } } junk` + "\r\n" + `{"a":1}` + "\r\n" +
				`{"index":{"_index":"{i}","_id":"2"}}` + "\n"},
		{"known url parameters", "/_bulk?refresh=false&pretty=false", "", lines(`{"index":{"_index":"{i}"}}`, `{}`)},
		{"empty body", "/_bulk", "", ""},
		{"no final newline", "/_bulk", "", `{"index":{"_index":"{i}"}}` + "\n{}"},
		{"no index", "/_bulk", "", lines(`{"index":{}}`, `{}`, `{"index":{}}`, `{}`)},
		{"nothing to do", "/_bulk", "", lines(`{"index":{"_index":"{i}"}}`)},
		{"unknown action", "/_bulk", "", lines(`{"upsert":{"_index":"{i}"}}`, `{}`)},
		{"_type", "/_bulk", "", lines(`{"index":{"_index":"{i}","_type":"_doc"}}`, `{}`)},
		{"action not json", "/_bulk", "", lines(`index x`, `{}`)},
		{"action not an object", "/_bulk", "", lines(`{"index":"x"}`, `{}`)},
		{"unknown url parameter", "/_bulk?foo=1", "", lines(`{"index":{"_index":"{i}"}}`, `{}`)},
		{"content type", "/_bulk", "text/plain", lines(`{"index":{"_index":"{i}"}}`, `{}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx := fmt.Sprintf("%s-%d", prefix, i)
			path := strings.ReplaceAll(tc.path, "{i}", idx)
			body := strings.ReplaceAll(tc.body, "{i}", idx)
			var hdr []string
			if tc.contentType != "" {
				hdr = []string{"Content-Type", tc.contentType}
			}
			real := do(t, http.MethodPost, osURL+path, strings.NewReader(body), hdr...)
			got := do(t, http.MethodPost, fake.URL()+path, strings.NewReader(body), hdr...)
			if r, f := summarize(t, real), summarize(t, got); r != f {
				t.Errorf("OpenSearch:\n%s\nesfake:\n%s\nOpenSearch body: %s\nesfake body: %s", r, f, real.body, got.body)
			}
			do(t, http.MethodPost, osURL+"/"+idx+"/_refresh", nil)
			rc := do(t, http.MethodGet, osURL+"/"+idx+"/_count", nil)
			fc := do(t, http.MethodGet, fake.URL()+"/"+idx+"/_count", nil)
			if r, f := summarize(t, rc), summarize(t, fc); r != f {
				t.Errorf("count: OpenSearch %s, esfake %s", r, f)
			}
		})
	}
}

// summarize renders what a client acts on in a response, one line per item.
func summarize(t *testing.T, r response) string {
	t.Helper()
	var v struct {
		Errors *bool                        `json:"errors"`
		Items  []map[string]json.RawMessage `json:"items"`
		Count  *int                         `json:"count"`
		Error  json.RawMessage              `json:"error"`
		Status int                          `json:"status"`
	}
	if len(r.body) > 0 {
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", r.status)
	switch {
	case v.Count != nil:
		fmt.Fprintf(&b, " count=%d", *v.Count)
	case len(v.Error) > 0:
		var e struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(v.Error, &e) != nil {
			e.Type = "<string>"
		}
		fmt.Fprintf(&b, " status=%d error=%s", v.Status, normType(e.Type))
	case v.Errors != nil:
		fmt.Fprintf(&b, " errors=%v", *v.Errors)
		for _, it := range v.Items {
			for action, raw := range it {
				var x struct {
					Index   string  `json:"_index"`
					ID      *string `json:"_id"`
					Version int64   `json:"_version"`
					Result  string  `json:"result"`
					SeqNo   *int64  `json:"_seq_no"`
					Status  int     `json:"status"`
					Error   *struct {
						Type string `json:"type"`
					} `json:"error"`
				}
				if err := json.Unmarshal(raw, &x); err != nil {
					t.Fatal(err)
				}
				id := "<none>"
				if x.ID != nil {
					id = *x.ID
					if len(id) == 20 {
						id = "<generated>"
					}
				}
				seq := "-"
				if x.SeqNo != nil {
					seq = fmt.Sprint(*x.SeqNo)
				}
				errType := "-"
				if x.Error != nil {
					errType = x.Error.Type
				}
				fmt.Fprintf(&b, "\n  %s %s %s status=%d result=%s version=%d seq=%s error=%s",
					action, x.Index, id, x.Status, x.Result, x.Version, seq, errType)
			}
		}
	}
	return b.String()
}

// normType folds error types that differ only by the JSON library naming them.
func normType(typ string) string {
	switch typ {
	case "json_parse_exception", "x_content_parse_exception", "json_e_o_f_exception":
		return "<json parse error>"
	}
	return typ
}
