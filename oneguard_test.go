package wssec

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// chiStyle serves g.Handler at /ws behind a middleware chain that ends in
// g.Wrap, the way a chi router is set up (r.Use(logger); r.Use(g.Wrap);
// r.Handle("/ws", g.Handler(serve))), without importing chi.
func chiStyle(t *testing.T, opts ...Option) (g *Guard, wsURL, origin string) {
	t.Helper()
	g, err := New(append([]Option{WithHMACKey(testKey), WithInsecureTransport(),
		WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	use := func(h http.Handler, mws ...func(http.Handler) http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
	requestID := func(next http.Handler) http.Handler { // any middleware of the app's
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), struct{ k string }{"rid"}, "1")))
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", g.Handler(func(ctx context.Context, c *Conn) {
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				return
			}
		}
	}))
	srv := httptest.NewServer(use(mux, requestID, g.Wrap))
	t.Cleanup(func() {
		g.Close()
		srv.Close()
	})
	return g, "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", srv.URL
}

// dialStatus opens a socket (kept open until the test ends) and returns
// the handshake status.
func dialStatus(t *testing.T, url, origin, token string) int {
	t.Helper()
	h := http.Header{}
	h.Set("Origin", origin)
	h.Set("Authorization", "Bearer "+token)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(url, h)
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDoubleGuard_WrapThenHandler: r.Use(g.Wrap) in front of g.Handler
// once ran every guard twice, so a handshake burst of 4 admitted 2 and a
// per-subject quota of 8 admitted 7. One guard per request: exactly N.
func TestDoubleGuard_WrapThenHandler(t *testing.T) {
	const n = 4
	t.Run("handshake burst", func(t *testing.T) {
		frozen := time.Now() // every handshake at one instant: no refill
		_, url, origin := chiStyle(t, WithHandshakeRate(0.001, n), WithClock(func() time.Time { return frozen }))
		tok := mint(t, claims{})
		admitted := 0
		for range n + 2 {
			switch st := dialStatus(t, url, origin, tok); st {
			case http.StatusSwitchingProtocols:
				admitted++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("status %d", st)
			}
		}
		if admitted != n {
			t.Fatalf("a burst of %d admitted %d handshakes", n, admitted)
		}
	})
	t.Run("per-subject quota", func(t *testing.T) {
		g, url, origin := chiStyle(t, WithConnLimits(100, n, 1000))
		tok := mint(t, claims{sub: "alice"})
		admitted := 0
		for range n + 2 {
			switch st := dialStatus(t, url, origin, tok); st {
			case http.StatusSwitchingProtocols:
				admitted++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("status %d", st)
			}
		}
		if admitted != n {
			t.Fatalf("a per-subject quota of %d admitted %d sockets", n, admitted)
		}
		// The client has its 101 before the server registers the Conn:
		// wait (bounded) for the registrations rather than read once.
		live := func() int {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.conns)
		}
		eventually(t, "every admitted socket registered", func() bool { return live() == n })
	})
}
