package s3source

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		uri, bucket, prefix string
		wantErr             bool
	}{
		{uri: "s3://bucket", bucket: "bucket"},
		{uri: "s3://bucket/", bucket: "bucket"},
		{uri: "s3://bucket/logs/2024/", bucket: "bucket", prefix: "logs/2024/"},
		{uri: "s3://bucket/logs/2024", bucket: "bucket", prefix: "logs/2024"},
		{uri: "s3://b.with.dots/a//b", bucket: "b.with.dots", prefix: "a//b"},
		{uri: "s3:///prefix", wantErr: true},
		{uri: "s3://", wantErr: true},
		{uri: "https://bucket/prefix", wantErr: true},
		{uri: "bucket/prefix", wantErr: true},
		{uri: "s3://bad bucket/x", wantErr: true},
		{uri: "", wantErr: true},
	}
	for _, tt := range tests {
		b, p, err := ParseURI(tt.uri)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseURI(%q) error = %v, wantErr %v", tt.uri, err, tt.wantErr)
			continue
		}
		if b != tt.bucket || p != tt.prefix {
			t.Errorf("ParseURI(%q) = %q, %q; want %q, %q", tt.uri, b, p, tt.bucket, tt.prefix)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"s3://bucket/prefix", "s3://b", "s3:///", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		b, p, err := ParseURI(uri)
		if err != nil {
			return
		}
		if b == "" {
			t.Fatalf("ParseURI(%q): empty bucket without error", uri)
		}
		want := "s3://" + b
		if p != "" {
			want += "/" + p
		}
		if uri != want && uri != want+"/" {
			t.Fatalf("ParseURI(%q) = %q, %q: does not round-trip", uri, b, p)
		}
	})
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in           string
		start, total int64
		wantErr      bool
	}{
		{in: "bytes 0-99/100", start: 0, total: 100},
		{in: "bytes 42-99/100", start: 42, total: 100},
		{in: "bytes 42-99/*", start: 42, total: -1},
		{in: "bytes */100", wantErr: true},
		{in: "bytes 42-99", wantErr: true},
		{in: "items 0-1/2", wantErr: true},
		{in: "bytes -1-2/3", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		start, total, err := parseContentRange(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseContentRange(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && (start != tt.start || total != tt.total) {
			t.Errorf("parseContentRange(%q) = %d, %d; want %d, %d", tt.in, start, total, tt.start, tt.total)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	f.Add("bytes 0-99/100")
	f.Add("bytes 1-2/*")
	f.Fuzz(func(t *testing.T, s string) {
		start, total, err := parseContentRange(s)
		if err == nil && (start < 0 || total < -1) {
			t.Fatalf("parseContentRange(%q) = %d, %d", s, start, total)
		}
	})
}

func TestClassify(t *testing.T) {
	status := func(code int) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("x")}
	}
	api := func(code string) error { return &smithy.GenericAPIError{Code: code} }
	tests := []struct {
		err  error
		want error
	}{
		{api("PreconditionFailed"), ErrObjectChanged},
		{api("AccessDenied"), ErrAccessDenied},
		{api("InvalidAccessKeyId"), ErrAccessDenied},
		{api("SignatureDoesNotMatch"), ErrAccessDenied},
		{api("NoSuchKey"), ErrNotFound},
		{api("NoSuchBucket"), ErrNotFound},
		{status(412), ErrObjectChanged},
		{status(403), ErrAccessDenied},
		{status(404), ErrNotFound},
		{api("SlowDown"), nil},
		{status(500), nil},
		{errors.New("connection reset"), nil},
	}
	for _, tt := range tests {
		got := classify(fmt.Errorf("op: %w", tt.err))
		if !errors.Is(got, tt.err) {
			t.Errorf("classify(%v) lost the original error", tt.err)
		}
		if tt.want == nil {
			if IsPermanent(got) {
				t.Errorf("classify(%v) = %v, want a retryable error", tt.err, got)
			}
			continue
		}
		if !errors.Is(got, tt.want) || !IsPermanent(got) {
			t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
