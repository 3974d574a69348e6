package s3test_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/internal/s3test"
)

func TestPutAndGet(t *testing.T) {
	s := s3test.Start(t)
	s.CreateBucket(t, "bucket")
	etag := s.Put(t, "bucket", "dir/a.ndjson", []byte("{\"a\":1}\n"))
	if etag == "" {
		t.Fatal("empty ETag")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("dir/a.ndjson")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "{\"a\":1}\n" {
		t.Fatalf("got %q", got)
	}
	if aws.ToString(out.ETag) != etag {
		t.Fatalf("GET ETag %s, PUT ETag %s", aws.ToString(out.ETag), etag)
	}
}

// TestEnvReachesServer checks that the SDK's default chain, given only Env, reaches the
// gateway: that is how a sluice subprocess is configured.
func TestEnvReachesServer(t *testing.T) {
	s := s3test.Start(t)
	s.CreateBucket(t, "envbucket")
	s.Put(t, "envbucket", "k", []byte("v"))
	s.SetEnv(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("envbucket")})
	if err != nil {
		t.Fatalf("ListObjectsV2 via env: %v", err)
	}
	if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "k" {
		t.Fatalf("listing = %+v", out.Contents)
	}
}

func TestWrongCredentialsRejected(t *testing.T) {
	s := s3test.Start(t)
	s.CreateBucket(t, "private")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := s3.New(s3.Options{
		Region:       s3test.Region,
		BaseEndpoint: aws.String(s.Endpoint()),
		UsePathStyle: true,
		Credentials:  aws.AnonymousCredentials{},
	})
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("private")}); err == nil {
		t.Fatal("anonymous listing succeeded")
	}
}

// TestProcessKilledOnCleanup runs a sub-test that starts a gateway, then checks that nothing
// listens on its address once the sub-test's cleanups ran.
func TestProcessKilledOnCleanup(t *testing.T) {
	var endpoint string
	t.Run("inner", func(t *testing.T) {
		endpoint = s3test.Start(t).Endpoint()
	})
	if endpoint == "" {
		t.Skip("inner test skipped")
	}
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(endpoint, "http://"), time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after cleanup", endpoint)
	}
}
