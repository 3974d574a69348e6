package es_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestSecuredNode runs the client against the real Elasticsearch node with security on (TLS
// from a private CA, a file-realm user), as users run it: the CA file verifies the node, a
// wrong password is one prompt permanent error, a certificate from another CA is refused.
// Elasticsearch only: the OpenSearch node runs without its security plugin.
func TestSecuredNode(t *testing.T) {
	s := testenv.SecuredElasticsearch(t)
	cfg := es.Config{Addresses: []string{s.URL}, Username: s.Username, Password: s.Password, CACertFile: s.CACert}

	c, err := es.New(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Flavor() != es.Elasticsearch || !strings.HasPrefix(c.Version(), "8.") {
		t.Fatalf("detected %s, want elasticsearch 8", c)
	}
	if _, _, err := c.AliasIndices(ctxT(t), "sluice-secured-no-alias"); err != nil {
		t.Fatalf("an authenticated request: %v", err)
	}

	wrong := cfg
	wrong.Password = "wrong-" + s.Password
	start := time.Now()
	_, err = es.New(ctxT(t), wrong)
	if !errors.Is(err, es.ErrUnauthorized) || !es.IsPermanent(err) {
		t.Fatalf("a wrong password: err = %v, want a permanent ErrUnauthorized", err)
	}
	// One answer, no retries: a retry loop would run for the backoff's MaxElapsed (5 minutes).
	// The bound leaves room for a loaded machine.
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("a wrong password took %s to report, want one prompt answer", d)
	}
	if strings.Contains(err.Error(), wrong.Password) {
		t.Fatalf("the error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "check ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD or the API key") {
		t.Fatalf("a wrong password: %v, want the variables to check", err)
	}
	// A source cluster's configuration (SLUICE_CLUSTER_<NAME>_*) names its own variables.
	env := map[string]string{"SLUICE_CLUSTER_OLD_URL": s.URL, "SLUICE_CLUSTER_OLD_USERNAME": s.Username,
		"SLUICE_CLUSTER_OLD_PASSWORD": wrong.Password, "SLUICE_CLUSTER_OLD_CA_CERT": s.CACert}
	_, err = es.New(ctxT(t), es.ConfigFromEnvPrefix(func(k string) string { return env[k] }, "SLUICE_CLUSTER_OLD_"))
	if !errors.Is(err, es.ErrUnauthorized) || strings.Contains(err.Error(), wrong.Password) ||
		!strings.Contains(err.Error(), "check SLUICE_CLUSTER_OLD_USERNAME/SLUICE_CLUSTER_OLD_PASSWORD or the API key") {
		t.Fatalf("a source cluster's wrong password: %v, want its own variables to check", err)
	}

	other := cfg
	other.CACertFile, other.CACert = "", testenv.NewCA(t, "another CA").PEM
	_, err = es.New(ctxT(t), other)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("a CA that did not sign the node: err = %v, want x509.UnknownAuthorityError", err)
	}
	// Permanent (a retry meets the same certificate), and it says which variable to set.
	if !errors.Is(err, es.ErrBadConfig) || es.ClassifyError(err) == es.Retry || !strings.Contains(err.Error(), "set ELASTICSEARCH_CA_CERT") {
		t.Fatalf("a CA that did not sign the node: err = %v, want a permanent ErrBadConfig naming ELASTICSEARCH_CA_CERT", err)
	}
}
