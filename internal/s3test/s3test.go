// Package s3test starts a real S3 server for tests: a versitygw process with its posix backend
// on a temporary directory, listening on 127.0.0.1 and a free port.
//
// The binary is found through $SLUICE_VERSITYGW, then $PATH, then $HOME/go/bin/versitygw
// (`go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`). When it is missing the
// test is skipped, or fails when SLUICE_REQUIRE_INTEGRATION=1 (set that in CI).
package s3test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials of the gateway's root account. They only exist in tests.
const (
	AccessKey = "sluice-test-access"
	SecretKey = "sluice-test-secret-0123456789"
	Region    = "us-east-1"
)

const healthPath = "/health"

// startTimeout bounds how long Start waits for the gateway to answer.
const startTimeout = 20 * time.Second

// Server is a running versitygw process. It is stopped by the test's Cleanup.
type Server struct {
	endpoint string
	root     string

	clientOnce sync.Once
	client     *s3.Client
}

// Binary returns the path of the versitygw binary, or "" when none is found.
func Binary() string {
	if p := os.Getenv("SLUICE_VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, "go", "bin", "versitygw")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// Start runs a versitygw server for the duration of the test. Its data lives in a
// t.TempDir.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "versitygw not found (set SLUICE_VERSITYGW, or go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)"
		if os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root := filepath.Join(t.TempDir(), "s3")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// A free port can be taken between probing and binding; try a few.
	var lastErr error
	for range 3 {
		s, err := start(t, bin, root)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting versitygw: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, root string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var out bytes.Buffer
	cmd := exec.Command(bin,
		"--port", addr,
		"--access", AccessKey,
		"--secret", SecretKey,
		"--region", Region,
		"--health", healthPath,
		"--quiet",
		"posix", root,
	)
	cmd.Env = gatewayEnv()
	cmd.Stdout = &lockedWriter{w: &out}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	s := &Server{endpoint: "http://" + addr, root: root}
	if err := s.waitHealthy(exited); err != nil {
		stop()
		return nil, fmt.Errorf("%w\nversitygw output:\n%s", err, out.String())
	}
	t.Cleanup(stop)
	return s, nil
}

func (s *Server) waitHealthy(exited <-chan error) error {
	deadline := time.Now().Add(startTimeout)
	hc := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw exited: %v", err)
		default:
		}
		resp, err := hc.Get(s.endpoint + healthPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("versitygw on %s not healthy after %s", s.endpoint, startTimeout)
}

// Endpoint is the gateway's base URL, e.g. http://127.0.0.1:41234.
func (s *Server) Endpoint() string { return s.endpoint }

// Root is the posix directory the gateway serves: one sub-directory per bucket.
func (s *Server) Root() string { return s.root }

// Client is an S3 client for the gateway: path-style, us-east-1, static root credentials.
func (s *Server) Client() *s3.Client {
	s.clientOnce.Do(func() {
		s.client = s3.NewFromConfig(aws.Config{
			Region:      Region,
			Credentials: credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		}, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(s.endpoint)
			o.UsePathStyle = true
		})
	})
	return s.client
}

// Env is what a subprocess needs to reach the gateway with the AWS SDK's default chain:
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL_S3. Append it to
// os.Environ() (later entries win).
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=" + Region,
		"AWS_ENDPOINT_URL_S3=" + s.endpoint,
	}
}

// SetEnv sets the variables of Env in this process for the duration of the test (t.Setenv:
// the test must not be parallel).
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	// A session token or profile from the developer's shell would override the static keys.
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
}

// CreateBucket creates a bucket or fails the test.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// Put writes an object and returns its ETag (quoted, as S3 returns it), or fails the test.
func (s *Server) Put(t testing.TB, bucket, key string, data []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := s.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
	return aws.ToString(out.ETag)
}

// Objects returns the contents of every object under bucket/prefix (one listing page: at most
// 1000), by key, or fails the test.
func (s *Server) Objects(t testing.TB, bucket, prefix string) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := s.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("list s3://%s/%s: %v", bucket, prefix, err)
	}
	objs := map[string][]byte{}
	for _, o := range out.Contents {
		obj, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			t.Fatalf("get s3://%s/%s: %v", bucket, aws.ToString(o.Key), err)
		}
		body, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatalf("get s3://%s/%s: %v", bucket, aws.ToString(o.Key), err)
		}
		objs[aws.ToString(o.Key)] = body
	}
	return objs
}

// JSONLines decodes every line of every object under bucket/prefix (NDJSON objects, such as
// dead letters) as a JSON object, or fails the test.
func (s *Server) JSONLines(t testing.TB, bucket, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for key, body := range s.Objects(t, bucket, prefix) {
		for line := range bytes.Lines(body) {
			var v map[string]any
			if err := json.Unmarshal(line, &v); err != nil {
				t.Fatalf("s3://%s/%s: %v", bucket, key, err)
			}
			out = append(out, v)
		}
	}
	return out
}

// gatewayEnv is this process's environment without the variables versitygw reads for its own
// configuration, so a developer's shell cannot change the test server.
func gatewayEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "VGW_") || strings.HasPrefix(k, "ROOT_") || k == "LOGFILE" || k == "WEBHOOK" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
