package probe

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// maxReadFrame caps one frame the probe reads (replies to its own
// payloads can be large; anything bigger is counted by its header only).
const maxReadFrame = 64 << 20

// dialSpec is one handshake the probe makes.
type dialSpec struct {
	url     *url.URL
	origin  *string // nil: no Origin header
	token   string  // placed as the Config's TokenIn says; "" for none
	query   url.Values
	header  http.Header // extra request headers
	deflate bool        // offer permessage-deflate
	tls     *tls.Config // replaces the default client TLS config
	rcvBuf  int         // SO_RCVBUF and SO_SNDBUF before connecting, when positive
}

// wsConn is the client side of one handshake: its HTTP answer and, after
// a 101, the socket for raw frames.
type wsConn struct {
	status  int
	header  http.Header
	body    string // the first line of a refusal's body
	deflate bool   // permessage-deflate was agreed

	nc net.Conn
	br *bufio.Reader
	// stopAt (Unix nanoseconds, 0 for none) caps every read deadline:
	// another goroutine sets it to end a blocked await.
	stopAt atomic.Int64
}

// upgraded reports whether the server switched protocols.
func (c *wsConn) upgraded() bool { return c.status == http.StatusSwitchingProtocols }

// Close closes the socket without a close handshake.
func (c *wsConn) Close() error {
	if c.nc == nil {
		return nil
	}
	return c.nc.Close()
}

// write sends raw bytes with a deadline.
func (c *wsConn) write(b []byte, d time.Duration) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	_, err := c.nc.Write(b)
	return err
}

// send writes one masked frame.
func (c *wsConn) send(f frame, d time.Duration) error {
	return c.write(appendFrame(nil, f, true, newMask()), d)
}

// next reads one frame before the deadline.
func (c *wsConn) next(deadline time.Time) (frame, error) {
	if s := c.stopAt.Load(); s != 0 && s < deadline.UnixNano() {
		deadline = time.Unix(0, s)
	}
	_ = c.nc.SetReadDeadline(deadline)
	return readFrame(c.br, maxReadFrame)
}

func newMask() [4]byte {
	var k [4]byte
	_, _ = rand.Read(k[:])
	return k
}

// statusText is a handshake result for evidence: "101", "403 origin not
// allowed".
func (c *wsConn) statusText() string {
	if c.body == "" {
		return fmt.Sprint(c.status)
	}
	return fmt.Sprintf("%d %q", c.status, c.body)
}

// handshake dials and sends one upgrade request. A refusal is a result
// (status and body), not an error; errors are network failures.
func (p *prober) handshake(ctx context.Context, s dialSpec) (*wsConn, error) {
	u := s.url
	host := u.Hostname()
	port := u.Port()
	secure := u.Scheme == "wss"
	if port == "" {
		port = "80"
		if secure {
			port = "443"
		}
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	if p.cfg.Source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(p.cfg.Source)}
	}
	if s.rcvBuf > 0 {
		d.Control = smallBuffers(s.rcvBuf)
	}
	nc, err := p.dial(ctx, &d, host, port)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if secure {
		cfg := s.tls
		if cfg == nil {
			cfg = p.tlsConfig(host)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}

	var keyb [16]byte
	_, _ = rand.Read(keyb[:])
	key := base64.StdEncoding.EncodeToString(keyb[:])
	target := *u
	q := target.Query()
	for k, v := range s.query {
		q[k] = v
	}
	target.RawQuery = q.Encode()
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Path: target.EscapedPath(), RawQuery: target.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Host:       u.Host,
		Header:     http.Header{},
	}
	if req.URL.Path == "" {
		req.URL.Path = "/"
	}
	h := req.Header
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", key)
	h.Set("Sec-WebSocket-Version", "13")
	h.Set("User-Agent", "wsprobe")
	if s.origin != nil {
		h["Origin"] = []string{*s.origin}
	}
	protos := append([]string(nil), p.cfg.Subprotocols...)
	if s.token != "" {
		switch kind, name := p.cfg.tokenPlace(); kind {
		case "header":
			h.Set("Authorization", "Bearer "+s.token)
		case "subprotocol":
			protos = append(protos, "bearer."+s.token)
		case "cookie":
			h.Add("Cookie", name+"="+s.token)
		case "query":
			q := req.URL.Query()
			q.Set(name, s.token)
			req.URL.RawQuery = q.Encode()
		}
	}
	if len(protos) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(protos, ", "))
	}
	if s.deflate {
		h.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_no_context_takeover; server_no_context_takeover")
	}
	for k, v := range p.cfg.Header {
		h[k] = append([]string(nil), v...)
	}
	for k, v := range s.header {
		h[k] = append([]string(nil), v...)
	}
	if err := req.Write(nc); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &wsConn{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		c.body = firstLine(string(body))
		resp.Body.Close()
		nc.Close()
		return c, nil
	}
	want := acceptKey(key)
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != want {
		nc.Close()
		return nil, fmt.Errorf("101 with a wrong Sec-WebSocket-Accept %q", got)
	}
	c.deflate = strings.Contains(strings.ToLower(resp.Header.Get("Sec-WebSocket-Extensions")), "permessage-deflate")
	_ = nc.SetDeadline(time.Time{})
	c.nc, c.br = nc, br
	return c, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.TrimSpace(s)
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// tlsConfig is the TLS client configuration of every ordinary dial.
func (p *prober) tlsConfig(host string) *tls.Config {
	return &tls.Config{
		ServerName:         host,
		RootCAs:            p.cfg.RootCAs,
		InsecureSkipVerify: p.cfg.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
	}
}

// retryable statuses: a rate or quota refusal says nothing about the
// check being made, so the handshake is repeated after Retry-After.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// attempt is handshake with patience: a 429 or 503 is retried after its
// Retry-After (1 s when absent, 5 s at most), up to 8 times or until ctx
// ends. The answer is the last one.
func (p *prober) attempt(ctx context.Context, s dialSpec) (*wsConn, error) {
	for i := 0; ; i++ {
		c, err := p.handshake(ctx, s)
		if err != nil || !retryable(c.status) || i == 7 {
			return c, err
		}
		wait := time.Second
		if ra := c.header.Get("Retry-After"); ra != "" {
			var n int
			if _, err := fmt.Sscanf(ra, "%d", &n); err == nil && n >= 0 {
				wait = time.Duration(n) * time.Second
			}
		}
		wait = min(max(wait, 200*time.Millisecond), 5*time.Second)
		select {
		case <-ctx.Done():
			return c, nil
		case <-time.After(wait):
		}
	}
}

// errBaseline is returned by Run when the legitimate handshake fails.
var errBaseline = errors.New("wsprobe: the legitimate handshake (-origin, -token) was not accepted")
