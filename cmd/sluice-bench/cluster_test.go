package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
)

// envAsBinary makes the test binary act as sluice-bench: runBench runs each engine run as a
// child process of os.Executable(), which in a test is this binary.
const envAsBinary = "SLUICE_BENCH_TEST_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(envAsBinary) == "1" {
		os.Exit(runBench(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestCompareOnNode runs `sluice bench --compare --sink URL` into the real Elasticsearch node,
// plain and secured (user, password and CA from the ELASTICSEARCH_* variables, as a worker
// reads them): every engine's documents are all in its own index, which is gone afterwards.
// Elasticsearch only: esutil refuses OpenSearch.
func TestCompareOnNode(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		url := testenv.ElasticsearchURL(t)
		t.Setenv("ELASTICSEARCH_USERNAME", "")
		t.Setenv("ELASTICSEARCH_PASSWORD", "")
		t.Setenv("ELASTICSEARCH_CA_CERT", "")
		t.Setenv("ELASTICSEARCH_API_KEY", "")
		testCompareOnNode(t, url)
	})
	t.Run("secured", func(t *testing.T) {
		s := testenv.SecuredElasticsearch(t)
		t.Setenv("ELASTICSEARCH_USERNAME", s.Username)
		t.Setenv("ELASTICSEARCH_PASSWORD", s.Password)
		t.Setenv("ELASTICSEARCH_CA_CERT", s.CACert)
		t.Setenv("ELASTICSEARCH_API_KEY", "")
		testCompareOnNode(t, s.URL)
	})
}

func testCompareOnNode(t *testing.T, url string) {
	t.Setenv(envAsBinary, "1")
	const docs = 3000
	index := fmt.Sprintf("sluice-bench-test-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := runBench(ctx, []string{"--compare", "--sink", url, "--index", index, "--docs", fmt.Sprint(docs),
		"--doc-size", "256", "--runs", "1", "--max-ops", "500", "--max-memory", "32MiB"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	if pw := os.Getenv("ELASTICSEARCH_PASSWORD"); pw != "" && strings.Contains(stdout.String()+stderr.String(), pw) {
		t.Errorf("the password is in the output")
	}
	engines := map[string]benchLine{}
	dec := json.NewDecoder(&stdout)
	for range 3 {
		var line benchLine
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("decoding an engine's line: %v\n%s", err, stdout.String())
		}
		engines[line.Engine] = line
	}
	for _, e := range []string{"sluice", "esutil", "raw"} {
		if l := engines[e]; l.Docs != docs || l.Received != docs || l.Failed != 0 {
			t.Errorf("%s: %d sent, the node holds %d, %d failed; want %d", e, l.Docs, l.Received, l.Failed, docs)
		}
	}
	cfg := es.ConfigFromEnv(os.Getenv)
	cfg.Addresses = []string{url}
	c, err := es.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"sluice", "esutil", "raw"} {
		if ok, err := c.IndexExists(ctx, fmt.Sprintf("%s-%s-1", index, e)); ok || err != nil {
			t.Errorf("the index of %s's run is still there (%v)", e, err)
		}
	}
}
