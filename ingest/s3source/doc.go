// Package s3source is the S3 side of the engine: it lists a prefix one page at a time and
// streams one object from an offset, over any S3-compatible store. It does not import
// Temporal.
//
// # Credentials
//
// Credentials come only from the AWS SDK's default chain (environment, shared config and
// credentials files, SSO, web identity, ECS or EC2 instance roles). Nothing in Config is a
// secret, so a Config may travel in a workflow input.
//
// # Retry and idempotency contract
//
// Every operation is a read: calling it again has no effect on the store, so any of them may
// be retried by the caller at any time.
//
//   - Requests that fail before a response body is streamed (connection refused, 5xx, throttling)
//     are retried by the SDK's standard retryer.
//   - The reader returned by Open survives broken connections: when the body of a GET ends
//     early (connection reset, unexpected EOF, a clean EOF before the object's end, or no
//     byte for Config.ReadIdleTimeout) it issues a new ranged GET at the first byte it has not
//     returned and continues. The bytes it returns are exactly the object's bytes from the
//     offset, none repeated or missing. It gives up after Config.ReadAttempts reopens in a row
//     that returned no byte.
//   - Every GET of one reader carries If-Match with the ETag given to Open, or, when none was
//     given, the ETag of the reader's first response. A reader therefore never mixes the bytes
//     of two versions of an object: if the object was replaced, the next GET fails with
//     ErrObjectChanged.
//   - ErrObjectChanged, ErrAccessDenied and ErrNotFound are permanent: retrying the same
//     request cannot succeed (IsPermanent reports them). Every other error is worth a retry,
//     from the last acknowledged offset.
//
// ETags are opaque strings, passed around exactly as S3 returns them (with their quotes).
package s3source
