package s3source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Sentinel errors. The three are permanent: a retry of the same request cannot succeed.
var (
	// ErrObjectChanged: the object's ETag is no longer the one planned (HTTP 412): it was
	// replaced after the listing.
	ErrObjectChanged = errors.New("object changed since it was listed")
	// ErrAccessDenied: the store refused the credentials or the action (HTTP 403).
	ErrAccessDenied = errors.New("access denied")
	// ErrNotFound: no such bucket or key (HTTP 404).
	ErrNotFound = errors.New("not found")
)

// IsPermanent reports whether err wraps one of the permanent sentinel errors.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrObjectChanged) || errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrNotFound)
}

// Config says where the store is and how to read from it. It holds no credentials.
type Config struct {
	// Endpoint is the base URL of an S3-compatible store, e.g. http://127.0.0.1:7070. Empty:
	// the SDK's own resolution (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the shared config
	// file), else AWS.
	Endpoint string
	// Region of the bucket. Empty: the SDK's default chain (AWS_REGION, the shared config
	// file), else us-east-1.
	Region string
	// PathStyle addresses buckets as <endpoint>/<bucket>/<key> instead of
	// <bucket>.<endpoint>/<key>. Always on when a custom endpoint is in use, whichever way
	// it was configured: S3-compatible stores rarely have wildcard DNS.
	PathStyle bool
	// ReadAttempts is how many reopens in a row that return no byte a reader makes before it
	// fails. Default 5.
	ReadAttempts int
	// ReadBackoff is the pause before the first reopen of a broken read; it doubles with each
	// consecutive failure, up to 5s. Default 200ms.
	ReadBackoff time.Duration
	// ReadIdleTimeout: a read that receives no byte for this long, or a GET whose answer
	// does not start within it, counts as a broken connection and is reopened (a half-open
	// TCP connection would otherwise block forever).
	// It only runs while the caller is inside Read, so a slow consumer is not a stall.
	// Default 30s.
	ReadIdleTimeout time.Duration
	// PutTimeout bounds one PutObject (dead-letter objects), retries included. Default 2m.
	PutTimeout time.Duration
}

const (
	defaultReadAttempts    = 5
	defaultReadBackoff     = 200 * time.Millisecond
	maxReadBackoff         = 5 * time.Second
	defaultReadIdleTimeout = 30 * time.Second
	defaultRegion          = "us-east-1"
	// maxIdleConnsPerHost: idle connections kept to the store (the SDK's default is 10).
	maxIdleConnsPerHost = 128
	// maxPageSize is S3's own cap on ListObjectsV2 MaxKeys.
	maxPageSize = 1000
)

// Source reads objects from one S3 store. It is safe for concurrent use.
type Source struct {
	client *s3.Client
	cfg    Config
}

// New builds a Source. It loads the SDK's default configuration (and with it the
// credentials chain) but makes no request.
func New(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.ReadAttempts <= 0 {
		cfg.ReadAttempts = defaultReadAttempts
	}
	if cfg.ReadBackoff <= 0 {
		cfg.ReadBackoff = defaultReadBackoff
	}
	if cfg.ReadIdleTimeout <= 0 {
		cfg.ReadIdleTimeout = defaultReadIdleTimeout
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("s3 endpoint %q: want a URL like http://host:port", cfg.Endpoint)
		}
	}
	var loadOpts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		// o.BaseEndpoint already holds an endpoint configured through the environment or the
		// shared config file.
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle || o.BaseEndpoint != nil
		// Ranged GETs cannot be checked against a whole-object checksum, and a reader usually
		// stops before the end; integrity across reopens comes from If-Match.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// A worker keeps many GETs in flight (chunks, and the objects a packed chunk
		// prefetches); an idle pool smaller than that closes a connection after nearly
		// every small object, and opens another for the next.
		o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = maxIdleConnsPerHost
		})
	})
	return &Source{client: client, cfg: cfg}, nil
}

// Client is the underlying S3 client, for callers that need an operation this package does
// not wrap.
func (s *Source) Client() *s3.Client { return s.client }

// ParseURI splits s3://bucket/prefix. The prefix may be empty and is returned as written
// (a prefix is not a directory: "logs/2024" matches "logs/2024-01.ndjson").
func ParseURI(uri string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return "", "", fmt.Errorf("source URI %q: want s3://bucket/prefix", uri)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("source URI %q: missing bucket", uri)
	}
	if strings.ContainsAny(bucket, " ?#\\") {
		return "", "", fmt.Errorf("source URI %q: invalid bucket name %q", uri, bucket)
	}
	return bucket, prefix, nil
}

// Object is one listed object. ETag is as S3 returns it, quotes included.
type Object struct {
	Key  string
	Size int64
	ETag string
}

// ListPage returns one page of the objects under prefix, in key order, starting after cursor
// (empty: from the start). next is the cursor of the following page, empty on the last page.
// A page may be empty while next is not (it held only directory markers): keep going until
// next is empty. pageSize <= 0 means 1000, S3's maximum. Keys ending in "/" with size 0
// (directory markers made by consoles and some tools) are skipped.
func (s *Source) ListPage(ctx context.Context, bucket, prefix, cursor string, pageSize int) (objs []Object, next string, err error) {
	if pageSize <= 0 || pageSize > maxPageSize {
		pageSize = maxPageSize
	}
	in := &s3.ListObjectsV2Input{
		Bucket:  aws.String(bucket),
		MaxKeys: aws.Int32(int32(pageSize)),
	}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	if cursor != "" {
		in.ContinuationToken = aws.String(cursor)
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("listing s3://%s/%s: %w", bucket, prefix, classify(err))
	}
	objs = make([]Object, 0, len(out.Contents))
	for _, o := range out.Contents {
		key, size := aws.ToString(o.Key), aws.ToInt64(o.Size)
		if size == 0 && strings.HasSuffix(key, "/") {
			continue
		}
		objs = append(objs, Object{Key: key, Size: size, ETag: aws.ToString(o.ETag)})
	}
	if aws.ToBool(out.IsTruncated) {
		next = aws.ToString(out.NextContinuationToken)
		if next == "" {
			return nil, "", fmt.Errorf("listing s3://%s/%s: truncated page without a continuation token", bucket, prefix)
		}
	}
	return objs, next, nil
}

// classify adds the matching sentinel to err, keeping err itself in the chain.
func classify(err error) error {
	if err == nil {
		return nil
	}
	switch kindOf(err) {
	case kindChanged:
		return fmt.Errorf("%w: %w", ErrObjectChanged, err)
	case kindDenied:
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	case kindNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

type errKind int

const (
	kindOther errKind = iota
	kindChanged
	kindDenied
	kindNotFound
	kindRange
)

// kindOf reads the S3 error code, falling back to the HTTP status (HEAD responses and some
// stores carry no error body).
func kindOf(err error) errKind {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "PreconditionFailed":
			return kindChanged
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "AccountProblem":
			return kindDenied
		case "NoSuchKey", "NoSuchBucket", "NotFound":
			return kindNotFound
		case "InvalidRange":
			return kindRange
		}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case http.StatusPreconditionFailed:
			return kindChanged
		case http.StatusForbidden:
			return kindDenied
		case http.StatusNotFound:
			return kindNotFound
		case http.StatusRequestedRangeNotSatisfiable:
			return kindRange
		}
	}
	return kindOther
}

// defaultPutTimeout bounds one PutObject, the SDK's own retries included.
const defaultPutTimeout = 2 * time.Minute

// PutObject stores body as bucket/key, replacing what is there. It waits at most
// Config.PutTimeout (default 2m) in all, the SDK's standard retries of throttling and 5xx
// answers included; an error is retryable unless IsPermanent.
func (s *Source) PutObject(ctx context.Context, bucket, key string, body []byte) error {
	timeout := s.cfg.PutTimeout
	if timeout <= 0 {
		timeout = defaultPutTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/x-ndjson"),
	})
	if err != nil {
		return classify(fmt.Errorf("putting s3://%s/%s: %w", bucket, key, err))
	}
	return nil
}
