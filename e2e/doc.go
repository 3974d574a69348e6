// Package e2e holds sluice's end-to-end tests: they build the binaries under cmd/ once, run
// `sluice dev`, `sluice worker` and `sluice ingest` as processes the way a user would, against a
// real S3 server (versitygw) and the real OpenSearch node that `make test` starts, and check
// what ends up in the index.
//
// The tests skip unless SLUICE_OPENSEARCH_URL names the node (with SLUICE_REQUIRE_INTEGRATION=1
// they fail instead), and skip under -short. They cover a mixed dataset end to end
// (TestBackfillDataset), workers SIGKILLed mid-chunk (TestCrashAndResume), the Temporal dev
// server SIGKILLed and restarted on its data directory (TestServerRestart) and two workers
// sharing a backfill (TestTwoWorkers).
//
// The package has no non-test code besides this comment.
package e2e
