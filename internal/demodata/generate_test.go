package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestGenerateCounts reads every object back through its compression and checks that the
// manifest's good and bad counts are what a reader finds: good NDJSON lines are valid JSON
// objects and bad ones are not; good CSV rows have the header's field count and bad ones not.
func TestGenerateCounts(t *testing.T) {
	dir := t.TempDir()
	objs, err := generate(dir, 3000)
	if err != nil {
		t.Fatal(err)
	}
	formats := map[string]bool{}
	compressions := map[string]bool{}
	for _, o := range objs {
		formats[o.Format] = true
		compressions[filepath.Ext(o.Key)] = true
		data := readObject(t, filepath.Join(dir, o.Key))
		var good, bad int
		if o.Format == "csv" {
			good, bad = countCSV(t, data)
		} else {
			good, bad = countNDJSON(data)
		}
		if good != o.Good || bad != o.Bad {
			t.Errorf("%s: read %d good and %d bad records, manifest says %d and %d", o.Key, good, bad, o.Good, o.Bad)
		}
		if o.Bytes <= 0 {
			t.Errorf("%s: size %d", o.Key, o.Bytes)
		}
	}
	for _, want := range []string{".ndjson", ".gz", ".zst", ".csv"} {
		if !compressions[want] {
			t.Errorf("no object ending in %s", want)
		}
	}

	var manifest bytes.Buffer
	printManifest(&manifest, objs)
	for _, want := range []string{"NDJSON_GOOD=", "NDJSON_BAD=4\n", "CSV_GOOD=1999\n", "CSV_BAD=1\n"} {
		if !strings.Contains(manifest.String(), want) {
			t.Errorf("manifest lacks %q:\n%s", want, manifest.String())
		}
	}
}

// TestGenerateDeterministic: two runs write the same bytes, so the demo's figures are stable.
func TestGenerateDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	objsA, err := generate(a, 500)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := generate(b, 500); err != nil {
		t.Fatal(err)
	}
	for _, o := range objsA {
		x, _ := os.ReadFile(filepath.Join(a, o.Key))
		y, _ := os.ReadFile(filepath.Join(b, o.Key))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between runs", o.Key)
		}
	}
}

func readObject(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	switch filepath.Ext(path) {
	case ".gz":
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	case ".zst":
		zr, err := zstd.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return data
}

func countNDJSON(data []byte) (good, bad int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var doc map[string]any
		if json.Unmarshal(sc.Bytes(), &doc) == nil {
			good++
		} else {
			bad++
		}
	}
	return good, bad
}

func countCSV(t *testing.T, data []byte) (good, bad int) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		if len(row) == len(rows[0]) {
			good++
		} else {
			bad++
		}
	}
	return good, bad
}
