package wssec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readFrame reads the next text frame as a generic JSON object.
func readFrame(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

// shortLived mints a token for sub that expires in d (JWT times are whole
// seconds).
func shortLived(t *testing.T, sub string, d time.Duration) string {
	return mint(t, claims{sub: sub, tenant: "acme", exp: time.Now().Add(d)})
}

func sendJSON(t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

func TestExpiry_ClosesWith1008(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClockSkew(0), WithExpiryWarning(0))
	ws, st, err := f.dial(f.headers(shortLived(t, "alice", 2*time.Second)))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	if code, reason := closeFrame(t, ws); code != ClosePolicy || reason != "token expired" {
		t.Fatalf("close at expiry %d %q, want 1008 \"token expired\"", code, reason)
	}
	if !f.events.has(EventMessageRefused, "token_expired") {
		t.Fatalf("no token_expired event: %v", f.events.reasons(EventMessageRefused))
	}
}

func TestReauth_FreshTokenKeepsSocketOpen(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClockSkew(0), WithExpiryWarning(0))
	first := time.Now().Add(2 * time.Second)
	ws, st, err := f.dial(f.headers(shortLived(t, "alice", 2*time.Second)))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	c := <-f.ran
	sendJSON(t, ws, map[string]any{"action": "auth", "id": "r1", "payload": map[string]string{"token": shortLived(t, "alice", time.Minute)}})
	m := readFrame(t, ws)
	if m["action"] != "auth" || m["id"] != "r1" {
		t.Fatalf("re-auth answer %v", m)
	}
	if !c.ExpiresAt().After(first.Add(30 * time.Second)) {
		t.Fatalf("deadline did not move: %v", c.ExpiresAt())
	}
	// Past the first expiry the socket still answers.
	for time.Now().Before(first.Add(time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	sendJSON(t, ws, map[string]any{"action": "ping", "id": "p"})
	if m := readFrame(t, ws); m["action"] != "pong" {
		t.Fatalf("after the first expiry: %v", m)
	}
	if !f.events.has(EventReauthenticated, "") {
		t.Fatal("no reauthenticated event")
	}
}

func TestReauth_OtherSubjectRefusedAndOldDeadlineStands(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClockSkew(0), WithExpiryWarning(0))
	ws, st, err := f.dial(f.headers(shortLived(t, "alice", 2*time.Second)))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	c := <-f.ran
	deadline := c.ExpiresAt()
	mallory := shortLived(t, "mallory", time.Minute)
	sendJSON(t, ws, map[string]any{"action": "auth", "id": "r2", "payload": map[string]string{"token": mallory}})
	m := readFrame(t, ws)
	if m["action"] != "error" || m["id"] != "r2" {
		t.Fatalf("re-auth with another subject's token answered %v", m)
	}
	if e, _ := m["error"].(map[string]any); e["code"] != "forbidden" {
		t.Fatalf("error code %v, want forbidden", m["error"])
	}
	if got := c.Principal().Subject; got != "alice" {
		t.Fatalf("principal became %q", got)
	}
	if !c.ExpiresAt().Equal(deadline) {
		t.Fatal("a refused re-auth moved the deadline")
	}
	if code := closeCode(t, ws); code != ClosePolicy {
		t.Fatalf("close code at the first expiry %d, want 1008", code)
	}
	if strings.Contains(f.logs.String(), mallory) {
		t.Fatal("the refused token appears in the logs")
	}
}

func TestReauth_ExpiringWarning(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClockSkew(0), WithExpiryWarning(2*time.Second))
	ws, _, err := f.dial(f.headers(shortLived(t, "alice", 3*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	m := readFrame(t, ws)
	if m["action"] != "token_expiring" {
		t.Fatalf("first frame %v, want token_expiring", m)
	}
	p, _ := m["payload"].(map[string]any)
	if n, _ := p["in_seconds"].(float64); n < 1 || n > 3 {
		t.Fatalf("in_seconds = %v", p["in_seconds"])
	}
}

func TestReauth_RevokedTokenRefused(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport())
	ws, _, err := f.dial(f.headers(mint(t, claims{sub: "alice", jti: "live"})))
	if err != nil {
		t.Fatal(err)
	}
	<-f.ran
	if err := f.g.RevokeToken(t.Context(), "old", time.Time{}); err != nil {
		t.Fatal(err)
	}
	sendJSON(t, ws, map[string]any{"action": "auth", "id": "r3", "payload": map[string]string{"token": mint(t, claims{sub: "alice", jti: "old"})}})
	if m := readFrame(t, ws); m["action"] != "error" {
		t.Fatalf("re-auth with a revoked token answered %v", m)
	}
}

// TestReauth_OtherTenantRefused: a fresh token for the same subject but
// another tenant does not re-authenticate the socket.
func TestReauth_OtherTenantRefused(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithExpiryWarning(0))
	ws, st, err := f.dial(f.headers(mint(t, claims{sub: "alice", tenant: "acme"})))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	c := <-f.ran
	sendJSON(t, ws, map[string]any{"action": "auth", "id": "r3", "payload": map[string]string{"token": mint(t, claims{sub: "alice", tenant: "globex"})}})
	m := readFrame(t, ws)
	if e, _ := m["error"].(map[string]any); m["action"] != "error" || m["id"] != "r3" || e["code"] != "forbidden" {
		t.Fatalf("re-auth into another tenant answered %v", m)
	}
	if got := c.Principal().Tenant; got != "acme" {
		t.Fatalf("tenant became %q", got)
	}
	if !f.events.has(EventMessageRefused, "reauth_subject") {
		t.Fatalf("no reauth_subject event: %v", f.events.reasons(EventMessageRefused))
	}
}

// TestReauth_StoreDownRefusesFreshToken: the store answers the handshake
// and Upgrade's re-check, then cannot say whether the fresh token sent
// in-band is revoked. The re-authentication is refused (fail closed, as a
// handshake would get 503), the socket keeps the token it had, and the
// outage is reported.
func TestReauth_StoreDownRefusesFreshToken(t *testing.T) {
	store := &revokedFailsLater{ok: 2}
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithStore(store))
	ws, st, err := f.dial(f.headers(shortLived(t, "alice", time.Minute)))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	c := <-f.ran
	deadline := c.ExpiresAt()
	sendJSON(t, ws, map[string]any{"action": "auth", "id": "r4", "payload": map[string]string{"token": shortLived(t, "alice", 10*time.Minute)}})
	m := readFrame(t, ws)
	if e, _ := m["error"].(map[string]any); m["action"] != "error" || m["id"] != "r4" || e["code"] != "forbidden" {
		t.Fatalf("re-auth while the store is down answered %v, want error forbidden", m)
	}
	if !c.ExpiresAt().Equal(deadline) {
		t.Fatal("a re-auth the store could not check moved the deadline")
	}
	if !f.events.has(EventMessageRefused, "store_error") || !f.events.has(EventStoreUnavailable, storeCheckRevocation) {
		t.Fatalf("events: refused %v, store %v; want store_error and store_unavailable revocation",
			f.events.reasons(EventMessageRefused), f.events.reasons(EventStoreUnavailable))
	}
	if ev := errEvent(t, f.events, EventMessageRefused, "store_error"); !errors.Is(ev.Err, ErrStoreUnavailable) || !errors.Is(ev.Err, ErrForbidden) {
		t.Fatalf("refused re-auth event: Err %v, want one matching ErrStoreUnavailable and ErrForbidden", ev.Err)
	}
	sendJSON(t, ws, map[string]any{"action": "ping", "id": "p"})
	if m := readFrame(t, ws); m["action"] != "pong" {
		t.Fatalf("the socket after the refused re-auth: %v, want pong", m)
	}
}
