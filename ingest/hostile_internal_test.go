package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	esclient "github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
)

var esRetryFast = esclient.RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxElapsed: 2 * time.Second}

// ingestObject runs one whole-object chunk of data through eng.
func ingestObject(t *testing.T, eng sinkEngine, key, format string, data []byte, lim Limits) (Progress, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := ChunkSpec{Bucket: "b", Key: key, Format: format, Index: "hostile", End: -1, Limits: lim}
	return eng.Ingest(ctx, spec, bytesOpener(data), nil)
}

// checkBadInput asserts err is one permanent bad-input error naming the object and an offset.
func checkBadInput(t *testing.T, err error, key string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrBadInput) || !IsPermanent(err) {
		t.Fatalf("error is not permanent bad input: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "s3://b/"+key) || !strings.Contains(msg, "offset") {
		t.Fatalf("error does not name the object and the offset: %v", err)
	}
}

// zstdBomb is a zstd frame whose header asks for a 2^29-byte window, then one RLE block.
func zstdBomb() []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 19 << 3}
	hdr := 1 | 1<<1 | 1000<<3 // last block, RLE, 1000 bytes
	return append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 'x')
}

// Finding 2: a 10-byte zstd frame must not make the worker allocate its declared window.
func TestZstdWindowOverTheCapIsBadInput(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 64<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ingestObject(t, eng, "bomb.zst", FormatNDJSON, zstdBomb(), Limits{})
	runtime.ReadMemStats(&after)
	checkBadInput(t, err, "bomb.zst")
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Errorf("reading the bomb allocated %d MiB", grew>>20)
	}
	checkReleased(t, eng.Budget)
	// A frame within the cap is read, and its window is charged while the chunk runs.
	var zs bytes.Buffer
	enc, _ := zstd.NewWriter(&zs, zstd.WithWindowSize(zstdMaxWindow))
	enc.Write([]byte("{\"a\":1}\n"))
	enc.Close()
	prog, err := ingestObject(t, eng, "ok.zst", FormatNDJSON, zs.Bytes(), Limits{})
	if err != nil || prog.Stats.Indexed != 1 {
		t.Fatalf("8 MiB window: %+v, %v", prog, err)
	}
	if eng.Budget.Peak() < zstdWindowCharge || eng.Budget.Used() != 0 {
		t.Errorf("zstd window not charged (peak %d) or not given back (used %d)", eng.Budget.Peak(), eng.Budget.Used())
	}
}

// errReader returns data, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func compressed(t *testing.T, compression string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	if compression == CompressionGzip {
		w = gzip.NewWriter(&b)
	} else {
		w, _ = zstd.NewWriter(&b)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.Bytes()
}

// Finding 8: corrupt or truncated compressed data is permanent bad input, named; a source that
// fails is not.
func TestCorruptCompressedDataIsBadInput(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 64<<20)
	data, _, _ := dataset(3000)
	for _, c := range []struct{ compression, ext string }{{CompressionGzip, ".gz"}, {CompressionZstd, ".zst"}} {
		z := compressed(t, c.compression, data)
		corrupt := append([]byte(nil), z...)
		for i := len(corrupt) / 2; i < len(corrupt)/2+64; i++ {
			corrupt[i] ^= 0x5a
		}
		for name, body := range map[string][]byte{"truncated": z[:len(z)*2/3], "corrupt": corrupt, "plain": data[:1000]} {
			key := name + c.ext
			_, err := ingestObject(t, eng, key, FormatNDJSON, body, Limits{})
			checkBadInput(t, err, key)
			if err != nil && strings.Contains(err.Error(), c.compression+": "+c.compression+":") {
				t.Errorf("%s: %v says %s twice", key, err, c.compression)
			}
		}
		// The source failing mid-stream is a retryable read error, not bad input.
		failing := func(context.Context, int64) (io.ReadCloser, error) {
			return io.NopCloser(&errReader{data: z[:len(z)/2], err: errors.New("connection reset")}), nil
		}
		spec := ChunkSpec{Bucket: "b", Key: "reset" + c.ext, Format: FormatNDJSON, Index: "hostile", End: -1}
		_, err := eng.Ingest(context.Background(), spec, failing, nil)
		if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "connection reset") {
			t.Errorf("%s: a failing source gave %v, want a retryable error", c.compression, err)
		}
	}
	checkReleased(t, eng.Budget)
}

// A single-object chunk whose compressed data breaks midway still sends the records decoded
// before the break, waits for the requests in flight, and only then fails: the progress
// returned with the error counts every document the cluster holds, and the error names the
// offset where decoding broke. The delay keeps requests in flight when the break is found.
func TestBadInputCountsWhatWasIndexed(t *testing.T) {
	es := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		if r.Endpoint == esfake.Bulk {
			return esfake.Decision{Delay: 30 * time.Millisecond}
		}
		return esfake.Decision{}
	}})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 64<<20)
	// Hashes, so that zstd's blocks do not swallow the whole object at once.
	var data bytes.Buffer
	ends := []int64{0}
	for i := range 10000 {
		fmt.Fprintf(&data, "{\"i\":%d,\"h\":\"%x\"}\n", i, sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
		ends = append(ends, int64(data.Len()))
	}
	for _, c := range []struct{ compression, ext string }{{CompressionGzip, ".gz"}, {CompressionZstd, ".zst"}} {
		z := compressed(t, c.compression, data.Bytes())
		key := "half" + c.ext
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		spec := ChunkSpec{Bucket: "b", Key: key, Format: FormatNDJSON, Index: "half-" + c.compression, End: -1,
			Limits: Limits{MaxOps: 100, Inflight: 4, RetryInitial: time.Millisecond}}
		prog, err := eng.Ingest(ctx, spec, bytesOpener(z[:len(z)/2]), nil)
		cancel()
		checkBadInput(t, err, key)
		held := es.Count(spec.Index)
		if held == 0 || prog.Stats.Indexed != int64(held) || prog.Stats.Read != prog.Stats.Indexed {
			t.Errorf("%s: progress read %d indexed %d, the index holds %d", key, prog.Stats.Read, prog.Stats.Indexed, held)
		}
		var at int64
		if _, serr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "reading s3://b/"+key+" at offset "), "%d", &at); serr != nil || at == 0 || at < prog.Checkpoint {
			t.Errorf("%s: error %q does not name where decoding broke (checkpoint %d)", key, err, prog.Checkpoint)
		}
		if prog.Checkpoint == 0 || prog.Checkpoint != ends[held] {
			t.Errorf("%s: checkpoint %d does not end the %d records held", key, prog.Checkpoint, held)
		}
	}
	checkReleased(t, eng.Budget)
}

// Finding 8: a CSV header that does not parse, or is longer than the cap, is bad input; the
// header never becomes a data row, and the first data row never becomes the header.
func TestCSVHeaderProblemsAreBadInput(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 16<<20)
	long := strings.Repeat("c", 8<<10) + ",d\n1,2\n3,4\n"
	for name, body := range map[string]string{
		"bare-quote.csv": "a,b\"c\n1,2\n",
		"unclosed.csv":   "a,\"b\n1,2\n",
		"long.csv":       long,
	} {
		_, err := ingestObject(t, eng, name, FormatCSV, []byte(body), Limits{MaxBytes: 4 << 10})
		checkBadInput(t, err, name)
	}
	if n := es.Count("hostile"); n != 0 {
		t.Errorf("%d rows indexed from objects whose header is bad", n)
	}
}

// Findings 4 and 7: a dead letter keeps bytes that are not UTF-8 (base64), is capped at 64 KiB
// with the whole record's length and SHA-256, and is not escaped into six times its size.
func TestDeadLettersAreBoundedAndFaithful(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, sink := newTestEngine(t, es, 16<<20)
	latin1 := []byte("{\"name\":\"Jos\xe9\"")    // not JSON, not UTF-8
	control := bytes.Repeat([]byte{0x01}, 1<<20) // 1 MiB of control bytes
	data := slicesConcat(latin1, []byte("\n"), control, []byte("\n{\"ok\":1}\n"))
	prog, err := ingestObject(t, eng, "mixed.ndjson", FormatNDJSON, data, Limits{MaxBytes: 2 << 20, ValidateJSON: true})
	if err != nil || prog.Stats.DeadLettered != 2 || prog.Stats.Indexed != 1 {
		t.Fatalf("%+v, %v", prog, err)
	}
	for _, l := range sink.letters {
		var doc map[string]any
		enc := l.AppendJSON(nil)
		if err := json.Unmarshal(enc, &doc); err != nil {
			t.Fatalf("letter is not JSON: %v", err)
		}
		switch l.Offset {
		case 0:
			raw, err := base64.StdEncoding.DecodeString(fmt.Sprint(doc["record_base64"]))
			if err != nil || !bytes.Equal(raw, latin1) || doc["record"] != nil {
				t.Errorf("Latin-1 record stored as %v / %q, want its bytes in record_base64", doc["record"], raw)
			}
		default:
			sum := sha256.Sum256(control)
			if len(l.Record) > previewBytes || !l.Truncated || l.Length != int64(len(control)) || doc["record_sha256"] != hex.EncodeToString(sum[:]) {
				t.Errorf("1 MiB letter: %d bytes kept, truncated %v, length %d, sha %v", len(l.Record), l.Truncated, l.Length, doc["record_sha256"])
			}
			if len(enc) > 6*previewBytes+4<<10 {
				t.Errorf("1 MiB letter encodes to %d bytes", len(enc))
			}
		}
	}
}

func slicesConcat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Finding 4: a CSV row whose JSON outgrows the request cap is dead-lettered by its head; the
// chunk succeeds.
func TestCSVRowWhoseJSONOutgrowsTheCapIsDeadLettered(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, sink := newTestEngine(t, es, 16<<20)
	row := strings.Repeat("\x02", 40<<10) // 40 KiB that escape to 240 KiB of JSON
	data := "a,b\n1,2\n" + row + ",x\n3,4\n"
	prog, err := ingestObject(t, eng, "wide.csv", FormatCSV, []byte(data), Limits{MaxBytes: 64 << 10})
	if err != nil || prog.Stats.Indexed != 2 || prog.Stats.DeadLettered != 1 {
		t.Fatalf("%+v, %v", prog, err)
	}
	if l := sink.letters[0]; l.Length != int64(len(row)+2) || !strings.Contains(l.Reason, "JSON document") {
		t.Errorf("letter %+v", l.Reason)
	}
	checkReleased(t, eng.Budget)
}

// Finding 10: an id over Elasticsearch's 512 bytes is dead-lettered alone, never sent.
func TestIDOverTheLimitIsDeadLettered(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, sink := newTestEngine(t, es, 16<<20)
	data := fmt.Sprintf("{\"id\":\"a\"}\n{\"id\":\"%s\"}\n{\"id\":\"b\"}\n", strings.Repeat("x", MaxIDBytes+1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := ChunkSpec{Bucket: "b", Key: "ids.ndjson", Format: FormatNDJSON, Index: "hostile", End: -1, IDField: "id"}
	prog, err := eng.Ingest(ctx, spec, bytesOpener([]byte(data)), nil)
	if err != nil || prog.Stats.Indexed != 2 || prog.Stats.DeadLettered != 1 {
		t.Fatalf("%+v, %v", prog, err)
	}
	if r := sink.letters[0].Reason; !strings.Contains(r, "512") {
		t.Errorf("reason %q does not say the limit", r)
	}
	if es.Stats().Responses[400] != 0 {
		t.Errorf("a request was refused as a whole")
	}
}

// Finding 3: a record near the request cap is charged for its line buffer and its block, a
// longer one is streamed past, and chunks that read big records at once do not deadlock on a
// shared budget.
func TestBigRecordsAreChargedAndDoNotDeadlock(t *testing.T) {
	es := esfake.New(esfake.Options{})
	defer es.Close()
	const maxBytes = 1 << 20
	eng, sink := newTestEngine(t, es, 2*(maxBytes+1)+4<<20)
	near := fmt.Sprintf("{\"s\":\"%s\"}", strings.Repeat("n", maxBytes-200))
	huge := strings.Repeat("h", 20<<20)
	data := []byte("{\"a\":1}\n" + near + "\n" + huge + "\n{\"a\":2}\n")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := ChunkSpec{Bucket: "b", Key: fmt.Sprintf("big%d.ndjson", i), Format: FormatNDJSON, Index: "hostile", End: -1,
				Limits: Limits{MaxBytes: maxBytes}}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, errs[i] = eng.Ingest(ctx, spec, bytesOpener(data), nil)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := es.Count("hostile"); got != 4*3 {
		t.Errorf("indexed %d, want 12", got)
	}
	if eng.Budget.Peak() < 2*int64(len(near)) {
		t.Errorf("peak charge %d: the line buffer of a %d-byte record was not charged", eng.Budget.Peak(), len(near))
	}
	checkReleased(t, eng.Budget)
	sum := sha256.Sum256([]byte(huge))
	for _, l := range sink.letters {
		if l.Length != int64(len(huge)) || l.SHA256 != sum || len(l.Record) != previewBytes {
			t.Errorf("huge record's letter: length %d, %d bytes kept, hash match %v", l.Length, len(l.Record), l.SHA256 == sum)
		}
	}
}

// Finding 3: a retried subset of a request is sent as slices of its blocks, not a copy.
func TestWireOfSlicesTheBlocks(t *testing.T) {
	b := budgetFor(t)
	r := newRequest(b)
	for i := range 3 {
		if i != 1 { // items 0 and 1 share a block
			b.TryAcquire(64)
			r.addBlock(64)
		}
		r.addDoc(0, int64(i), int64(i+1), []byte("{}\n"), []byte(fmt.Sprintf(`{"i":%d}`, i)))
	}
	parts := r.wireOf([]int{0, 1, 2}, nil)
	if len(parts) != 2 || string(bytes.Join(parts, nil)) != "{}\n{\"i\":0}\n{}\n{\"i\":1}\n{}\n{\"i\":2}\n" {
		t.Fatalf("parts %q", parts)
	}
	if &parts[0][0] != &r.blocks[0][0] {
		t.Error("the body was copied")
	}
	if parts = r.wireOf([]int{0, 2}, parts[:0]); len(parts) != 2 || string(parts[1]) != "{}\n{\"i\":2}\n" {
		t.Fatalf("subset parts %q", parts)
	}
	r.free()
}

func budgetFor(t *testing.T) *Budget {
	b := NewBudget(1 << 20)
	t.Cleanup(func() { checkReleased(t, b) })
	return b
}

// checkReleased fails t unless every byte taken from b was given back.
func checkReleased(t *testing.T, b *Budget) {
	t.Helper()
	if b.Used() != 0 {
		t.Errorf("budget still holds %d bytes", b.Used())
	}
}

// Finding 4: a dead letter the dead-letter index refuses as too large (413) is cut and stored;
// one that cannot be stored even cut fails the write retryably, never permanently.
func TestIndexSinkCutsALetterTheClusterFindsTooLarge(t *testing.T) {
	for _, c := range []struct {
		maxContent int64
		stored     bool
	}{{16 << 10, true}, {1 << 10, false}} {
		es := esfake.New(esfake.Options{MaxContentLength: c.maxContent})
		eng, _ := newTestEngine(t, es, 16<<20)
		sink, err := NewIndexSink(eng.Bulk, IndexSinkConfig{Index: "dl", Retry: esRetryFast})
		if err != nil {
			t.Fatal(err)
		}
		rec := bytes.Repeat([]byte("r"), 60<<10)
		d := DeadLetter{Time: time.Now(), Index: "logs", Object: "s3://b/k", Offset: 7, Reason: "test"}
		d.setRecord(Record{Data: rec})
		err = sink.Write(context.Background(), []DeadLetter{d})
		switch {
		case c.stored && err != nil:
			t.Errorf("max content %d: %v", c.maxContent, err)
		case c.stored:
			doc, ok := es.Doc("dl", DeadLetterID("s3://b/k", 7))
			if !ok || !bytes.Contains(doc, []byte(`"record_length":61440`)) || !bytes.Contains(doc, []byte(`"truncated":true`)) {
				t.Errorf("stored letter %.300s", doc)
			}
		case err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "offset 7"):
			t.Errorf("max content %d: %v, want a retryable error naming the record", c.maxContent, err)
		}
		es.Close()
	}
}

// Finding 10: limits past their bounds are refused with the flag's name, permanently.
func TestLimitsOutOfBoundsAreRefused(t *testing.T) {
	for _, l := range []Limits{
		{Inflight: MaxInflightLimit + 1}, {Inflight: -1}, {MaxOps: MaxOpsLimit + 1}, {MaxOps: -5},
		{MaxBytes: MaxBytesLimit + 1}, {MaxBytes: 100}, {MaxBytes: -1}, {QueueBytes: -1}, {FlushInterval: -time.Second},
	} {
		err := l.Validate()
		if !errors.Is(err, ErrBadConfig) || !IsPermanent(err) {
			t.Errorf("%+v: %v", l, err)
		}
	}
	for _, l := range []Limits{{}, {Inflight: MaxInflightLimit, MaxOps: MaxOpsLimit, MaxBytes: MaxBytesLimit}, {MaxBytes: MinBytesLimit}} {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	es := esfake.New(esfake.Options{})
	defer es.Close()
	eng, _ := newTestEngine(t, es, 16<<20)
	if _, err := ingestObject(t, eng, "k", FormatNDJSON, []byte("{}\n"), Limits{Inflight: 1 << 20}); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "--inflight") {
		t.Errorf("engine took an inflight of 1<<20: %v", err)
	}
}

func TestJSONStringLen(t *testing.T) {
	for _, s := range []string{"", "plain", "a\"b\\c\n\r\t", "\x00\x01\x1f", "é漢字", "\xff\xfe", "mixed \x02é\xffz"} {
		if got, want := jsonStringLen([]byte(s)), len(appendJSONString(nil, []byte(s))); got != want {
			t.Errorf("jsonStringLen(%q) = %d, want %d", s, got, want)
		}
	}
}
