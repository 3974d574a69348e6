package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// Adaptive is a worker's limit on _bulk requests in flight, shared by every chunk running on
// it (like the Budget) and moved by what the cluster answers: additive increase, multiplicative
// decrease (AIMD), as TCP does with its window.
//
//   - A window is about one limit's worth of answers (one round trip of every slot). After a
//     window of good answers in which the limit was reached (the senders wanted more), the
//     limit grows by one. There is no slow start (TCP's doubling per round trip): with
//     round trips of a tenth of a second, growing from 1 to 10 takes about a second, while
//     doubling overshoots the cluster's queue by up to the limit before the first answers
//     say so (measured: 2% of items rejected against BenchmarkAdaptive's node, none without).
//   - Pushback (429 or 5xx for the request or any item, or no answer) multiplies the limit by
//     AdaptiveConfig.Decrease at once, and so does a rise in latency at the end of a window:
//     even its fastest full request slower than AdaptiveConfig.Tolerance times the latency
//     floor, so that one slow request (a merge, a GC pause) is no signal but a queue building
//     up is. At most once per window: answers to requests sent before the last decrease do
//     not decrease it again.
//   - The latency floor is the fastest full request of the last AdaptiveConfig.FloorWindows
//     windows, so it follows a cluster that gets slower (or faster) for good. Only full
//     requests (es.Outcome.Full) are timed: a request's service time grows with its size.
//
// The limit stays between AdaptiveConfig.Min and the sum of the Limits.Inflight of the chunks
// running (each chunk still has only Inflight senders, so --inflight stays the upper bound per
// chunk). Waiting senders get slots first come, first served. Acquire and Release take a mutex
// once each, per request; nothing allocates unless a sender has to wait.
//
// It implements es.Gate. An Adaptive is safe for concurrent use.
type Adaptive struct {
	cfg AdaptiveConfig

	mu       sync.Mutex
	limit    float64
	max      int // sum of the running chunks' Inflight
	inflight int
	waiters  []chan struct{} // first come, first served; a slot is handed over by closing
	epoch    uint64          // decreases so far

	busy     bool          // the limit was reached in the current window
	answers  int           // answers of the current window (sent since its epoch)
	winMin   time.Duration // fastest full request of the current window; 0: none
	floors   []time.Duration
	floorPos int
}

// AdaptiveConfig tunes an Adaptive. The zero value of a field means its default.
type AdaptiveConfig struct {
	Min          int              // fewest requests in flight. Defaults to 1.
	Decrease     float64          // factor applied to the limit on pushback or a rise in latency. Defaults to 0.7.
	Tolerance    float64          // a window whose fastest full request is slower than Tolerance x the latency floor is a rise. Defaults to 1.5.
	FloorWindows int              // windows whose fastest full request the floor is the minimum of. Defaults to 20.
	Clock        func() time.Time // defaults to time.Now
}

// WithDefaults fills in the zero fields.
func (c AdaptiveConfig) WithDefaults() AdaptiveConfig {
	if c.Min <= 0 {
		c.Min = 1
	}
	if c.Decrease <= 0 || c.Decrease >= 1 {
		c.Decrease = 0.7
	}
	if c.Tolerance <= 1 {
		c.Tolerance = 1.5
	}
	if c.FloorWindows <= 0 {
		c.FloorWindows = 20
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// NewAdaptive returns a limit of cfg.Min, growing once chunks run (see Adaptive).
func NewAdaptive(cfg AdaptiveConfig) *Adaptive {
	cfg = cfg.WithDefaults()
	return &Adaptive{cfg: cfg, limit: float64(cfg.Min), floors: make([]time.Duration, cfg.FloorWindows)}
}

// Limit is the number of requests that may be in flight now.
func (a *Adaptive) Limit() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.capLocked()
}

// InFlight is the number of requests holding a slot.
func (a *Adaptive) InFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inflight
}

func (a *Adaptive) capLocked() int {
	return max(a.cfg.Min, min(int(a.limit), a.max))
}

// join adds a chunk with n senders to the upper bound; leave takes it away again.
func (a *Adaptive) join(n int)  { a.setMax(n) }
func (a *Adaptive) leave(n int) { a.setMax(-n) }

func (a *Adaptive) setMax(delta int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.max += delta
	a.limit = min(a.limit, float64(max(a.max, a.cfg.Min)))
	a.wakeLocked()
}

// Acquire waits for a slot (es.Gate).
func (a *Adaptive) Acquire(ctx context.Context) (es.Slot, error) {
	a.mu.Lock()
	if len(a.waiters) == 0 && a.inflight < a.capLocked() {
		a.inflight++
		a.busy = a.busy || a.inflight >= a.capLocked()
		s := es.Slot{Start: a.cfg.Clock(), Epoch: a.epoch}
		a.mu.Unlock()
		return s, nil
	}
	a.busy = true
	w := make(chan struct{})
	a.waiters = append(a.waiters, w)
	a.mu.Unlock()

	select {
	case <-w:
	case <-ctx.Done():
		a.mu.Lock()
		select {
		case <-w: // handed a slot meanwhile: give it to the next
			a.inflight--
			a.wakeLocked()
		default:
			for i, x := range a.waiters {
				if x == w {
					a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
					break
				}
			}
		}
		a.mu.Unlock()
		return es.Slot{}, context.Cause(ctx)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return es.Slot{Start: a.cfg.Clock(), Epoch: a.epoch}, nil
}

// wakeLocked hands free slots to the senders waiting longest.
func (a *Adaptive) wakeLocked() {
	for len(a.waiters) > 0 && a.inflight < a.capLocked() {
		a.inflight++
		close(a.waiters[0])
		a.waiters[0] = nil
		a.waiters = a.waiters[1:]
	}
}

// Release gives a slot back and moves the limit by the answer (es.Gate).
func (a *Adaptive) Release(s es.Slot, o es.Outcome) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inflight--
	if !o.Aborted && s.Epoch == a.epoch { // sent before the last decrease: already acted on
		a.learn(a.cfg.Clock().Sub(s.Start), o)
	}
	a.wakeLocked()
}

// learn moves the limit by one answer of the current window.
func (a *Adaptive) learn(latency time.Duration, o es.Outcome) {
	a.answers++
	if o.Full && !o.Pushback && (a.winMin == 0 || latency < a.winMin) {
		a.winMin = latency
	}
	switch {
	case o.Pushback:
		a.decrease()
	case float64(a.answers) >= a.limit:
		if floor := a.floor(); floor > 0 && float64(a.winMin) > a.cfg.Tolerance*float64(floor) {
			a.decrease() // even the fastest full request of the window was slow: a queue builds
			return
		}
		if a.busy {
			a.limit = min(a.limit+1, float64(max(a.max, a.cfg.Min)))
		}
		a.endWindow()
	}
}

func (a *Adaptive) decrease() {
	a.limit = max(float64(a.cfg.Min), a.limit*a.cfg.Decrease)
	a.epoch++
	a.endWindow()
}

// endWindow starts a new window, keeping the old one's fastest full request for the floor.
func (a *Adaptive) endWindow() {
	if a.winMin > 0 {
		a.floors[a.floorPos] = a.winMin
		a.floorPos = (a.floorPos + 1) % len(a.floors)
	}
	a.answers, a.winMin = 0, 0
	a.busy = len(a.waiters) > 0
}

// floor is the fastest full request of the last FloorWindows windows; 0: none yet.
func (a *Adaptive) floor() time.Duration {
	var f time.Duration
	for _, w := range a.floors {
		if w > 0 && (f == 0 || w < f) {
			f = w
		}
	}
	return f
}
