// Command childbackfill runs DailyLoad, a workflow of yours that starts a sluice backfill as a
// child workflow through package sluiceapi, and prints its output.
//
// It runs a worker for your own task queue ("daily-load") in this process; the backfill runs on
// sluice's workers (for example `sluice dev`, which serves Temporal on 127.0.0.1:7233 and runs
// one):
//
//	go run ./examples/childbackfill --bucket logs --day 2026-11-28 --index logs-2026.11.28
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
)

// TaskQueue is the task queue of your own workflow and activity; sluice's run on sluiceapi.TaskQueue.
const TaskQueue = "daily-load"

func main() {
	address := flag.String("temporal-address", "127.0.0.1:7233", "Temporal frontend")
	bucket := flag.String("bucket", "logs", "bucket of the export")
	day := flag.String("day", time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly), "day to load (yyyy-mm-dd)")
	index := flag.String("index", "daily-load", "target index")
	flag.Parse()
	if err := run(*address, DailyLoadInput{Bucket: *bucket, Day: *day, Index: *index}); err != nil {
		fmt.Fprintln(os.Stderr, "childbackfill:", err)
		os.Exit(1)
	}
}

func run(address string, in DailyLoadInput) error {
	c, err := client.Dial(client.Options{HostPort: address})
	if err != nil {
		return err
	}
	defer c.Close()
	w := newWorker(c)
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	ctx := context.Background()
	wr, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "daily-load-" + in.Day, TaskQueue: TaskQueue}, DailyLoad, in)
	if err != nil {
		return err
	}
	var out DailyLoadOutput
	if err := wr.Get(ctx, &out); err != nil {
		return err
	}
	fmt.Println(out.Summary)
	return nil
}

// newWorker is your worker: your workflow and activity, nothing of sluice's.
func newWorker(c client.Client) worker.Worker {
	w := worker.New(c, TaskQueue, worker.Options{})
	w.RegisterWorkflow(DailyLoad)
	w.RegisterActivity(ExportReady)
	return w
}
