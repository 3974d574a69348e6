package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/sluicehq/sluice/worker"
)

// TemporalFlags are the Temporal connection flags of `sluice worker` and of every client
// command (ingest, status, pause, resume, cancel, set-concurrency). They are laid over the
// environment read by worker.TemporalConnFromEnv: a flag overrides its variable only when given.
// The API key has no flag: it is a secret, read from TEMPORAL_API_KEY only.
type TemporalFlags struct {
	fs            *flag.FlagSet
	address       string
	namespace     string
	tls           bool
	tlsCert       string
	tlsKey        string
	tlsCA         string
	tlsServerName string

	resolved *worker.TemporalConn // what Dial connected with
}

// AddTemporalFlags registers the Temporal connection flags on fs.
func AddTemporalFlags(fs *flag.FlagSet) *TemporalFlags {
	f := &TemporalFlags{fs: fs}
	fs.StringVar(&f.address, "temporal-address", worker.DefaultTemporalAddress, "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	fs.StringVar(&f.namespace, "namespace", worker.DefaultNamespace, "Temporal namespace (env TEMPORAL_NAMESPACE)")
	fs.BoolVar(&f.tls, "temporal-tls", false, "connect to Temporal over TLS with the system roots (env TEMPORAL_TLS; implied by the other TLS settings and TEMPORAL_API_KEY)")
	fs.StringVar(&f.tlsCert, "temporal-tls-cert", "", "PEM file of the client certificate for mTLS, with --temporal-tls-key (env TEMPORAL_TLS_CERT)")
	fs.StringVar(&f.tlsKey, "temporal-tls-key", "", "PEM file of the client certificate's key (env TEMPORAL_TLS_KEY)")
	fs.StringVar(&f.tlsCA, "temporal-tls-ca", "", "PEM file of the CA of Temporal's certificate (env TEMPORAL_TLS_CA)")
	fs.StringVar(&f.tlsServerName, "temporal-tls-server-name", "", "name to check in Temporal's certificate (env TEMPORAL_TLS_SERVER_NAME)")
	return f
}

// Conn is the connection in force: the environment, then the flags that were given, then the
// defaults. It fails on a malformed TEMPORAL_TLS and on a certificate without its key.
func (f *TemporalFlags) Conn() (worker.TemporalConn, error) {
	c, err := worker.TemporalConnFromEnv()
	if err != nil {
		return worker.TemporalConn{}, err
	}
	f.apply(&c)
	c = c.WithDefaults()
	return c, c.Validate()
}

// apply overrides c's fields with the flags that were given.
func (f *TemporalFlags) apply(c *worker.TemporalConn) {
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "temporal-address":
			c.Address = f.address
		case "namespace":
			c.Namespace = f.namespace
		case "temporal-tls":
			c.TLS = f.tls
		case "temporal-tls-cert":
			c.TLSCert = f.tlsCert
		case "temporal-tls-key":
			c.TLSKey = f.tlsKey
		case "temporal-tls-ca":
			c.TLSCA = f.tlsCA
		case "temporal-tls-server-name":
			c.TLSServerName = f.tlsServerName
		}
	})
}

// Namespace is the namespace in force (the default when the environment is malformed).
func (f *TemporalFlags) Namespace() string {
	if f.resolved != nil {
		return f.resolved.Namespace
	}
	c, _ := f.Conn()
	return c.WithDefaults().Namespace
}

// HintArgs are the connection flags the user gave, to repeat in a suggested command line.
func (f *TemporalFlags) HintArgs() string {
	var b strings.Builder
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "temporal-address" || fl.Name == "namespace" || strings.HasPrefix(fl.Name, "temporal-tls") {
			if fl.Name == "temporal-tls" {
				fmt.Fprintf(&b, " --%s=%s", fl.Name, fl.Value.String()) // a bool flag takes no separate value
				return
			}
			fmt.Fprintf(&b, " --%s %s", fl.Name, fl.Value.String())
		}
	})
	return b.String()
}

// Dial connects a client command to Temporal. The SDK's own logs go to stderr at warn and above.
func (f *TemporalFlags) Dial(ctx context.Context, stderr io.Writer) (client.Client, error) {
	c, err := f.Conn()
	if err != nil {
		return nil, err
	}
	f.resolved = &c
	return c.Dial(ctx, worker.SDKLogger(slog.New(slog.NewTextHandler(stderr, nil)), slog.LevelWarn))
}
