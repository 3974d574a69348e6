package main

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
)

// object is one generated file: its S3 key (its path under the output directory), its size
// on disk and how many of its records are good (indexed) and bad (dead-lettered).
type object struct {
	Key    string
	Format string // "ndjson" or "csv"
	Bytes  int64
	Good   int
	Bad    int
}

// spec says how to write one object: records from gen, a bad line in place of the record
// at each index of badAt, through the named compression ("", "gzip" or "zstd").
type spec struct {
	key         string
	format      string
	compression string
	records     int
	header      string // first line (CSV), not a record
	gen         func(r *rand.Rand, i int) string
	badAt       map[int]string
}

// generate writes every object of the dataset under dir.
func generate(dir string, accessLines int) ([]object, error) {
	day1 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	specs := []spec{
		{
			key: "logs/web/access-2026-11-29.ndjson", format: "ndjson", records: accessLines,
			gen: accessLog(day1, accessLines),
			badAt: map[int]string{
				accessLines / 3: `{"@timestamp":"2026-11-29T08:00:00.000Z","event":{"dataset":"web.access"},"client":{"ip":"203.0.113.`,
				accessLines / 2: `2026/11/29 12:00:03 [error] 2291#0: *8812 upstream timed out (110: Connection timed out) while reading response header from upstream`,
			},
		},
		{
			key: "logs/web/access-2026-11-30.ndjson.gz", format: "ndjson", compression: "gzip", records: 6000,
			gen:   accessLog(day2, 6000),
			badAt: map[int]string{3500: `{"@timestamp":"2026-11-30T15:00:00.000Z","http":{"response":{"status_code":200,}}}`},
		},
		{
			key: "logs/app/events-2026-11-29.ndjson", format: "ndjson", records: 2000,
			gen: appEvent(day1, 2000),
		},
		{
			key: "logs/app/events-2026-11-30.ndjson.zst", format: "ndjson", compression: "zstd", records: 4000,
			gen:   appEvent(day2, 4000),
			badAt: map[int]string{2424: `{"@timestamp":"2026-11-30T17:00:00.000Z","message":"payment "declined" by issuer"}`},
		},
		{
			key: "orders/orders-2026-11.csv", format: "csv", records: 2000,
			header: "order_id,created_at,customer_id,country,items,total_eur,status",
			gen:    orderRow(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)),
			badAt:  map[int]string{1234: "o-0001234,2026-11-18T10:00:00Z,c-4411,DE,3"},
		},
	}
	objs := make([]object, 0, len(specs))
	for i, s := range specs {
		// One seed per object: an object's content does not depend on the others'.
		r := rand.New(rand.NewPCG(2026, uint64(i)))
		o, err := s.write(dir, r)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// write writes the object under dir and returns what it holds.
func (s spec) write(dir string, r *rand.Rand) (object, error) {
	o := object{Key: s.key, Format: s.format}
	path := filepath.Join(dir, filepath.FromSlash(s.key))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return o, err
	}
	f, err := os.Create(path)
	if err != nil {
		return o, err
	}
	defer f.Close()
	comp, err := compressor(f, s.compression)
	if err != nil {
		return o, fmt.Errorf("%s: %w", s.key, err)
	}
	w := bufio.NewWriterSize(comp, 256<<10)
	if s.header != "" {
		w.WriteString(s.header + "\n")
	}
	for i := range s.records {
		if bad, ok := s.badAt[i]; ok {
			w.WriteString(bad + "\n")
			o.Bad++
			continue
		}
		w.WriteString(s.gen(r, i) + "\n")
		o.Good++
	}
	if err := w.Flush(); err != nil {
		return o, fmt.Errorf("writing %s: %w", s.key, err)
	}
	if err := comp.Close(); err != nil {
		return o, fmt.Errorf("writing %s: %w", s.key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return o, err
	}
	o.Bytes = fi.Size()
	return o, f.Close()
}

// compressor wraps f in the named compression; closing it flushes the compressed stream but
// does not close f.
func compressor(f io.Writer, name string) (io.WriteCloser, error) {
	switch name {
	case "":
		return nopCloser{f}, nil
	case "gzip":
		return gzip.NewWriter(f), nil
	case "zstd":
		return zstd.NewWriter(f)
	}
	return nil, fmt.Errorf("unknown compression %q", name)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// pick returns one of xs, the earlier ones more often (weights halve along the list).
func pick[T any](r *rand.Rand, xs []T) T {
	for _, x := range xs[:len(xs)-1] {
		if r.IntN(2) == 0 {
			return x
		}
	}
	return xs[len(xs)-1]
}

// timestamp spreads n records evenly over the day, in order.
func timestamp(day time.Time, i, n int) string {
	return day.Add(time.Duration(i) * 24 * time.Hour / time.Duration(n)).Format("2006-01-02T15:04:05.000Z")
}

func clientIP(r *rand.Rand) string {
	nets := []string{"203.0.113", "198.51.100", "192.0.2"}
	return fmt.Sprintf("%s.%d", nets[r.IntN(len(nets))], 1+r.IntN(254))
}

var (
	methods    = []string{"GET", "POST", "GET", "PUT", "DELETE"}
	statuses   = []int{200, 304, 404, 302, 500, 503, 401}
	userAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"curl/8.5.0",
		"Googlebot/2.1 (+http://www.google.com/bot.html)",
	}
	levels    = []string{"info", "debug", "warn", "error"}
	services  = []string{"checkout", "catalog", "auth", "payments"}
	countries = []string{"DE", "FR", "NL", "US", "GB", "ES", "PL"}
)

func urlPath(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return fmt.Sprintf("/api/orders/%d", 100000+r.IntN(900000))
	case 1:
		return fmt.Sprintf("/api/products/%d", 1000+r.IntN(9000))
	case 2:
		return pick(r, []string{"/static/app.js", "/static/app.css", "/favicon.ico"})
	case 3:
		return "/checkout"
	case 4:
		return "/api/search"
	}
	return pick(r, []string{"/", "/login", "/cart"})
}

// accessLog returns a generator of web access log records in ECS field names, n of them over day.
func accessLog(day time.Time, n int) func(*rand.Rand, int) string {
	return func(r *rand.Rand, i int) string {
		status := pick(r, statuses)
		return fmt.Sprintf(`{"@timestamp":"%s","event":{"dataset":"web.access","duration":%d},`+
			`"client":{"ip":"%s"},"http":{"request":{"method":"%s"},"response":{"status_code":%d,"bytes":%d}},`+
			`"url":{"path":"%s"},"user_agent":{"original":"%s"}}`,
			timestamp(day, i, n), 200_000+r.IntN(900_000_000), clientIP(r), pick(r, methods), status,
			r.IntN(120_000), urlPath(r), userAgents[r.IntN(len(userAgents))])
	}
}

// appEvent returns a generator of application log events, n of them over day.
func appEvent(day time.Time, n int) func(*rand.Rand, int) string {
	return func(r *rand.Rand, i int) string {
		service := services[r.IntN(len(services))]
		level := pick(r, levels)
		user := fmt.Sprintf("u-%05d", r.IntN(50000))
		var action, msg string
		switch service {
		case "checkout", "payments":
			action = pick(r, []string{"order.placed", "payment.captured", "payment.declined"})
			msg = fmt.Sprintf("%s for order o-%07d, %.2f EUR", action, r.IntN(10_000_000), float64(r.IntN(50000))/100+1)
		case "auth":
			action = pick(r, []string{"user.login", "user.logout", "user.login_failed"})
			msg = fmt.Sprintf("%s for %s", action, user)
		default:
			action = "catalog.query"
			msg = fmt.Sprintf("query served from %s in %d ms", pick(r, []string{"cache", "db"}), r.IntN(400))
		}
		return fmt.Sprintf(`{"@timestamp":"%s","event":{"dataset":"app.events","action":"%s"},`+
			`"log":{"level":"%s"},"service":{"name":"%s"},"user":{"id":"%s"},"message":"%s"}`,
			timestamp(day, i, n), action, level, service, user, msg)
	}
}

// orderRow returns a generator of CSV rows of orders placed during November from start.
func orderRow(start time.Time) func(*rand.Rand, int) string {
	return func(r *rand.Rand, i int) string {
		created := start.Add(time.Duration(r.IntN(30*24*3600)) * time.Second).Format(time.RFC3339)
		return fmt.Sprintf("o-%07d,%s,c-%04d,%s,%d,%.2f,%s", i, created, r.IntN(10000),
			pick(r, countries), 1+r.IntN(6), float64(r.IntN(40000))/100+5,
			pick(r, []string{"paid", "shipped", "delivered", "refunded"}))
	}
}
