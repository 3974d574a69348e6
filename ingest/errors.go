package ingest

import "errors"

// Sentinel errors. Errors that a retry cannot fix wrap ErrPermanent as well, so the caller can
// decide retryable versus permanent with one errors.Is.
var (
	// ErrPermanent marks an error that retrying the same work will not fix.
	ErrPermanent = errors.New("permanent")
	// ErrTooLarge: a byte request larger than the whole budget.
	ErrTooLarge = errors.New("larger than the memory budget")
	// ErrUnauthorized: the cluster refused our credentials (401) or the action (403).
	ErrUnauthorized = permanent("elasticsearch refused the credentials or the action")
	// ErrIndexNotAllowed: the target index does not exist and may not be created, is closed,
	// or is blocked for writes.
	ErrIndexNotAllowed = permanent("elasticsearch does not allow writing to the index")
	// ErrBadConfig: the configuration cannot work (unknown format, id field on CSV without
	// that column, limits that contradict each other).
	ErrBadConfig = permanent("bad configuration")
	// ErrBadInput: an object that cannot be read as the format says (a corrupt gzip stream,
	// a CSV object without a header row).
	ErrBadInput = permanent("bad input")
	// ErrRetriesExhausted: items kept failing with 429/5xx past the retry time limit. Not
	// permanent: a later attempt, from the checkpoint, may succeed.
	ErrRetriesExhausted = errors.New("bulk retries exhausted")
)

type permanentError struct{ msg string }

func (e *permanentError) Error() string        { return e.msg }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

func permanent(msg string) error { return &permanentError{msg} }

// IsPermanent reports whether err (or an error it wraps) is one a retry cannot fix.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }
