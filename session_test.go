package wssec

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// closeCode waits for the server to close ws and returns the close code.
func closeCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	code, _ := closeFrame(t, ws)
	return code
}

// closeFrame reads until the server's close frame and returns its code
// and reason.
func closeFrame(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		t.Fatalf("read ended without a close frame: %v", err)
	}
}

// TestRevokeIssuedBefore_KeepsNewerTokens: revoking a subject's tokens
// issued before T closes the sockets that hold such a token and refuses
// it again, while a token of the same subject issued after T still works.
func TestRevokeIssuedBefore_KeepsNewerTokens(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithMaxTokenLifetime(2*time.Hour))
	now := time.Now()
	oldTok := mint(t, claims{sub: "alice", iat: now.Add(-time.Hour), exp: now.Add(time.Hour)})
	newTok := mint(t, claims{sub: "alice", iat: now, exp: now.Add(time.Hour)})
	oldWS, st, err := f.dial(f.headers(oldTok))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	newWS, st, err := f.dial(f.headers(newTok))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	if err := f.g.RevokeIssuedBefore(context.Background(), "alice", now.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if code, reason := closeFrame(t, oldWS); code != ClosePolicy || reason != "token revoked" {
		t.Fatalf("socket with the old token closed with %d %q, want 1008 \"token revoked\"", code, reason)
	}
	sendJSON(t, newWS, map[string]any{"action": "ping", "id": "p"})
	if m := readFrame(t, newWS); m["action"] != "pong" {
		t.Fatalf("socket with the newer token: %v, want pong", m)
	}
	if _, st, _ := f.dial(f.headers(oldTok)); st != http.StatusUnauthorized {
		t.Fatalf("old token after revocation: %d, want 401", st)
	}
	if _, st, err := f.dial(f.headers(newTok)); err != nil {
		t.Fatalf("newer token after revocation: %d %v", st, err)
	}
}

func TestRevoke_ClosesOnlyThatSubjectAndRefusesOldToken(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport())
	aliceTok := mint(t, claims{sub: "alice", iat: time.Now().Add(-time.Second)})
	alice1, st, err := f.dial(f.headers(aliceTok))
	if err != nil {
		t.Fatalf("alice dial: %d %v", st, err)
	}
	alice2, _, err := f.dial(f.headers(aliceTok))
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := f.dial(f.headers(mint(t, claims{sub: "bob"})))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		f.handlerRan()
	}

	if err := f.g.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	for _, ws := range []*websocket.Conn{alice1, alice2} {
		if code := closeCode(t, ws); code != ClosePolicy {
			t.Fatalf("alice's socket closed with %d, want 1008", code)
		}
	}
	// Bob is untouched: a ping round trip still works.
	bob.WriteMessage(websocket.TextMessage, []byte(`{"action":"ping","id":"b"}`))
	bob.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := bob.ReadMessage(); err != nil || !strings.Contains(string(msg), `"pong"`) {
		t.Fatalf("bob after alice's revocation: %s %v", msg, err)
	}
	// The old token is refused at the handshake.
	if _, st, _ := f.dial(f.headers(aliceTok)); st != http.StatusUnauthorized {
		t.Fatalf("handshake with revoked token: %d, want 401", st)
	}
	if !f.events.has(EventHandshakeRefused, "token_revoked") {
		t.Fatalf("no token_revoked event; got %v", f.events.reasons(EventHandshakeRefused))
	}
	// A token issued after the revocation is accepted.
	fresh := mint(t, claims{sub: "alice", iat: time.Now().Add(time.Second)})
	if _, st, err := f.dial(f.headers(fresh)); err != nil {
		t.Fatalf("fresh token after revocation: %d %v", st, err)
	}
}

func TestRevokeToken_ByJTI(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport())
	tok := mint(t, claims{sub: "carol", jti: "t-1"})
	other := mint(t, claims{sub: "carol", jti: "t-2"})
	ws, _, err := f.dial(f.headers(tok))
	if err != nil {
		t.Fatal(err)
	}
	keep, _, err := f.dial(f.headers(other))
	if err != nil {
		t.Fatal(err)
	}
	f.handlerRan()
	f.handlerRan()
	if err := f.g.RevokeToken(context.Background(), "t-1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(t, ws); code != ClosePolicy {
		t.Fatalf("socket of revoked jti closed with %d, want 1008", code)
	}
	keep.WriteMessage(websocket.TextMessage, []byte(`{"action":"ping"}`))
	keep.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := keep.ReadMessage(); err != nil {
		t.Fatalf("socket of another jti was affected: %v", err)
	}
	if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
		t.Fatalf("revoked jti at handshake: %d, want 401", st)
	}
}

func TestSingleUseTokens_ReplayRefused(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithSingleUseTokens(0))
	tok := mint(t, claims{jti: "once"})
	if _, st, err := f.dial(f.headers(tok)); err != nil {
		t.Fatalf("first use: %d %v", st, err)
	}
	if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
		t.Fatalf("replayed token: %d, want 401", st)
	}
	if !f.events.has(EventHandshakeRefused, "token_replay") {
		t.Fatalf("no token_replay event: %v", f.events.reasons(EventHandshakeRefused))
	}
	if _, st, _ := f.dial(f.headers(mint(t, claims{}))); st != http.StatusUnauthorized {
		t.Fatalf("token without jti under single use: %d, want 401", st)
	}
}

func TestTickets_SingleUseExpiryAndNeverLogged(t *testing.T) {
	clk := newFakeClock()
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now))
	p := &Principal{Subject: "dave", Tenant: "acme", ExpiresAt: clk.now().Add(5 * time.Minute)}
	ctx := context.Background()

	tk, err := f.g.IssueTicket(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(tk) != ticketLen {
		t.Fatalf("ticket length %d, want %d (128 bits)", len(tk), ticketLen)
	}
	withTicket := func(tk string) int {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, _ := d.Dial(f.url+"?ticket="+tk, http.Header{"Origin": {f.origin}})
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
		if resp == nil {
			return 0
		}
		return resp.StatusCode
	}
	if st := withTicket(tk); st != http.StatusSwitchingProtocols {
		t.Fatalf("first redemption: %d, want 101", st)
	}
	c := <-f.ran
	if got := c.Principal(); got.Subject != "dave" || got.Tenant != "acme" {
		t.Fatalf("principal from ticket = %+v", got)
	}
	redeemed := false
	for _, e := range f.events.all() {
		redeemed = redeemed || e.Kind == EventHandshakeAccepted && e.Subject == "dave" && e.Detail == "via ticket"
	}
	if !redeemed {
		t.Fatalf("no handshake_accepted event via ticket: %v", f.events.all())
	}
	if st := withTicket(tk); st != http.StatusUnauthorized {
		t.Fatalf("second redemption: %d, want 401", st)
	}

	late, err := f.g.IssueTicket(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(31 * time.Second)
	if st := withTicket(late); st != http.StatusUnauthorized {
		t.Fatalf("ticket after 31 s: %d, want 401", st)
	}
	if st := withTicket("AAAAAAAAAAAAAAAAAAAAAA"); st != http.StatusUnauthorized {
		t.Fatalf("forged ticket: %d, want 401", st)
	}
	for _, s := range []string{tk, late} {
		if strings.Contains(f.logs.String(), s) {
			t.Fatal("a ticket appears in the logs")
		}
	}
	if !f.events.has(EventHandshakeRefused, "ticket_invalid") {
		t.Fatalf("no ticket_invalid event: %v", f.events.reasons(EventHandshakeRefused))
	}
}

func TestTickets_BoundToIP(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithTickets(30*time.Second, 10, true))
	p := &Principal{Subject: "erin", ExpiresAt: time.Now().Add(time.Minute)}
	if _, err := f.g.IssueTicket(context.Background(), p); err == nil {
		t.Fatal("IssueTicket without a request succeeded with IP binding on")
	}
	r := httptest.NewRequest("POST", "/login", nil)
	r.RemoteAddr = "192.0.2.7:5555" // another client than the test's dialer
	tk, err := f.g.IssueTicketForRequest(r, p)
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	_, resp, _ := d.Dial(f.url+"?ticket="+tk, http.Header{"Origin": {f.origin}})
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("ticket redeemed from another IP: %v, want 401", resp)
	}
}

// TestSessionStoresBounded inserts a million entries into the replay
// cache and the ticket store and checks neither outgrows its capacity.
func TestSessionStoresBounded(t *testing.T) {
	clk := newFakeClock()
	const capacity = 5000
	g, err := New(WithHMACKey(testKey), WithClock(clk.now), WithSingleUseTokens(capacity), WithTickets(30*time.Second, capacity, false))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	p := &Principal{Subject: "u", ExpiresAt: clk.now().Add(10 * time.Minute)}
	var refusedReplay, refusedTickets int
	for i := 0; i < 1_000_000; i++ {
		if i%100 == 0 {
			clk.advance(time.Second) // tickets live 30 s: some expire as we go
		}
		if i%2 == 0 {
			pp := &Principal{Subject: "u", ID: strconv.Itoa(i), ExpiresAt: clk.now().Add(10 * time.Minute)}
			if ref := g.admit(context.Background(), pp, Event{}); ref != nil {
				refusedReplay++
			}
		} else if _, err := g.issueTicket(context.Background(), p, netip.Addr{}); err != nil {
			refusedTickets++
		}
	}
	if n := g.sess.replay.Len(); n > capacity {
		t.Fatalf("replay cache holds %d > %d", n, capacity)
	}
	if n := g.sess.tickets.Len(); n > capacity {
		t.Fatalf("ticket store holds %d > %d", n, capacity)
	}
	if refusedReplay == 0 {
		t.Fatal("a full replay cache never refused (it must fail closed, not forget ids)")
	}
}

// jwksServer publishes a mutable key set and counts requests.
type jwksServer struct {
	mu   sync.Mutex
	set  jwk.Set
	down bool
	hits atomic.Int64
	srv  *httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{set: jwk.NewSet()}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.hits.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode(j.set)
	}))
	t.Cleanup(j.srv.Close)
	return j
}

// addKey generates an ES256 key with kid, publishes its public half and
// returns the private key.
func (j *jwksServer) addKey(t *testing.T, kid string) *ecdsa.PrivateKey {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.Import(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub.Set(jwk.KeyIDKey, kid)
	pub.Set(jwk.AlgorithmKey, jwa.ES256())
	j.mu.Lock()
	defer j.mu.Unlock()
	j.set.AddKey(pub)
	return priv
}

func (j *jwksServer) removeKey(kid string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if k, ok := j.set.LookupKeyID(kid); ok {
		j.set.RemoveKey(k)
	}
}

func (j *jwksServer) setDown(d bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.down = d
}

// mintES signs an ES256 token with kid in its header.
func mintES(t *testing.T, priv *ecdsa.PrivateKey, kid string, c claims) string {
	t.Helper()
	k, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	k.Set(jwk.KeyIDKey, kid)
	return mintWith(t, jwa.ES256(), k, c)
}

func TestJWKS_KeyRotation(t *testing.T) {
	js := newJWKSServer(t)
	k1 := js.addKey(t, "k1")
	clk := newFakeClock()
	f := newFixture(t, nil, WithJWKS(js.srv.URL), WithInsecureTransport(), WithClock(clk.now))
	ctx := context.Background()

	if _, st, err := f.dial(f.headers(mintES(t, k1, "k1", claims{}))); err != nil {
		t.Fatalf("token of the published key: %d %v", st, err)
	}

	// A newly published key is accepted without a restart, after one
	// rate-limited refetch.
	k2 := js.addKey(t, "k2")
	clk.advance(11 * time.Second)
	before := js.hits.Load()
	if _, st, err := f.dial(f.headers(mintES(t, k2, "k2", claims{}))); err != nil {
		t.Fatalf("token of a newly published key: %d %v", st, err)
	}
	if n := js.hits.Load() - before; n != 1 {
		t.Fatalf("new key took %d fetches, want 1", n)
	}
	// An unknown kid right after does not refetch (rate limited).
	before = js.hits.Load()
	k3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, st, _ := f.dial(f.headers(mintES(t, k3, "k3", claims{}))); st != http.StatusUnauthorized {
		t.Fatalf("unknown kid: %d, want 401", st)
	}
	if n := js.hits.Load() - before; n != 0 {
		t.Fatalf("unknown kid within the refetch interval caused %d fetches", n)
	}

	// A removed key stops verifying after the next refresh.
	js.removeKey("k1")
	if err := f.g.ver.dyn.f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := f.dial(f.headers(mintES(t, k1, "k1", claims{}))); st != http.StatusUnauthorized {
		t.Fatalf("token of a removed key: %d, want 401", st)
	}

	// An outage keeps the last good set.
	js.setDown(true)
	if err := f.g.ver.dyn.f.Refresh(ctx); err == nil {
		t.Fatal("refresh against a down JWKS succeeded")
	}
	if _, st, err := f.dial(f.headers(mintES(t, k2, "k2", claims{}))); err != nil {
		t.Fatalf("token during a JWKS outage: %d %v", st, err)
	}
	if !f.events.has(EventConfigWarning, "jwks_refresh_failed") {
		t.Fatalf("the outage was not logged: %v", f.events.reasons(EventConfigWarning))
	}
}
