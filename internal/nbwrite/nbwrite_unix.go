//go:build unix

package nbwrite

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// Raw returns the raw socket of nc for Try, or nil if nc has none.
func Raw(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Try writes as much of p as the socket takes at once, with one write
// system call. It returns the bytes written; err is ErrWouldBlock when
// none could be (the send buffer is full, or a write deadline has passed)
// and another error when the socket failed. A short count with a nil
// error means the rest would block.
func Try(rc syscall.RawConn, p []byte) (int, error) {
	var (
		n    int
		werr error
	)
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return true // never wait for the socket to become writable
			}
		}
	})
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, ErrWouldBlock
		}
		return 0, err
	}
	if werr != nil {
		if werr == syscall.EAGAIN || werr == syscall.EWOULDBLOCK {
			return 0, ErrWouldBlock
		}
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", werr)}
	}
	if n < 0 {
		n = 0
	}
	return n, nil
}
