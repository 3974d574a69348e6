package es

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
)

// Flavor is the product at the other end.
type Flavor string

// Flavors a Client talks to.
const (
	Elasticsearch Flavor = "elasticsearch"
	OpenSearch    Flavor = "opensearch"
)

// ErrTimeout: a request got no complete answer within Config.RequestTimeout. Retryable.
var ErrTimeout = errors.New("no answer from elasticsearch")

// Client talks to one Elasticsearch or OpenSearch cluster. It is safe for concurrent use and
// holds no resource that needs closing beyond idle pooled connections.
//
// go-elasticsearch refuses servers that do not send "X-Elastic-Product: Elasticsearch" in
// its own Perform, so requests go through its transport (node selection and authentication)
// and the product is found out here, once, in New.
type Client struct {
	tr      *elasticsearch.Client
	flavor  Flavor
	version string
	timeout time.Duration
	secrets []string // strings that must never appear in an error
	env     string   // Config.EnvPrefix, for the hint of a refused login
}

// New builds a client from cfg and finds out what the cluster is (see detect). It fails with
// ErrBadConfig when the configuration cannot work, ErrUnauthorized when the cluster refuses
// the credentials, and a retryable error when the cluster cannot be reached.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	urls, err := cfg.urls()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	c := &Client{timeout: cfg.RequestTimeout, env: cmp.Or(cfg.EnvPrefix, DefaultEnvPrefix)}
	for _, s := range []string{cfg.Password, cfg.APIKey} {
		if s != "" {
			c.secrets = append(c.secrets, s)
		}
	}
	for _, u := range urls {
		if p, ok := u.User.Password(); ok && p != "" {
			c.secrets = append(c.secrets, p)
		}
	}
	var header http.Header
	if cfg.APIKey != "" {
		// As Elasticsearch documents it; go-elasticsearch would send "APIKey".
		header = http.Header{"Authorization": {"ApiKey " + cfg.APIKey}}
	}
	var transport http.RoundTripper = cfg.transport(tlsCfg)
	if cfg.WrapTransport != nil {
		transport = cfg.WrapTransport(transport)
	}
	c.tr, err = elasticsearch.NewClient(elasticsearch.Config{
		Addresses: cfg.Addresses,
		Header:    header,
		Username:  cfg.Username,
		Password:  cfg.Password,
		// The CA is in the transport's TLS config: go-elasticsearch's own CACert handling
		// assumes a TLS config exists and panics on a transport without one.
		Transport:    transport,
		DisableRetry: true, // retries are ours: per item, with backoff and a time bound
	})
	if err != nil {
		return nil, fmt.Errorf("%w: elasticsearch client: %v", ErrBadConfig, c.scrub(err))
	}
	if err := c.detect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Flavor is Elasticsearch or OpenSearch; Version the server's version number ("" when the
// cluster did not say).
func (c *Client) Flavor() Flavor  { return c.flavor }
func (c *Client) Version() string { return c.version }
func (c *Client) String() string  { return string(c.flavor) + " " + c.version }

// RequestTimeout is how long one request may wait for its answer (Config.RequestTimeout).
func (c *Client) RequestTimeout() time.Duration { return c.timeout }

// detect finds out the product. Elasticsearch sends "X-Elastic-Product: Elasticsearch" on
// every answer, whatever its status, so the header on GET / decides even when GET / itself
// is not served (the 8.19 integ-test distribution answers it 405, proxies may refuse it).
// OpenSearch has no such header and says "distribution":"opensearch" in GET /. When GET /
// tells neither, GET /_nodes/_local decides: the header again, or else a JSON answer without
// it, which only OpenSearch gives. The version comes from whichever answer carried it.
func (c *Client) detect(ctx context.Context) error {
	var info struct {
		Version struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	hdr, err := c.probe(ctx, "GET /", "/", &info)
	if err != nil {
		return err
	}
	c.version = info.Version.Number
	switch {
	case info.Version.Distribution == "opensearch":
		c.flavor = OpenSearch
		return nil
	case hdr.Get("X-Elastic-Product") == "Elasticsearch" && c.version != "":
		c.flavor = Elasticsearch
		return nil
	}
	var nodes struct {
		Nodes map[string]struct {
			Version string `json:"version"`
		} `json:"nodes"`
	}
	nodesHdr, err := c.probe(ctx, "GET /_nodes/_local", "/_nodes/_local?filter_path=nodes.*.version", &nodes)
	for _, n := range nodes.Nodes {
		c.version = n.Version
	}
	switch {
	case hdr.Get("X-Elastic-Product") == "Elasticsearch" || nodesHdr.Get("X-Elastic-Product") == "Elasticsearch":
		c.flavor = Elasticsearch
		return nil
	case err == nil && len(nodes.Nodes) > 0:
		c.flavor = OpenSearch
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: the server is neither Elasticsearch (no X-Elastic-Product header) nor OpenSearch", ErrBadConfig)
}

// probe GETs path into out when the answer is 2xx JSON, and returns the answer's header.
// A failed request, 429/5xx and refused credentials (401) are errors; other statuses (403,
// 404, 405) leave out empty: the other probe or the header may still tell.
func (c *Client) probe(ctx context.Context, op, path string, out any) (http.Header, error) {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	res, err := c.perform(ctx, op, http.MethodGet, path, nil, "")
	if err != nil {
		return http.Header{}, fmt.Errorf("connecting to elasticsearch: %w", err)
	}
	defer drainClose(res.Body)
	switch ClassifyStatus(res.StatusCode) {
	case Unauthorized:
		if res.StatusCode == http.StatusUnauthorized {
			return res.Header, fmt.Errorf("%w: connecting to elasticsearch: %s answered 401: check %sUSERNAME/%sPASSWORD or the API key", ErrUnauthorized, op, c.env, c.env)
		}
	case Retry: // a node that is starting, or overloaded: it may answer later
		data, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return res.Header, fmt.Errorf("connecting to elasticsearch: %w", newStatusError(op, res.StatusCode, data))
	}
	if res.StatusCode/100 == 2 {
		if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(out); err != nil {
			return res.Header, fmt.Errorf("%w: connecting to elasticsearch: %s answered something that is not JSON: %v", ErrBadConfig, op, err)
		}
	}
	return res.Header, nil
}

// perform sends one request through the transport. ctx must carry the request's deadline.
// Errors are scrubbed of secrets and say when the deadline passed.
func (c *Client) perform(ctx context.Context, op, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.tr.Transport.Perform(req)
	if err != nil {
		return nil, c.requestError(ctx, op, err)
	}
	return res, nil
}

// requestError says what happened to a request that got no (complete) answer. A deadline
// that passed is reported as ErrTimeout (the caller, whose own context may be the one that
// ended, checks that first).
func (c *Client) requestError(ctx context.Context, op string, err error) error {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%s: %w within %s", op, ErrTimeout, c.timeout)
	}
	// A certificate the client does not trust stays untrusted however often it is asked:
	// a configuration error, not a network one.
	var untrusted *tls.CertificateVerificationError
	if errors.As(err, &untrusted) {
		return fmt.Errorf("%s: %w: the server's TLS certificate is not trusted (set %sCA_CERT to the CA that signed it): %w", op, ErrBadConfig, c.env, c.scrub(err))
	}
	return fmt.Errorf("%s: %w", op, c.scrub(err))
}

// requestContext bounds one request by the client's RequestTimeout.
func (c *Client) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// scrub hides every secret of the configuration that err's message might carry.
func (c *Client) scrub(err error) error {
	msg := err.Error()
	clean := msg
	for _, s := range c.secrets {
		clean = strings.ReplaceAll(clean, s, "xxxxx")
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// Do sends a request with a JSON body (nil for none) and returns the status and at most 1 MiB
// of the answer. It is for calls this package has no method for; a non-2xx status is not an
// error here (see StatusError for one).
func (c *Client) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := c.requestContext(ctx)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	res, err := c.perform(ctx, method+" "+path, method, path, rd, "application/json")
	if err != nil {
		return 0, nil, err
	}
	defer drainClose(res.Body)
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return res.StatusCode, data, c.requestError(ctx, method+" "+path, err)
	}
	return res.StatusCode, data, nil
}

func drainClose(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 8<<20))
	_ = rc.Close()
}
