package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/internal/bench"
	"github.com/sluicehq/sluice/internal/esfake"
	"github.com/sluicehq/sluice/internal/units"
)

// benchLine is one JSON line of output.
type benchLine struct {
	bench.Result
	PeakRSSMiB float64   `json:"peak_rss_mib"`
	RSSFileMiB float64   `json:"rss_file_mib"` // of the peak, pages of the executable file
	CPUSeconds float64   `json:"engine_cpu_s"` // user+system CPU of the engine's process (the sink's not included)
	Runs       int       `json:"runs"`
	AllDocsPS  []float64 `json:"all_docs_per_s,omitempty"`
	Received   int64     `json:"received,omitempty"` // documents the discard sink received, or a real node holds after the run
}

// runBench is `sluice bench`: each engine run is a child process (this binary with --child), so
// that each engine's peak RSS is its own.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// ExitOnError: -h exits 0 and a bad flag 2, as internal/cli.ParseFlags does in sluice.
	fs := flag.NewFlagSet("sluice bench", flag.ExitOnError)
	docs := fs.Int("docs", 300_000, "documents to generate")
	docSize := units.Bytes(1 << 10)
	fs.Var(&docSize, "doc-size", "document size (with --doc-size-max: the smallest)")
	docSizeMax := units.Bytes(0)
	fs.Var(&docSizeMax, "doc-size-max", "largest document size; sizes are uniform in [doc-size, doc-size-max]")
	sink := fs.String("sink", "discard", `where to send: "discard" (an in-process server that parses bulk bodies and answers per item like Elasticsearch) or a cluster URL`)
	index := fs.String("index", "sluice-bench", "target index")
	compare := fs.Bool("compare", false, "also run esutil.BulkIndexer and the raw sender on the same documents and limits")
	engine := fs.String("engine", "sluice", "engine to run without --compare: sluice, esutil or raw")
	runs := fs.Int("runs", 3, "runs per engine; the median by docs/s is reported")
	maxOps := fs.Int("max-ops", 1000, "documents per _bulk request")
	maxBytes := units.Bytes(5 << 20)
	fs.Var(&maxBytes, "max-bytes", "bytes per _bulk request")
	inflight := fs.Int("inflight", 2, "_bulk requests in flight")
	maxMemory := units.Bytes(256 << 20)
	fs.Var(&maxMemory, "max-memory", "sluice's memory budget (bytes of records, batches and requests); also sets the Go memory limit of the run")
	mix := fs.String("mix", bench.MixUniform, `documents' shape: "" (uniform, --doc-size), "adversarial" (NDJSON: tiny, near-cap, over-cap and control-byte records) or "adversarial-csv" (CSV: short, wide, multi-line, over-cap and ragged rows); sluice only`)
	chunks := fs.Int("chunks", 1, "chunks running at once on the one budget, each with docs/chunks documents (sluice only)")
	child := fs.Bool("child", false, "internal: run one engine in this process and print its result")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of each engine run to this file (suffixed with the engine and run)")
	fs.SetOutput(stderr)
	_ = fs.Parse(args)
	cfg := bench.Config{
		Docs: *docs, MinDocSize: int(docSize), MaxDocSize: max(int(docSizeMax), int(docSize)), Seed: 1,
		Index: *index, MaxOps: *maxOps, MaxBytes: int64(maxBytes), Inflight: *inflight, MaxMemory: int64(maxMemory),
		Mix: *mix, Chunks: *chunks,
	}
	if (*mix != bench.MixUniform || *chunks > 1) && (*compare || *engine != "sluice") {
		fmt.Fprintln(stderr, "sluice bench: --mix and --chunks run the sluice engine only (without --compare)")
		return 2 // a usage error, as a bad flag
	}
	if *child {
		return benchChild(ctx, *engine, *sink, *cpuProfile, cfg, stdout, stderr)
	}
	engines := []string{*engine}
	if *compare {
		engines = []string{"sluice", "esutil", "raw"}
	}
	// Each run is a child process, so that each engine's peak RSS is its own; the discard sink
	// runs here, in this process, so that its memory is not counted as the engine's.
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "sluice bench:", err)
		return exitFailed
	}
	var srv *esfake.Server
	var cluster *node // a real sink: each run into a fresh index
	sinkURL := *sink
	if *sink == "discard" {
		srv = esfake.NewDiscard()
		defer srv.Close()
		sinkURL = srv.URL()
	} else if cluster, err = openNode(ctx, sinkURL); err != nil {
		fmt.Fprintln(stderr, "sluice bench:", err)
		return exitFailed
	}
	results := map[string][]benchLine{}
	for r := 0; r < *runs; r++ {
		for _, e := range engines { // interleaved, so that drift in the machine hits every engine alike
			childArgs := append(append([]string(nil), args...), "--child", "--engine", e, "--sink", sinkURL)
			runIndex := *index
			if cluster != nil {
				if runIndex, err = cluster.freshIndex(ctx, *index, e, r+1); err != nil {
					fmt.Fprintln(stderr, "sluice bench:", err)
					return exitFailed
				}
				childArgs = append(childArgs, "--index", runIndex)
			}
			if *cpuProfile != "" {
				childArgs = append(childArgs, "--cpuprofile", fmt.Sprintf("%s.%s.%d", *cpuProfile, e, r+1))
			}
			var before int64
			if srv != nil {
				before = srv.Stats().Items
			}
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, self, childArgs...)
			cmd.Stdout, cmd.Stderr = &out, stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(stderr, "sluice bench: %s run %d: %v\n", e, r+1, err)
				return exitFailed
			}
			var line benchLine
			if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &line); err != nil {
				fmt.Fprintf(stderr, "sluice bench: %s run %d printed %q: %v\n", e, r+1, out.String(), err)
				return exitFailed
			}
			if srv != nil {
				line.Received = srv.Stats().Items - before
			}
			if cluster != nil {
				if line.Received, err = cluster.holds(ctx, runIndex); err != nil {
					fmt.Fprintf(stderr, "sluice bench: %s run %d: %v\n", e, r+1, err)
					return exitFailed
				}
			}
			line.CPUSeconds = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
			results[e] = append(results[e], line)
		}
	}
	enc := json.NewEncoder(stdout)
	medians := map[string]benchLine{}
	for _, e := range engines {
		rs := results[e]
		sort.Slice(rs, func(i, j int) bool { return rs[i].DocsPS < rs[j].DocsPS })
		m := rs[len(rs)/2]
		m.Runs = len(rs)
		for _, r := range rs {
			m.AllDocsPS = append(m.AllDocsPS, r.DocsPS)
			if r.PeakRSSMiB > m.PeakRSSMiB {
				m.PeakRSSMiB, m.RSSFileMiB = r.PeakRSSMiB, r.RSSFileMiB
			}
		}
		medians[e] = m
		_ = enc.Encode(m)
	}
	if *compare {
		s := medians["sluice"].DocsPS
		_ = enc.Encode(map[string]any{
			"sluice_vs_esutil": s / medians["esutil"].DocsPS,
			"sluice_vs_raw":    s / medians["raw"].DocsPS,
			"cpus":             runtime.NumCPU(),
			"go":               runtime.Version(),
		})
	}
	for _, e := range engines {
		for _, r := range results[e] {
			if *mix != bench.MixUniform {
				// An adversarial run checks its own counts (bench.Sluice); every record is accounted for.
				if r.Docs+r.Failed != int64(*docs) || r.Received != r.Docs {
					fmt.Fprintf(stderr, "sluice bench: %s indexed %d and dead-lettered %d (the sink received or holds %d) of %d records\n", e, r.Docs, r.Failed, r.Received, *docs)
					return exitFailed
				}
			} else if r.Docs != int64(*docs) || r.Received != int64(*docs) {
				fmt.Fprintf(stderr, "sluice bench: %s delivered %d documents (the sink received or holds %d) of %d\n", e, r.Docs, r.Received, *docs)
				return exitFailed
			}
		}
	}
	return exitOK
}

func benchChild(ctx context.Context, engine, sink, cpuProfile string, cfg bench.Config, stdout, stderr io.Writer) int {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "sluice bench:", err)
			return exitFailed
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "sluice bench:", err)
			return exitFailed
		}
		defer pprof.StopCPUProfile()
	}
	if engine == "sluice" {
		// The budget bounds what the engine holds; the Go memory limit makes the collector
		// return garbage before the heap grows far past it.
		debug.SetMemoryLimit(cfg.MaxMemory + 24<<20)
	}
	if sink == "discard" {
		srv := esfake.NewDiscard()
		defer srv.Close()
		sink = srv.URL()
	}
	cfg.URL = strings.TrimRight(sink, "/")
	cfg.Auth = sinkAuth()
	res, err := bench.Run(ctx, engine, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sluice bench: %s: %v\n", engine, err)
		return exitFailed
	}
	_ = json.NewEncoder(stdout).Encode(benchLine{Result: res, PeakRSSMiB: procStatusMiB("VmHWM"), RSSFileMiB: procStatusMiB("RssFile")})
	return exitOK
}

// procStatusMiB reads a size from /proc/self/status: VmHWM is the resident-set high-water
// mark (not getrusage: Linux carries ru_maxrss across execve, so a child would report its
// parent's peak); RssFile the part of the resident set that is pages of the executable.
func procStatusMiB(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kib float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kib)
			return kib / 1024
		}
	}
	return 0
}
