// Package units parses and prints byte sizes with units: 64MiB, 5MB, 1.5GiB, 512k, 1024.
package units

import (
	"fmt"
	"strconv"
	"strings"
)

var suffixes = []struct {
	s string
	n float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// MaxBytes is the largest size ParseBytes accepts: 1 PiB, far past any memory or request
// size, and far below where int64 and float64 arithmetic on sizes would go wrong.
const MaxBytes = 1 << 50

// ParseBytes parses a size. Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones
// (KB, MB, GB, TB) powers of 1000; a bare K, M, G or T is binary. No unit means bytes. The
// number is decimal digits with at most one point (no sign, exponent, hex, inf or nan), and
// the size at most MaxBytes; a fraction of a byte is dropped.
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range suffixes {
		if strings.HasSuffix(t, u.s) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.s))
			mult = u.n
			break
		}
	}
	if !isDecimal(t) {
		return 0, fmt.Errorf("invalid size %q (examples: 64MiB, 5MB, 1024)", s)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v*mult > MaxBytes {
		return 0, fmt.Errorf("invalid size %q: at most %s", s, FormatBytes(MaxBytes))
	}
	return int64(v * mult), nil
}

// isDecimal reports whether t is digits with at most one '.', and at least one digit.
func isDecimal(t string) bool {
	digits, points := 0, 0
	for _, c := range t {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			points++
		default:
			return false
		}
	}
	return digits > 0 && points <= 1
}

// FormatBytes prints n with a binary unit, e.g. 5MiB or 1.5GiB.
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 && (n%1024 == 0 || f >= 10*1024) {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', -1, 64) + units[i]
}

// Bytes is a flag.Value holding a size.
type Bytes int64

func (b *Bytes) String() string { return FormatBytes(int64(*b)) }

func (b *Bytes) Set(s string) error {
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = Bytes(v)
	return nil
}
