//go:build unix

package probe

import "syscall"

// smallBuffers sets SO_RCVBUF and SO_SNDBUF before connecting, which also
// stops the kernel from growing them.
func smallBuffers(n int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n); serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, n)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
