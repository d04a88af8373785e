package prommetrics

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine is left behind: a
// connection writer, a server or an HTTP client connection.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
