package worker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"go.temporal.io/sdk/client"
)

// Environment of the Temporal connection beyond TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE, named
// as the temporal CLI names them. Secrets (the API key, the client key) come from here only,
// never from a flag value or a workflow input.
const (
	EnvTemporalAPIKey     = "TEMPORAL_API_KEY"  // API key (Temporal Cloud); implies TLS
	EnvTemporalTLS        = "TEMPORAL_TLS"      // "true": TLS with the system roots
	EnvTemporalTLSCert    = "TEMPORAL_TLS_CERT" // client certificate (PEM file), for mTLS
	EnvTemporalTLSKey     = "TEMPORAL_TLS_KEY"  // its private key (PEM file)
	EnvTemporalTLSCA      = "TEMPORAL_TLS_CA"   // CA of the server certificate (PEM file)
	EnvTemporalServerName = "TEMPORAL_TLS_SERVER_NAME"
)

// TemporalSecurity sets TLS and credentials on opts from the environment above. With none of
// them set the connection stays plaintext, as a local dev server expects.
func TemporalSecurity(opts *client.Options) error {
	apiKey := os.Getenv(EnvTemporalAPIKey)
	certFile, keyFile, caFile := os.Getenv(EnvTemporalTLSCert), os.Getenv(EnvTemporalTLSKey), os.Getenv(EnvTemporalTLSCA)
	serverName := os.Getenv(EnvTemporalServerName)
	useTLS := apiKey != "" || certFile != "" || caFile != "" || serverName != "" || os.Getenv(EnvTemporalTLS) == "true"
	if !useTLS {
		return nil
	}
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if (certFile == "") != (keyFile == "") {
		return fmt.Errorf("%s and %s go together", EnvTemporalTLSCert, EnvTemporalTLSKey)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("loading the Temporal client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("reading %s: %w", EnvTemporalTLSCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", EnvTemporalTLSCA)
		}
		cfg.RootCAs = pool
	}
	opts.ConnectionOptions.TLS = cfg
	if apiKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(apiKey)
	}
	return nil
}
