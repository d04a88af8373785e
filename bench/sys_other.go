//go:build !unix

package bench

import "time"

// RaiseFDLimit cannot inspect the limit on this platform; it reports need
// and lets the sockets fail if it is too low.
func RaiseFDLimit(need uint64) (uint64, error) { return need, nil }

// CPUTime is not available on this platform; it returns 0.
func CPUTime() time.Duration { return 0 }
