package ingest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: a pipeline that left a
// sender, batcher or producer running, a reader or a fake server never closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
