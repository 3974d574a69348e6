package worker_test

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/worker"
)

// The secured node is Elasticsearch only: the OpenSearch node runs without its security plugin.

// securedEnv sets the variables a user sets for a secured cluster (ELASTICSEARCH_URL,
// ELASTICSEARCH_USERNAME, ELASTICSEARCH_PASSWORD, ELASTICSEARCH_CA_CERT) and returns the
// worker's configuration read from them, as `sluice worker` reads it.
func securedEnv(t *testing.T, s testenv.Secured) worker.Config {
	t.Helper()
	t.Setenv("ELASTICSEARCH_URL", s.URL)
	t.Setenv("ELASTICSEARCH_USERNAME", s.Username)
	t.Setenv("ELASTICSEARCH_PASSWORD", s.Password)
	t.Setenv("ELASTICSEARCH_CA_CERT", s.CACert)
	t.Setenv("ELASTICSEARCH_API_KEY", "")
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSecuredBackfill runs a worker configured from the environment against the node with TLS
// from a private CA and a file-realm user: the backfill indexes every record.
func TestSecuredBackfill(t *testing.T) {
	cfg := securedEnv(t, testenv.SecuredElasticsearch(t))
	testBackfill(t, cfg.ES)
}

// TestSecuredNodeRefusals: what users get wrong stops worker.New at once with one clear,
// permanent error, before any Temporal connection (none runs here) is tried.
func TestSecuredNodeRefusals(t *testing.T) {
	s := testenv.SecuredElasticsearch(t)
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCA, testenv.NewCA(t, "sluice throwaway CA").PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T)
		check  func(err error) bool
		want   string
	}{
		{"wrong password", func(t *testing.T) { t.Setenv("ELASTICSEARCH_PASSWORD", "wrong-"+s.Password) },
			func(err error) bool { return errors.Is(err, esclient.ErrUnauthorized) && esclient.IsPermanent(err) },
			"a permanent ErrUnauthorized"},
		{"certificate from another CA", func(t *testing.T) { t.Setenv("ELASTICSEARCH_CA_CERT", otherCA) },
			func(err error) bool { var u x509.UnknownAuthorityError; return errors.As(err, &u) },
			"x509.UnknownAuthorityError"},
		{"no CA: the system roots", func(t *testing.T) { t.Setenv("ELASTICSEARCH_CA_CERT", "") },
			func(err error) bool { var u x509.UnknownAuthorityError; return errors.As(err, &u) },
			"x509.UnknownAuthorityError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			securedEnv(t, s)
			tc.change(t)
			cfg, err := worker.ConfigFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			cfg.Temporal.Address = "127.0.0.1:1" // never reached: Elasticsearch is checked first
			cfg.Logger = quietLogger()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			w, err := worker.New(ctx, cfg)
			if err == nil {
				w.Stop()
				t.Fatal("worker.New succeeded")
			}
			if !tc.check(err) {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
			// One answer, no retry loop, which would run for the backoff's MaxElapsed (5 minutes);
			// the fake-node tests in ingest/es count the requests. Room for a loaded machine.
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("took %s to fail, want one prompt answer", d)
			}
			if strings.Contains(err.Error(), s.Password) {
				t.Fatalf("the error shows the password: %v", err)
			}
			t.Logf("worker.New: %v", err)
		})
	}
}

// TestAPIKeyFromEnvironment: ELASTICSEARCH_API_KEY reaches the cluster as Elasticsearch
// documents it, "Authorization: ApiKey <key>". Against the fake: the Elasticsearch distribution
// the tests run cannot create API keys (its .security index needs the analysis-common module).
func TestAPIKeyFromEnvironment(t *testing.T) {
	const key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
	var got atomic.Value
	fake := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		got.Store(r.Header.Get("Authorization"))
		return esfake.Decision{}
	}})
	t.Cleanup(fake.Close)
	t.Setenv("ELASTICSEARCH_URL", fake.URL())
	t.Setenv("ELASTICSEARCH_API_KEY", key)
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := esclient.New(ctx, cfg.ES); err != nil {
		t.Fatal(err)
	}
	if h, _ := got.Load().(string); h != "ApiKey "+key {
		t.Fatalf("Authorization %q, want ApiKey <key>", h)
	}
}
