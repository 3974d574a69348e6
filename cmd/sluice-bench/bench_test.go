package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchChild runs one engine run in process, as each child of `sluice bench` does, into the
// discard sink, and reads its JSON line.
func TestBenchChild(t *testing.T) {
	for _, engine := range []string{"sluice", "raw"} {
		var stdout, stderr bytes.Buffer
		code := runBench(context.Background(), []string{"--child", "--engine", engine, "--docs", "500", "--doc-size", "256", "--max-memory", "16MiB"}, &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("%s: exit %d, stderr %q", engine, code, stderr.String())
		}
		var line benchLine
		if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &line); err != nil {
			t.Fatalf("%s printed %q: %v", engine, stdout.String(), err)
		}
		if line.Engine != engine || line.Docs != 500 || line.Failed != 0 || line.PeakRSSMiB <= 0 {
			t.Fatalf("%s: %+v; want 500 documents, none failed, a peak RSS", engine, line)
		}
	}
}

// TestBenchUnknownEngine: a run of an engine that does not exist fails and says which.
func TestBenchUnknownEngine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runBench(context.Background(), []string{"--child", "--engine", "nope", "--docs", "10"}, &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stderr.String(), "nope") {
		t.Fatalf("exit %d, stderr %q; want %d naming the engine", code, stderr.String(), exitFailed)
	}
}

// TestBenchAdversarialMixes runs the adversarial mixes in process, four chunks on one budget:
// every record is indexed or dead-lettered as the mix says, and the budget is not exceeded.
func TestBenchAdversarialMixes(t *testing.T) {
	for _, mix := range []string{"adversarial", "adversarial-csv"} {
		var stdout, stderr bytes.Buffer
		code := runBench(context.Background(), []string{"--child", "--mix", mix, "--chunks", "4", "--docs", "4000",
			"--max-bytes", "64KiB", "--max-memory", "4MiB"}, &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("%s: exit %d, stderr %q", mix, code, stderr.String())
		}
		var line benchLine
		if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &line); err != nil {
			t.Fatalf("%s printed %q: %v", mix, stdout.String(), err)
		}
		if line.Docs+line.Failed != 4000 || line.Failed == 0 || line.HeapPeakMiB <= 0 || line.BudgetPeakMiB > line.BudgetMiB {
			t.Fatalf("%s: %+v", mix, line)
		}
	}
}
