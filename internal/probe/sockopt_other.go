//go:build !unix

package probe

import "syscall"

// smallBuffers does nothing here: the slow-reader check then measures
// with the system's buffer sizes.
func smallBuffers(int) func(network, address string, c syscall.RawConn) error { return nil }
