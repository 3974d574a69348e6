package es

import (
	"bufio"
	"bytes"
	"testing"
)

func TestScanErrorsFlag(t *testing.T) {
	cases := []struct {
		body      string
		errorsVal bool
		ok        bool
	}{
		{`{"took":3,"errors":false,"items":[]}`, false, true},
		{`{"took":3,"errors":true,"items":[]}`, true, true},
		{"{\n  \"took\" : 3,\n  \"errors\" : true,\n  \"items\" : [ ]\n}", true, true},
		{`{"took":3,"items":[]}`, false, false},
		{``, false, false},
	}
	for _, c := range cases {
		got, err := scanErrorsFlag(bufio.NewReaderSize(bytes.NewReader([]byte(c.body)), 4<<10))
		if (err == nil) != c.ok || (c.ok && got != c.errorsVal) {
			t.Errorf("%q: errors=%v err=%v; want %v ok=%v", c.body, got, err, c.errorsVal, c.ok)
		}
	}
	items, err := decodeItems(bytes.NewReader([]byte(`{"took":1,"errors":true,"items":[{"index":{"status":201}},{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"full"}}},{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad","caused_by":{"type":"x","reason":"y"}}}}]}`)), 3, nil)
	if err != nil || len(items) != 3 || items[1].Status != 429 || items[1].Type != "es_rejected_execution_exception" || items[2].Reason != "bad: x: y" {
		t.Fatalf("items %+v, err %v", items, err)
	}
	if _, err := decodeItems(bytes.NewReader([]byte(`{"errors":true,"items":[{"index":{"status":201}}]}`)), 2, nil); err == nil {
		t.Fatal("a response with fewer items than sent was accepted")
	}
}

// FuzzBulkResponse feeds arbitrary bytes to the response readers: an error, never a panic or a
// hang, and never more items than were sent.
func FuzzBulkResponse(f *testing.F) {
	f.Add([]byte(`{"took":1,"errors":true,"items":[{"index":{"status":201}}]}`), 1)
	f.Add([]byte(`{"errors":false}`), 0)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		br := bufio.NewReaderSize(bytes.NewReader(body), 4<<10)
		if _, err := scanErrorsFlag(br); err != nil {
			return
		}
		if items, err := decodeItems(br, n, nil); err == nil && len(items) != n {
			t.Fatalf("%d items accepted for %d sent", len(items), n)
		}
	})
}
