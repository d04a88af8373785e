package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssec/wssec/internal/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCluster runs the example against a real redis-server: two instances
// enforce one per-subject limit of 2 sockets, a revocation on one closes
// the subject's sockets on both, and the example shuts down with 1001.
func TestCluster(t *testing.T) {
	addr, _, _ := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan []string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, addr, []string{"127.0.0.1:0", "127.0.0.1:0"}, slog.New(slog.DiscardHandler), func(u []string) { urls <- u })
	}()
	var base []string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the instances did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	post := func(url string) string {
		t.Helper()
		resp, err := http.Post(url, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
		}
		return strings.TrimSpace(string(b))
	}
	tok := post(base[0] + "/token?sub=alice")
	dial := func(i int) (*websocket.Conn, int) {
		t.Helper()
		h := http.Header{"Authorization": {"Bearer " + tok}}
		c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base[i], "http")+"/ws", h)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c, http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatal(err)
		}
		return nil, resp.StatusCode
	}
	a, _ := dial(0)
	b, _ := dial(1)
	if a == nil || b == nil {
		t.Fatal("alice could not open one socket on each instance")
	}
	if _, status := dial(1); status != http.StatusTooManyRequests {
		t.Fatalf("a third socket for alice: %d, want 429 (the limit of 2 is shared)", status)
	}

	post(base[1] + "/revoke?sub=alice")
	for i, c := range []*websocket.Conn{a, b} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Fatalf("alice's socket on instance %d after the revocation: %v, want close 1008", i+1, err)
		}
	}
	if _, status := dial(0); status != http.StatusUnauthorized {
		t.Fatalf("the revoked token: %d, want 401", status)
	}
}
