package wssec

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// errEvent returns the first event of kind with reason, waiting a bounded
// time for it.
func errEvent(t *testing.T, r *recorder, kind EventKind, reason string) Event {
	t.Helper()
	var ev Event
	eventually(t, string(kind)+" "+reason, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.events {
			if e.Kind == kind && e.Reason == reason {
				ev = e
				return true
			}
		}
		return false
	})
	return ev
}

// TestErrors_RefusedMessageSentinels: every refused message, over a real
// socket, gets its error frame, and the Err of its message_refused event
// matches the sentinel of the frame's code (ReadMessage never returns a
// refused message, so the event is where a program sees it).
func TestErrors_RefusedMessageSentinels(t *testing.T) {
	frozen := time.Now()
	cases := []struct {
		name     string
		opts     []Option
		first    string // a message sent, and acknowledged, before msg
		msg      string
		code     string // the error frame's code
		reason   string // the event's reason
		sentinel error
	}{
		{name: "payload fails its schema", msg: `{"action":"say","id":"i1","payload":{"text":""}}`,
			code: "invalid_message", reason: "invalid_payload", sentinel: ErrMessageInvalid},
		{name: "broken envelope", msg: `{"action":"marker","id":"i2",`,
			code: "invalid_message", reason: "invalid_envelope", sentinel: ErrMessageInvalid},
		{name: "unknown action", msg: `{"action":"nope","id":"u1"}`,
			code: "unknown_action", reason: "unknown_action", sentinel: ErrUnknownAction},
		{name: "channel rule", msg: `{"action":"subscribe","channel":"tenant:globex:orders","id":"f1"}`,
			code: "forbidden", reason: "forbidden", sentinel: ErrForbidden},
		{name: "policy", msg: `{"action":"say","id":"f2","payload":{"text":"deny"}}`,
			code: "forbidden", reason: "forbidden", sentinel: ErrForbidden},
		{name: "message rate", opts: []Option{WithMessageRate(rate.Limit(1), 1), WithClock(func() time.Time { return frozen })},
			first: `{"action":"marker","id":"r0","payload":{"n":1}}`, msg: `{"action":"marker","id":"r1","payload":{"n":1}}`,
			code: "rate_limited", reason: "rate_limited", sentinel: ErrRateLimited},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newConnHarness(t, tc.opts...)
			c := h.dialClient(t, "orders:read", false)
			if tc.first != "" {
				c.sendText(tc.first)
				c.expectFrame(wireFrame{Action: "ack", ID: "r0"})
			}
			c.sendText(tc.msg)
			id := ""
			if i := strings.Index(tc.msg, `"id":"`); i >= 0 {
				id = tc.msg[i+6 : i+6+strings.IndexByte(tc.msg[i+6:], '"')]
			}
			c.expectError(tc.code, id)
			ev := errEvent(t, h.events, EventMessageRefused, tc.reason)
			if !errors.Is(ev.Err, tc.sentinel) {
				t.Fatalf("event %s: Err %v, want one matching %v", tc.reason, ev.Err, tc.sentinel)
			}
			if tc.name == "policy" && !strings.Contains(ev.Err.Error(), connPolicySecret) {
				t.Fatalf("policy refusal: Err %q does not keep the Policy's error for the server", ev.Err)
			}
		})
	}
}

// TestErrors_MessageTooBig: an oversize message closes the socket with
// 1009, and what ReadMessage returns matches ErrMessageTooBig (and
// ErrClosed), as does its event's Err.
func TestErrors_MessageTooBig(t *testing.T) {
	h := newConnHarness(t, WithMaxMessageSize(1024))
	c := h.dialClient(t, "", false)
	c.marker("m1")
	c.sendText(`{"action":"marker","id":"big","payload":{"n":1,"pad":"` + strings.Repeat("x", 2048) + `"}}`)
	c.expectClose(CloseTooBig)
	err := h.waitEnded(t)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseTooBig || !errors.Is(err, ErrMessageTooBig) || !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadMessage ended with %v, want a CloseError 1009 matching ErrMessageTooBig and ErrClosed", err)
	}
	if errors.Is(err, ErrRateLimited) || errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("ReadMessage's %v matches a sentinel it was not closed for", err)
	}
	ev := errEvent(t, h.events, EventMessageRefused, "message_too_big")
	if !errors.Is(ev.Err, ErrMessageTooBig) {
		t.Fatalf("message_too_big event: Err %v, want ErrMessageTooBig", ev.Err)
	}
}

// TestErrors_ClientCloseMatchesNoSentinel: a close the client sent, even
// with 1009, is not a refusal of the server's: only ErrClosed matches.
func TestErrors_ClientCloseMatchesNoSentinel(t *testing.T) {
	h := newConnHarness(t)
	c := h.dialClient(t, "", false)
	c.marker("m1")
	msg := websocket.FormatCloseMessage(CloseTooBig, "too big for the client")
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	err := h.waitEnded(t)
	var ce *CloseError
	if !errors.As(err, &ce) || !ce.Remote || !errors.Is(err, ErrClosed) || errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("ReadMessage ended with %v, want a remote CloseError matching ErrClosed only", err)
	}
}

// TestErrors_HandshakeEventErr: a refused handshake's event carries the
// refusal, matching the same sentinel as what Upgrade returns.
func TestErrors_HandshakeEventErr(t *testing.T) {
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
	now := time.Now()
	cases := []struct {
		reason   string
		h        http.Header
		sentinel error
	}{
		{"origin_not_allowed", http.Header{"Origin": {"https://attacker.example"}}, ErrOriginNotAllowed},
		{"token_missing", f.headers(""), ErrTokenMissing},
		{"token_expired", f.headers(mint(t, claims{iat: now.Add(-10 * time.Minute), exp: now.Add(-5 * time.Minute)})), ErrTokenExpired},
	}
	for _, tc := range cases {
		if _, status, _ := f.dial(tc.h); status < 400 {
			t.Fatalf("%s: status %d, want a refusal", tc.reason, status)
		}
		ev := errEvent(t, f.events, EventHandshakeRefused, tc.reason)
		if !errors.Is(ev.Err, tc.sentinel) {
			t.Fatalf("%s event: Err %v, want one matching %v", tc.reason, ev.Err, tc.sentinel)
		}
	}
}

// TestErrors_InvalidUTF8: a text frame that is not UTF-8 closes the socket
// with 1007, and what ReadMessage returns matches ErrMessageInvalid (and
// ErrClosed), as does its event's Err.
func TestErrors_InvalidUTF8(t *testing.T) {
	h := newConnHarness(t)
	c := h.dialClient(t, "", false)
	c.marker("m1")
	c.sendText("{\"action\":\"marker\",\"id\":\"\xff\xfe\",\"payload\":{\"n\":1}}")
	c.expectClose(CloseInvalidData)
	err := h.waitEnded(t)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseInvalidData || !errors.Is(err, ErrMessageInvalid) || !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadMessage ended with %v, want a CloseError 1007 matching ErrMessageInvalid and ErrClosed", err)
	}
	ev := errEvent(t, h.events, EventMessageRefused, "invalid_utf8")
	if !errors.Is(ev.Err, ErrMessageInvalid) {
		t.Fatalf("invalid_utf8 event: Err %v, want ErrMessageInvalid", ev.Err)
	}
}

// readUntilClosed is a serve function that reads until ReadMessage fails,
// and the channel that receives that error.
func readUntilClosed() (func(context.Context, *Conn), <-chan error) {
	ended := make(chan error, 1)
	return func(ctx context.Context, c *Conn) {
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				ended <- err
				return
			}
		}
	}, ended
}

// waitErr waits a bounded time for the error ReadMessage ended with.
func waitErr(t *testing.T, ended <-chan error) error {
	t.Helper()
	select {
	case err := <-ended:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("ReadMessage did not return after the close")
		return nil
	}
}

// TestErrors_TokenExpiryClose: at the token's expiry the socket closes
// with 1008, and what ReadMessage returns matches ErrTokenExpired (and
// ErrClosed).
func TestErrors_TokenExpiryClose(t *testing.T) {
	serve, ended := readUntilClosed()
	f := newFixture(t, serve, WithHMACKey(testKey), WithInsecureTransport(), WithClockSkew(0), WithExpiryWarning(0))
	ws, st, err := f.dial(f.headers(shortLived(t, "alice", 2*time.Second)))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	if code, _ := closeFrame(t, ws); code != ClosePolicy {
		t.Fatalf("close at expiry %d, want 1008", code)
	}
	err = waitErr(t, ended)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ClosePolicy || !errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadMessage ended with %v, want a CloseError 1008 matching ErrTokenExpired and ErrClosed", err)
	}
}

// TestErrors_ReauthRefusalWrapsCause: a refused in-band re-authentication
// answers forbidden, and its event's Err matches ErrForbidden and the
// sentinel of the check that refused the token.
func TestErrors_ReauthRefusalWrapsCause(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClockSkew(0), WithExpiryWarning(0))
	ws, st, err := f.dial(f.headers(shortLived(t, "alice", time.Minute)))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	now := time.Now()
	expired := mint(t, claims{sub: "alice", tenant: "acme", iat: now.Add(-10 * time.Minute), exp: now.Add(-5 * time.Minute)})
	sendJSON(t, ws, map[string]any{"action": "auth", "id": "r1", "payload": map[string]string{"token": expired}})
	if m := readFrame(t, ws); m["action"] != "error" || m["id"] != "r1" {
		t.Fatalf("re-auth with an expired token answered %v, want an error frame", m)
	}
	ev := errEvent(t, f.events, EventMessageRefused, "token_expired")
	if !errors.Is(ev.Err, ErrForbidden) || !errors.Is(ev.Err, ErrTokenExpired) {
		t.Fatalf("refused re-auth event: Err %v, want one matching ErrForbidden and ErrTokenExpired", ev.Err)
	}
}

// TestErrors_RevocationClose: a socket closed because its subject was
// revoked ends ReadMessage with a CloseError 1008 that matches ErrRevoked
// (and ErrClosed), so the application can tell it from an expiry.
func TestErrors_RevocationClose(t *testing.T) {
	serve, ended := readUntilClosed()
	f := newFixture(t, serve, WithHMACKey(testKey), WithInsecureTransport())
	ws, st, err := f.dial(f.headers(mint(t, claims{sub: "alice"})))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	f.waitHandlers(1)
	if err := f.g.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if code, reason := closeFrame(t, ws); code != ClosePolicy || reason != "token revoked" {
		t.Fatalf("close after Revoke %d %q, want 1008 \"token revoked\"", code, reason)
	}
	err = waitErr(t, ended)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ClosePolicy || !errors.Is(err, ErrRevoked) || !errors.Is(err, ErrClosed) || errors.Is(err, ErrTokenExpired) {
		t.Fatalf("ReadMessage ended with %v, want a CloseError 1008 matching ErrRevoked and ErrClosed only", err)
	}
}

// TestErrors_StoreFailsAfterUpgradeClose: the store answers the handshake
// and then cannot say whether the just-upgraded socket's token was
// revoked; ReadMessage ends with a CloseError 1013 matching
// ErrStoreUnavailable.
func TestErrors_StoreFailsAfterUpgradeClose(t *testing.T) {
	serve, ended := readUntilClosed()
	f := newFixture(t, serve, WithHMACKey(testKey), WithInsecureTransport(), WithStore(&revokedFailsLater{ok: 1}))
	ws, st, err := f.dial(f.headers(mint(t, claims{sub: "alice"})))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	if code, _ := closeFrame(t, ws); code != CloseTryAgainLater {
		t.Fatalf("close %d, want 1013", code)
	}
	err = waitErr(t, ended)
	if !errors.Is(err, ErrStoreUnavailable) || !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadMessage ended with %v, want a CloseError matching ErrStoreUnavailable and ErrClosed", err)
	}
}

// TestErrors_BanCloseAndRefusal: a socket closed because its subject was
// banned ends ReadMessage with a CloseError 1008 "banned" matching
// ErrBanned (not ErrRevoked); the banned subject's next handshake gets
// 429 and its event's Err matches ErrBanned and ErrRateLimited. A
// Disconnect's close matches ErrClosed only.
func TestErrors_BanCloseAndRefusal(t *testing.T) {
	serve, ended := readUntilClosed()
	f := newFixture(t, serve, WithHMACKey(testKey), WithInsecureTransport(),
		WithBanPolicy(BanPolicy{Threshold: 3, Window: time.Minute, Duration: time.Minute}))
	ws, st, err := f.dial(f.headers(mint(t, claims{sub: "mallory"})))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	f.waitHandlers(1)
	if err := f.g.BanSubject(context.Background(), "mallory", time.Minute); err != nil {
		t.Fatal(err)
	}
	if code, reason := closeFrame(t, ws); code != ClosePolicy || reason != "banned" {
		t.Fatalf("close after BanSubject %d %q, want 1008 \"banned\"", code, reason)
	}
	err = waitErr(t, ended)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ClosePolicy || !errors.Is(err, ErrBanned) || !errors.Is(err, ErrClosed) || errors.Is(err, ErrRevoked) {
		t.Fatalf("ReadMessage ended with %v, want a CloseError 1008 matching ErrBanned and ErrClosed", err)
	}
	if _, st, _ := f.dial(f.headers(mint(t, claims{sub: "mallory"}))); st != http.StatusTooManyRequests {
		t.Fatalf("banned subject's handshake: %d, want 429", st)
	}
	ev := errEvent(t, f.events, EventHandshakeRefused, "banned")
	if !errors.Is(ev.Err, ErrBanned) || !errors.Is(ev.Err, ErrRateLimited) {
		t.Fatalf("banned handshake event: Err %v, want one matching ErrBanned and ErrRateLimited", ev.Err)
	}

	// A Disconnect is not a ban.
	serve2, ended2 := readUntilClosed()
	f2 := newFixture(t, serve2, WithHMACKey(testKey), WithInsecureTransport())
	ws2, st, err := f2.dial(f2.headers(mint(t, claims{sub: "alice"})))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	f2.waitHandlers(1)
	if err := f2.g.Disconnect(context.Background(), "alice", ""); err != nil {
		t.Fatal(err)
	}
	if code, _ := closeFrame(t, ws2); code != ClosePolicy {
		t.Fatalf("close after Disconnect %d, want 1008", code)
	}
	if err := waitErr(t, ended2); !errors.Is(err, ErrClosed) || errors.Is(err, ErrBanned) {
		t.Fatalf("ReadMessage after Disconnect ended with %v, want a CloseError matching ErrClosed only", err)
	}
}
