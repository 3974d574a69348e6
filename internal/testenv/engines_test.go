package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEngines(t *testing.T) {
	const osURL, esURL = "http://127.0.0.1:9200", "http://127.0.0.1:9201"
	for _, tc := range []struct {
		name, os, es, require string
		want                  []Engine
		skipped, failed       bool
	}{
		{name: "both", os: osURL, es: esURL, require: "1",
			want: []Engine{{OpenSearch, osURL}, {Elasticsearch, esURL}}},
		{name: "opensearch only", os: osURL, want: []Engine{{OpenSearch, osURL}}},
		{name: "elasticsearch only", es: esURL, want: []Engine{{Elasticsearch, esURL}}},
		{name: "one missing required fails", os: osURL, require: "1", want: []Engine{{OpenSearch, osURL}}, failed: true},
		{name: "none skips", skipped: true},
		{name: "none required fails", require: "1", failed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvOpenSearchURL, tc.os)
			t.Setenv(EnvElasticsearchURL, tc.es)
			t.Setenv(EnvRequireIntegration, tc.require)
			r := &recorder{TB: t}
			got := Engines(r)
			r.expect(t, got, tc.want, tc.skipped, tc.failed)
		})
	}
}

func TestSecuredElasticsearchEnv(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	full := Secured{URL: "https://127.0.0.1:9202", CACert: ca, Username: "u", Password: "p"}
	for _, tc := range []struct {
		name            string
		env             Secured
		require         string
		want            Secured
		skipped, failed bool
	}{
		{name: "set", env: full, want: full},
		{name: "unset skips", skipped: true},
		{name: "unset required fails", require: "1", failed: true},
		{name: "password missing fails", env: Secured{URL: full.URL, CACert: ca, Username: "u"}, failed: true},
		{name: "CA file missing fails", env: Secured{URL: full.URL, CACert: ca + ".gone", Username: "u", Password: "p"}, failed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvElasticsearchTLSURL, tc.env.URL)
			t.Setenv(EnvElasticsearchCACert, tc.env.CACert)
			t.Setenv(EnvElasticsearchUsername, tc.env.Username)
			t.Setenv(EnvElasticsearchPassword, tc.env.Password)
			t.Setenv(EnvRequireIntegration, tc.require)
			r := &recorder{TB: t}
			got := SecuredElasticsearch(r)
			r.expect(t, got, tc.want, tc.skipped, tc.failed)
		})
	}
}
