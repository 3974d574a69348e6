// Package teststack starts, for one test, what a sluice job runs on: the in-process Temporal
// server, a real S3 server (versitygw), and a sluice worker indexing into the real OpenSearch
// node of SLUICE_OPENSEARCH_URL. It is a test kit: nothing in a shipped binary imports it.
package teststack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/devserver"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/worker"
)

// Stack is a running Temporal server, S3 server and sluice worker; all stop when the test
// ends.
type Stack struct {
	S3        *s3test.Server
	SearchURL string // the OpenSearch node
	TaskQueue string // the sluice worker's
	worker    *worker.Worker
	address   string
}

// Start starts the stack with a sluice worker on taskQueue. It sets the AWS_* variables of the
// S3 server in this process (t.Setenv: the test must not be parallel). It skips the test when
// OpenSearch or versitygw is missing (fails it under SLUICE_REQUIRE_INTEGRATION=1).
func Start(t *testing.T, taskQueue string) *Stack {
	t.Helper()
	searchURL := testenv.OpenSearchURL(t)
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	quiet := slog.New(slog.DiscardHandler)
	srv, err := devserver.Start(devserver.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("starting Temporal: %v", err)
	}
	t.Cleanup(srv.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := worker.New(ctx, worker.Config{
		Temporal:  worker.TemporalConn{Address: srv.FrontendAddress()},
		TaskQueue: taskQueue, MaxMemory: 64 << 20, MemoryLimit: -1,
		ES:     es.Config{Addresses: []string{searchURL}},
		Logger: quiet,
	})
	if err != nil {
		t.Fatalf("starting the sluice worker: %v", err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &Stack{S3: s3, SearchURL: searchURL, TaskQueue: taskQueue, worker: w, address: srv.FrontendAddress()}
}

// Client is a Temporal client of the stack's server (the worker's; do not close it).
func (s *Stack) Client() client.Client { return s.worker.Client() }

// Address is the Temporal frontend's host:port.
func (s *Stack) Address() string { return s.address }

// UniqueIndex returns an index name no other test uses, deleted (with its dead-letter index)
// when the test ends.
func (s *Stack) UniqueIndex(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	t.Cleanup(func() {
		for _, n := range []string{name, ingest.DeadLetterIndex(name)} {
			if resp, err := s.search(http.MethodDelete, "/"+n, nil); err == nil {
				resp.Body.Close()
			}
		}
	})
	return name
}

// UniqueAlias returns an alias name no other test uses. When the test ends, the indices a
// reindex built for it (<alias>-<time>) and its dead-letter index are deleted.
func (s *Stack) UniqueAlias(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	t.Cleanup(func() {
		if resp, err := s.search(http.MethodDelete, "/"+name+"-*?expand_wildcards=all", nil); err == nil {
			resp.Body.Close()
		}
	})
	return name
}

// AliasIndices returns the indices alias points to, sorted; none when it does not exist.
func (s *Stack) AliasIndices(t *testing.T, alias string) []string {
	t.Helper()
	code, body := s.get(t, "/_alias/"+alias)
	if code == http.StatusNotFound {
		return nil
	}
	var indices map[string]json.RawMessage
	if code != http.StatusOK || json.Unmarshal(body, &indices) != nil {
		t.Fatalf("reading alias %s: %d %s", alias, code, body)
	}
	return slices.Sorted(maps.Keys(indices))
}

// Indices returns the names of the indices matching pattern (such as "logs-*"), sorted.
func (s *Stack) Indices(t *testing.T, pattern string) []string {
	t.Helper()
	body := s.Get(t, "/_cat/indices/"+pattern+"?h=index&expand_wildcards=all")
	return slices.Sorted(slices.Values(strings.Fields(string(body))))
}

// Get returns the body of GET path on the search engine, failing the test unless 200.
func (s *Stack) Get(t *testing.T, path string) []byte {
	t.Helper()
	code, body := s.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

func (s *Stack) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := s.search(http.MethodGet, path, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, body
}

// CloseIndex creates index and closes it: writes to it then fail for good.
func (s *Stack) CloseIndex(t *testing.T, index string) {
	t.Helper()
	for _, step := range []struct{ method, path string }{{http.MethodPut, "/" + index}, {http.MethodPost, "/" + index + "/_close"}} {
		resp, err := s.search(step.method, step.path, nil)
		if err != nil {
			t.Fatalf("%s %s: %v", step.method, step.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s %s", step.method, step.path, resp.Status, body)
		}
	}
}

// PutLines writes an NDJSON object of n documents {"key": key, "n": i}.
func (s *Stack) PutLines(t *testing.T, bucket, key string, n int) {
	t.Helper()
	var data []byte
	for i := range n {
		data = fmt.Appendf(data, `{"key":%q,"n":%d}`+"\n", key, i)
	}
	s.S3.Put(t, bucket, key, data)
}

// Count refreshes index and returns its document count; 0 when the index does not exist.
func (s *Stack) Count(t *testing.T, index string) int64 {
	t.Helper()
	return s.CountQuery(t, index, "")
}

// CountQuery is Count of the documents whose field "key" starts with keyPrefix ("" counts all).
func (s *Stack) CountQuery(t *testing.T, index, keyPrefix string) int64 {
	t.Helper()
	if resp, err := s.search(http.MethodPost, "/"+index+"/_refresh", nil); err == nil {
		resp.Body.Close()
	}
	query := []byte(`{"query":{"match_all":{}}}`)
	if keyPrefix != "" {
		query = fmt.Appendf(nil, `{"query":{"prefix":{"key.keyword":%q}}}`, keyPrefix)
	}
	resp, err := s.search(http.MethodPost, "/"+index+"/_count", query)
	if err != nil {
		t.Fatalf("counting %s: %v", index, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return 0
	}
	var out struct{ Count int64 }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("counting %s: %s %s", index, resp.Status, body)
	}
	return out.Count
}

func (s *Stack) search(method, path string, body []byte) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, method, s.SearchURL+path, bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
