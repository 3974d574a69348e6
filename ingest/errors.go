package ingest

import (
	"errors"

	"github.com/sluicehq/sluice/ingest/es"
)

// Sentinel errors. Errors that a retry cannot fix wrap ErrPermanent as well, so the caller can
// decide retryable versus permanent with one errors.Is.
var (
	// ErrPermanent marks an error that retrying the same work will not fix. The Elasticsearch
	// errors below are those of package es, so one errors.Is serves both packages.
	ErrPermanent = es.ErrPermanent
	// ErrTooLarge: a byte request larger than the whole budget.
	ErrTooLarge = errors.New("larger than the memory budget")
	// ErrUnauthorized: the cluster refused our credentials (401) or the action (403).
	ErrUnauthorized = es.ErrUnauthorized
	// ErrIndexNotAllowed: the target index does not exist and may not be created, is closed,
	// or is blocked for writes.
	ErrIndexNotAllowed = es.ErrIndexNotAllowed
	// ErrBadConfig: the configuration cannot work (unknown format, id field on CSV without
	// that column, limits that contradict each other).
	ErrBadConfig = es.ErrBadConfig
	// ErrBadInput: an object that cannot be read as the format says (a corrupt gzip stream,
	// a CSV object without a header row).
	ErrBadInput = es.Permanent("bad input")
	// ErrRetriesExhausted: items kept failing with 429/5xx past the retry time limit. Not
	// permanent: a later attempt, from the checkpoint, may succeed.
	ErrRetriesExhausted = es.ErrRetriesExhausted
)

// IsPermanent reports whether err (or an error it wraps) is one a retry cannot fix.
func IsPermanent(err error) bool { return es.IsPermanent(err) }
