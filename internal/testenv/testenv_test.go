package testenv

import (
	"os"
	"path/filepath"
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

func TestOpenSearchURL(t *testing.T) {
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
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvOpenSearchURL, tc.url)
			t.Setenv(EnvRequireIntegration, tc.require)
			r := &recorder{TB: t}
			got := OpenSearchURL(r)
			if got != tc.want || r.skipped != tc.skipped || r.failed != tc.failed {
				t.Errorf("got %q skipped=%v failed=%v, want %q skipped=%v failed=%v",
					got, r.skipped, r.failed, tc.want, tc.skipped, tc.failed)
			}
		})
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
			if got != tc.want || r.skipped != tc.skipped || r.failed != tc.failed {
				t.Errorf("got %q skipped=%v failed=%v, want %q skipped=%v failed=%v",
					got, r.skipped, r.failed, tc.want, tc.skipped, tc.failed)
			}
		})
	}
}
