package engine_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives its tests: a run that
// stopped, or an engine whose context ended, leaves nothing running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
