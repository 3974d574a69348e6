package es

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultAddress        = "http://localhost:9200"
	DefaultRequestTimeout = 2 * time.Minute
)

// Config says how to reach the cluster. Secrets live here and only here: they come from the
// worker's environment or flags, never from a workflow input, and no error or log prints them.
type Config struct {
	// Addresses are the base URLs of the cluster's nodes, requests are spread over them.
	// Defaults to DefaultAddress (http://localhost:9200).
	Addresses []string
	// APIKey is sent as "Authorization: ApiKey <APIKey>" (the base64 "id:key" form
	// Elasticsearch hands out). Defaults to none.
	APIKey string
	// Username and Password are sent with HTTP basic authentication. Defaults to none.
	Username string
	Password string
	// CACert is the PEM of the CA(s) that signed the cluster's certificate; the server is
	// verified against these only. Defaults to none: the system roots.
	CACert []byte
	// CACertFile is a PEM file read by New when CACert is empty. Defaults to none.
	CACertFile string
	// RequestTimeout bounds each request, from sending it to reading its answer, so a node
	// that never answers costs one retryable error, not a stalled chunk. Defaults to
	// DefaultRequestTimeout (2m); it must exceed the longest a healthy _bulk takes.
	RequestTimeout time.Duration
	// EnvPrefix is the prefix of the variables the configuration came from (ConfigFromEnvPrefix),
	// named by the hint of a refused login; "" is DefaultEnvPrefix.
	EnvPrefix string
	// WrapTransport, when set, wraps the HTTP transport (a worker's metrics observe every
	// request through it). Defaults to none.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// ConfigFromEnv is the one place that reads the Elasticsearch variables, through getenv:
// ELASTICSEARCH_URL (comma-separated), ELASTICSEARCH_API_KEY, ELASTICSEARCH_USERNAME,
// ELASTICSEARCH_PASSWORD and ELASTICSEARCH_CA_CERT (a PEM file path, read by New).
func ConfigFromEnv(getenv func(string) string) Config {
	return ConfigFromEnvPrefix(getenv, DefaultEnvPrefix)
}

// DefaultEnvPrefix is the prefix of the destination cluster's variables.
const DefaultEnvPrefix = "ELASTICSEARCH_"

// ConfigFromEnvPrefix reads the same variables under another prefix: prefix+"URL",
// prefix+"API_KEY", prefix+"USERNAME", prefix+"PASSWORD" and prefix+"CA_CERT" (a source
// cluster's SLUICE_CLUSTER_<NAME>_*).
func ConfigFromEnvPrefix(getenv func(string) string, prefix string) Config {
	var c Config
	for _, a := range strings.Split(getenv(prefix+"URL"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Addresses = append(c.Addresses, a)
		}
	}
	c.APIKey = getenv(prefix + "API_KEY")
	c.Username = getenv(prefix + "USERNAME")
	c.Password = getenv(prefix + "PASSWORD")
	c.CACertFile = getenv(prefix + "CA_CERT")
	if prefix != DefaultEnvPrefix {
		c.EnvPrefix = prefix
	}
	return c
}

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	if len(c.Addresses) == 0 {
		c.Addresses = []string{DefaultAddress}
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	return c
}

// String shows the configuration with its secrets masked, so that printing it (or a struct
// that holds it, with %v or %+v) never shows a password or an API key.
func (c Config) String() string {
	addrs := make([]string, len(c.Addresses))
	for i, a := range c.Addresses {
		addrs[i] = RedactURL(a)
	}
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "xxxxx"
	}
	return fmt.Sprintf("{Addresses:%v APIKey:%s Username:%s Password:%s CACert:%d bytes CACertFile:%s RequestTimeout:%s}",
		addrs, mask(c.APIKey), c.Username, mask(c.Password), len(c.CACert), c.CACertFile, c.RequestTimeout)
}

// urls parses the addresses. A message about an address that does not parse shows it redacted.
func (c Config) urls() ([]*url.URL, error) {
	out := make([]*url.URL, 0, len(c.Addresses))
	for _, a := range c.Addresses {
		u, err := url.Parse(strings.TrimRight(a, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: elasticsearch address %q is not an http(s) URL", ErrBadConfig, RedactURL(a))
		}
		out = append(out, u)
	}
	return out, nil
}

// tlsConfig is the client side of TLS: always a config (go-elasticsearch and net/http change
// it in place), with the CA's roots when one is given.
func (c Config) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	pem := c.CACert
	if len(pem) == 0 && c.CACertFile != "" {
		b, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the elasticsearch CA certificate: %v", ErrBadConfig, err)
		}
		pem = b
	}
	if len(pem) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: the elasticsearch CA certificate holds no PEM certificate", ErrBadConfig)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// transport is a pooled transport sized for bulk traffic. ResponseHeaderTimeout repeats the
// request timeout at the connection level, so a node that accepted the body and says nothing
// frees the connection even if a caller's context were unbounded.
func (c Config) transport(tlsCfg *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: c.RequestTimeout,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
		ForceAttemptHTTP2:     false,
	}
}

// RedactURL returns u with any password in it masked, for messages. An address that is not an
// http(s) URL (it does not parse, or "user:pass@host" parses as scheme "user") shows only what
// follows its last '@': anything before it may be a credential.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Opaque == "" {
		return p.Redacted()
	}
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		return "xxxxx@" + u[i+1:]
	}
	if err != nil {
		return "(unparsable address)"
	}
	return u
}
