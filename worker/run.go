package worker

import (
	"context"
	"errors"
)

// RunEvents are told what a running worker does; nil fields are skipped.
type RunEvents struct {
	// Ready is called once the worker polls, with the configuration in force.
	Ready func(Config)
	// Stopping is called when ctx is done, before running chunks are let stop at a checkpoint
	// (up to Config.StopTimeout).
	Stopping func()
}

// Run is the one run loop of a worker process (`sluice worker`, and the worker of `sluice dev`):
// it connects (New), starts polling, waits until ctx is done (SIGINT or SIGTERM), then stops
// the worker so that running chunks stop at a checkpoint and are resumed by another worker.
// It returns nil after a cancellation, and the error that kept the worker from starting.
func Run(ctx context.Context, cfg Config, ev RunEvents) error {
	w, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		w.Stop()
		return err
	}
	if ev.Ready != nil {
		ev.Ready(w.Config())
	}
	<-ctx.Done()
	if ev.Stopping != nil {
		ev.Stopping()
	}
	w.Stop()
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}
