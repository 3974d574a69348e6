package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/internal/s3test"
	"github.com/sluicehq/sluice/internal/testenv"
)

// TestDemoS3PutAwkwardKeys runs scripts/demo-s3.sh as the README's "By hand" section does
// (start, put FILE KEY, stop) with keys a user's data has: spaces, '#', '?', '+', '%' and
// non-ASCII letters. Each must arrive under exactly that key, with its bytes.
func TestDemoS3PutAwkwardKeys(t *testing.T) {
	bin := s3test.Binary()
	if bin == "" {
		msg := "versitygw not found (set SLUICE_VERSITYGW)"
		if testenv.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	env := append(os.Environ(), "DEMO_S3_PORT="+strconv.Itoa(port), "DEMO_DIR="+filepath.Join(dir, "s3"),
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	script := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "demo-s3.sh"), args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("demo-s3.sh %v: %v\n%s", args, err, out)
		}
	}
	script("start")
	t.Cleanup(func() { script("stop") })

	keys := []string{"plain/a.ndjson", "with space/b c.ndjson", "odd/#1?x=y+z%41.ndjson", "unicode/ünï çødé.ndjson"}
	file := filepath.Join(dir, "f.ndjson")
	client := s3.NewFromConfig(aws.Config{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("sluice-demo", "sluice-demo-secret", ""),
	}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:" + strconv.Itoa(port))
		o.UsePathStyle = true
	})
	for i, key := range keys {
		body := []byte(`{"n":` + strconv.Itoa(i) + "}\n")
		if err := os.WriteFile(file, body, 0o644); err != nil {
			t.Fatal(err)
		}
		script("put", file, key)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("demo"), Key: aws.String(key)})
		if err != nil {
			cancel()
			t.Fatalf("get %q after put: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		cancel()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("object %q: %q (%v), want %q", key, got, err, body)
		}
	}
}
