package s3source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/sluicehq/sluice/ingest/s3source"
	"github.com/sluicehq/sluice/internal/s3test"
)

// isolateAWSEnv keeps the developer's AWS configuration out of the test and gives the SDK's
// default chain the test credentials.
func isolateAWSEnv(t *testing.T, access, secret string) {
	t.Helper()
	missing := filepath.Join(t.TempDir(), "missing")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           access,
		"AWS_SECRET_ACCESS_KEY":       secret,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  s3test.Region,
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             missing,
		"AWS_SHARED_CREDENTIALS_FILE": missing,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_S3":         "",
	} {
		t.Setenv(k, v)
	}
}

func newSource(t *testing.T, endpoint string, cfg s3source.Config) *s3source.Source {
	t.Helper()
	cfg.Endpoint = endpoint
	if cfg.ReadBackoff == 0 {
		cfg.ReadBackoff = time.Millisecond
	}
	src, err := s3source.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return src
}

// versity starts a real S3 server with the test credentials in the environment.
func versity(t *testing.T) *s3test.Server {
	s := s3test.Start(t)
	isolateAWSEnv(t, s3test.AccessKey, s3test.SecretKey)
	return s
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func readAll(t *testing.T, src *s3source.Source, bucket, key, etag string, off int64) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := src.Open(ctx, bucket, key, etag, off)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestListPagePages(t *testing.T) {
	s := versity(t)
	s.CreateBucket(t, "list")
	want := []string{"in/a", "in/b", "in/c/d", "in/e", "in/f"}
	for _, k := range want {
		s.Put(t, "list", k, []byte(k))
	}
	s.Put(t, "list", "in/dir/", nil)         // a directory marker: skipped
	s.Put(t, "list", "other/x", []byte("x")) // outside the prefix
	src := newSource(t, s.Endpoint(), s3source.Config{})

	ctx := context.Background()
	var got []string
	cursor, pages := "", 0
	for {
		objs, next, err := src.ListPage(ctx, "list", "in/", cursor, 2)
		if err != nil {
			t.Fatalf("ListPage: %v", err)
		}
		pages++
		if len(objs) > 2 {
			t.Fatalf("page of %d objects, asked for 2", len(objs))
		}
		for _, o := range objs {
			if o.Size != int64(len(o.Key)) || o.ETag == "" {
				t.Errorf("object %+v: wrong size or no ETag", o)
			}
			got = append(got, o.Key)
		}
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("listing does not end")
		}
		cursor = next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("listed %v, want %v", got, want)
	}
	t.Logf("%d objects in %d pages", len(got), pages)
}

func TestOpenReadsFromOffset(t *testing.T) {
	s := versity(t)
	s.CreateBucket(t, "read")
	data := randomBytes(3<<20 + 17)
	etag := s.Put(t, "read", "obj", data)
	s.Put(t, "read", "empty", nil)
	src := newSource(t, s.Endpoint(), s3source.Config{})

	size := int64(len(data))
	for _, tc := range []struct {
		name string
		etag string
		off  int64
	}{
		{"whole", etag, 0},
		{"whole without etag", "", 0},
		{"middle", etag, 1<<20 + 3},
		{"last byte", etag, size - 1},
		{"at end", etag, size},
		{"past end", etag, size + 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, src, "read", "obj", tc.etag, tc.off)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			want := data[min(tc.off, size):]
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want %d (object bytes from %d)", len(got), len(want), tc.off)
			}
		})
	}
	t.Run("empty object", func(t *testing.T) {
		got, err := readAll(t, src, "read", "empty", "", 0)
		if err != nil || len(got) != 0 {
			t.Fatalf("read %d bytes, err %v; want 0, nil", len(got), err)
		}
	})
	t.Run("close early and read after close", func(t *testing.T) {
		rc, err := src.Open(context.Background(), "read", "obj", etag, 0)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, data[:10]) {
			t.Fatalf("first bytes: %v", err)
		}
		if err := rc.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := rc.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := rc.Read(buf); err == nil {
			t.Fatal("Read after Close succeeded")
		}
	})
}

func TestOpenObjectReplaced(t *testing.T) {
	s := versity(t)
	s.CreateBucket(t, "change")
	s.Put(t, "change", "data/obj.ndjson", []byte("version one\n"))
	src := newSource(t, s.Endpoint(), s3source.Config{})
	objs, _, err := src.ListPage(context.Background(), "change", "data/", "", 10)
	if err != nil || len(objs) != 1 {
		t.Fatalf("ListPage: %v %v", objs, err)
	}
	s.Put(t, "change", "data/obj.ndjson", []byte("version two, longer\n"))

	_, err = readAll(t, src, "change", "data/obj.ndjson", objs[0].ETag, 0)
	if !errors.Is(err, s3source.ErrObjectChanged) || !s3source.IsPermanent(err) {
		t.Fatalf("err = %v, want ErrObjectChanged", err)
	}
	if !strings.Contains(err.Error(), "data/obj.ndjson") {
		t.Fatalf("error does not name the key: %v", err)
	}
}

func TestNotFound(t *testing.T) {
	s := versity(t)
	s.CreateBucket(t, "present")
	src := newSource(t, s.Endpoint(), s3source.Config{})
	if _, err := readAll(t, src, "present", "missing", "", 0); !errors.Is(err, s3source.ErrNotFound) {
		t.Errorf("missing key: err = %v, want ErrNotFound", err)
	}
	if _, err := readAll(t, src, "absent", "k", "", 0); !errors.Is(err, s3source.ErrNotFound) {
		t.Errorf("missing bucket, Open: err = %v, want ErrNotFound", err)
	}
	if _, _, err := src.ListPage(context.Background(), "absent", "", "", 10); !errors.Is(err, s3source.ErrNotFound) {
		t.Errorf("missing bucket, ListPage: err = %v, want ErrNotFound", err)
	}
}

func TestAccessDenied(t *testing.T) {
	s := s3test.Start(t)
	s.CreateBucket(t, "guarded")
	s.Put(t, "guarded", "k", []byte("v"))
	isolateAWSEnv(t, s3test.AccessKey, "wrong-secret")
	src := newSource(t, s.Endpoint(), s3source.Config{})
	if _, err := readAll(t, src, "guarded", "k", "", 0); !errors.Is(err, s3source.ErrAccessDenied) {
		t.Errorf("Open: err = %v, want ErrAccessDenied", err)
	}
	if _, _, err := src.ListPage(context.Background(), "guarded", "", "", 10); !errors.Is(err, s3source.ErrAccessDenied) {
		t.Errorf("ListPage: err = %v, want ErrAccessDenied", err)
	}
}

// TestEndpointFromEnvironment checks that AWS_ENDPOINT_URL_S3 alone (no Config.Endpoint)
// reaches the store, with path-style addressing turned on by itself.
func TestEndpointFromEnvironment(t *testing.T) {
	s := versity(t)
	s.CreateBucket(t, "envonly")
	s.Put(t, "envonly", "k", []byte("value"))
	t.Setenv("AWS_ENDPOINT_URL_S3", s.Endpoint())
	src := newSource(t, "", s3source.Config{})
	got, err := readAll(t, src, "envonly", "k", "", 0)
	if err != nil || string(got) != "value" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// faultMode is how the proxy breaks a response after cutAfter bytes.
type faultMode int

const (
	// cutReset aborts the connection: the client sees an unexpected EOF.
	cutReset faultMode = iota
	// cutShort ends a chunked response cleanly: a short body with no transport error.
	cutShort
	// cutStall stops sending and keeps the connection open until the client gives up.
	cutStall
	// stallAnswer resets the first object GET after cutAfter bytes, then lets the reopening
	// GETs up to the cutFirst-th wait for an answer that never starts (no status line).
	stallAnswer
)

// faultProxy forwards requests to an S3 server and breaks the first cutFirst object GETs
// after cutAfter bytes of body.
type faultProxy struct {
	target   *url.URL
	mode     faultMode
	cutAfter int64
	cutFirst int32
	gets     atomic.Int32 // object GETs seen
	done     chan struct{}
}

func startFaultProxy(t *testing.T, target string, mode faultMode, cutAfter int64, cutFirst int32) (*faultProxy, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{target: u, mode: mode, cutAfter: cutAfter, cutFirst: cutFirst, done: make(chan struct{})}
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		close(p.done)
		srv.Close()
	})
	return p, srv.URL
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	objectGet := r.Method == http.MethodGet && r.Header.Get("Range") != ""
	var nth int32
	if objectGet {
		nth = p.gets.Add(1)
	}
	if objectGet && p.mode == stallAnswer && nth > 1 && nth <= p.cutFirst {
		p.hold(r)
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	// out.Host stays the proxy's address: that is the host the client signed.
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	cut := objectGet && nth <= p.cutFirst && resp.StatusCode == http.StatusPartialContent
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if cut && p.mode == cutShort {
		w.Header().Del("Content-Length") // chunked, so the short body ends cleanly
	}
	w.WriteHeader(resp.StatusCode)
	if !cut {
		_, _ = io.Copy(w, resp.Body)
		return
	}
	_, _ = io.CopyN(w, resp.Body, p.cutAfter)
	_ = http.NewResponseController(w).Flush()
	switch p.mode {
	case cutReset:
		panic(http.ErrAbortHandler)
	case cutShort:
		return
	case cutStall:
		p.hold(r)
	case stallAnswer:
		panic(http.ErrAbortHandler)
	}
}

// hold keeps the connection open, sending nothing, until the client gives up; then aborts it.
func (p *faultProxy) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.done:
	}
	panic(http.ErrAbortHandler)
}

// backend is an S3 server the fault tests run against, with a bucket "fault".
type backend struct {
	endpoint string
	put      func(t *testing.T, bucket, key string, data []byte)
}

// backends are the stores the fault tests run against: gofakes3 in process (always), and
// versitygw (skipped when it is not installed).
var backends = []struct {
	name  string
	start func(t *testing.T) backend
}{
	{"gofakes3", func(t *testing.T) backend {
		fake := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
		srv := httptest.NewServer(fake.Server())
		t.Cleanup(srv.Close)
		isolateAWSEnv(t, "fake", "fake")
		src := newSource(t, srv.URL, s3source.Config{})
		if _, err := src.Client().CreateBucket(context.Background(), createBucket("fault")); err != nil {
			t.Fatalf("create bucket: %v", err)
		}
		return backend{endpoint: srv.URL, put: func(t *testing.T, bucket, key string, data []byte) {
			if _, err := src.Client().PutObject(context.Background(), putObject(bucket, key, data)); err != nil {
				t.Fatalf("put: %v", err)
			}
		}}
	}},
	{"versitygw", func(t *testing.T) backend {
		s := versity(t)
		s.CreateBucket(t, "fault")
		return backend{endpoint: s.Endpoint(), put: func(t *testing.T, bucket, key string, data []byte) {
			s.Put(t, bucket, key, data)
		}}
	}},
}

// TestReopenAfterBrokenBody reads through a proxy that breaks the first responses and
// checks that the bytes are exactly the object's and that each break cost one more GET.
func TestReopenAfterBrokenBody(t *testing.T) {
	data := randomBytes(1<<20 + 123)
	for _, be := range backends {
		for _, tc := range []struct {
			name     string
			mode     faultMode
			cutAfter int64
			cutFirst int32
			off      int64
		}{
			{"reset", cutReset, 1000, 3, 0},
			{"reset from offset", cutReset, 4096, 2, 777},
			{"short body", cutShort, 1000, 3, 0},
			{"stall", cutStall, 5000, 1, 10},
			{"stall before the answer", stallAnswer, 1000, 3, 0},
		} {
			t.Run(be.name+"/"+tc.name, func(t *testing.T) {
				b := be.start(t)
				b.put(t, "fault", "obj", data)
				proxy, endpoint := startFaultProxy(t, b.endpoint, tc.mode, tc.cutAfter, tc.cutFirst)
				src := newSource(t, endpoint, s3source.Config{ReadIdleTimeout: 300 * time.Millisecond})
				got, err := readAll(t, src, "fault", "obj", "", tc.off)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if !bytes.Equal(got, data[tc.off:]) {
					t.Fatalf("read %d bytes that differ from the object's %d bytes from %d", len(got), len(data)-int(tc.off), tc.off)
				}
				if n := proxy.gets.Load(); n != tc.cutFirst+1 {
					t.Fatalf("%d GETs, want %d (one per break, plus the first)", n, tc.cutFirst+1)
				}
			})
		}
	}
}

// TestReopenGivesUp: a stream that breaks before its first byte, every time, fails after
// ReadAttempts reopens.
func TestReopenGivesUp(t *testing.T) {
	b := backends[0].start(t)
	data := randomBytes(10000)
	b.put(t, "fault", "obj", data)
	proxy, endpoint := startFaultProxy(t, b.endpoint, cutReset, 0, 1000)
	src := newSource(t, endpoint, s3source.Config{ReadAttempts: 3})
	got, err := readAll(t, src, "fault", "obj", "", 0)
	if err == nil {
		t.Fatalf("read %d bytes without error", len(got))
	}
	if s3source.IsPermanent(err) {
		t.Fatalf("giving up is not permanent: a later attempt may succeed: %v", err)
	}
	if !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("err = %v", err)
	}
	// The SDK may retry a GET whose headers were lost too; at least 1 + 3 happened.
	if n := proxy.gets.Load(); n < 4 {
		t.Fatalf("%d GETs, want at least 4", n)
	}
	t.Logf("gave up after %d GETs: %v", proxy.gets.Load(), err)
}

// TestObjectReplacedMidRead: the object is overwritten while a reader is on it; the reopen
// after a break must not splice the new version's bytes onto the old ones.
func TestObjectReplacedMidRead(t *testing.T) {
	s := versity(t)
	s.CreateBucket(t, "fault")
	data := randomBytes(100000)
	listedETag := s.Put(t, "fault", "obj", data)
	for _, etag := range []string{listedETag, ""} {
		t.Run(fmt.Sprintf("etag %q", etag), func(t *testing.T) {
			s.Put(t, "fault", "obj", data)
			_, endpoint := startFaultProxy(t, s.Endpoint(), cutReset, 1000, 1)
			src := newSource(t, endpoint, s3source.Config{})
			rc, err := src.Open(context.Background(), "fault", "obj", etag, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			head := make([]byte, 1000)
			if _, err := io.ReadFull(rc, head); err != nil {
				t.Fatal(err)
			}
			replaced := bytes.Clone(data)
			replaced[5000] ^= 0xff
			s.Put(t, "fault", "obj", replaced)
			_, err = io.ReadAll(rc)
			if !errors.Is(err, s3source.ErrObjectChanged) {
				t.Fatalf("err = %v, want ErrObjectChanged", err)
			}
		})
	}
}

func TestContextCancelStopsRead(t *testing.T) {
	b := backends[0].start(t)
	b.put(t, "fault", "obj", randomBytes(100000))
	_, endpoint := startFaultProxy(t, b.endpoint, cutStall, 100, 1)
	src := newSource(t, endpoint, s3source.Config{ReadIdleTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := src.Open(ctx, "fault", "obj", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 100)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(rc)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after the context was cancelled")
	}
}

func createBucket(name string) *s3.CreateBucketInput {
	return &s3.CreateBucketInput{Bucket: aws.String(name)}
}

func putObject(bucket, key string, data []byte) *s3.PutObjectInput {
	return &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))}
}
