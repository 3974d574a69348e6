package bench

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"strconv"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/ingest/es"
)

// The object sluice's engine reads the generated documents as; its ids are every engine's.
const (
	benchBucket = "bench"
	benchKey    = "bench.ndjson"
)

// ids makes sluice's default _ids of the benchmark's object (ingest.DocumentID), with the hash
// computed once, so that esutil and raw send the ids sluice sends and a real node does the same
// work for each engine: an id lookup per document.
type ids struct{ prefix []byte }

func newIDs() ids {
	id := ingest.DocumentID(benchBucket, benchKey, 0) // "<hash>.0"
	return ids{prefix: []byte(id[:len(id)-1])}
}

func (x ids) append(dst []byte, offset int64) []byte {
	return strconv.AppendInt(append(dst, x.prefix...), offset, 36)
}

// esConfig is how sluice's client reaches the sink.
func (c Config) esConfig() es.Config {
	e := c.Auth
	e.Addresses = []string{c.URL}
	return e
}

// caCert is the PEM of the sink's CA (Auth.CACert, else the file Auth.CACertFile), or nil.
func (c Config) caCert() ([]byte, error) {
	if len(c.Auth.CACert) > 0 || c.Auth.CACertFile == "" {
		return c.Auth.CACert, nil
	}
	return os.ReadFile(c.Auth.CACertFile)
}

// esutilConfig is how go-elasticsearch reaches the sink, with the same credentials and CA.
func (c Config) esutilConfig() (elasticsearch.Config, error) {
	ca, err := c.caCert()
	if err != nil {
		return elasticsearch.Config{}, err
	}
	return elasticsearch.Config{Addresses: []string{c.URL}, Username: c.Auth.Username, Password: c.Auth.Password,
		APIKey: c.Auth.APIKey, CACert: ca}, nil
}

// httpClient is the raw sender's client: the sink's CA when it has one, maxIdle connections
// kept.
func (c Config) httpClient(maxIdle int) (*http.Client, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: maxIdle}
	ca, err := c.caCert()
	if err != nil {
		return nil, err
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("the CA certificate holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr}, nil
}

// authorize adds the sink's credentials to a raw request.
func (c Config) authorize(req *http.Request) {
	switch {
	case c.Auth.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+c.Auth.APIKey)
	case c.Auth.Username != "":
		req.SetBasicAuth(c.Auth.Username, c.Auth.Password)
	}
}
