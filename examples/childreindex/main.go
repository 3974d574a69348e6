// Command childreindex runs CatalogRefresh, a workflow of yours that rebuilds a search index
// from an S3 export through a sluice reindex started as a child workflow (package sluiceapi),
// and prints what it did.
//
// It runs a worker for your own task queue ("catalog") in this process; the reindex runs on
// sluice's workers (for example `sluice dev`, which serves Temporal on 127.0.0.1:7233 and runs
// one):
//
//	go run ./examples/childreindex --bucket shop --export 2026-11-28 --alias catalog
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
)

// TaskQueue is the task queue of your own workflow and activity; sluice's run on
// sluiceapi.TaskQueue.
const TaskQueue = "catalog"

func main() {
	var in CatalogRefreshInput
	address := flag.String("temporal-address", "127.0.0.1:7233", "Temporal frontend")
	flag.StringVar(&in.Bucket, "bucket", "shop", "bucket of the exports")
	flag.StringVar(&in.Export, "export", "", "export to index: s3://BUCKET/catalog/EXPORT/ (required)")
	flag.StringVar(&in.Alias, "alias", "catalog", "alias readers query")
	flag.IntVar(&in.KeepOld, "keep-old", 1, "earlier indices to keep for a rollback")
	flag.Parse()
	if err := refresh(*address, in); err != nil {
		fmt.Fprintln(os.Stderr, "childreindex:", err)
		os.Exit(1)
	}
}

func refresh(address string, in CatalogRefreshInput) error {
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
	opts := client.StartWorkflowOptions{ID: "catalog-refresh-" + in.Export, TaskQueue: TaskQueue}
	wr, err := c.ExecuteWorkflow(context.Background(), opts, CatalogRefresh, in)
	if err != nil {
		return err
	}
	var out CatalogRefreshOutput
	if err := wr.Get(context.Background(), &out); err != nil {
		return err
	}
	fmt.Println(out.Summary)
	return nil
}

// newWorker is your worker: your workflow and activity, nothing of sluice's.
func newWorker(c client.Client) worker.Worker {
	w := worker.New(c, TaskQueue, worker.Options{})
	w.RegisterWorkflow(CatalogRefresh)
	w.RegisterActivity(PlanExport)
	return w
}
