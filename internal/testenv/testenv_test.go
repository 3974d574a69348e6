package testenv

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// recorder is a testing.TB that records Skip and Fatal instead of stopping the goroutine.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()                    {}
func (r *recorder) Skipf(string, ...any)       { r.skipped = true }
func (r *recorder) Fatalf(string, ...any)      { r.failed = true }
func (r *recorder) Logf(f string, args ...any) { r.TB.Logf(f, args...) }

// expect compares what a helper returned and did (skip, fail) with what the case wants.
func (r *recorder) expect(t *testing.T, got, want any, skipped, failed bool) {
	t.Helper()
	if !reflect.DeepEqual(got, want) || r.skipped != skipped || r.failed != failed {
		t.Errorf("got %+v skipped=%v failed=%v, want %+v skipped=%v failed=%v",
			got, r.skipped, r.failed, want, skipped, failed)
	}
}

// TestNodeURL: OpenSearchURL and ElasticsearchURL read their variable, or skip or fail.
func TestNodeURL(t *testing.T) {
	for _, h := range []struct {
		env string
		get func(testing.TB) string
	}{{EnvOpenSearchURL, OpenSearchURL}, {EnvElasticsearchURL, ElasticsearchURL}} {
		for _, tc := range []struct {
			name, url, require string
			want               string
			skipped, failed    bool
		}{
			{name: "set", url: "http://127.0.0.1:9200", want: "http://127.0.0.1:9200"},
			{name: "unset skips", skipped: true},
			{name: "unset required fails", require: "1", failed: true},
			{name: "unset require=false skips", require: "false", skipped: true},
		} {
			t.Run(h.env+"/"+tc.name, func(t *testing.T) {
				t.Setenv(h.env, tc.url)
				t.Setenv(EnvRequireIntegration, tc.require)
				r := &recorder{TB: t}
				r.expect(t, h.get(r), tc.want, tc.skipped, tc.failed)
			})
		}
	}
}

func TestVersityGW(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "versitygw")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()

	for _, tc := range []struct {
		name, env, path, gobin, require string
		want                            string
		skipped, failed                 bool
	}{
		{name: "env", env: bin, path: empty, gobin: empty, want: bin},
		{name: "env not executable fails", env: notExec, path: empty, gobin: empty, failed: true},
		{name: "PATH", path: dir, gobin: empty, want: bin},
		{name: "GOBIN", path: empty, gobin: dir, want: bin},
		{name: "nowhere skips", path: empty, gobin: empty, skipped: true},
		{name: "nowhere required fails", path: empty, gobin: empty, require: "1", failed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvVersityGW, tc.env)
			t.Setenv("PATH", tc.path)
			t.Setenv("GOBIN", tc.gobin)
			t.Setenv(EnvRequireIntegration, tc.require)
			r := &recorder{TB: t}
			got := VersityGW(r)
			r.expect(t, got, tc.want, tc.skipped, tc.failed)
		})
	}
}
