package esfake

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// bulkBody builds n items of about docBytes each, as the engine sends them.
func bulkBody(n, docBytes int) []byte {
	var b bytes.Buffer
	pad := strings.Repeat("x", docBytes-60)
	for i := range n {
		fmt.Fprintf(&b, `{"index":{"_index":"bench","_id":"%016x"}}`+"\n", i)
		fmt.Fprintf(&b, `{"n":%d,"name":"record-%08d","pad":"%s"}`+"\n", i, i, pad)
	}
	return b.Bytes()
}

// nullWriter is an http.ResponseWriter that keeps nothing, so the benchmark measures the
// server alone.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) WriteHeader(int)             {}
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkBulk1KiB measures one bulk request of 1,000 documents of 1 KiB. SetBytes makes
// the MB/s column the request body throughput one core sustains.
func BenchmarkBulk1KiB(b *testing.B) {
	body := bulkBody(1000, 1024)
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"discard", Options{Discard: true, SkipValidation: true}},
		{"discard-validate", Options{Discard: true}},
		{"store-validate", Options{}},
	} {
		b.Run("handler/"+bc.name, func(b *testing.B) {
			s := NewHandler(bc.opts)
			defer s.Close()
			rd := bytes.NewReader(body)
			req, _ := http.NewRequest(http.MethodPost, "/_bulk", rd)
			req.Header.Set("Content-Type", "application/x-ndjson")
			w := &nullWriter{h: http.Header{}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = io.NopCloser(rd)
				req.ContentLength = int64(len(body))
				s.ServeHTTP(w, req)
			}
			if st := s.Stats(); st.ItemStatuses[201]+st.ItemStatuses[200] != st.Items {
				b.Fatalf("items failed: %+v", st)
			}
		})
	}
	b.Run("http/discard", func(b *testing.B) {
		s := New(Options{Discard: true, SkipValidation: true})
		defer s.Close()
		client := &http.Client{}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Post(s.URL()+"/_bulk", "application/x-ndjson", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.Status)
			}
		}
	})
}
