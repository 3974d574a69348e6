// Package essource is the grammar of an existing index as a backfill's source,
// es://[CLUSTER/]INDEX, and the clients of the clusters such sources name.
//
// A source names a cluster only by a name; its address and credentials come from the worker's
// own environment (SLUICE_CLUSTER_<NAME>_URL, _USERNAME, _PASSWORD, _API_KEY, _CA_CERT), so
// nothing secret is ever in a workflow input, and an input cannot make a worker connect to an
// address of its choosing.
package essource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/es"
)

// Scheme is the scheme of an index source.
const Scheme = "es://"

// MaxQueryBytes bounds Source.Query: it travels in every chunk's input.
const MaxQueryBytes = 64 << 10

// URI is a parsed es:// source.
type URI struct {
	// Cluster is the name of a cluster the worker has SLUICE_CLUSTER_<NAME>_* variables for;
	// empty: the worker's own destination cluster (ELASTICSEARCH_*).
	Cluster string
	// Index is an index, alias, comma-separated list or pattern on that cluster.
	Index string
}

func (u URI) String() string {
	if u.Cluster == "" {
		return Scheme + u.Index
	}
	return Scheme + u.Cluster + "/" + u.Index
}

// Is reports whether uri is an index source (it has the es:// scheme), valid or not.
func Is(uri string) bool { return strings.HasPrefix(uri, Scheme) }

// Parse parses es://INDEX or es://CLUSTER/INDEX. Errors wrap ingest.ErrBadInput and do not
// repeat the source: a malformed one may hold a credential.
func Parse(uri string) (URI, error) {
	bad := func(format string, a ...any) (URI, error) {
		return URI{}, fmt.Errorf("%w: source: "+format, append([]any{ingest.ErrBadInput}, a...)...)
	}
	if !Is(uri) {
		return bad("want es://INDEX or es://CLUSTER/INDEX")
	}
	rest := strings.TrimPrefix(uri, Scheme)
	var u URI
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		u.Cluster, u.Index = rest[:i], rest[i+1:]
		if u.Cluster == "" {
			return bad("empty cluster name before '/'")
		}
		for _, r := range u.Cluster {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return bad("the cluster name may hold letters, digits, '-' and '_' only: it names SLUICE_CLUSTER_<NAME>_* variables of the workers; addresses and credentials never go in the source")
			}
		}
	} else {
		u.Index = rest
	}
	switch {
	case u.Index == "":
		return bad("no index")
	case strings.ContainsAny(u.Index, "/\\?#@: \"<>|") || strings.ContainsFunc(u.Index, func(r rune) bool { return r < ' ' }):
		return bad("the index holds a character an index name cannot have (/ \\ ? # @ : space \" < > |)")
	}
	return u, nil
}

// EnvPrefix is the prefix of the variables that configure cluster name: SLUICE_CLUSTER_,
// the name upper-cased with '-' as '_', then '_'.
func EnvPrefix(cluster string) string {
	return "SLUICE_CLUSTER_" + strings.ToUpper(strings.ReplaceAll(cluster, "-", "_")) + "_"
}

// Clusters hands out the clients of the source clusters, one per name, built on first use
// from the environment and kept. It is safe for concurrent use.
type Clusters struct {
	// Getenv reads the worker's environment (os.Getenv).
	Getenv func(string) string
	// Local is the client of the worker's own cluster, which es://INDEX reads.
	Local *es.Client
	// Configure adjusts a named cluster's configuration before its client is built (the
	// worker's metrics wrap the transport). nil: none.
	Configure func(*es.Config)

	mu      sync.Mutex
	clients map[string]*es.Client
}

// Client returns the client of cluster ("" : Local). A name without SLUICE_CLUSTER_<NAME>_URL
// in the environment is ingest.ErrBadConfig naming the variable.
func (c *Clusters) Client(ctx context.Context, cluster string) (*es.Client, error) {
	if cluster == "" {
		if c.Local == nil {
			return nil, fmt.Errorf("%w: no client for the worker's own cluster", ingest.ErrBadConfig)
		}
		return c.Local, nil
	}
	key := EnvPrefix(cluster)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[key]; ok {
		return cl, nil
	}
	if c.Getenv == nil {
		return nil, fmt.Errorf("%w: source cluster %q: the worker reads no environment for source clusters", ingest.ErrBadConfig, cluster)
	}
	cfg := es.ConfigFromEnvPrefix(c.Getenv, key)
	if len(cfg.Addresses) == 0 {
		return nil, fmt.Errorf("%w: source cluster %q: the worker has no %sURL (set %sURL and, as needed, %sUSERNAME/%sPASSWORD or %sAPI_KEY and %sCA_CERT in the worker's environment)",
			ingest.ErrBadConfig, cluster, key, key, key, key, key, key)
	}
	if c.Configure != nil {
		c.Configure(&cfg)
	}
	cl, err := es.New(ctx, cfg)
	if err != nil {
		if errors.Is(err, es.ErrBadConfig) || errors.Is(err, es.ErrUnauthorized) {
			return nil, fmt.Errorf("source cluster %q (%sURL): %w", cluster, key, err)
		}
		return nil, fmt.Errorf("connecting to source cluster %q (%sURL): %w", cluster, key, err)
	}
	if c.clients == nil {
		c.clients = map[string]*es.Client{}
	}
	c.clients[key] = cl
	return cl, nil
}
