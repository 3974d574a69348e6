package testenv

import (
	"crypto/x509"
	"os"
	"strings"
	"testing"
)

// Engine names, as Engine.Name spells them.
const (
	OpenSearch    = "opensearch"
	Elasticsearch = "elasticsearch"
)

// Engine is a search engine node the test environment provides, security off.
type Engine struct {
	Name string // OpenSearch or Elasticsearch
	URL  string // base URL, e.g. http://127.0.0.1:9201
}

// engineVars lists every engine tests run on, in the order Engines returns them.
var engineVars = []struct{ name, env string }{
	{OpenSearch, EnvOpenSearchURL},
	{Elasticsearch, EnvElasticsearchURL},
}

// Engines returns the engines the environment provides (SLUICE_OPENSEARCH_URL,
// SLUICE_ELASTICSEARCH_URL), OpenSearch first, for tests that run on each. When none is set the
// test is skipped; when SLUICE_REQUIRE_INTEGRATION=1, any one missing fails the test. It does
// not probe the servers.
func Engines(t testing.TB) []Engine {
	t.Helper()
	var engines []Engine
	var unset []string
	for _, v := range engineVars {
		if u := os.Getenv(v.env); u != "" {
			engines = append(engines, Engine{Name: v.name, URL: u})
		} else {
			unset = append(unset, v.env)
		}
	}
	if len(unset) > 0 && (len(engines) == 0 || Required()) {
		missing(t, "%s not set: no %s to test against (run `make test`)",
			strings.Join(unset, ", "), engineNoun(len(unset)))
	} else if len(unset) > 0 {
		t.Logf("%s not set: testing on %v only", strings.Join(unset, ", "), engines)
	}
	return engines
}

func engineNoun(n int) string {
	if n == 1 {
		return "engine"
	}
	return "engines"
}

// ForEachEngine runs f as a subtest named after each engine Engines returns.
func ForEachEngine(t *testing.T, f func(t *testing.T, e Engine)) {
	t.Helper()
	for _, e := range Engines(t) {
		t.Run(e.Name, func(t *testing.T) { f(t, e) })
	}
}

// ElasticsearchURL returns SLUICE_ELASTICSEARCH_URL, for a test that needs Elasticsearch
// itself (say why in the test). When it is unset the test is skipped, or failed when
// SLUICE_REQUIRE_INTEGRATION=1. It does not probe the server.
func ElasticsearchURL(t testing.TB) string {
	t.Helper()
	return nodeURL(t, EnvElasticsearchURL, "Elasticsearch")
}

// Secured is the Elasticsearch node with security on: TLS on HTTP with a private CA and a
// file-realm superuser. Its certificate names IP 127.0.0.1 and DNS localhost.
type Secured struct {
	URL      string // https://127.0.0.1:PORT
	CACert   string // path of the CA's PEM file
	Username string
	Password string
}

// SecuredElasticsearch returns the secured node from SLUICE_ELASTICSEARCH_TLS_URL,
// SLUICE_ELASTICSEARCH_CA_CERT, SLUICE_ELASTICSEARCH_USERNAME and SLUICE_ELASTICSEARCH_PASSWORD.
// When none is set the test is skipped, or failed when SLUICE_REQUIRE_INTEGRATION=1. Some but not
// all set, or a CA file that cannot be read, always fails: that is a broken setup, not a missing
// one. It does not probe the server.
func SecuredElasticsearch(t testing.TB) Secured {
	t.Helper()
	s := Secured{
		URL:      os.Getenv(EnvElasticsearchTLSURL),
		CACert:   os.Getenv(EnvElasticsearchCACert),
		Username: os.Getenv(EnvElasticsearchUsername),
		Password: os.Getenv(EnvElasticsearchPassword),
	}
	vars := []struct{ name, value string }{
		{EnvElasticsearchTLSURL, s.URL},
		{EnvElasticsearchCACert, s.CACert},
		{EnvElasticsearchUsername, s.Username},
		{EnvElasticsearchPassword, s.Password},
	}
	var unset []string
	for _, v := range vars {
		if v.value == "" {
			unset = append(unset, v.name)
		}
	}
	switch {
	case len(unset) == len(vars):
		missing(t, "%s not set: no secured Elasticsearch to test against (run `make test`)",
			strings.Join(unset, ", "))
		return Secured{}
	case len(unset) > 0:
		t.Fatalf("secured Elasticsearch half configured: %s not set", strings.Join(unset, ", "))
		return Secured{}
	}
	if _, err := os.Stat(s.CACert); err != nil {
		t.Fatalf("%s: %v", EnvElasticsearchCACert, err)
		return Secured{}
	}
	return s
}

// CertPool returns a pool holding the CA of s.CACert, for clients that verify the node.
func (s Secured) CertPool(t testing.TB) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(s.CACert)
	if err != nil {
		t.Fatalf("read CA certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", s.CACert)
	}
	return pool
}
