//go:build unix

package wssec

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// TestIdleSockets_NoGoroutineOfWssec: 1 000 idle sockets add at most
// 1 000 goroutines — the application's serve goroutines, each waiting in
// ReadMessage — and none of wssec's own: pings, the idle timeout, the
// maximum age and the token expiry run from timers, and nothing writes
// while nothing is queued. Loopback, bounded; skipped when the process
// cannot open the 2 000 descriptors it needs.
func TestIdleSockets_NoGoroutineOfWssec(t *testing.T) {
	const n = 1000
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 2*n+256 {
		if rl.Max >= 2*n+256 {
			old := rl.Cur
			rl.Cur = 2*n + 256
			if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
				t.Cleanup(func() { rl.Cur = old; _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) })
			}
		}
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < 2*n+256 {
			t.Skipf("open-file limit %d is below the %d this test needs (raise it with ulimit -n)", rl.Cur, 2*n+256)
		}
	}
	g, err := New(WithInsecureTransport(), WithHMACKey(testKey), quiet(),
		WithConnLimits(2*n, 2*n, 2*n), WithHandshakeRate(rate.Inf, 1),
		// Short enough that the timers run during the test, long enough
		// that no socket is closed by them.
		WithPingInterval(200*time.Millisecond), WithIdleTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan *Conn, n)
	srv := httptest.NewServer(g.Handler(func(ctx context.Context, c *Conn) {
		ready <- c
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	defer g.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	h := http.Header{}
	h.Set("Origin", srv.URL)
	h.Set("Authorization", "Bearer "+mint(t, claims{}))

	runtime.GC()
	before := runtime.NumGoroutine()
	clients := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, ws := range clients {
			ws.Close()
		}
	}()
	conns := make([]*Conn, 0, n)
	for range n {
		ws, _, err := websocket.DefaultDialer.Dial(url, h)
		if err != nil {
			t.Fatalf("dial #%d: %v", len(clients), err)
		}
		clients = append(clients, ws)
		conns = append(conns, <-ready)
	}
	// Let every ping timer fire at least once: the pings are written at
	// once (the clients' receive buffers have room) and no drainer stays.
	time.Sleep(500 * time.Millisecond)
	var after int
	for range 50 { // net/http's handler goroutines finish just after the upgrade
		runtime.Gosched()
		after = runtime.NumGoroutine()
		if after-before <= n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d idle sockets: %d goroutines before, %d after (+%d)", n, before, after, after-before)
	if after-before > n {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d idle sockets added %d goroutines, want at most %d (the serve goroutines)\n%s", n, after-before, n, firstStacks(string(buf), 40))
	}
	for _, c := range conns {
		if c.closedErr() != nil {
			t.Fatalf("a socket was closed while idle: %v", c.closedErr())
		}
	}
}

// firstStacks returns the first k goroutine stacks of a runtime.Stack dump.
func firstStacks(s string, k int) string {
	parts := strings.SplitN(s, "\n\n", k+1)
	if len(parts) > k {
		parts = parts[:k]
	}
	return strings.Join(parts, "\n\n")
}
