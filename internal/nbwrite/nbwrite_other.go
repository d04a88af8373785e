//go:build !unix

package nbwrite

import (
	"net"
	"syscall"
)

// Raw returns nil: this platform has no non-blocking write path.
func Raw(net.Conn) syscall.RawConn { return nil }

// Try never writes here; Raw never returns a RawConn for it.
func Try(syscall.RawConn, []byte) (int, error) { return 0, ErrWouldBlock }
