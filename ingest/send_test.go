package ingest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
	"github.com/sluicehq/sluice/internal/esfake"
)

// hangingClient is a client of a fake node that never answers the _bulk requests hang picks;
// each request gives up after 200ms.
func hangingClient(t *testing.T, hang func(seq int64) bool) (*es.Client, *esfake.Server) {
	t.Helper()
	fake := esfake.New(esfake.Options{Fault: func(r *esfake.Request) esfake.Decision {
		return esfake.Decision{Hang: r.Endpoint == esfake.Bulk && hang(r.Seq)}
	}})
	t.Cleanup(fake.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := es.New(ctx, es.Config{Addresses: []string{fake.URL()}, RequestTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c, fake
}

// TestIngestRetriesABulkThatNeverAnswers: the first _bulk is never answered; it times out and
// is sent again, and the chunk finishes.
func TestIngestRetriesABulkThatNeverAnswers(t *testing.T) {
	client, fake := hangingClient(t, func(seq int64) bool { return seq == 1 })
	eng := &Engine{Budget: NewBudget(8 << 20), Bulk: client, Logger: slog.New(slog.DiscardHandler)}
	data, valid, _ := dataset(300)
	spec := ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "logs", End: -1,
		Limits: Limits{MaxOps: 100, RetryInitial: time.Millisecond}}
	start := time.Now()
	prog, err := eng.Ingest(context.Background(), spec, bytesOpener(data), &memSink{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %s for one request that timed out after 200ms", took)
	}
	if fake.Count("logs") != len(valid) || prog.Stats.Indexed != int64(len(valid)) || prog.Stats.Retried == 0 {
		t.Fatalf("indexed %d (retried %d), index holds %d, want %d", prog.Stats.Indexed, prog.Stats.Retried, fake.Count("logs"), len(valid))
	}
}

// TestNodeThatNeverAnswersEndsInRetryableError: nothing is ever answered. The engine and the
// dead-letter index sink, which share one retry policy, give up after MaxElapsed with a
// retryable error that says the requests timed out.
func TestNodeThatNeverAnswersEndsInRetryableError(t *testing.T) {
	client, _ := hangingClient(t, func(int64) bool { return true })
	retry := es.RetryPolicy{Initial: time.Millisecond, MaxElapsed: time.Second}
	eng := &Engine{Budget: NewBudget(8 << 20), Bulk: client, Logger: slog.New(slog.DiscardHandler)}
	data, _, _ := dataset(20)
	spec := ChunkSpec{Bucket: "b", Key: "k", Format: FormatNDJSON, Index: "logs", End: -1,
		Limits: Limits{RetryInitial: retry.Initial, RetryMaxElapsed: retry.MaxElapsed}}
	sink, err := NewIndexSink(client, IndexSinkConfig{Index: "logs-dead-letters", Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]func() error{
		"engine": func() error {
			_, err := eng.Ingest(context.Background(), spec, bytesOpener(data), &memSink{}, nil)
			return err
		},
		"dead-letter sink": func() error {
			return sink.Write(context.Background(), []DeadLetter{{Object: "s3://b/k", Offset: 3, Record: []byte("{")}})
		},
	} {
		start := time.Now()
		err := run()
		if took := time.Since(start); took < time.Second || took > 10*time.Second {
			t.Errorf("%s: gave up after %s, want just past MaxElapsed (1s)", name, took)
		}
		if !errors.Is(err, ErrRetriesExhausted) || !errors.Is(err, es.ErrTimeout) || IsPermanent(err) {
			t.Errorf("%s: err = %v, want retryable ErrRetriesExhausted after ErrTimeout", name, err)
		}
	}
}
