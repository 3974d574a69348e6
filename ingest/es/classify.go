package es

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Class is what a caller should do about an answer. ClassifyStatus and ClassifyItem are the
// one place that maps Elasticsearch's statuses and error types to it.
type Class int

const (
	OK           Class = iota // done
	Retry                     // 429, 5xx, no answer: the same request may succeed later
	Split                     // 413: the request is too large; send its halves
	Rejected                  // the cluster refuses this content for good (400, mapping errors): a retry cannot help
	Unauthorized              // 401, 403: credentials or privileges; permanent, stop at once
	IndexMissing              // 404, index_not_found_exception
	IndexClosed               // index_closed_exception: the index takes no writes
	Unexpected                // any other status; permanent
)

var classNames = [...]string{"ok", "retry", "split", "rejected", "unauthorized", "index missing", "index closed", "unexpected"}

func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "unknown"
	}
	return classNames[c]
}

// ClassifyStatus classifies the HTTP status of a whole answer.
func ClassifyStatus(status int) Class {
	switch {
	case status >= 200 && status <= 299:
		return OK
	case status == http.StatusTooManyRequests || status >= 500:
		return Retry
	case status == http.StatusRequestEntityTooLarge:
		return Split
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Unauthorized
	case status == http.StatusNotFound:
		return IndexMissing
	case status == http.StatusBadRequest:
		return Rejected
	}
	return Unexpected
}

// ClassifyItem classifies one item of a _bulk answer by its status and error type.
func ClassifyItem(status int, errType string) Class {
	switch errType {
	case "index_not_found_exception":
		return IndexMissing
	case "index_closed_exception":
		return IndexClosed
	}
	switch c := ClassifyStatus(status); c {
	case OK, Retry, Unauthorized:
		return c
	}
	return Rejected
}

// ClassifyError classifies the error of a request: nil is OK, a request that got no answer
// (refused connection, reset, ErrTimeout) is Retry, an error that wraps ErrPermanent is
// Unexpected unless it says more (a StatusError says its own class).
func ClassifyError(err error) Class {
	var se *StatusError
	switch {
	case err == nil:
		return OK
	case errors.As(err, &se):
		return se.Class()
	case errors.Is(err, ErrUnauthorized):
		return Unauthorized
	case IsPermanent(err):
		return Unexpected
	}
	return Retry
}

// StatusError is a non-2xx answer to an index operation: the operation, the status, and
// Elasticsearch's error type and reason (or the start of the body when it has none). It
// matches ErrUnauthorized for 401/403 and ErrPermanent for every class a retry cannot fix.
type StatusError struct {
	Op     string // such as `PUT /logs-v2`
	Status int
	Type   string // Elasticsearch's error.type, "" when the answer had none
	Reason string // error.reason, or the start of the body
}

// Class is ClassifyItem of the status and error type.
func (e *StatusError) Class() Class { return ClassifyItem(e.Status, e.Type) }

func (e *StatusError) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, e.Type, e.Reason)
	}
	return fmt.Sprintf("%s: %d %s", e.Op, e.Status, e.Reason)
}

func (e *StatusError) Is(target error) bool {
	c := e.Class()
	switch target {
	case ErrUnauthorized:
		return c == Unauthorized
	case ErrPermanent:
		return c != OK && c != Retry
	}
	return false
}

// newStatusError reads the error out of an answer's body (at most the 4 KiB given).
func newStatusError(op string, status int, body []byte) *StatusError {
	e := &StatusError{Op: op, Status: status}
	var parsed struct {
		Error errorObject `json:"error"`
	}
	if json.Unmarshal(body, &parsed) == nil && parsed.Error.Type != "" {
		e.Type, e.Reason = parsed.Error.Type, parsed.Error.reason()
		return e
	}
	e.Reason = string(bytes.TrimSpace(body))
	return e
}

// errorObject is Elasticsearch's "error" object, in answers and in _bulk items.
type errorObject struct {
	Type     string `json:"type"`
	Reason   string `json:"reason"`
	CausedBy *struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"caused_by"`
}

// reason is the reason followed by its cause, when there is one.
func (e *errorObject) reason() string {
	if e.CausedBy == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.CausedBy.Type + ": " + e.CausedBy.Reason
}
