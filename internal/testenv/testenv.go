// Package testenv tells integration tests where the real servers are.
//
// `make test` starts them and exports their locations:
//
//	SLUICE_OPENSEARCH_URL          base URL of a running OpenSearch node (2.19)
//	SLUICE_ELASTICSEARCH_URL       base URL of a running Elasticsearch node (8.19), security off
//	SLUICE_ELASTICSEARCH_TLS_URL   https URL of a second Elasticsearch node with security on
//	SLUICE_ELASTICSEARCH_CA_CERT   PEM file of the CA that signed that node's certificate
//	SLUICE_ELASTICSEARCH_USERNAME  a superuser of that node (file realm)
//	SLUICE_ELASTICSEARCH_PASSWORD  its password
//	SLUICE_VERSITYGW               path of the versitygw binary (S3 server)
//	SLUICE_REQUIRE_INTEGRATION     "1" in CI: a missing server fails the test instead of skipping it
//
// A plain `go test ./...` on a laptop without them skips the integration tests.
// `eval "$(scripts/engines.sh env)"` sets the engine variables for nodes started by hand.
package testenv

import (
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Environment variables read by this package.
const (
	EnvOpenSearchURL         = "SLUICE_OPENSEARCH_URL"
	EnvElasticsearchURL      = "SLUICE_ELASTICSEARCH_URL"
	EnvElasticsearchTLSURL   = "SLUICE_ELASTICSEARCH_TLS_URL"
	EnvElasticsearchCACert   = "SLUICE_ELASTICSEARCH_CA_CERT"
	EnvElasticsearchUsername = "SLUICE_ELASTICSEARCH_USERNAME"
	EnvElasticsearchPassword = "SLUICE_ELASTICSEARCH_PASSWORD"
	EnvVersityGW             = "SLUICE_VERSITYGW"
	EnvRequireIntegration    = "SLUICE_REQUIRE_INTEGRATION"
)

// Required reports whether SLUICE_REQUIRE_INTEGRATION asks for integration tests to fail,
// not skip, when a server is missing.
func Required() bool {
	v, err := strconv.ParseBool(os.Getenv(EnvRequireIntegration))
	return err == nil && v
}

// missing skips the test, or fails it when integration tests are required.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf(format+" (required: "+EnvRequireIntegration+" is set)", args...)
		return
	}
	t.Skipf(format, args...)
}

// OpenSearchURL returns SLUICE_OPENSEARCH_URL. When it is unset the test is skipped, or failed
// when SLUICE_REQUIRE_INTEGRATION=1. It does not probe the server.
func OpenSearchURL(t testing.TB) string {
	t.Helper()
	return nodeURL(t, EnvOpenSearchURL, "OpenSearch")
}

// nodeURL returns the variable env, or skips (fails) the test naming the missing engine.
func nodeURL(t testing.TB, env, engine string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		missing(t, "%s is not set: no %s to test against (run `make test`)", env, engine)
	}
	return u
}

// VersityGW returns the path of the versitygw binary: SLUICE_VERSITYGW, else versitygw on PATH,
// else $GOBIN or $GOPATH/bin (default $HOME/go/bin). When none is found the test is skipped, or
// failed when SLUICE_REQUIRE_INTEGRATION=1. A SLUICE_VERSITYGW that names no executable always
// fails: that is a broken setup, not a missing one.
func VersityGW(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvVersityGW); p != "" {
		if !executable(p) {
			t.Fatalf("%s=%s is not an executable file", EnvVersityGW, p)
			return ""
		}
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	for _, dir := range goBinDirs() {
		if p := filepath.Join(dir, "versitygw"); executable(p) {
			return p
		}
	}
	missing(t, "versitygw not found in %s, PATH or %v (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)",
		EnvVersityGW, goBinDirs())
	return ""
}

// goBinDirs lists where `go install` puts binaries, without running the go command.
func goBinDirs() []string {
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		return []string{gobin}
	}
	var dirs []string
	for _, p := range filepath.SplitList(build.Default.GOPATH) { // $GOPATH, else $HOME/go
		if p != "" {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	return dirs
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
