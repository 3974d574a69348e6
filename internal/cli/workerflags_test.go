package cli

import (
	"flag"
	"io"
	"testing"
)

// TestWorkerFlagsAdaptiveAndMetrics: the adaptive limit is on unless --adaptive=false, and
// --metrics-addr reaches the configuration.
func TestWorkerFlagsAdaptiveAndMetrics(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		fixed   bool
		metrics string
	}{
		{nil, false, ""},
		{[]string{"--adaptive=false", "--metrics-addr", "127.0.0.1:0"}, true, "127.0.0.1:0"},
		{[]string{"--adaptive"}, false, ""},
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
		if cfg.FixedInflight != tc.fixed || cfg.MetricsAddr != tc.metrics {
			t.Errorf("%v: FixedInflight %v MetricsAddr %q, want %v %q", tc.args, cfg.FixedInflight, cfg.MetricsAddr, tc.fixed, tc.metrics)
		}
	}
}
