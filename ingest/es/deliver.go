package es

import (
	"context"
	"errors"
	"fmt"
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
}

// Deliver sends the items idx of job (whose body is body; nil: built with job.Body) until
// each is settled. It is the one retry loop for _bulk: items answered 429/5xx, and requests
// that got no answer, are sent again (alone) after job.Backoff's wait; a request refused as
// too large (413) or as a whole (400) is split in halves; 401/403 and unexpected statuses of a
// whole request stop it with a *StatusError (permanent); a 404 settles every item as
// IndexMissing. It returns nil when every item is settled, ErrRetriesExhausted (wrapped, with
// the last failure) when the backoff gives up, the context's cause when ctx ends, or what
// Settle returned.
func (c *Client) Deliver(ctx context.Context, job *BulkJob, idx []int, body [][]byte, items *[]ItemResult) error {
	for attempt := 0; ; attempt++ {
		if body == nil {
			body = job.Body(idx)
		}
		if attempt > 0 {
			job.Resent += int64(len(idx))
		}
		out, err := c.Bulk(ctx, job.Index, body, len(idx), *items)
		class := out.Class()
		if err != nil {
			class = ClassifyError(err)
		}
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
