package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/activities"
	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/workertest"
	"github.com/sluicehq/sluice/worker"
)

// TestReindexUsage checks that bad reindex arguments exit 2 before any connection is tried.
func TestReindexUsage(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good.json", `{"settings":{"number_of_shards":1}}`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"reindex", "--source", "s3://b/p"}, "--alias is required"},
		{[]string{"reindex", "--source", "s3://b/p", "--alias", "Logs"}, "lowercase"},
		{[]string{"reindex", "--alias", "logs"}, "--source is required"},
		{[]string{"reindex", "--source", "s3://b/p", "--alias", strings.Repeat("a", 240)}, "too long for its new indices"},
		{[]string{"reindex", "--source", "s3://b/p", "--alias", "logs", "--index-config", filepath.Join(dir, "missing.json")}, "no such file"},
		{[]string{"reindex", "--source", "s3://b/p", "--alias", "logs", "--index-config", file("bad.json", `{"settings":`)}, "not a JSON object"},
		{[]string{"reindex", "--source", "s3://b/p", "--alias", "logs", "--index-config", file("aliases.json", `{"aliases":{"x":{}}}`)}, `unexpected key "aliases"`},
		{[]string{"reindex", "--source", "s3://b/p", "--alias", "logs", "--index-config",
			file("large.json", `{"settings":{"x":"`+strings.Repeat("y", activities.MaxIndexConfigBytes)+`"}}`)}, "larger than"},
		{[]string{"reindex", "--source", "s3://b/p", "--alias", "logs", "--index-config", good, "--concurrency", "0"}, "--concurrency"},
		{[]string{"reindex", "--source", "s3://b/p", "--alias", "logs", "--index-config", good, "extra"}, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append(tc.args, "--temporal-address", "127.0.0.1:1"), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), exitUsage, tc.want)
		}
	}
}

// TestReindexCommand runs `sluice reindex --wait` and `sluice status` as a user would, against
// the embedded Temporal server, a real worker, versitygw and a real search engine.
func TestReindexCommand(t *testing.T) {
	engine := testenv.Engines(t)[0]
	s3 := s3test.Start(t)
	s3.SetEnv(t)
	s3.CreateBucket(t, "data")
	var data []byte
	for i := range 200 {
		data = fmt.Appendf(data, `{"n":%d}`+"\n", i)
	}
	s3.Put(t, "data", "in/a.ndjson", data)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	esCfg := esclient.Config{Addresses: []string{engine.URL}}
	w := workertest.Start(t, ctx, worker.Config{ES: esCfg})
	es, err := esclient.New(ctx, esCfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &clientEnv{t: t, addr: w.Config().Temporal.Address, c: w.Client()}
	alias := fmt.Sprintf("rx-cli-%d", time.Now().UnixNano())
	cleanup := []string{alias + "x"}
	t.Cleanup(func() {
		for _, name := range cleanup {
			_ = es.DeleteIndex(context.Background(), name)
		}
	})
	config := filepath.Join(t.TempDir(), "index.json")
	if err := os.WriteFile(config, []byte("{\n  \"mappings\": {\"properties\": {\"n\": {\"type\": \"long\"}}}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, stdout, _ := e.sluice("reindex", "--source", "s3://data/in/", "--alias", alias, "--index-config", config,
		"--chunk-size", "1KiB", "--wait", "--json")
	first := decodeReindex(t, stdout)
	if code != exitOK || first.Status != statusCompleted || first.Count != 200 || first.Alias != alias ||
		!strings.HasPrefix(first.Index, alias+"-") || len(first.Previous) != 0 || first.Backfill == nil || first.Backfill.Records.Indexed != 200 {
		t.Fatalf("first reindex: exit %d, %+v", code, first)
	}

	code, stdout, _ = e.sluice("reindex", "--source", "s3://data/in/", "--alias", alias, "--keep-old", "0", "--wait", "--json")
	second := decodeReindex(t, stdout)
	cleanup = append(cleanup, first.Index, second.Index)
	if code != exitOK || !slices.Equal(second.Previous, []string{first.Index}) || !slices.Equal(second.Deleted, []string{first.Index}) {
		t.Fatalf("second reindex: exit %d, %+v; want %s replaced and deleted", code, second, first.Index)
	}
	if indices, _, err := es.AliasIndices(ctx, alias); err != nil || !slices.Equal(indices, []string{second.Index}) {
		t.Fatalf("alias %s points to %v (%v), want [%s]", alias, indices, err, second.Index)
	}

	// status of a closed reindex, JSON and text.
	code, stdout, _ = e.sluice("status", second.WorkflowID, "--json")
	st := decodeReindex(t, stdout)
	if code != exitOK || st.Status != statusCompleted || st.Phase != "done" || st.Index != second.Index || st.Count != 200 {
		t.Fatalf("status --json: exit %d, %+v", code, st)
	}
	code, stdout, _ = e.sluice("status", second.WorkflowID)
	if want := fmt.Sprintf("%s -> %s (was: %s)", alias, second.Index, first.Index); code != exitOK || !strings.Contains(stdout, want) {
		t.Fatalf("status: exit %d, want %q in:\n%s", code, want, stdout)
	}

	// A concrete index with the alias's name: exit 1 with a clear message, nothing created.
	if err := es.CreateIndex(ctx, alias+"x", nil); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.sluice("reindex", "--source", "s3://data/in/", "--alias", alias+"x", "--wait")
	if code != exitFailed || !strings.Contains(stderr, "is an index, not an alias") || !strings.Contains(stderr, "the alias did not move") {
		t.Fatalf("reindex onto an index: exit %d, stderr %q", code, stderr)
	}
}

func decodeReindex(t *testing.T, stdout string) reindexJSON {
	t.Helper()
	var r reindexJSON
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v in %q", err, stdout)
	}
	return r
}
