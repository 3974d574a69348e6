package ingest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: a pipeline that left a
// sender, batcher or producer running, a reader or a fake server never closed. Idle keep-alive
// connections of HTTP clients to the shared OpenSearch node (which outlives the tests) are not
// leaks of the engine.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}
