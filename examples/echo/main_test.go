package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEcho drives the example the way its page does: fetch a token, open
// the socket with the bearer subprotocol, say something, read the echo.
func TestEcho(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	g, mux, err := newServer(key, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer g.Close()

	resp, err := http.Post(srv.URL+"/token", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body.Token == "" {
		t.Fatal("no token")
	}

	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	h := http.Header{"Origin": {srv.URL}}
	d := websocket.Dialer{Subprotocols: []string{"wssec.v1", "bearer." + body.Token}}
	c, resp, err := d.Dial(url, h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "wssec.v1" {
		t.Fatalf("selected subprotocol %q, want wssec.v1", got)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"action":"say","id":"1","payload":{"text":"hello"}}`))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"action":"echo","id":"1","payload":{"text":"hello"}}`; string(msg) != want {
		t.Fatalf("got %s, want %s", msg, want)
	}

	// Without a token the same page origin is refused with 401.
	_, resp, err = websocket.DefaultDialer.Dial(url, h)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without token: err=%v resp=%v, want 401", err, resp)
	}
}
