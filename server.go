package wssec

import (
	"crypto/tls"
	"net/http"
)

// HardenServer sets the limits a Guard cannot enforce itself, because they
// apply before a request reaches any handler: ReadHeaderTimeout (5 s, so a
// client that dribbles its headers a byte at a time is cut off),
// MaxHeaderBytes (16 KiB) and IdleTimeout (60 s, for keep-alive HTTP
// connections; upgraded sockets have their own timeouts). When TLSConfig
// is nil it sets TLSProfile(): TLS 1.2 at least, AEAD-only suites for
// TLS 1.2 (no CBC, no RSA key exchange), X25519 and P-256 key exchange
// (with their post-quantum hybrids), so it takes effect with
// ListenAndServeTLS or ServeTLS. Fields the caller already set are kept,
// and a caller's TLSConfig is neither changed nor replaced. ReadTimeout
// and WriteTimeout are left alone: they would also bound every upgraded
// socket's lifetime. HSTS is a response header, not a server setting: see
// the README's Operations section. It returns srv.
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
	if srv.TLSConfig == nil {
		srv.TLSConfig = TLSProfile()
	}
	return srv
}

// TLSProfile returns a new tls.Config for a server socket: minimum version
// TLS 1.2; for TLS 1.2 only ECDHE suites with an AEAD cipher (AES-GCM and
// ChaCha20-Poly1305; TLS 1.3 suites are all AEAD and not configurable);
// key exchange X25519 and P-256, with the hybrid post-quantum
// X25519MLKEM768 and SecP256r1MLKEM768, and P-384 for older clients. It
// sets no certificate: add Certificates or GetCertificate, or let
// ListenAndServeTLS load them. Each call returns a fresh Config the caller
// may change.
func TLSProfile() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{
			tls.X25519MLKEM768, tls.SecP256r1MLKEM768,
			tls.X25519, tls.CurveP256, tls.CurveP384,
		},
	}
}
