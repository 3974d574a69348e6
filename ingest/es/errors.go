package es

import "errors"

// Sentinel errors. Errors that a retry cannot fix wrap ErrPermanent as well, so a caller decides
// retryable versus permanent with one errors.Is.
var (
	// ErrPermanent marks an error that retrying the same work will not fix.
	ErrPermanent = errors.New("permanent")
	// ErrUnauthorized: the cluster refused the credentials (401) or the action (403).
	ErrUnauthorized = Permanent("elasticsearch refused the credentials or the action")
	// ErrIndexNotAllowed: the index does not exist and may not be created, is closed, or is
	// blocked for writes.
	ErrIndexNotAllowed = Permanent("elasticsearch does not allow writing to the index")
	// ErrBadConfig: the configuration cannot work (an unreadable CA certificate, a server that
	// is neither Elasticsearch nor OpenSearch, a request the cluster refuses as malformed).
	ErrBadConfig = Permanent("bad configuration")
	// ErrRetriesExhausted: a request kept failing in a retryable way past the policy's
	// MaxElapsed. Not permanent: a later attempt may succeed.
	ErrRetriesExhausted = errors.New("retries exhausted")
)

type permanentError struct{ msg string }

func (e *permanentError) Error() string        { return e.msg }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent returns a new sentinel error that wraps ErrPermanent.
func Permanent(msg string) error { return &permanentError{msg} }

// IsPermanent reports whether err (or an error it wraps) is one a retry cannot fix.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }
