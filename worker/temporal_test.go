package worker

import (
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
)

func TestTemporalSecurity(t *testing.T) {
	for _, k := range []string{EnvTemporalAPIKey, EnvTemporalTLS, EnvTemporalTLSCert, EnvTemporalTLSKey, EnvTemporalTLSCA, EnvTemporalServerName} {
		t.Setenv(k, "")
	}
	var opts client.Options
	if err := TemporalSecurity(&opts); err != nil || opts.ConnectionOptions.TLS != nil || opts.Credentials != nil {
		t.Fatalf("no environment: TLS %v credentials %v err %v; want plaintext", opts.ConnectionOptions.TLS, opts.Credentials, err)
	}
	t.Setenv(EnvTemporalAPIKey, "secret-key")
	t.Setenv(EnvTemporalServerName, "ns.tmprl.cloud")
	if err := TemporalSecurity(&opts); err != nil || opts.ConnectionOptions.TLS == nil || opts.Credentials == nil ||
		opts.ConnectionOptions.TLS.ServerName != "ns.tmprl.cloud" {
		t.Fatalf("API key: TLS %+v credentials %v err %v", opts.ConnectionOptions.TLS, opts.Credentials, err)
	}
	t.Setenv(EnvTemporalTLSCert, "/nonexistent/cert.pem")
	if err := TemporalSecurity(&client.Options{}); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvTemporalTLSCert, "")
	t.Setenv(EnvTemporalTLSCA, ca)
	if err := TemporalSecurity(&client.Options{}); err == nil {
		t.Fatal("a CA file without a certificate was accepted")
	}
}
