package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

// sinkAuth is how every engine reaches a real cluster: the ELASTICSEARCH_* variables a worker
// reads (user and password, API key, CA certificate); --sink says where.
func sinkAuth() es.Config { return es.ConfigFromEnv(os.Getenv) }

// node is the real cluster of --sink URL. Each engine run writes into a fresh index, created
// before the run and deleted after it, so that no run finds another's documents (an id already
// there turns an insert into an update, which costs the node more).
type node struct {
	c *es.Client
}

func openNode(ctx context.Context, url string) (*node, error) {
	cfg := sinkAuth()
	cfg.Addresses = []string{url}
	c, err := es.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the sink %s: %w", es.RedactURL(url), err)
	}
	return &node{c: c}, nil
}

// freshIndex creates the index of one run, "<base>-<engine>-<run>": one shard, no replica,
// whatever the node's defaults.
func (n *node) freshIndex(ctx context.Context, base, engine string, run int) (string, error) {
	index := fmt.Sprintf("%s-%s-%d", base, engine, run)
	_ = n.c.DeleteIndex(ctx, index) // left over from an interrupted run
	err := n.c.CreateIndex(ctx, index, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0}}`))
	if err != nil {
		return "", fmt.Errorf("creating index %s: %w", index, err)
	}
	return index, nil
}

// holds refreshes the index of a run, counts its documents and deletes it.
func (n *node) holds(ctx context.Context, index string) (int64, error) {
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = n.c.DeleteIndex(ctx, index)
	}()
	if err := n.c.Refresh(ctx, index); err != nil {
		return 0, fmt.Errorf("refreshing index %s: %w", index, err)
	}
	count, err := n.c.Count(ctx, index, nil)
	if err != nil {
		return 0, fmt.Errorf("counting index %s: %w", index, err)
	}
	return count, nil
}
