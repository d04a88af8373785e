package wssec

import (
	"net/http"
	"time"
)

// Server hardening defaults applied by HardenServer.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultServerIdleTimeout = 60 * time.Second
)

// HardenServer sets the limits a Guard cannot enforce itself, because they
// apply before a request reaches any handler: ReadHeaderTimeout (5 s, so a
// client that dribbles its headers a byte at a time is cut off),
// MaxHeaderBytes (16 KiB) and IdleTimeout (60 s, for keep-alive HTTP
// connections; upgraded sockets have their own timeouts). Fields the caller
// already set are kept. ReadTimeout and WriteTimeout are left alone: they
// would also bound every upgraded socket's lifetime. It returns srv.
func HardenServer(srv *http.Server) *http.Server {
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if srv.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = DefaultServerIdleTimeout
	}
	return srv
}
