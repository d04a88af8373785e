package wssec

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestFalseAttackSignal_PeerReset: a client whose TCP connection is reset
// or simply ends (no close frame) is an ordinary disconnect: one
// conn_closed event with reason closed_by_peer and code 1006, logged at
// INFO, and never a message_refused protocol_error (which feeds the
// "protocol abuse" alerts). A real protocol violation is still one.
func TestFalseAttackSignal_PeerReset(t *testing.T) {
	cases := []struct {
		name string
		// end makes the client vanish (or misbehave) after the handshake.
		end func(t *testing.T, c *websocket.Conn)
		// wantCode and wantReason ("" for any) are the conn_closed event's.
		wantCode   int
		wantReason string
		protocol   bool // a message_refused protocol_error is expected
	}{
		{"reset while idle", func(t *testing.T, c *websocket.Conn) {
			reset(t, c)
		}, 1006, "closed_by_peer", false},
		{"reset mid-frame", func(t *testing.T, c *websocket.Conn) {
			// A text frame header announcing 100 masked bytes, and 3 of them.
			raw := []byte{0x81, 0x80 | 100, 1, 2, 3, 4, 'a', 'b', 'c'}
			if _, err := c.NetConn().Write(raw); err != nil {
				t.Fatal(err)
			}
			reset(t, c)
		}, 1006, "closed_by_peer", false},
		{"reset after sending close", func(t *testing.T, c *websocket.Conn) {
			// Half a close frame (header only), then the reset.
			if _, err := c.NetConn().Write([]byte{0x88, 0x80 | 2, 1, 2, 3, 4}); err != nil {
				t.Fatal(err)
			}
			reset(t, c)
		}, 1006, "closed_by_peer", false},
		{"EOF without close frame", func(t *testing.T, c *websocket.Conn) {
			c.NetConn().Close()
		}, 1006, "closed_by_peer", false},
		{"protocol violation (RSV1 without compression)", func(t *testing.T, c *websocket.Conn) {
			// FIN|RSV1|text, masked, empty payload: RFC 6455 §5.2 says fail.
			if _, err := c.NetConn().Write([]byte{0xC1, 0x80, 1, 2, 3, 4}); err != nil {
				t.Fatal(err)
			}
		}, 1002, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
			c, status, err := f.dial(f.headers(mint(t, claims{})))
			if err != nil {
				t.Fatalf("dial: %d %v", status, err)
			}
			if !f.handlerRan() {
				t.Fatal("handler did not run")
			}
			tc.end(t, c)
			var closed Event
			eventually(t, "conn_closed", func() bool {
				f.events.mu.Lock()
				defer f.events.mu.Unlock()
				for _, e := range f.events.events {
					if e.Kind == EventConnClosed {
						closed = e
						return true
					}
				}
				return false
			})
			if closed.CloseCode != tc.wantCode || (tc.wantReason != "" && closed.Reason != tc.wantReason) {
				t.Errorf("conn_closed: code %d reason %q (detail %q), want %d %q", closed.CloseCode, closed.Reason, closed.Detail, tc.wantCode, tc.wantReason)
			}
			if got := f.events.has(EventMessageRefused, "protocol_error"); got != tc.protocol {
				t.Errorf("protocol_error reported: %v, want %v (refusals %v)", got, tc.protocol, f.events.reasons(EventMessageRefused))
			}
			if !tc.protocol {
				for _, line := range strings.Split(f.logs.String(), "\n") {
					if strings.Contains(line, `"level":"WARN"`) && !strings.Contains(line, "config_warning") {
						t.Errorf("a disconnect was logged at WARN: %s", line)
					}
					if strings.Contains(line, "conn_closed") && !strings.Contains(line, `"level":"INFO"`) {
						t.Errorf("conn_closed not at INFO: %s", line)
					}
				}
			}
		})
	}
}

// reset closes c's TCP connection with SO_LINGER 0, so the kernel sends
// an RST instead of a FIN.
func reset(t *testing.T, c *websocket.Conn) {
	t.Helper()
	tc, ok := c.NetConn().(*net.TCPConn)
	if !ok {
		t.Fatalf("client conn is %T, not TCP", c.NetConn())
	}
	if err := tc.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	tc.Close()
}

// TestFalseAttackSignal_ResetDuringServerClose: a peer that resets while
// the server is closing (here: a handler's Close, then the client vanishes
// instead of answering) is the server's close, not a protocol error.
func TestFalseAttackSignal_ResetDuringServerClose(t *testing.T) {
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		c.Close(CloseNormal, "bye")
		c.ReadMessage(ctx)
	}, WithInsecureTransport(), WithHMACKey(testKey))
	c, status, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.NextReader() // the close frame
	reset(t, c)
	eventually(t, "conn_closed", func() bool { return f.events.has(EventConnClosed, "closed_by_server") })
	if f.events.has(EventMessageRefused, "protocol_error") {
		t.Errorf("protocol_error reported for a reset during the server's close: %v", f.events.reasons(EventMessageRefused))
	}
}
