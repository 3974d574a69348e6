package essource_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/essource"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    essource.URI
		wantErr string
	}{
		{in: "es://logs", want: essource.URI{Index: "logs"}},
		{in: "es://logs-*,audit", want: essource.URI{Index: "logs-*,audit"}},
		{in: "es://old-es/logs", want: essource.URI{Cluster: "old-es", Index: "logs"}},
		{in: "es://Legacy_2/logs-2024.*", want: essource.URI{Cluster: "Legacy_2", Index: "logs-2024.*"}},
		{in: "s3://b/p", wantErr: "want es://INDEX"},
		{in: "es://", wantErr: "no index"},
		{in: "es://c/", wantErr: "no index"},
		{in: "es:///logs", wantErr: "empty cluster name"},
		{in: "es://user:secret@host/logs", wantErr: "letters, digits"},
		{in: "es://http:%2F%2Fhost/logs", wantErr: "letters, digits"},
		{in: "es://a/b/c", wantErr: "character an index name cannot have"},
		{in: "es://remote:logs", wantErr: "character an index name cannot have"},
		{in: "es://logs?q=1", wantErr: "character an index name cannot have"},
	} {
		got, err := essource.Parse(c.in)
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ingest.ErrBadInput)):
			t.Errorf("Parse(%q) = %+v, %v; want a bad-input error containing %q", c.in, got, err, c.wantErr)
		case c.wantErr == "" && (err != nil || got != c.want || got.String() != c.in):
			t.Errorf("Parse(%q) = %+v (%s), %v; want %+v", c.in, got, got, err, c.want)
		}
	}
}

// A malformed source may hold a credential: errors never repeat it.
func TestParseDoesNotEcho(t *testing.T) {
	for _, in := range []string{"es://user:hunter2@host/logs", "es://logs@hunter2", "es://c/hunter2:x", "es://hunter2 x/i"} {
		if _, err := essource.Parse(in); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q): %v, want an error that does not repeat the source", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"es://logs", "es://c/i", "es://a/b/c", "es://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := essource.Parse(s)
		if err != nil {
			return
		}
		again, err := essource.Parse(u.String())
		if err != nil || again != u {
			t.Fatalf("%q parses as %+v, which prints as %q and parses as %+v, %v", s, u, u.String(), again, err)
		}
		if strings.ContainsAny(u.Cluster, ":@/") || strings.ContainsAny(u.Index, ":@/") {
			t.Fatalf("%q parses as %+v: an address or credential could pass", s, u)
		}
	})
}

func TestEnvPrefix(t *testing.T) {
	if got := essource.EnvPrefix("old-es"); got != "SLUICE_CLUSTER_OLD_ES_" {
		t.Fatalf("EnvPrefix = %q", got)
	}
}

// A cluster the worker has no variables for is a configuration error that names the variable
// expected; nothing is dialled.
func TestClustersUnknownName(t *testing.T) {
	cl := &essource.Clusters{Getenv: func(k string) string {
		if k == "SLUICE_CLUSTER_KNOWN_USERNAME" {
			return "u"
		}
		return ""
	}}
	for _, name := range []string{"unknown", "known"} {
		_, err := cl.Client(context.Background(), name)
		want := essource.EnvPrefix(name) + "URL"
		if !errors.Is(err, ingest.ErrBadConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("cluster %q: %v, want a BadConfig error naming %s", name, err, want)
		}
	}
	if _, err := (&essource.Clusters{}).Client(context.Background(), ""); !errors.Is(err, ingest.ErrBadConfig) {
		t.Errorf("no local client: %v", err)
	}
}
