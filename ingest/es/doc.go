// Package es owns everything sluice says to Elasticsearch or OpenSearch: the Client (flavour
// detection, authentication, TLS, a bounded wait on every request), the _bulk call with its
// streamed per-item results and Deliver, the one loop that resends, splits and settles the
// items of a _bulk job (the engine's sender and the dead-letter index sink both use it), the index operations that reindexing and migration need (create,
// exists, delete, settings, refresh, _count, aliases, point-in-time search), and the one status
// classifier and the one retry policy that every caller uses.
//
// Configuration is a Config struct; reading it from the environment is the worker's business.
// Secrets in a Config are never printed: addresses in messages are redacted, and credentials
// travel only in request headers.
package es
