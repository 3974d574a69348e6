package es_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/es"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		status int
		typ    string
		answer es.Class // as a whole answer
		item   es.Class // as a _bulk item
	}{
		{200, "", es.OK, es.OK},
		{201, "", es.OK, es.OK},
		{429, "es_rejected_execution_exception", es.Retry, es.Retry},
		{503, "unavailable_shards_exception", es.Retry, es.Retry},
		{413, "", es.Split, es.Rejected},
		{400, "mapper_parsing_exception", es.Rejected, es.Rejected},
		{409, "version_conflict_engine_exception", es.Unexpected, es.Rejected},
		{401, "security_exception", es.Unauthorized, es.Unauthorized},
		{403, "security_exception", es.Unauthorized, es.Unauthorized},
		{404, "index_not_found_exception", es.IndexMissing, es.IndexMissing},
		{400, "index_closed_exception", es.Rejected, es.IndexClosed},
		{405, "", es.Unexpected, es.Rejected},
	} {
		if got := es.ClassifyStatus(c.status); got != c.answer {
			t.Errorf("ClassifyStatus(%d) = %v, want %v", c.status, got, c.answer)
		}
		if got := es.ClassifyItem(c.status, c.typ); got != c.item {
			t.Errorf("ClassifyItem(%d, %q) = %v, want %v", c.status, c.typ, got, c.item)
		}
		se := &es.StatusError{Op: "PUT /x", Status: c.status, Type: c.typ}
		permanent := c.item != es.OK && c.item != es.Retry
		if es.IsPermanent(se) != permanent || errors.Is(se, es.ErrUnauthorized) != (c.item == es.Unauthorized) {
			t.Errorf("StatusError %d %s: permanent %v, unauthorized %v", c.status, c.typ, es.IsPermanent(se), errors.Is(se, es.ErrUnauthorized))
		}
		if got := es.ClassifyError(fmt.Errorf("wrapped: %w", se)); got != c.item {
			t.Errorf("ClassifyError(StatusError %d %s) = %v, want %v", c.status, c.typ, got, c.item)
		}
	}
	if es.ClassifyError(nil) != es.OK || es.ClassifyError(errors.New("connection reset")) != es.Retry ||
		es.ClassifyError(fmt.Errorf("x: %w", es.ErrUnauthorized)) != es.Unauthorized || es.ClassifyError(es.ErrBadConfig) != es.Unexpected {
		t.Fatal("ClassifyError of plain errors")
	}
}

func TestBackoff(t *testing.T) {
	p := es.RetryPolicy{Initial: time.Millisecond, Max: 4 * time.Millisecond, MaxElapsed: 50 * time.Millisecond}
	b := p.Start()
	start := time.Now()
	last := errors.New("status 429")
	var err error
	waits := 0
	for err == nil {
		err = b.Wait(context.Background(), last)
		waits++
		if waits > 1000 {
			t.Fatal("Wait never gives up")
		}
	}
	took := time.Since(start)
	if !errors.Is(err, es.ErrRetriesExhausted) || !errors.Is(err, last) || es.IsPermanent(err) {
		t.Fatalf("err = %v, want ErrRetriesExhausted wrapping the last failure, not permanent", err)
	}
	// Each wait is at most Max, so it ends within MaxElapsed plus one step.
	if took < 50*time.Millisecond || took > 50*time.Millisecond+time.Second {
		t.Fatalf("gave up after %s, want just past 50ms", took)
	}
	if waits < 50/4 {
		t.Fatalf("%d waits in 50ms with steps of at most 4ms: the step is not capped", waits)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (es.RetryPolicy{Initial: time.Hour}).Start().Wait(ctx, last); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: err = %v", err)
	}
	if d := (es.RetryPolicy{}).WithDefaults(); d.Initial != 100*time.Millisecond || d.Max != 10*time.Second || d.MaxElapsed != 5*time.Minute {
		t.Fatalf("defaults %+v", d)
	}
}
