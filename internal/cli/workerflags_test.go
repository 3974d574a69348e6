package cli

import (
	"flag"
	"io"
	"testing"
)

// TestWorkerFlagsAdaptive: the adaptive limit is on unless --adaptive=false.
func TestWorkerFlagsAdaptive(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		fixed bool
	}{
		{nil, false},
		{[]string{"--adaptive=false"}, true},
		{[]string{"--adaptive"}, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		wf := AddWorkerFlags(fs, false)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		cfg, err := wf.Config(io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.FixedInflight != tc.fixed {
			t.Errorf("%v: FixedInflight %v, want %v", tc.args, cfg.FixedInflight, tc.fixed)
		}
	}
}
