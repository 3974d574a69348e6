package cli

import (
	"flag"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/worker"
)

// TestTemporalFlagsOverrideEnvironment: each flag given wins over its variable; the variables
// win over the defaults; the pairing check sees the result of both.
func TestTemporalFlagsOverrideEnvironment(t *testing.T) {
	for _, k := range []string{worker.EnvTemporalAPIKey, worker.EnvTemporalTLS, worker.EnvTemporalTLSCert,
		worker.EnvTemporalTLSKey, worker.EnvTemporalTLSCA, worker.EnvTemporalServerName} {
		t.Setenv(k, "")
	}
	t.Setenv(worker.EnvTemporalAddress, "env:7233")
	t.Setenv(worker.EnvTemporalNamespace, "env-ns")
	parse := func(args ...string) (*TemporalFlags, worker.TemporalConn, error) {
		t.Helper()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		tf := AddTemporalFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		c, err := tf.Conn()
		return tf, c, err
	}
	tf, c, err := parse()
	if err != nil || c.Address != "env:7233" || c.Namespace != "env-ns" || c.UsesTLS() || tf.HintArgs() != "" || tf.Namespace() != "env-ns" {
		t.Fatalf("from the environment: %+v %q %v", c, tf.HintArgs(), err)
	}
	tf, c, err = parse("--temporal-address", "flag:1", "--namespace", "ns")
	if err != nil || c.Address != "flag:1" || c.Namespace != "ns" || tf.HintArgs() != " --namespace ns --temporal-address flag:1" {
		t.Fatalf("from the flags: %+v %q %v", c, tf.HintArgs(), err)
	}

	t.Setenv(worker.EnvTemporalTLS, "1")
	if _, c, err = parse(); err != nil || !c.TLS {
		t.Fatalf("TEMPORAL_TLS=1: %+v %v; want TLS", c, err)
	}
	tf, c, err = parse("--temporal-tls=false")
	if err != nil || c.TLS || tf.HintArgs() != " --temporal-tls=false" {
		t.Fatalf("--temporal-tls=false over TEMPORAL_TLS=1: %+v %q %v; want plaintext", c, tf.HintArgs(), err)
	}
	t.Setenv(worker.EnvTemporalTLS, "maybe")
	if _, _, err = parse("--temporal-tls"); err == nil || !strings.Contains(err.Error(), `TEMPORAL_TLS="maybe"`) {
		t.Fatalf("TEMPORAL_TLS=maybe: %v; want an error naming it", err)
	}
	t.Setenv(worker.EnvTemporalTLS, "")

	t.Setenv(worker.EnvTemporalTLSKey, "/env/key.pem")
	if _, _, err = parse(); err == nil || !strings.Contains(err.Error(), "set both") {
		t.Fatalf("TEMPORAL_TLS_KEY alone: %v; want the pairing error", err)
	}
	if _, c, err = parse("--temporal-tls-cert", "/flag/cert.pem"); err != nil || c.TLSCert != "/flag/cert.pem" || c.TLSKey != "/env/key.pem" {
		t.Fatalf("certificate from the flag, key from the environment: %+v %v", c, err)
	}
	t.Setenv(worker.EnvTemporalTLSKey, "")

	t.Setenv(worker.EnvTemporalAddress, "")
	t.Setenv(worker.EnvTemporalNamespace, "")
	if _, c, err = parse(); err != nil || c.Address != worker.DefaultTemporalAddress || c.Namespace != worker.DefaultNamespace {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}
