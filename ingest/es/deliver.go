package es

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BulkJob is what Deliver sends: items of one index, numbered by the caller, and what to do
// with each outcome. Deliver calls its functions from one goroutine.
type BulkJob struct {
	Index string
	// Body is the _bulk body (action and source lines) of the items idx, in order.
	Body func(idx []int) [][]byte
	// Settle is told the outcome of item i that Deliver does not retry by itself: OK, or a
	// class a retry of the same item does not fix (Rejected, IndexMissing, IndexClosed,
	// Unauthorized). An item alone in a request refused as a whole (413, 400) is settled
	// with that class (Split or Rejected), Type "request_rejected" and the answer as Reason.
	// Settle returns retry to send the item again after the backoff, or an error to stop.
	Settle func(i int, c Class, r ItemResult) (retry bool, err error)
	// Describe names item i in the error that says retries ran out ("s3://b/k at offset 9").
	Describe func(i int) string
	// Backoff is the wait between attempts, shared by every request of the job.
	Backoff *Backoff
	// Resent counts the items sent again (retries; not splits).
	Resent int64
	// OnRetry, when set, is told each failed request that is retried (for a log line).
	OnRetry func(first int, err error)
	// Gate, when set, admits each _bulk request of the job and is told its outcome. nil:
	// every request goes at once.
	Gate Gate
	// Full says the items make a full request (the batch limits were reached): its latency
	// is comparable with other full requests' (see Outcome.Full).
	Full bool
}

// Gate admits _bulk requests and learns from their outcomes: adaptive concurrency
// (ingest.Adaptive). Deliver holds a slot for each request, from just before it is sent
// until its answer is read, never across a backoff. A Gate is safe for concurrent use.
type Gate interface {
	// Acquire waits for a slot; it returns the context's cause when ctx ends first.
	Acquire(ctx context.Context) (Slot, error)
	// Release gives the slot back with what the request's answer said.
	Release(Slot, Outcome)
}

// Slot is a request admitted by a Gate. Its fields belong to the Gate that made it.
type Slot struct {
	Start time.Time // when the request was admitted
	Epoch uint64    // the Gate's state when the request was admitted
}

// Outcome is what an answer says about the cluster's load.
type Outcome struct {
	// Full: the request was a job's whole first request and the job was Full, so its latency
	// compares with other full requests'. Retries and halves are smaller: their latency says
	// nothing about the cluster's queue.
	Full bool
	// Pushback: the cluster answered 429 or 5xx to the request or to any of its items, or did
	// not answer (timeout, reset).
	Pushback bool
	// Aborted: the caller's context ended; the answer says nothing about the cluster.
	Aborted bool
}

// outcome is what the answer (or err) to one request says about the cluster's load.
func outcome(ctx context.Context, class Class, out BulkResult, full bool) Outcome {
	o := Outcome{Full: full, Pushback: class == Retry, Aborted: ctx.Err() != nil}
	if class == OK && out.Errors {
		for _, r := range out.Items {
			if ClassifyItem(r.Status, r.Type) == Retry {
				o.Pushback = true
				break
			}
		}
	}
	return o
}

// Deliver sends the items idx of job (whose body is body; nil: built with job.Body) until
// each is settled. It is the one retry loop for _bulk: items answered 429/5xx, and requests
// that got no answer, are sent again (alone) after job.Backoff's wait; a request refused as
// too large (413) or as a whole (400) is split in halves; 401/403 and unexpected statuses of a
// whole request stop it with a *StatusError (permanent); a 404 settles every item as
// IndexMissing. It returns nil when every item is settled, ErrRetriesExhausted (wrapped, with
// the last failure) when the backoff gives up, the context's cause when ctx ends, or what
// Settle returned. With job.Gate, each request (retries and halves too) waits for a slot and
// reports its Outcome.
func (c *Client) Deliver(ctx context.Context, job *BulkJob, idx []int, body [][]byte, items *[]ItemResult) error {
	whole := body != nil // the job's request as the caller built it
	for attempt := 0; ; attempt++ {
		if body == nil {
			body = job.Body(idx)
		}
		if attempt > 0 {
			job.Resent += int64(len(idx))
		}
		slot, err := job.admit(ctx)
		if err != nil {
			return err
		}
		out, err := c.Bulk(ctx, job.Index, body, len(idx), *items)
		class := out.Class()
		if err != nil {
			class = ClassifyError(err)
		}
		job.release(ctx, slot, class, out, whole && attempt == 0)
		var retry []int
		var last error // why the items of retry failed
		switch class {
		case Retry:
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err == nil {
				err = fmt.Errorf("_bulk to %s: status %d %s", job.Index, out.Status, out.Body)
			}
			if job.OnRetry != nil {
				job.OnRetry(idx[0], err)
			}
			retry, last = idx, err
		case Split, Rejected:
			if len(idx) > 1 {
				half := len(idx) / 2
				if err := c.Deliver(ctx, job, idx[:half], nil, items); err != nil {
					return err
				}
				return c.Deliver(ctx, job, idx[half:], nil, items)
			}
			last = newStatusError("_bulk to "+job.Index, out.Status, out.Body)
			retry, err = settleAll(job, idx, class, ItemResult{Status: out.Status, Type: "request_rejected", Reason: string(out.Body)})
		case IndexMissing:
			last = newStatusError("_bulk to "+job.Index, out.Status, out.Body)
			retry, err = settleAll(job, idx, class, ItemResult{Status: out.Status, Type: "index_not_found_exception", Reason: string(out.Body)})
		case OK:
			*items = out.Items
			retry, last, err = settleItems(job, idx, out)
		default:
			return newStatusError("_bulk to "+job.Index, out.Status, out.Body)
		}
		if class != Retry && err != nil {
			return err
		}
		if len(retry) == 0 {
			return nil
		}
		if werr := job.Backoff.Wait(ctx, last); werr != nil {
			if errors.Is(werr, ErrRetriesExhausted) && job.Describe != nil {
				return fmt.Errorf("%d items to %s, the first %s: %w", len(retry), job.Index, job.Describe(retry[0]), werr)
			}
			return werr
		}
		if len(retry) != len(idx) {
			idx = append([]int(nil), retry...)
			body = nil
		}
	}
}

// admit waits for a slot of job.Gate, when the job has one.
func (job *BulkJob) admit(ctx context.Context) (Slot, error) {
	if job.Gate == nil {
		return Slot{}, nil
	}
	return job.Gate.Acquire(ctx)
}

// release gives a slot back to job.Gate with what the answer (or err) said.
func (job *BulkJob) release(ctx context.Context, slot Slot, class Class, out BulkResult, full bool) {
	if job.Gate != nil {
		job.Gate.Release(slot, outcome(ctx, class, out, full && job.Full))
	}
}

// settleItems settles the items of a 2xx answer. It returns those to send again, with the
// last reason why.
func settleItems(job *BulkJob, idx []int, out BulkResult) (retry []int, last, err error) {
	if !out.Errors {
		retry, err = settleAll(job, idx, OK, ItemResult{Status: out.Status})
		return retry, nil, err
	}
	for k, r := range out.Items {
		i, c, again := idx[k], ClassifyItem(r.Status, r.Type), true
		if c != Retry {
			if again, err = job.Settle(i, c, r); err != nil {
				return nil, nil, err
			}
		}
		if again {
			retry = append(retry, i)
			last = fmt.Errorf("_bulk to %s: item status %d %s: %s", job.Index, r.Status, r.Type, r.Reason)
		}
	}
	return retry, last, nil
}

// settleAll settles the items idx with one outcome and returns those to send again.
func settleAll(job *BulkJob, idx []int, c Class, r ItemResult) (retry []int, err error) {
	for _, i := range idx {
		again, err := job.Settle(i, c, r)
		if err != nil {
			return nil, err
		}
		if again {
			retry = append(retry, i)
		}
	}
	return retry, nil
}
