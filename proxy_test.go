package wssec

// Real proxies in front of a Guard: nginx and HAProxy, started as child
// processes from the very configuration files the README points to
// (deploy/nginx/wssec.conf, deploy/haproxy/wssec.cfg). The proxies
// connect from 127.0.0.1, the one trusted proxy; clients bind 127.0.0.2
// and up, so they are not trusted, and send every forwarding header a
// client could use to choose its address or scheme.

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssec/wssec/internal/proxytest"
	"golang.org/x/time/rate"
)

type proxyKind struct {
	name  string
	start func(t testing.TB, upstream string, idle time.Duration) *proxytest.Proxy
}

var (
	nginxProxy = proxyKind{"nginx", func(t testing.TB, upstream string, idle time.Duration) *proxytest.Proxy {
		return proxytest.StartNginx(t, "deploy/nginx/wssec.conf", proxytest.Options{Upstream: upstream, IdleTimeout: idle})
	}}
	haproxyProxy = proxyKind{"haproxy", func(t testing.TB, upstream string, idle time.Duration) *proxytest.Proxy {
		return proxytest.StartHAProxy(t, "deploy/haproxy/wssec.cfg", proxytest.Options{Upstream: upstream, IdleTimeout: idle})
	}}
)

// spoofs are the headers a client sends to choose its address or scheme.
var spoofs = []http.Header{
	hdr("X-Forwarded-For", "6.6.6.1"),
	hdr("X-Forwarded-For", "6.6.6.2, 10.0.0.1"),
	hdr("Forwarded", "for=6.6.6.3;proto=https"),
	hdr("Forwarded", `for="[2001:db8::66]";proto=https`),
	hdr("Forwarded", `for="[2001:db8::67]:443"`),
	hdr("X-Real-IP", "6.6.6.4"),
	hdr("X-Forwarded-Proto", "https", "X-Forwarded-For", "6.6.6.5"),
	hdr("Forwarded", "for=6.6.6.6", "X-Forwarded-For", "6.6.6.7", "X-Real-IP", "6.6.6.8", "CF-Connecting-IP", "6.6.6.9"),
}

// behindProxy is a Guard behind a real proxy.
type behindProxy struct {
	f     *fixture
	proxy *proxytest.Proxy
}

// startBehind starts a Guard (trusting 127.0.0.1 only) behind a fresh
// proxy of kind. Its handler sends the client the address the Guard
// used, then answers messages until the socket closes.
func startBehind(t *testing.T, kind proxyKind, idle time.Duration, opts ...Option) *behindProxy {
	t.Helper()
	serve := func(ctx context.Context, c *Conn) {
		if err := c.Send(ctx, map[string]string{"action": "hello", "ip": c.RemoteIP()}); err != nil {
			return
		}
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				return
			}
		}
	}
	base := []Option{WithAnonymous(), WithTrustedProxies("127.0.0.1/32"), WithHandshakeRate(rate.Limit(1000), 1000)}
	// The fixture's handler channel (64 deep) is not read: these tests
	// read what the handler sends instead, and open fewer sockets.
	f := newFixture(t, serve, append(base, opts...)...)
	upstream := strings.TrimPrefix(f.srv.URL, "http://")
	return &behindProxy{f: f, proxy: kind.start(t, upstream, idle)}
}

// dial opens a socket through the proxy from the loopback address from:
// over TLS (wss://, Origin https://) or through the plain listener.
func (b *behindProxy) dial(t *testing.T, from string, useTLS bool, h http.Header) (*websocket.Conn, int) {
	t.Helper()
	addr, scheme, origin := b.proxy.PlainAddr, "ws", "http"
	if useTLS {
		addr, scheme, origin = b.proxy.TLSAddr, "wss", "https"
	}
	hh := http.Header{"Origin": {origin + "://" + addr}}
	for k, v := range h {
		hh[k] = v
	}
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	d := websocket.Dialer{
		NetDialContext:   nd.DialContext,
		TLSClientConfig:  &tls.Config{RootCAs: b.proxy.Roots},
		HandshakeTimeout: 5 * time.Second,
	}
	c, resp, err := d.Dial(scheme+"://"+addr+"/ws", hh)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	if err != nil && status == 0 {
		t.Fatalf("dial from %s through %s: %v", from, addr, err)
	}
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, status
}

// helloIP reads the first message and returns the address the Guard used.
func helloIP(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m struct{ IP string }
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("reading hello: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return m.IP
}

// testSpoofThrough: no header a client sends changes the address the
// Guard uses, and a per-IP limit of 3 holds whatever the spoofs.
func testSpoofThrough(t *testing.T, kind proxyKind, header string) {
	var opts []Option
	if header != "" {
		opts = append(opts, WithClientIPHeader(header))
	}
	b := startBehind(t, kind, 0, append(opts, WithConnLimits(3, 100, 1000))...)

	t.Run("address", func(t *testing.T) {
		for i, h := range spoofs {
			c, status := b.dial(t, "127.0.0.2", true, h)
			if status != http.StatusSwitchingProtocols {
				t.Fatalf("spoof %d %v: status %d", i, h, status)
			}
			if ip := helloIP(t, c); ip != "127.0.0.2" {
				t.Fatalf("spoof %v: the Guard used %s; want the client's own 127.0.0.2", h, ip)
			}
			c.Close()
			// Wait for the slot to be freed before the next one.
			wantCounts(t, b.f.g, 0, 0, 0)
		}
	})

	t.Run("per-IP limit", func(t *testing.T) {
		accepted, limited := 0, 0
		var seenAs []string
		for i := range 8 {
			h := spoofs[i%len(spoofs)]
			c, status := b.dial(t, "127.0.0.3", true, h)
			switch status {
			case http.StatusSwitchingProtocols:
				accepted++
				seenAs = append(seenAs, helloIP(t, c))
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Fatalf("spoof %v: status %d", h, status)
			}
		}
		if accepted != 3 || limited != 5 {
			t.Fatalf("8 sockets with spoofed headers: %d accepted (seen as %v), %d refused with 429; want 3 and 5", accepted, seenAs, limited)
		}
		for _, ip := range seenAs {
			if ip != "127.0.0.3" {
				t.Fatalf("an accepted socket was seen as %s; want 127.0.0.3", ip)
			}
		}
		// The limit is the client's, not the proxy's: another client passes.
		c, status := b.dial(t, "127.0.0.4", true, hdr("Forwarded", "for=127.0.0.3"))
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("another client: status %d", status)
		}
		if ip := helloIP(t, c); ip != "127.0.0.4" {
			t.Fatalf("another client seen as %s", ip)
		}
	})
}

// testPlainListener: ws:// through the proxy's plain listener is refused
// with 426 whatever the client claims; wss:// through its TLS listener is
// not.
func testPlainListener(t *testing.T, kind proxyKind) {
	b := startBehind(t, kind, 0)
	claims := append([]http.Header{{}}, spoofs...)
	claims = append(claims,
		hdr("X-Forwarded-Proto", "https"),
		hdr("X-Forwarded-Proto", "wss", "Forwarded", "proto=wss"),
		hdr("Forwarded", "proto=https"),
		hdr("X-Forwarded-Ssl", "on", "Front-End-Https", "on", "X-Url-Scheme", "https"))
	for _, h := range claims {
		h := h.Clone()
		h.Set("Origin", "https://"+b.proxy.PlainAddr) // what a client claiming https would send
		if _, status := b.dial(t, "127.0.0.2", false, h); status != http.StatusUpgradeRequired {
			t.Fatalf("ws:// through %s's plain listener with %v: status %d; want 426", kind.name, h, status)
		}
	}
	if _, status := b.dial(t, "127.0.0.2", true, nil); status != http.StatusSwitchingProtocols {
		t.Fatalf("wss:// through %s's TLS listener: status %d; want 101", kind.name, status)
	}
}

// testIdleThrough: with the proxy's idle timeout shortened to 1 s, a
// socket nobody writes to survives 3 s through the Guard's pings, and
// (the control) is cut by the proxy when the pings are rarer than that.
func testIdleThrough(t *testing.T, kind proxyKind) {
	const proxyIdle = time.Second
	for _, tc := range []struct {
		name        string
		ping, idle  time.Duration
		wantSurvive bool
	}{
		{"pings below the proxy timeout", 250 * time.Millisecond, 5 * time.Second, true},
		{"pings above the proxy timeout", 20 * time.Second, 40 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBehind(t, kind, proxyIdle, WithPingInterval(tc.ping), WithIdleTimeout(tc.idle))
			c, status := b.dial(t, "127.0.0.2", true, nil)
			if status != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", status)
			}
			helloIP(t, c)
			msgs := make(chan []byte, 4)
			readErr := make(chan error, 1)
			go func() { // reads (and so answers pings) until the socket ends
				for {
					_, m, err := c.ReadMessage()
					if err != nil {
						readErr <- err
						close(msgs)
						return
					}
					msgs <- m
				}
			}()
			t.Cleanup(func() {
				c.Close()
				for range msgs {
				}
			})
			select {
			case err := <-readErr:
				if tc.wantSurvive {
					t.Fatalf("the idle socket was closed despite pings: %v\n%s", err, b.proxy.Logs())
				}
				return // cut by the proxy, as the control expects
			case <-time.After(3 * proxyIdle):
			}
			if !tc.wantSurvive {
				t.Fatalf("the socket outlived the proxy's %v idle timeout without pings: the timeout in the test config had no effect", proxyIdle)
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"ping","id":"after-idle"}`)); err != nil {
				t.Fatalf("writing after the idle period: %v", err)
			}
			select {
			case m := <-msgs:
				if !strings.Contains(string(m), "pong") {
					t.Fatalf("answer %s; want a pong", m)
				}
			case err := <-readErr:
				t.Fatalf("socket closed after the idle period: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("no answer after the idle period")
			}
		})
	}
}

func TestProxySpoof_ForwardedThroughNginx(t *testing.T) { testSpoofThrough(t, nginxProxy, "") }

func TestProxySpoof_ForwardedThroughHAProxy(t *testing.T) { testSpoofThrough(t, haproxyProxy, "") }

// The shipped configs overwrite X-Real-IP too, so choosing it is safe
// behind them.
func TestProxySpoof_XRealIPThroughNginx(t *testing.T) { testSpoofThrough(t, nginxProxy, "X-Real-IP") }

func TestProxySpoof_XRealIPThroughHAProxy(t *testing.T) {
	testSpoofThrough(t, haproxyProxy, "X-Real-IP")
}

func TestProxySpoof_ProtoHTTPSOverPlainListenerNginx(t *testing.T) {
	testPlainListener(t, nginxProxy)
}

func TestProxySpoof_ProtoHTTPSOverPlainListenerHAProxy(t *testing.T) {
	testPlainListener(t, haproxyProxy)
}

func TestProxyIdle_PingsOutliveNginxReadTimeout(t *testing.T) { testIdleThrough(t, nginxProxy) }

func TestProxyIdle_PingsOutliveHAProxyTunnelTimeout(t *testing.T) {
	testIdleThrough(t, haproxyProxy)
}
