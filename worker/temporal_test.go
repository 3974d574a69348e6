package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var temporalEnv = []string{EnvTemporalAddress, EnvTemporalNamespace, EnvTemporalAPIKey, EnvTemporalTLS,
	EnvTemporalTLSCert, EnvTemporalTLSKey, EnvTemporalTLSCA, EnvTemporalServerName}

// TestTemporalConnFromEnv: the environment turns into a connection, TLS on or off, or a clear
// error; never a silent plaintext connection when TLS was asked for.
func TestTemporalConnFromEnv(t *testing.T) {
	badCA := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(badCA, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantTLS bool
		wantErr string // substring; "" means no error
	}{
		{name: "nothing set: plaintext"},
		{name: "TLS=1", env: map[string]string{EnvTemporalTLS: "1"}, wantTLS: true},
		{name: "TLS=true", env: map[string]string{EnvTemporalTLS: "true"}, wantTLS: true},
		{name: "TLS=TRUE", env: map[string]string{EnvTemporalTLS: "TRUE"}, wantTLS: true},
		{name: "TLS=yes", env: map[string]string{EnvTemporalTLS: "yes"}, wantTLS: true},
		{name: "TLS=on", env: map[string]string{EnvTemporalTLS: "on"}, wantTLS: true},
		{name: "TLS=0", env: map[string]string{EnvTemporalTLS: "0"}},
		{name: "TLS=false", env: map[string]string{EnvTemporalTLS: "false"}},
		{name: "TLS=off", env: map[string]string{EnvTemporalTLS: "off"}},
		{name: "TLS garbage", env: map[string]string{EnvTemporalTLS: "yess"}, wantErr: `TEMPORAL_TLS="yess"`},
		{name: "TLS=2", env: map[string]string{EnvTemporalTLS: "2"}, wantErr: "want true or false"},
		{name: "API key implies TLS", env: map[string]string{EnvTemporalAPIKey: "secret-key", EnvTemporalServerName: "ns.tmprl.cloud"}, wantTLS: true},
		{name: "key without certificate", env: map[string]string{EnvTemporalTLSKey: "/nonexistent/key.pem"}, wantErr: "set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"},
		{name: "certificate without key", env: map[string]string{EnvTemporalTLSCert: "/nonexistent/cert.pem"}, wantErr: "set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"},
		{name: "certificate file missing", env: map[string]string{EnvTemporalTLSCert: "/nonexistent/cert.pem", EnvTemporalTLSKey: "/nonexistent/key.pem"}, wantErr: "loading the Temporal client certificate /nonexistent/cert.pem"},
		{name: "CA not PEM", env: map[string]string{EnvTemporalTLSCA: badCA}, wantErr: "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range temporalEnv {
				t.Setenv(k, tc.env[k])
			}
			c, err := TemporalConnFromEnv()
			if err == nil {
				_, err = c.Options(nil)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret-key") {
					t.Fatalf("the error prints the API key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			opts, _ := c.Options(nil)
			if got := opts.ConnectionOptions.TLS != nil; got != tc.wantTLS {
				t.Fatalf("TLS %v; want %v (conn %+v)", got, tc.wantTLS, c)
			}
			if (opts.Credentials != nil) != (tc.env[EnvTemporalAPIKey] != "") {
				t.Fatalf("credentials %v with API key %q", opts.Credentials, tc.env[EnvTemporalAPIKey])
			}
			if sn := tc.env[EnvTemporalServerName]; sn != "" && opts.ConnectionOptions.TLS.ServerName != sn {
				t.Fatalf("server name %q; want %q", opts.ConnectionOptions.TLS.ServerName, sn)
			}
			if opts.HostPort != DefaultTemporalAddress || opts.Namespace != DefaultNamespace {
				t.Fatalf("defaults: %q %q", opts.HostPort, opts.Namespace)
			}
		})
	}
}
