package wssec

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// TestQuota_ReleasedAfterManyCycles: 1 000 connect/disconnect cycles leave
// every counter at zero. Each cycle waits for the server side to be torn
// down, so a slot that is not released shows up as a refusal within the
// per-IP quota (small on purpose) long before the end. Half the clients
// close with a close handshake, half drop the TCP connection.
func TestQuota_ReleasedAfterManyCycles(t *testing.T) {
	const cycles = 1000
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey),
		WithHandshakeRate(rate.Inf, 1), WithConnLimits(4, 2, 8))
	tok := mint(t, claims{})
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	h := bearer(f.origin, tok)
	for i := 0; i < cycles; i++ {
		c, resp, err := d.Dial(f.url, h)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("cycle %d: dial: %v (status %d)", i, err, status)
		}
		var srv *Conn
		select {
		case srv = <-f.ran:
		case <-time.After(5 * time.Second):
			c.Close()
			t.Fatalf("cycle %d: handler did not run", i)
		}
		if i%2 == 0 {
			// Close handshake: send a close frame, read until the server's.
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					break
				}
			}
		}
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("cycle %d: server side not torn down: %v", i, err)
		}
	}
	wantCountsNow(t, f.g, 0, 0, 0)
	// Nothing is tracked for a socket that is gone.
	f.g.mu.Lock()
	live := len(f.g.conns)
	f.g.mu.Unlock()
	if live != 0 {
		t.Fatalf("%d connections still tracked by the Guard", live)
	}
}

// TestQuota_ReleasedConcurrently: many sockets open at once, then all
// close; every counter returns to zero.
func TestQuota_ReleasedConcurrently(t *testing.T) {
	const n = 50
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey),
		WithHandshakeRate(rate.Inf, 1), WithConnLimits(n, n, n))
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conns := make([]*websocket.Conn, 0, n)
	for i := 0; i < n; i++ {
		tok := mint(t, claims{sub: "user" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
		c, _, err := d.Dial(f.url, bearer(f.origin, tok))
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		<-f.ran
	}
	wantCountsNow(t, f.g, 1, n, n)
	// One more is over every quota at once; the IP quota answers first.
	a := f.try(bearer(f.origin, mint(t, claims{sub: "extra"})))
	wantRefused(t, f, a, 429, "quota_ip")
	for _, c := range conns {
		c.Close()
	}
	wantCounts(t, f.g, 0, 0, 0)
}

// TestQuota_ReleasedAfterRefusal: a handshake refused at any stage holds
// no slot afterwards.
func TestQuota_ReleasedAfterRefusal(t *testing.T) {
	tok := mint(t, claims{})
	t.Run("refused at the token", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(1, 1, 1))
		for i := 0; i < 5; i++ { // more than any quota: a leak would show as 429/503
			wantRefused(t, f, f.try(bearer(f.origin, "e30.e30")), 401, "token_malformed")
			wantCountsNow(t, f.g, 0, 0, 0)
			wantRefused(t, f, f.try(hdr("Origin", f.origin)), 401, "token_missing")
			wantCountsNow(t, f.g, 0, 0, 0)
		}
		wantAccepted(t, f, f.try(bearer(f.origin, tok)))
	})
	t.Run("refused at the subject quota", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(10, 1, 10))
		a := f.try(bearer(f.origin, tok))
		srv := wantAccepted(t, f, a)
		for i := 0; i < 12; i++ { // more than the per-IP and total quotas
			wantRefused(t, f, f.try(bearer(f.origin, tok)), 429, "quota_subject")
			wantCountsNow(t, f.g, 1, 1, 1)
		}
		a.conn.Close()
		waitGone(t, srv)
		wantCountsNow(t, f.g, 0, 0, 0)
	})
	t.Run("refused at the origin, rate and IP quota", func(t *testing.T) {
		clk := newFakeClock()
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(1, 8, 10),
			WithHandshakeRate(rate.Limit(1), 2), WithClock(clk.now))
		wantRefused(t, f, f.try(bearer("https://evil.example", tok)), 403, "origin_not_allowed")
		wantCountsNow(t, f.g, 0, 0, 0)
		a := f.try(bearer(f.origin, tok))
		srv := wantAccepted(t, f, a)
		wantRefused(t, f, f.try(bearer(f.origin, tok)), 429, "quota_ip")
		wantCountsNow(t, f.g, 1, 1, 1)
		wantRefused(t, f, f.try(bearer(f.origin, tok)), 429, "handshake_rate")
		wantCountsNow(t, f.g, 1, 1, 1)
		a.conn.Close()
		waitGone(t, srv)
		wantCountsNow(t, f.g, 0, 0, 0)
	})
	t.Run("refused at capacity", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(10, 10, 1))
		a := f.try(bearer(f.origin, tok))
		srv := wantAccepted(t, f, a)
		for i := 0; i < 3; i++ {
			wantRefused(t, f, f.try(bearer(f.origin, mint(t, claims{sub: "bob"}))), 503, "capacity")
			wantCountsNow(t, f.g, 1, 1, 1)
		}
		a.conn.Close()
		waitGone(t, srv)
		wantCountsNow(t, f.g, 0, 0, 0)
	})
}

// TestQuota_ReleasedWhenHandlerDoesNotUpgrade: next, reached through Wrap
// with slots held, returns without calling Upgrade (or fails it); the slots
// come back.
func TestQuota_ReleasedWhenHandlerDoesNotUpgrade(t *testing.T) {
	tok := mint(t, claims{})
	cases := []struct {
		name    string
		handler func(g *Guard) http.HandlerFunc
		status  int
	}{
		{"returns an error page", func(*Guard) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
			}
		}, http.StatusServiceUnavailable},
		{"returns without writing", func(*Guard) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {}
		}, http.StatusOK},
		{"panics", func(*Guard) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }
		}, 0},
		{"upgrade fails in gorilla", func(g *Guard) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("Sec-WebSocket-Key")
				if c, err := g.Upgrade(w, r); err == nil {
					c.Close(CloseNormal, "")
				}
			}
		}, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			g, err := New(WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(1, 1, 1),
				WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			inner := tc.handler(g)
			srv := httptest.NewServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				inner(w, r)
			})))
			t.Cleanup(srv.Close)
			f := &fixture{t: t, g: g, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http"), origin: srv.URL}
			for i := 0; i < 3; i++ { // beyond every quota of 1
				a := f.try(bearer(f.origin, tok))
				if a.conn != nil {
					t.Fatal("upgraded")
				}
				if tc.status != 0 && a.status != tc.status {
					t.Fatalf("attempt %d: status %d (%q); want the handler's %d", i, a.status, a.body, tc.status)
				}
				wantCounts(t, g, 0, 0, 0)
			}
			if n := calls.Load(); n != 3 {
				t.Fatalf("next ran %d times; want 3 (a held slot would have refused)", n)
			}
		})
	}
}

// TestQuota_GuardClose: Close ends every live socket and releases its
// slots; a handshake after Close is refused with 503.
func TestQuota_GuardClose(t *testing.T) {
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
	a := f.try(bearer(f.origin, mint(t, claims{})))
	wantAccepted(t, f, a)
	if err := f.g.Close(); err != nil {
		t.Fatal(err)
	}
	wantCountsNow(t, f.g, 0, 0, 0)
	_ = a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := a.conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("client read %v; want close 1001", err)
	}
	b := f.try(bearer(f.origin, mint(t, claims{})))
	if b.status != http.StatusServiceUnavailable {
		t.Fatalf("status after Close %d; want 503", b.status)
	}
}
