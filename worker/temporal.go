package worker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// Environment of the Temporal connection, named as the temporal CLI names them. Secrets (the
// API key, the client key) come from here only, never from a flag value or a workflow input.
const (
	EnvTemporalAddress    = "TEMPORAL_ADDRESS"
	EnvTemporalNamespace  = "TEMPORAL_NAMESPACE"
	EnvTemporalAPIKey     = "TEMPORAL_API_KEY"  // API key (Temporal Cloud); implies TLS
	EnvTemporalTLS        = "TEMPORAL_TLS"      // a boolean (1/0, true/false, ...): TLS with the system roots
	EnvTemporalTLSCert    = "TEMPORAL_TLS_CERT" // client certificate (PEM file), for mTLS
	EnvTemporalTLSKey     = "TEMPORAL_TLS_KEY"  // its private key (PEM file)
	EnvTemporalTLSCA      = "TEMPORAL_TLS_CA"   // CA of the server certificate (PEM file)
	EnvTemporalServerName = "TEMPORAL_TLS_SERVER_NAME"
)

// DialTimeout bounds connecting to Temporal, so that a wrong address fails in seconds instead
// of hanging.
const DialTimeout = 15 * time.Second

// TemporalConn says how to reach Temporal: the one description of a connection used by the
// worker, `sluice dev` and every client command. TemporalConnFromEnv reads it from the
// environment; internal/cli lays the flags over it; Dial connects.
type TemporalConn struct {
	// Address is the frontend's host:port. Defaults to 127.0.0.1:7233.
	Address string
	// Namespace defaults to "default".
	Namespace string
	// TLS turns TLS on with the system roots. Any of the fields below implies it.
	TLS bool
	// TLSCert and TLSKey are the PEM files of a client certificate (mTLS); both or neither.
	TLSCert, TLSKey string
	// TLSCA is the PEM file of the CA that signed the server's certificate.
	TLSCA string
	// TLSServerName overrides the name checked in the server's certificate.
	TLSServerName string
	// APIKey authenticates to Temporal Cloud. A secret: never printed.
	APIKey string
}

// TemporalConnFromEnv reads the TEMPORAL_* variables above. TEMPORAL_TLS takes the spellings of
// strconv.ParseBool (1, t, true, 0, f, false, in any case) and yes/no, on/off; anything else is
// an error, never a silent plaintext connection.
func TemporalConnFromEnv() (TemporalConn, error) {
	c := TemporalConn{
		Address:       os.Getenv(EnvTemporalAddress),
		Namespace:     os.Getenv(EnvTemporalNamespace),
		TLSCert:       os.Getenv(EnvTemporalTLSCert),
		TLSKey:        os.Getenv(EnvTemporalTLSKey),
		TLSCA:         os.Getenv(EnvTemporalTLSCA),
		TLSServerName: os.Getenv(EnvTemporalServerName),
		APIKey:        os.Getenv(EnvTemporalAPIKey),
	}
	if v := os.Getenv(EnvTemporalTLS); v != "" {
		on, err := parseBool(v)
		if err != nil {
			return TemporalConn{}, fmt.Errorf("%s=%q: want true or false (1/0, yes/no, on/off)", EnvTemporalTLS, v)
		}
		c.TLS = on
	}
	return c.WithDefaults(), nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "y", "on":
		return true, nil
	case "no", "n", "off":
		return false, nil
	}
	return strconv.ParseBool(strings.TrimSpace(s))
}

// WithDefaults fills in the address and namespace.
func (c TemporalConn) WithDefaults() TemporalConn {
	if c.Address == "" {
		c.Address = DefaultTemporalAddress
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	return c
}

// Validate reports settings that cannot work without reading a file.
func (c TemporalConn) Validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("the Temporal client certificate and key go together: set both %s and %s (or --temporal-tls-cert and --temporal-tls-key), or neither",
			EnvTemporalTLSCert, EnvTemporalTLSKey)
	}
	return nil
}

// UsesTLS reports whether the connection is encrypted.
func (c TemporalConn) UsesTLS() bool {
	return c.TLS || c.APIKey != "" || c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "" || c.TLSServerName != ""
}

// Options are the SDK's client options for c, TLS and credentials loaded; logger receives the
// SDK's logs.
func (c TemporalConn) Options(logger sdklog.Logger) (client.Options, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return client.Options{}, err
	}
	opts := client.Options{HostPort: c.Address, Namespace: c.Namespace, Logger: logger}
	if !c.UsesTLS() {
		return opts, nil // plaintext, as a local dev server expects
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		return client.Options{}, err
	}
	opts.ConnectionOptions.TLS = cfg
	if c.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.APIKey)
	}
	return opts, nil
}

func (c TemporalConn) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: c.TLSServerName, MinVersion: tls.VersionTLS12}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("loading the Temporal client certificate %s: %w", c.TLSCert, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("reading the Temporal CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the Temporal CA %s holds no PEM certificate", c.TLSCA)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Dial connects to Temporal within DialTimeout.
func (c TemporalConn) Dial(ctx context.Context, logger sdklog.Logger) (client.Client, error) {
	return c.dial(ctx, logger, nil)
}

// dial is Dial with the SDK's metrics going to metrics (nil: none).
func (c TemporalConn) dial(ctx context.Context, logger sdklog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	c = c.WithDefaults()
	opts, err := c.Options(logger)
	if err != nil {
		return nil, err
	}
	opts.MetricsHandler = metrics
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to Temporal at %s (namespace %s): %w", c.Address, c.Namespace, err)
	}
	return cl, nil
}
