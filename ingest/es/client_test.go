package es_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/testenv"
)

// securedNode imitates an Elasticsearch 8 node with security on: TLS on HTTP, the file realm's
// user elastic/changeme, and the X-Elastic-Product header on every answer, errors included.
// GET / answers 405, as the 8.19 integ-test distribution does; _nodes/_local tells the version.
func securedNode(t *testing.T, ca *testenv.CA, requests *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		if u, p, ok := r.BasicAuth(); !ok || u != "elastic" || p != "changeme" {
			w.Header().Set("WWW-Authenticate", `Basic realm="security", charset="UTF-8"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"root_cause":[{"type":"security_exception","reason":"unable to authenticate user [` + u + `] for REST request [` + r.URL.Path + `]"}],"type":"security_exception","reason":"unable to authenticate user [` + u + `] for REST request [` + r.URL.Path + `]"},"status":401}`))
			return
		}
		switch r.URL.Path {
		case "/_nodes/_local":
			_, _ = w.Write([]byte(`{"nodes":{"x2LKjTQSRbOaCJgbkCDrSg":{"version":"8.19.7"}}}`))
		case "/":
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"error":"Incorrect HTTP method for uri [/] and method [GET], allowed: []","status":405}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"no handler found for uri [` + r.URL.Path + `] and method [` + r.Method + `]"}`))
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t)}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTLSWithPrivateCA is issue 11's start-up panic: an https URL with a CA certificate and a
// username/password. The CA verifies the server; a certificate from another CA is refused.
func TestTLSWithPrivateCA(t *testing.T) {
	ca := testenv.NewCA(t, "sluice test CA")
	var requests atomic.Int64
	node := securedNode(t, ca, &requests)
	cfg := es.Config{Addresses: []string{node.URL}, Username: "elastic", Password: "changeme", CACert: ca.PEM}

	c, err := es.New(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Flavor() != es.Elasticsearch || c.Version() != "8.19.7" {
		t.Fatalf("detected %s, want elasticsearch 8.19.7 (GET / answers 405)", c)
	}

	// The CA from a file, as ELASTICSEARCH_CA_CERT names it.
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := cfg
	fromFile.CACert, fromFile.CACertFile = nil, file
	if _, err := es.New(ctxT(t), fromFile); err != nil {
		t.Fatalf("CA from a file: %v", err)
	}

	other := cfg
	other.CACert = testenv.NewCA(t, "another CA").PEM
	_, err = es.New(ctxT(t), other)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("a server certificate from another CA: err = %v, want x509.UnknownAuthorityError", err)
	}

	system := cfg
	system.CACert = nil // the system roots do not know the test CA either
	if _, err := es.New(ctxT(t), system); !errors.As(err, &unknown) {
		t.Fatalf("without the CA: err = %v, want x509.UnknownAuthorityError", err)
	}

	bad := cfg
	bad.CACert = []byte("not a certificate")
	if _, err := es.New(ctxT(t), bad); !errors.Is(err, es.ErrBadConfig) {
		t.Fatalf("a CA file without PEM: err = %v, want ErrBadConfig", err)
	}
}

// TestWrongPasswordIsOneClearPermanentError: 401 at start-up is permanent, asked once, and
// the message does not carry the password.
func TestWrongPasswordIsOneClearPermanentError(t *testing.T) {
	ca := testenv.NewCA(t, "sluice test CA")
	var requests atomic.Int64
	node := securedNode(t, ca, &requests)
	_, err := es.New(ctxT(t), es.Config{Addresses: []string{node.URL}, Username: "elastic", Password: "wrong-s3cret", CACert: ca.PEM})
	if !errors.Is(err, es.ErrUnauthorized) || !es.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), "wrong-s3cret") {
		t.Fatalf("the error shows the password: %v", err)
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests for refused credentials, want 1", n)
	}
}

func TestAPIKeyHeader(t *testing.T) {
	var got atomic.Value
	fake := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		got.Store(r.Header.Get("Authorization"))
		return esfake.Decision{}
	}})
	t.Cleanup(fake.Close)
	if _, err := es.New(ctxT(t), es.Config{Addresses: []string{fake.URL()}, APIKey: "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="}); err != nil {
		t.Fatal(err)
	}
	if h, _ := got.Load().(string); h != "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==" {
		t.Fatalf("Authorization %q, want ApiKey <key>", h)
	}
}

// TestDetect tells the products apart by what they answer, not by GET / alone.
func TestDetect(t *testing.T) {
	osFake := esfake.New(esfake.Options{Flavor: esfake.OpenSearch})
	t.Cleanup(osFake.Close)
	esFake := esfake.New(esfake.Options{})
	t.Cleanup(esFake.Close)
	neither := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			_, _ = w.Write([]byte(`{"name":"proxy","version":{"number":"1.0"}}`))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(neither.Close)

	// A node that answers 503 (starting, overloaded) is retryable, not a wrong product.
	unavailable := esfake.New(esfake.Options{Flavor: esfake.OpenSearch, Fault: func(*esfake.Request) esfake.Decision {
		return esfake.Decision{Status: http.StatusServiceUnavailable}
	}})
	t.Cleanup(unavailable.Close)
	if _, err := es.New(ctxT(t), es.Config{Addresses: []string{unavailable.URL()}}); err == nil || es.IsPermanent(err) || es.ClassifyError(err) != es.Retry {
		t.Fatalf("503 at start-up: err = %v, want a retryable error", err)
	}

	for _, c := range []struct {
		name    string
		url     string
		flavor  es.Flavor
		version string
		err     error
	}{
		{"opensearch", osFake.URL(), es.OpenSearch, "2.19.6", nil},
		{"elasticsearch", esFake.URL(), es.Elasticsearch, "8.15.0", nil},
		{"neither", neither.URL, "", "", es.ErrBadConfig},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, err := es.New(ctxT(t), es.Config{Addresses: []string{c.url}})
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || cl.Flavor() != c.flavor || cl.Version() != c.version {
				t.Fatalf("detected %v (err %v), want %s %s", cl, err, c.flavor, c.version)
			}
		})
	}
}

// TestBulkThatNeverAnswersTimesOut is issue 7's stall: a _bulk that the node never answers
// ends, within the request timeout, in a retryable error.
func TestBulkThatNeverAnswersTimesOut(t *testing.T) {
	fake := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		return esfake.Decision{Hang: r.Endpoint == esfake.Bulk}
	}})
	t.Cleanup(fake.Close)
	c, err := es.New(ctxT(t), es.Config{Addresses: []string{fake.URL()}, RequestTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Bulk(context.Background(), "logs", [][]byte{[]byte("{\"index\":{}}\n{\"a\":1}\n")}, 1, nil)
	took := time.Since(start)
	if !errors.Is(err, es.ErrTimeout) || es.ClassifyError(err) != es.Retry || es.IsPermanent(err) {
		t.Fatalf("err = %v (class %v), want a retryable ErrTimeout", err, es.ClassifyError(err))
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Fatalf("returned after %s, want about the 300ms timeout", took)
	}
	// Admin calls are bounded the same way.
	fake.SetFault(func(*esfake.Request) esfake.Decision { return esfake.Decision{Hang: true} })
	if err := c.Refresh(context.Background(), "logs"); !errors.Is(err, es.ErrTimeout) {
		t.Fatalf("refresh: err = %v, want ErrTimeout", err)
	}
}

// TestSecretsNeverInErrors: a malformed URL, an unreachable node with credentials in its URL.
func TestSecretsNeverInErrors(t *testing.T) {
	if got := es.RedactURL("https://elastic:hunter2@es.example:9200"); strings.Contains(got, "hunter2") || !strings.Contains(got, "es.example:9200") {
		t.Fatalf("RedactURL = %q", got)
	}
	for _, addr := range []string{
		"https://elastic:hunter2@es.example:9200/%zz", // does not parse
		"ftp://elastic:hunter2@es.example",            // not http(s)
	} {
		_, err := es.New(ctxT(t), es.Config{Addresses: []string{addr}})
		if !errors.Is(err, es.ErrBadConfig) || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("%s: err = %v, want ErrBadConfig without the password", es.RedactURL(addr), err)
		}
	}
	type holder struct{ ES es.Config }
	cfg := es.Config{Addresses: []string{"https://elastic:hunter2@es.example:9200"}, APIKey: "key-s3cret", Password: "pw-s3cret"}
	for _, printed := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", holder{cfg}), fmt.Sprint(&cfg)} {
		if strings.Contains(printed, "hunter2") || strings.Contains(printed, "s3cret") || !strings.Contains(printed, "es.example:9200") {
			t.Fatalf("a printed Config shows a secret or hides the address: %s", printed)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more
	_, err = es.New(ctxT(t), es.Config{Addresses: []string{"http://elastic:hunter2@" + addr}, APIKey: "key-s3cret", Password: "pw-s3cret"})
	if err == nil || es.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable connection error", err)
	}
	for _, s := range []string{"hunter2", "key-s3cret", "pw-s3cret"} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("the error shows a secret: %v", err)
		}
	}
}
