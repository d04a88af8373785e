package jwks

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// Fetcher's refresh goroutine must have stopped by the time Close returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
