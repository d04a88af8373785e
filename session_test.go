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
	clk := newFakeClock()
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now))
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
	// A token issued after the revocation, by more than the clock skew,
	// is accepted.
	clk.advance(DefaultClockSkew + 2*time.Second)
	fresh := mint(t, claims{sub: "alice", iat: clk.now(), exp: clk.now().Add(5 * time.Minute)})
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
			if v := g.checkReplay(context.Background(), pp); v.ref != nil {
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

// TestRevocation_FutureIatWithinSkew (issue 13, finding 1): a token whose
// iat is 20 s ahead (an issuer whose clock runs fast, within the 30 s
// skew) was issued before a revocation made now. Revoke closes the socket
// it opened, and the token neither opens a socket nor re-authenticates
// again.
func TestRevocation_FutureIatWithinSkew(t *testing.T) {
	clk := newFakeClock()
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now))
	t0 := clk.now()
	tok := mint(t, claims{sub: "alice", iat: t0.Add(20 * time.Second), exp: t0.Add(5 * time.Minute)})
	ws, st, err := f.dial(f.headers(tok))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	if err := f.g.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if code, reason := closeFrame(t, ws); code != ClosePolicy || reason != "token revoked" {
		t.Fatalf("socket of a token stamped 20 s ahead, after Revoke: %d %q, want 1008 \"token revoked\"", code, reason)
	}
	if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
		t.Fatalf("the same token after Revoke: %d, want 401", st)
	}
	// A token issued after the revocation (by more than the skew) opens a
	// socket, and the revoked token cannot re-authenticate on it.
	clk.advance(DefaultClockSkew + 2*time.Second)
	fresh := mint(t, claims{sub: "alice", iat: clk.now(), exp: clk.now().Add(5 * time.Minute)})
	ws2, st, err := f.dial(f.headers(fresh))
	if err != nil {
		t.Fatalf("fresh token: %d %v", st, err)
	}
	sendJSON(t, ws2, map[string]any{"action": "auth", "id": "a1", "payload": map[string]any{"token": tok}})
	if m := readFrame(t, ws2); m["action"] != "error" {
		t.Fatalf("re-authentication with the revoked token: %v, want an error frame", m)
	}
}

// TestRevocation_KeptUntilLastCoveredTokenExpires (finding 2): a subject
// revocation is kept until the last token it covers has expired: a token
// stamped within the skew after the revocation, living the full 15 min,
// is still refused at t0 + 15 min 40 s, 10 s before it expires.
func TestRevocation_KeptUntilLastCoveredTokenExpires(t *testing.T) {
	clk := newFakeClock()
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now))
	t0 := clk.now()
	iat := t0.Add(20 * time.Second)
	tok := mint(t, claims{sub: "alice", iat: iat, exp: iat.Add(DefaultMaxTokenLifetime)})
	if err := f.g.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	clk.advance(DefaultMaxTokenLifetime + 40*time.Second)
	if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
		t.Fatalf("revoked token 10 s before it expires: %d, want 401", st)
	}
	if !f.events.has(EventHandshakeRefused, "token_revoked") {
		t.Fatalf("refused without token_revoked: %v", f.events.reasons(EventHandshakeRefused))
	}
}

// noIatToken signs a token without iat for sub, with exp and jti.
func noIatToken(t *testing.T, sub, jti string, exp time.Time) string {
	t.Helper()
	c := map[string]any{"sub": sub, "exp": exp.Unix()}
	if jti != "" {
		c["jti"] = jti
	}
	return handJWT(t, map[string]any{"alg": "HS256", "typ": "JWT"}, c, hs256(testKey))
}

// TestRevocation_TokenWithoutIatRefusedByDefault (finding 2): a token
// without iat whose exp is 40 min away used to be accepted once exp came
// within the 15 min lifetime cap, after its subject's revocation had been
// forgotten. Such tokens are refused by default.
func TestRevocation_TokenWithoutIatRefusedByDefault(t *testing.T) {
	clk := newFakeClock()
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now))
	t0 := clk.now()
	tok := noIatToken(t, "alice", "", t0.Add(40*time.Minute))
	if err := f.g.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	clk.advance(26 * time.Minute)
	if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
		t.Fatalf("token without iat, 26 min after its subject's revocation: %d, want 401", st)
	}
	if !f.events.has(EventHandshakeRefused, "token_claims") || !strings.Contains(f.logs.String(), "iat missing") {
		t.Fatalf("refused without token_claims \"iat missing\": %v", f.events.reasons(EventHandshakeRefused))
	}
}

// TestRevocation_RevokeTokenKeptUntilExp (finding 2): RevokeToken(jti,
// exp) keeps the revocation until exp, not for the lifetime cap: with
// tokens without iat allowed, a token whose exp is 40 min away, revoked
// at t0, is still refused at t0 + 26 min.
func TestRevocation_RevokeTokenKeptUntilExp(t *testing.T) {
	clk := newFakeClock()
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now), WithTokensWithoutIssuedAt())
	t0 := clk.now()
	exp := t0.Add(40 * time.Minute)
	tok := noIatToken(t, "alice", "j-40", exp)
	if err := f.g.RevokeToken(context.Background(), "j-40", exp); err != nil {
		t.Fatal(err)
	}
	clk.advance(26 * time.Minute)
	if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
		t.Fatalf("token revoked by jti until its exp, 26 min later: %d, want 401", st)
	}
	if !f.events.has(EventHandshakeRefused, "token_revoked") {
		t.Fatalf("refused without token_revoked: %v", f.events.reasons(EventHandshakeRefused))
	}
	// Another token of the subject, without iat and not revoked, is
	// accepted with the opt-in.
	if _, st, err := f.dial(f.headers(noIatToken(t, "alice", "j-41", clk.now().Add(10*time.Minute)))); err != nil {
		t.Fatalf("unrevoked token without iat, opt-in: %d %v", st, err)
	}
}

// TestRevocation_TableFullFailsClosed: a revocation that does not fit in
// the full table is not forgotten: the socket it names closes, the token
// is refused, every token issued up to it is refused until it would have
// lapsed, an event says so, and tokens issued after it still work.
func TestRevocation_TableFullFailsClosed(t *testing.T) {
	clk := newFakeClock()
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now), WithRevocationCapacity(2))
	t0 := clk.now()
	alice := mint(t, claims{sub: "alice", iat: t0, exp: t0.Add(5 * time.Minute)})
	dave := mint(t, claims{sub: "dave", iat: t0, exp: t0.Add(5 * time.Minute)})
	ws, st, err := f.dial(f.headers(alice))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	davesWS, st, err := f.dial(f.headers(dave))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	// Both sockets are registered with the Guard before anything is
	// revoked: a handshake still registering when the floor rises is
	// refused by Upgrade's re-check, which is not what this test counts.
	f.waitHandlers(2)
	for _, sub := range []string{"bob", "carol", "alice"} {
		if err := f.g.Revoke(context.Background(), sub); err != nil {
			t.Fatal(err)
		}
	}
	if !f.events.has(EventRevocationsFull, "table_full") {
		t.Fatal("a full revocation table raised no revocations_full event")
	}
	if code := closeCode(t, ws); code != ClosePolicy {
		t.Fatalf("alice's socket: %d, want 1008", code)
	}
	if _, st, _ := f.dial(f.headers(alice)); st != http.StatusUnauthorized {
		t.Fatalf("alice's revoked token with the table full: %d, want 401", st)
	}
	// dave was not revoked: his open socket stays, but his token, issued
	// before the revocation that did not fit, is refused at a handshake.
	sendJSON(t, davesWS, map[string]any{"action": "ping", "id": "p"})
	if m := readFrame(t, davesWS); m["action"] != "pong" {
		t.Fatalf("dave's open socket: %v, want pong", m)
	}
	if _, st, _ := f.dial(f.headers(dave)); st != http.StatusUnauthorized {
		t.Fatalf("a token issued before the overflowing revocation: %d, want 401 (fail closed)", st)
	}
	clk.advance(DefaultClockSkew + 2*time.Second)
	fresh := mint(t, claims{sub: "dave", iat: clk.now(), exp: clk.now().Add(5 * time.Minute)})
	if _, st, err := f.dial(f.headers(fresh)); err != nil {
		t.Fatalf("a token issued after the overflow: %d %v", st, err)
	}
}

// revokedFailsLater is a SharedStore whose Revoked answers the first ok
// calls (not revoked) and then cannot decide; everything else fails as
// evFailStore does, so rates and quotas fall back to the Guard's own.
type revokedFailsLater struct {
	evFailStore
	ok    int32
	calls atomic.Int32
}

func (s *revokedFailsLater) Revoked(context.Context, string, string, time.Time) (bool, error) {
	if s.calls.Add(1) <= s.ok {
		return false, nil
	}
	return false, errUnreachable
}

// TestRevocation_StoreFailsAfterUpgrade: the store answers the handshake's
// revocation check and then fails before Upgrade's re-check (the check
// that covers a revocation recorded while the socket registered). The
// socket must not stay open unchecked: it closes with 1013, as the
// handshake would have been refused with 503, and the outage is reported.
func TestRevocation_StoreFailsAfterUpgrade(t *testing.T) {
	store := &revokedFailsLater{ok: 1}
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithStore(store))
	ws, st, err := f.dial(f.headers(mint(t, claims{sub: "alice"})))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	code, reason := closeFrame(t, ws)
	if code != CloseTryAgainLater || reason != "service unavailable" {
		t.Fatalf("socket whose re-check the store could not answer: %d %q, want 1013 \"service unavailable\"", code, reason)
	}
	if n := store.calls.Load(); n != 2 {
		t.Fatalf("Revoked called %d times, want 2 (handshake, then Upgrade's re-check)", n)
	}
	if !f.events.has(EventStoreUnavailable, storeCheckRevocation) {
		t.Fatalf("no store_unavailable event for the revocation re-check: %v", f.events.reasons(EventStoreUnavailable))
	}
}

// TestDisconnect_ClosesSubjectWithoutRevoking: Disconnect closes every
// live socket of the subject with 1008 and the reason given, leaves other
// subjects alone, and revokes nothing: the same token connects again.
func TestDisconnect_ClosesSubjectWithoutRevoking(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport())
	alice := mint(t, claims{sub: "alice"})
	a1, _, err := f.dial(f.headers(alice))
	if err != nil {
		t.Fatal(err)
	}
	a2, _, err := f.dial(f.headers(alice))
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := f.dial(f.headers(mint(t, claims{sub: "bob"})))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.handlerRan()
	}
	if err := f.g.Disconnect(context.Background(), "alice", "logged out elsewhere"); err != nil {
		t.Fatal(err)
	}
	for _, ws := range []*websocket.Conn{a1, a2} {
		if code, reason := closeFrame(t, ws); code != ClosePolicy || reason != "logged out elsewhere" {
			t.Fatalf("alice's socket: %d %q, want 1008 \"logged out elsewhere\"", code, reason)
		}
	}
	sendJSON(t, bob, map[string]any{"action": "ping", "id": "p"})
	if m := readFrame(t, bob); m["action"] != "pong" {
		t.Fatalf("bob after alice's disconnect: %v, want pong", m)
	}
	if _, st, err := f.dial(f.headers(alice)); err != nil {
		t.Fatalf("alice's token after Disconnect: %d %v, want 101 (nothing revoked)", st, err)
	}
	if !f.events.has(EventDisconnected, "disconnect") {
		t.Fatalf("no disconnected event: %v", f.events.reasons(EventDisconnected))
	}
	if err := f.g.Disconnect(context.Background(), "", ""); err == nil {
		t.Fatal("Disconnect with an empty subject: nil error")
	}
}

// TestEvictOldest_NewSessionReplacesOldest: with WithEvictOldest and a
// per-subject quota of 1, a second login closes the first socket with
// 1008 "session replaced" and is admitted; without the option it is
// refused with 429 and the first socket stays.
func TestEvictOldest_NewSessionReplacesOldest(t *testing.T) {
	t.Run("evict", func(t *testing.T) {
		f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithConnLimits(32, 1, 100), WithEvictOldest())
		tok := mint(t, claims{sub: "alice"})
		first, _, err := f.dial(f.headers(tok))
		if err != nil {
			t.Fatal(err)
		}
		second, st, err := f.dial(f.headers(tok))
		if err != nil {
			t.Fatalf("second login: %d %v, want 101", st, err)
		}
		if code, reason := closeFrame(t, first); code != ClosePolicy || reason != "session replaced" {
			t.Fatalf("first socket: %d %q, want 1008 \"session replaced\"", code, reason)
		}
		sendJSON(t, second, map[string]any{"action": "ping", "id": "p"})
		if m := readFrame(t, second); m["action"] != "pong" {
			t.Fatalf("the new session: %v, want pong", m)
		}
		if !f.events.has(EventDisconnected, "session_replaced") {
			t.Fatalf("no session_replaced event: %v", f.events.reasons(EventDisconnected))
		}
		// Another subject has its own slot.
		if _, st, err := f.dial(f.headers(mint(t, claims{sub: "bob"}))); err != nil {
			t.Fatalf("bob: %d %v", st, err)
		}
	})
	t.Run("default refuses the newest", func(t *testing.T) {
		f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithConnLimits(32, 1, 100))
		tok := mint(t, claims{sub: "alice"})
		first, _, err := f.dial(f.headers(tok))
		if err != nil {
			t.Fatal(err)
		}
		if _, st, _ := f.dial(f.headers(tok)); st != http.StatusTooManyRequests {
			t.Fatalf("second login without eviction: %d, want 429", st)
		}
		sendJSON(t, first, map[string]any{"action": "ping", "id": "p"})
		if m := readFrame(t, first); m["action"] != "pong" {
			t.Fatalf("first socket: %v, want pong", m)
		}
	})
}

// TestRevocation_ExpiredEntryFreesRoomOutOfOrder: revocations leave the
// table when the tokens they cover expire, in whatever order that is. A
// revocation of a short-lived token recorded after one of a long-lived
// token must free its room when it expires: otherwise the next revocation
// finds the table "full", raises the floor, and every user's token issued
// before it is refused (the insertion-ordered table did exactly that).
func TestRevocation_ExpiredEntryFreesRoomOutOfOrder(t *testing.T) {
	clk := newFakeClock()
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now), WithRevocationCapacity(2))
	t0 := clk.now()
	ctx := context.Background()
	if err := f.g.RevokeToken(ctx, "long", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.g.RevokeToken(ctx, "short", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Minute) // "short" has expired, "long" has not
	if err := f.g.RevokeToken(ctx, "third", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if f.events.has(EventRevocationsFull, "table_full") {
		t.Fatal("revocations_full with one of two entries expired")
	}
	dave := mint(t, claims{sub: "dave", iat: t0, exp: t0.Add(14 * time.Minute)})
	if _, st, err := f.dial(f.headers(dave)); err != nil {
		t.Fatalf("a token nobody revoked, after the third revocation: %d %v, want 101", st, err)
	}
	long := mint(t, claims{sub: "erin", jti: "long", iat: t0, exp: t0.Add(14 * time.Minute)})
	if _, st, _ := f.dial(f.headers(long)); st != http.StatusUnauthorized {
		t.Fatalf("the revoked token \"long\": %d, want 401", st)
	}
}
