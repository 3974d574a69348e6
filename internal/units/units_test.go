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
	for _, bad := range []string{"", "MiB", "-1", "12XB", "lots", "inf", "+Inf", "infinity", "nan", "NaN MiB",
		"1e30", "1e3", "0x10", "1.2.3", ".", "-0", "2PiB", "1048577GiB", "99999999999999999999"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
	if s := FormatBytes(5 << 20); s != "5MiB" {
		t.Errorf("FormatBytes(5MiB) = %s", s)
	}
}

// FuzzParseBytes: whatever it is given, ParseBytes returns a size in [0, MaxBytes] or an error,
// and FormatBytes of a size parses back to it.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"64MiB", "1.5GiB", "inf", "1e30", "-1", "0x1p4", "1024", "5 mb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			return
		}
		if n < 0 || n > MaxBytes {
			t.Fatalf("ParseBytes(%q) = %d, out of [0, %d]", s, n, int64(MaxBytes))
		}
		if back, err := ParseBytes(FormatBytes(n)); err != nil || back != n {
			t.Fatalf("FormatBytes(%d) = %q parses to %d, %v", n, FormatBytes(n), back, err)
		}
	})
}
