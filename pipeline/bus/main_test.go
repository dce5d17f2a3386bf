package bus_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives its tests: an embedded
// server that was shut down, or a connection that was closed, leaves nothing
// running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
