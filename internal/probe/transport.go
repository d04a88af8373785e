package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// checkTransport: ws:// where wss:// exists, forwarded-scheme spoofs on
// ws://, and the TLS versions and suites the endpoint accepts.
func (p *prober) checkTransport(ctx context.Context) {
	const g = "transport"
	if p.url.Scheme != "wss" {
		p.add(g, "plain-ws", NA, "the URL is ws://: no wss:// endpoint to compare")
		p.add(g, "tls-version", NA, "the URL is ws://")
		return
	}
	if p.plain == nil {
		p.add(g, "plain-ws", NA, "no ws:// twin to try (pass -plain-url)")
	} else {
		p.plainChecks(ctx, g)
	}
	p.tlsChecks(ctx, g)
}

func (p *prober) plainChecks(ctx context.Context, g string) {
	// The page origin, its http twin and the plain URL's own origin: a
	// server may compare the Origin's scheme or port with the request's.
	origins := []string{p.origin}
	if rest, ok := strings.CutPrefix(p.origin, "https://"); ok {
		origins = append(origins, "http://"+rest)
	}
	if own := "http://" + p.plain.Host; !slices.Contains(origins, own) {
		origins = append(origins, own)
	}
	try := func(origin string, h http.Header) (*wsConn, error) {
		o := origin
		return p.attempt(ctx, dialSpec{url: p.plain, origin: &o, token: p.cfg.Token, header: h})
	}
	var refused []string
	for _, o := range origins {
		c, err := try(o, nil)
		if err != nil {
			p.add(g, "plain-ws", NA, "%s: %v", shownURL(p.plain), err)
			return
		}
		c.Close()
		if c.upgraded() {
			p.add(g, "plain-ws", Fail, "%s upgraded in clear text (Origin %s): tokens and messages travel unencrypted", shownURL(p.plain), o)
			return
		}
		if st := c.statusText(); !slices.Contains(refused, st) {
			refused = append(refused, st)
		}
	}
	p.add(g, "plain-ws", Pass, "%s refused: %s", shownURL(p.plain), strings.Join(refused, ", "))

	spoofs := []http.Header{
		{"X-Forwarded-Proto": {"https"}},
		{"Forwarded": {"proto=https"}},
		{"X-Forwarded-Proto": {"https"}, "Forwarded": {"for=127.0.0.1;proto=https"}, "X-Forwarded-Ssl": {"on"}, "X-Forwarded-Scheme": {"https"}, "Front-End-Https": {"on"}},
	}
	for _, h := range spoofs {
		for _, o := range origins {
			c, err := try(o, h)
			if err != nil {
				p.add(g, "forwarded-proto", NA, "%v", err)
				return
			}
			c.Close()
			if c.upgraded() {
				p.add(g, "forwarded-proto", Fail, "ws:// upgraded with client-sent %s (Origin %s): the endpoint believes the client about its scheme", headerList(h), o)
				return
			}
		}
	}
	p.add(g, "forwarded-proto", Pass, "ws:// still refused with client-sent X-Forwarded-Proto, Forwarded proto=https, X-Forwarded-Ssl")
}

func headerList(h http.Header) string {
	var parts []string
	for k, v := range h {
		parts = append(parts, k+": "+strings.Join(v, ", "))
	}
	return strings.Join(parts, "; ")
}

// cbcSHA1 are the TLS 1.0–1.2 suites with CBC mode and a SHA-1 MAC (and
// 3DES), which Go can still offer when asked.
var cbcSHA1 = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
	tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
}

// tlsChecks connects with one protocol version at a time, and with only
// the CBC-SHA1 suites at TLS 1.2. Certificates are not verified here: the
// question is what the server agrees to.
func (p *prober) tlsChecks(ctx context.Context, g string) {
	host := p.url.Hostname()
	port := p.url.Port()
	if port == "" {
		port = "443"
	}
	try := func(cfg *tls.Config) (*tls.ConnectionState, error) {
		ctx, cancel := context.WithTimeout(ctx, p.remaining(10*time.Second))
		defer cancel()
		d := &net.Dialer{}
		if p.cfg.Source != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(p.cfg.Source)}
		}
		nc, err := p.dial(ctx, d, host, port)
		if err != nil {
			return nil, noConn{err}
		}
		c := tls.Client(nc, cfg)
		defer c.Close()
		if err := c.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		st := c.ConnectionState()
		return &st, nil
	}

	// A handshake the server fails is a refusal; no connection, or the
	// budget ending, says nothing about what it accepts.
	inconclusive := func(err error) bool {
		var nc noConn
		return errors.As(err, &nc) || ctx.Err() != nil
	}

	var old []string
	var scanErr error
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		st, err := try(&tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}) //nolint:gosec // a scan of what the server accepts
		switch {
		case err == nil && st.Version == v:
			old = append(old, tls.VersionName(v))
		case err != nil && inconclusive(err):
			scanErr = err
		}
	}
	if len(old) > 0 {
		p.add(g, "tls-version", Fail, "the server completes handshakes with %s", strings.Join(old, " and "))
	} else {
		st, err := try(&tls.Config{ServerName: host, InsecureSkipVerify: true}) //nolint:gosec
		switch {
		case err != nil:
			p.add(g, "tls-version", NA, "no TLS handshake: %v", err)
		case scanErr != nil:
			p.add(g, "tls-version", NA, "TLS 1.0 or 1.1 not tried: %v", scanErr)
		default:
			p.add(g, "tls-version", Pass, "TLS 1.0 and 1.1 refused; negotiated %s with %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		}
	}

	var weak []string
	var refusal error
	scanErr = nil
	offer := append([]uint16(nil), cbcSHA1...)
	for len(offer) > 0 && ctx.Err() == nil {
		st, err := try(&tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12, CipherSuites: offer}) //nolint:gosec
		if err != nil {
			if inconclusive(err) {
				scanErr = err
			} else {
				refusal = err
			}
			break
		}
		weak = append(weak, tls.CipherSuiteName(st.CipherSuite))
		offer = remove(offer, st.CipherSuite)
	}
	switch {
	case len(weak) > 0:
		p.add(g, "tls-cbc-sha1", Fail, "the server accepts %s", strings.Join(weak, ", "))
	case refusal == nil:
		if scanErr == nil {
			scanErr = ctx.Err()
		}
		p.add(g, "tls-cbc-sha1", NA, "no answer to the CBC-SHA1 offer: %v", scanErr)
	default:
		p.add(g, "tls-cbc-sha1", Pass, "every CBC-SHA1 and 3DES suite refused (%d offered)", len(cbcSHA1))
	}
}

// noConn is a TLS scan attempt that got no connection.
type noConn struct{ err error }

func (e noConn) Error() string { return e.err.Error() }
func (e noConn) Unwrap() error { return e.err }

func remove(s []uint16, v uint16) []uint16 {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
