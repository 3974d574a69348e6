package bench

import (
	"context"
	"io"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"time"
)

// Document mixes (Config.Mix). The adversarial ones measure memory, not speed: what the
// engine holds when records are as awkward as they can be.
const (
	// MixUniform is Generator's documents of MinDocSize to MaxDocSize bytes.
	MixUniform = ""
	// MixAdversarial is NDJSON: mostly tiny records (a few bytes each), one in a thousand just
	// under the request cap, one in a thousand twice the cap (dead-lettered by its head),
	// and one in a hundred a line of control bytes that is not JSON (dead-lettered; its
	// letter escapes each byte into six).
	MixAdversarial = "adversarial"
	// MixAdversarialCSV is CSV: short rows, one in a thousand half the cap, one in a thousand
	// a quoted field of many lines, one in a thousand a quarter of the cap of control bytes
	// (its JSON is 1.5 times the cap: dead-lettered), one in a hundred a ragged row.
	MixAdversarialCSV = "adversarial-csv"
)

// Expected is what a mix must come to: documents indexed and records dead-lettered.
type Expected struct{ Indexed, DeadLettered int64 }

// adversarial streams one of the adversarial mixes. A record is a head, a run of one filler
// byte and a tail, so that a record twice the request cap is never held by the generator.
type adversarial struct {
	csv      bool
	docs     int
	maxBytes int
	n        int
	head     []byte
	fill     byte
	fillLeft int
	tail     []byte
	Bytes    int64
	Expected Expected
}

func newAdversarial(cfg Config) *adversarial {
	a := &adversarial{csv: cfg.Mix == MixAdversarialCSV, docs: cfg.Docs, maxBytes: int(cfg.MaxBytes)}
	if a.csv {
		a.head = []byte("seq,name,note\n")
	}
	return a
}

// record sets up record n and counts what must come of it.
func (a *adversarial) record(n int) {
	seq := strconv.Itoa(n)
	a.fillLeft, a.tail = 0, nil
	indexed := true
	set := func(head string, fill byte, count int, tail string) {
		a.head, a.fill, a.fillLeft, a.tail = append(a.head[:0], head...), fill, count, []byte(tail)
	}
	switch {
	case !a.csv && n%1000 == 500:
		set(`{"seq":`+seq+`,"big":"`, 'x', 2*a.maxBytes, "\"}\n")
		indexed = false
	case !a.csv && n%1000 == 250:
		set(`{"seq":`+seq+`,"near":"`, 'n', a.maxBytes-1024, "\"}\n")
	case !a.csv && n%100 == 7:
		set(`{"seq":`+seq+`,"ctl":"`, 0x01, 200, "\"}\n")
		indexed = false
	case !a.csv:
		set(`{"s":`+seq+"}\n", 0, 0, "")
	case n%1000 == 500:
		set(seq+",", 0x02, a.maxBytes/4, ",x\n")
		indexed = false
	case n%1000 == 250:
		set(seq+",", 'n', a.maxBytes/2, ",x\n")
	case n%1000 == 750:
		set(seq+",\"", '\n', a.maxBytes/8, "\",x\n")
	case n%100 == 7:
		set(seq+",ragged\n", 0, 0, "")
		indexed = false
	default:
		set(seq+",n,o\n", 0, 0, "")
	}
	if indexed {
		a.Expected.Indexed++
	} else {
		a.Expected.DeadLettered++
	}
}

func (a *adversarial) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case len(a.head) > 0:
			c := copy(p[n:], a.head)
			a.head = a.head[c:]
			n += c
		case a.fillLeft > 0:
			c := min(a.fillLeft, len(p)-n)
			for i := range c {
				p[n+i] = a.fill
			}
			a.fillLeft -= c
			n += c
		case len(a.tail) > 0:
			c := copy(p[n:], a.tail)
			a.tail = a.tail[c:]
			n += c
		case a.n < a.docs:
			a.record(a.n)
			a.n++
		default:
			a.Bytes += int64(n)
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
	}
	a.Bytes += int64(n)
	return n, nil
}

// heapSampler records the largest Go heap (bytes in live and unswept objects) it sees while it
// runs, every few milliseconds.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap(ctx context.Context) *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(h.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-t.C:
			case <-h.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return h
}

// Stop ends sampling and returns the peak in MiB.
func (h *heapSampler) Stop() float64 {
	close(h.stop)
	<-h.done
	return float64(h.peak.Load()) / (1 << 20)
}
