package units

import "testing"

func TestParseBytes(t *testing.T) {
	cases := map[string]int64{"64MiB": 64 << 20, "5MB": 5_000_000, "1024": 1024, "1.5GiB": 3 << 29, "512k": 512 << 10, " 2 KiB ": 2048, "0": 0}
	for in, want := range cases {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "12XB", "lots"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
	if s := FormatBytes(5 << 20); s != "5MiB" {
		t.Errorf("FormatBytes(5MiB) = %s", s)
	}
}
