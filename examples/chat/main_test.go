package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quietLogger drops the Guard's security log lines: the tests assert on
// the Observer instead.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startApp builds the whole app in-process behind an httptest server on
// 127.0.0.1. wrap, if not nil, wraps the app's handler.
func startApp(t *testing.T, cfg config, wrap func(http.Handler) http.Handler) (*app, *httptest.Server) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	a, err := newApp(cfg)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	h := a.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		a.Close()
		srv.Close()
	})
	return a, srv
}

type session struct {
	Token  string `json:"token"`
	Ticket string `json:"ticket"`
	cookie *http.Cookie
}

// login posts to /login as the page does.
func login(t *testing.T, base, user, tenant string) session {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user": user, "tenant": tenant})
	req, _ := http.NewRequest(http.MethodPost, base+"/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("login %s@%s: %d %s", user, tenant, resp.StatusCode, b)
	}
	var s session
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			s.cookie = c
		}
	}
	if s.Token == "" || s.Ticket == "" || s.cookie == nil {
		t.Fatalf("login returned %+v", s)
	}
	return s
}

func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/ws" }

// dial opens a socket with the given Origin and credentials (a bearer
// token as subprotocol, when token is not empty).
func dial(base, origin, token string, extra http.Header) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	for k, v := range extra {
		h[k] = v
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"wssec.v1"}}
	if token != "" {
		d.Subprotocols = append(d.Subprotocols, "bearer."+token)
	}
	return d.Dial(wsURL(base), h)
}

// mustDial is dial for a handshake that must succeed.
func mustDial(t *testing.T, base, token string) *websocket.Conn {
	t.Helper()
	c, resp, err := dial(base, base, token, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// frame is what the server sends.
type frame struct {
	Action  string `json:"action"`
	Channel string `json:"channel"`
	ID      string `json:"id"`
	Payload struct {
		From string `json:"from"`
		Text string `json:"text"`
	} `json:"payload"`
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func send(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteJSON(v); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// next reads frames until one with the given action arrives.
func next(t *testing.T, c *websocket.Conn, action string) frame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f frame
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v", action, err)
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("frame %s: %v", b, err)
		}
		if f.Action == action {
			return f
		}
		if f.Action == "error" {
			t.Fatalf("waiting for %q: got error frame %s", action, b)
		}
	}
}

// closeCode reads until the connection closes and returns the close code.
func closeCode(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("connection ended without a close frame: %v", err)
	}
}

func subscribe(t *testing.T, c *websocket.Conn, channel string) {
	t.Helper()
	send(t, c, map[string]string{"action": "subscribe", "channel": channel, "id": "s-" + channel})
	f := next(t, c, "subscribed")
	if f.Channel != channel {
		t.Fatalf("subscribed to %q, want %q", f.Channel, channel)
	}
}

// eventually waits up to 5 s for cond: an Observer hears of a refused
// message just after the client is sent its answer.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf("%s: not true after 5 s", what)
}
