package main

import (
	"encoding/json"
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

// TestMetrics makes one good and one cross-site handshake, echoes one
// message, and finds all of it on /metrics.
func TestMetrics(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	g, handler, err := newServer(key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer g.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}

	resp, err := client.Post(srv.URL+"/token", "", nil)
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
	d := websocket.Dialer{Subprotocols: []string{"wssec.v1", "bearer." + body.Token}, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, http.Header{"Origin": {srv.URL}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	resp.Body.Close()
	c.WriteMessage(websocket.TextMessage, []byte(`{"action":"say","id":"1","payload":{"text":"hello"}}`))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || !strings.Contains(string(msg), "hello") {
		t.Fatalf("echo: %s, %v", msg, err)
	}

	// A page on another site, even with a valid token, is refused.
	_, resp, err = d.Dial(url, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site dial: err=%v resp=%v, want 403", err, resp)
	}
	resp.Body.Close()

	metrics := func() string {
		resp, err := client.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %d, %v", resp.StatusCode, err)
		}
		return string(b)
	}
	expect := func(lines ...string) {
		t.Helper()
		var m string
		deadline := time.Now().Add(5 * time.Second)
		for {
			m = metrics()
			missing := ""
			for _, l := range lines {
				if !strings.Contains(m, "\n"+l+"\n") {
					missing = l
					break
				}
			}
			if missing == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/metrics lacks %q:\n%s", missing, m)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	expect(
		`wssec_handshakes_total{outcome="accepted",reason="ok"} 1`,
		`wssec_handshakes_total{outcome="refused",reason="origin_not_allowed"} 1`,
		`wssec_handshakes_by_origin_total{origin_pattern="other",outcome="refused"} 1`,
		`wssec_messages_total{action="say",channel_rule="none",outcome="accepted",reason="ok"} 1`,
		`wssec_connections_active 1`,
		`wssec_config_warnings_total{reason="insecure_transport"} 1`,
	)

	// A normal close shows up with its code and duration.
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
	}
	expect(
		`wssec_connections_closed_total{code="1000"} 1`,
		`wssec_connections_active 0`,
		`wssec_connection_duration_seconds_count 1`,
	)
	if m := metrics(); strings.Contains(m, "evil") || strings.Contains(m, body.Token) {
		t.Fatal("/metrics shows client-chosen data")
	}
}
