package wssec

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left behind: a
// connection writer, a JWKS refresher or a server goroutine that a Guard
// did not stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
