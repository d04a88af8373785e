// Package nbwrite writes to a socket without ever waiting: one write
// system call that takes what the kernel's send buffer has room for and
// reports how much that was. wssec's Conn writes a frame this way on the
// caller's goroutine and hands whatever did not fit to a short-lived
// drainer, so a Send never blocks on a client that does not read.
//
// Only sockets that expose their file descriptor (syscall.Conn: TCP and
// Unix sockets) on Unix systems have this path; Raw returns nil for the
// others (a TLS connection terminated in the process, Windows), and the
// caller then writes every frame through its drainer.
package nbwrite

import "errors"

// ErrWouldBlock reports that the socket could take nothing at once.
var ErrWouldBlock = errors.New("nbwrite: write would block")
