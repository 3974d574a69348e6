package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// These tests check the nodes `make test` starts (scripts/opensearch.sh, scripts/elasticsearch.sh)
// are what the other integration tests take them for.

func getJSON(t *testing.T, c *http.Client, req *http.Request, out any) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", req.Method, req.URL, err)
		}
	}
	return resp
}

func newGet(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestEnginesAnswer: each engine is the product and major version its name says, and healthy.
func TestEnginesAnswer(t *testing.T) {
	c := &http.Client{Timeout: 30 * time.Second}
	ForEachEngine(t, func(t *testing.T, e Engine) {
		var health struct{ Status string }
		resp := getJSON(t, c, newGet(t, e.URL+"/_cluster/health?wait_for_status=yellow&timeout=20s"), &health)
		if resp.StatusCode != http.StatusOK || (health.Status != "green" && health.Status != "yellow") {
			t.Fatalf("_cluster/health: %s, status %q", resp.Status, health.Status)
		}
		wantProduct, wantMajor := "", "2."
		if e.Name == Elasticsearch {
			wantProduct, wantMajor = "Elasticsearch", "8."
		}
		if got := resp.Header.Get("X-Elastic-Product"); got != wantProduct {
			t.Errorf("X-Elastic-Product = %q, want %q", got, wantProduct)
		}
		var nodes struct {
			Nodes map[string]struct{ Version string }
		}
		resp = getJSON(t, c, newGet(t, e.URL+"/_nodes/_local?filter_path=nodes.*.version"), &nodes)
		if resp.StatusCode != http.StatusOK || len(nodes.Nodes) != 1 {
			t.Fatalf("_nodes/_local: %s, %d nodes", resp.Status, len(nodes.Nodes))
		}
		for _, n := range nodes.Nodes {
			if !strings.HasPrefix(n.Version, wantMajor) {
				t.Errorf("%s version %s, want %s*", e.Name, n.Version, wantMajor)
			}
		}
	})
}

// TestSecuredElasticsearch: the secured node takes the CA and the user it is given, and refuses
// what users get wrong: no credentials, a wrong password, plain HTTP, another CA.
func TestSecuredElasticsearch(t *testing.T) {
	s := SecuredElasticsearch(t)
	verified := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool(t)}}}
	authed := func(t *testing.T, u, user, password string) *http.Request {
		req := newGet(t, u)
		req.SetBasicAuth(user, password)
		return req
	}

	t.Run("user of the file realm", func(t *testing.T) {
		var who struct {
			Username            string
			AuthenticationRealm struct{ Type string } `json:"authentication_realm"`
		}
		resp := getJSON(t, verified, authed(t, s.URL+"/_security/_authenticate", s.Username, s.Password), &who)
		if resp.StatusCode != http.StatusOK || who.Username != s.Username || who.AuthenticationRealm.Type != "file" {
			t.Fatalf("_security/_authenticate: %s, user %q realm %q", resp.Status, who.Username, who.AuthenticationRealm.Type)
		}
		if got := resp.Header.Get("X-Elastic-Product"); got != "Elasticsearch" {
			t.Errorf("X-Elastic-Product = %q", got)
		}
	})
	t.Run("certificate names localhost", func(t *testing.T) {
		u, err := url.Parse(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = "localhost:" + u.Port()
		resp := getJSON(t, verified, authed(t, u.String()+"/_cluster/health", s.Username, s.Password), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", u, resp.Status)
		}
	})
	for _, tc := range []struct{ name, user, password string }{
		{"no credentials", "", ""},
		{"wrong password", s.Username, s.Password + "x"},
	} {
		t.Run(tc.name+" is 401", func(t *testing.T) {
			req := newGet(t, s.URL+"/_cluster/health")
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.password)
			}
			resp := getJSON(t, verified, req, nil)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("got %s, WWW-Authenticate %q; want 401 asking for Basic", resp.Status, resp.Header.Values("WWW-Authenticate"))
			}
		})
	}
	t.Run("plain HTTP is refused", func(t *testing.T) {
		u := "http://" + strings.TrimPrefix(s.URL, "https://") + "/_cluster/health"
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(authed(t, u, s.Username, s.Password))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s answered %s over plain HTTP", u, resp.Status)
		}
	})
	t.Run("another CA is refused", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(NewCA(t, "another CA").Cert)
		c := &http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Do(authed(t, s.URL+"/_cluster/health", s.Username, s.Password))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a client trusting another CA got %s", resp.Status)
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("got %v, want an unknown-authority error", err)
		}
	})
}
