package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
)

// Flavors of search engine that Bulk talks to.
const (
	FlavorElasticsearch = "elasticsearch"
	FlavorOpenSearch    = "opensearch"
)

// ClientConfig says how to reach the cluster. Secrets live here and only here: they come from
// the worker's environment or flags, never from a workflow input.
type ClientConfig struct {
	Addresses []string // base URLs; defaults to http://localhost:9200
	APIKey    string   // sent as "Authorization: ApiKey ..."
	Username  string
	Password  string
	CACert    []byte            // PEM; nil: the system roots
	Transport http.RoundTripper // nil: a pooled transport sized for bulk traffic
}

// ClientConfigFromEnv reads ELASTICSEARCH_URL (comma-separated), ELASTICSEARCH_API_KEY,
// ELASTICSEARCH_USERNAME, ELASTICSEARCH_PASSWORD and ELASTICSEARCH_CA_CERT (a PEM file path).
func ClientConfigFromEnv() (ClientConfig, error) {
	var c ClientConfig
	for _, a := range strings.Split(os.Getenv("ELASTICSEARCH_URL"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Addresses = append(c.Addresses, a)
		}
	}
	c.APIKey = os.Getenv("ELASTICSEARCH_API_KEY")
	c.Username = os.Getenv("ELASTICSEARCH_USERNAME")
	c.Password = os.Getenv("ELASTICSEARCH_PASSWORD")
	if p := os.Getenv("ELASTICSEARCH_CA_CERT"); p != "" {
		pem, err := os.ReadFile(p)
		if err != nil {
			return c, fmt.Errorf("%w: reading ELASTICSEARCH_CA_CERT: %v", ErrBadConfig, err)
		}
		c.CACert = pem
	}
	return c, nil
}

// Bulk is a client for the _bulk API and the few index calls sluice needs. It is safe for
// concurrent use.
type Bulk struct {
	es      *elasticsearch.Client
	flavor  string
	version string
}

// NewBulk connects to the cluster and finds out what it is from GET /. Elasticsearch must
// send "X-Elastic-Product: Elasticsearch"; OpenSearch does not, and is recognised from
// version.distribution. go-elasticsearch refuses servers without that header in its own
// Perform, so requests go through its transport (which still does node selection and
// authentication) and the product check is done here, once, explicitly.
func NewBulk(ctx context.Context, cfg ClientConfig) (*Bulk, error) {
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			WriteBufferSize:     64 << 10,
			ReadBufferSize:      64 << 10,
			ForceAttemptHTTP2:   false,
		}
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses:    cfg.Addresses,
		APIKey:       cfg.APIKey,
		Username:     cfg.Username,
		Password:     cfg.Password,
		CACert:       cfg.CACert,
		Transport:    tr,
		DisableRetry: true, // retries are ours: per item, with backoff and a time bound
	})
	if err != nil {
		return nil, fmt.Errorf("%w: elasticsearch client: %v", ErrBadConfig, err)
	}
	b := &Bulk{es: es}
	var info struct {
		Version struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
		Tagline string `json:"tagline"`
	}
	res, err := b.do(ctx, http.MethodGet, "/", nil, "")
	if err != nil {
		return nil, fmt.Errorf("connecting to elasticsearch: %w", err)
	}
	defer drainClose(res.Body)
	if err := statusError(res, "GET /"); err != nil {
		return nil, err
	}
	if err := json.NewDecoder(res.Body).Decode(&info); err != nil {
		return nil, fmt.Errorf("connecting to elasticsearch: GET / answered something that is not JSON: %v", err)
	}
	b.version = info.Version.Number
	switch {
	case info.Version.Distribution == "opensearch":
		b.flavor = FlavorOpenSearch
	case res.Header.Get("X-Elastic-Product") == "Elasticsearch":
		b.flavor = FlavorElasticsearch
	default:
		return nil, fmt.Errorf("%w: the server at %v is neither Elasticsearch (no X-Elastic-Product header) nor OpenSearch", ErrBadConfig, redacted(cfg.Addresses))
	}
	return b, nil
}

// Flavor is FlavorElasticsearch or FlavorOpenSearch; Version the server's version number.
func (b *Bulk) Flavor() string  { return b.flavor }
func (b *Bulk) Version() string { return b.version }

func (b *Bulk) do(ctx context.Context, method, path string, body []byte, contentType string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return b.es.Transport.Perform(req)
}

// Do sends a request with a JSON body (nil for none) and returns the status and the response
// body, at most 1 MiB of it. It is for the small admin calls, not for _bulk.
func (b *Bulk) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	res, err := b.do(ctx, method, path, body, "application/json")
	if err != nil {
		return 0, nil, err
	}
	defer drainClose(res.Body)
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, data, err
}

// itemResult is the outcome of one item of a _bulk request.
type itemResult struct {
	Status int
	Type   string
	Reason string
}

// bulkOutcome is what a _bulk call returned. When Status is 200 and Errors is false every item
// succeeded and Items is not filled in: the response is not parsed past its "errors" flag.
type bulkOutcome struct {
	Status int
	Errors bool
	Items  []itemResult
	Body   []byte // the start of the response body when Status is not 2xx
}

// send posts one _bulk body of n items to index. The body is the concatenation of parts, sent
// as they are, without joining them first.
func (b *Bulk) send(ctx context.Context, index string, parts [][]byte, n int, items []itemResult) (bulkOutcome, error) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/"+url.PathEscape(index)+"/_bulk", nil)
	if err != nil {
		return bulkOutcome{}, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.ContentLength = int64(size)
	req.GetBody = func() (io.ReadCloser, error) {
		bufs := net.Buffers(append([][]byte(nil), parts...))
		return io.NopCloser(&bufs), nil
	}
	req.Body, _ = req.GetBody()
	res, err := b.es.Transport.Perform(req)
	if err != nil {
		return bulkOutcome{}, err
	}
	defer drainClose(res.Body)
	out := bulkOutcome{Status: res.StatusCode}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		out.Body, _ = io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return out, nil
	}
	br := bufio.NewReaderSize(res.Body, 4<<10)
	errorsFlag, err := scanErrorsFlag(br)
	if err != nil {
		return out, fmt.Errorf("reading _bulk response: %w", err)
	}
	out.Errors = errorsFlag
	if !errorsFlag {
		return out, nil
	}
	out.Items, err = decodeItems(br, n, items[:0])
	if err != nil {
		return out, fmt.Errorf("reading _bulk response items: %w", err)
	}
	return out, nil
}

// scanErrorsFlag peeks at the start of the response for the value of its top-level "errors"
// key, which Elasticsearch and OpenSearch write before "items". Nothing is consumed.
func scanErrorsFlag(br *bufio.Reader) (bool, error) {
	key := []byte(`"errors"`)
	for size := 64; ; size *= 2 {
		size = min(size, br.Size())
		head, err := br.Peek(size)
		if i := bytes.Index(head, key); i >= 0 {
			rest := bytes.TrimLeft(head[i+len(key):], " \t\r\n")
			if len(rest) > 0 && rest[0] == ':' {
				rest = bytes.TrimLeft(rest[1:], " \t\r\n")
				if len(rest) >= 5 || err != nil {
					return bytes.HasPrefix(rest, []byte("true")), nil
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return false, fmt.Errorf("no \"errors\" flag in the response")
			}
			return false, err
		}
		if size == br.Size() {
			return false, fmt.Errorf("no \"errors\" flag near the start of the response")
		}
	}
}

// decodeItems streams the "items" array, one item at a time.
func decodeItems(r io.Reader, n int, items []itemResult) ([]itemResult, error) {
	dec := json.NewDecoder(r)
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if s, ok := tok.(string); ok && s == "items" {
			break
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, fmt.Errorf("\"items\" is not an array")
	}
	type itemBody struct {
		Status int `json:"status"`
		Error  *struct {
			Type     string `json:"type"`
			Reason   string `json:"reason"`
			CausedBy *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"caused_by"`
		} `json:"error"`
	}
	for dec.More() {
		var item map[string]itemBody
		if err := dec.Decode(&item); err != nil {
			return nil, err
		}
		for _, v := range item {
			r := itemResult{Status: v.Status}
			if v.Error != nil {
				r.Type, r.Reason = v.Error.Type, v.Error.Reason
				if v.Error.CausedBy != nil {
					r.Reason += ": " + v.Error.CausedBy.Type + ": " + v.Error.CausedBy.Reason
				}
			}
			items = append(items, r)
		}
	}
	if len(items) != n {
		return nil, fmt.Errorf("%d items in the response for %d sent", len(items), n)
	}
	return items, nil
}

// statusError turns a failed admin response into an error, permanent where a retry cannot help.
func statusError(res *http.Response, what string) error {
	if res.StatusCode >= 200 && res.StatusCode <= 299 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 2<<10))
	switch res.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %s: %d %s", ErrUnauthorized, what, res.StatusCode, bytes.TrimSpace(body))
	}
	return fmt.Errorf("%s: %d %s", what, res.StatusCode, bytes.TrimSpace(body))
}

// redacted returns the addresses with any password in them masked, for messages.
func redacted(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		if u, err := url.Parse(a); err == nil {
			out[i] = u.Redacted()
		} else {
			out[i] = "(unparsable address)"
		}
	}
	return out
}

func drainClose(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 8<<20))
	_ = rc.Close()
}
