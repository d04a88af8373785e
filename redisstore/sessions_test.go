package redisstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec"
)

// These tests hold issue 13's promises across two Guards sharing a real
// Redis: revocation that sticks, bans that end sessions, session control.

// testClock is a settable clock shared by the Guards and Stores of a test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tokenAt mints an HS256 token for sub issued at iat (none when zero),
// expiring at exp, with jti when not empty.
func tokenAt(t testing.TB, sub, jti string, iat, exp time.Time) string {
	t.Helper()
	if iat.IsZero() {
		// jwx always writes what it is given: build the token by hand.
		c := map[string]any{"sub": sub, "exp": exp.Unix()}
		if jti != "" {
			c["jti"] = jti
		}
		h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT"})
		b, _ := json.Marshal(c)
		in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b)
		m := hmac.New(sha256.New, guardKey)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	bld := jwt.NewBuilder().Subject(sub).IssuedAt(iat).Expiration(exp)
	if jti != "" {
		bld = bld.JwtID(jti)
	}
	tok, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), guardKey))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dialFrom opens a socket with tok as the client ip (X-Forwarded-For from
// a trusted loopback proxy); it fails the test on refusal.
func (in *instance) dialFrom(ip, tok string) *websocket.Conn {
	in.t.Helper()
	h := http.Header{"Origin": {guardOrigin}, "Authorization": {"Bearer " + tok}, "X-Forwarded-For": {ip}}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(in.url, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		in.t.Fatalf("dial from %s: %d %v", ip, status, err)
	}
	in.t.Cleanup(func() { c.Close() })
	return c
}

// closeFrame reads from c until it is closed and returns the close code
// and reason.
func closeFrame(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text
			}
			t.Fatalf("socket ended without a close frame: %v", err)
		}
	}
}

// awaitRevoked waits until this instance's Store has the revocation of
// sub's tokens (or of the token jti) in its mirror, so that the test
// moves the clock only after the notice arrived.
func (in *instance) awaitRevoked(t *testing.T, sub, jti string) {
	t.Helper()
	eventually(t, 10*time.Second, "the revocation reaches the other instance", func() bool {
		ok, err := in.store.Revoked(context.Background(), sub, jti, time.Time{})
		return err == nil && ok
	})
}

// TestGuards_RevocationCoversFutureIatWithinSkew (finding 1, two
// instances): a token stamped 20 s ahead, open on B, is revoked by
// Revoke on A: its socket on B closes with 1008 and it is refused on
// both.
func TestGuards_RevocationCoversFutureIatWithinSkew(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	a := newInstance(t, addr, prefix, nil)
	b := newInstance(t, addr, prefix, nil)
	now := time.Now()
	tok := tokenAt(t, "alice", "", now.Add(20*time.Second), now.Add(5*time.Minute))
	onB := b.mustOpen(tok)
	if err := a.g.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if code, reason := closeFrame(t, onB); code != websocket.ClosePolicyViolation || reason != "token revoked" {
		t.Fatalf("socket on B: %d %q, want 1008 \"token revoked\"", code, reason)
	}
	b.mustRefuse(tok, http.StatusUnauthorized)
	a.mustRefuse(tok, http.StatusUnauthorized)
}

// TestGuards_RevocationKeptUntilLastTokenExpires (finding 2, two
// instances): a subject revocation made on A is still enforced on B 15 min
// 40 s later, against a token stamped within the skew after it that is
// valid 10 s more; a token without iat is refused by default.
func TestGuards_RevocationKeptUntilLastTokenExpires(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	clk := newTestClock()
	a := newInstanceAt(t, addr, prefix, clk.now, nil)
	b := newInstanceAt(t, addr, prefix, clk.now, nil)
	t0 := clk.now()
	iat := t0.Add(20 * time.Second)
	tok := tokenAt(t, "alice", "", iat, iat.Add(wssec.DefaultMaxTokenLifetime))
	noIat := tokenAt(t, "alice", "", time.Time{}, t0.Add(40*time.Minute))
	b.mustOpen(token(t, "bob")) // B's feed is up before the revocation
	if err := a.g.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	b.awaitRevoked(t, "alice", "")
	clk.advance(wssec.DefaultMaxTokenLifetime + 40*time.Second)
	eventually(t, 10*time.Second, "B refuses the revoked token", func() bool {
		c, status := b.dial(tok, "")
		if c != nil {
			c.Close()
		}
		return status == http.StatusUnauthorized
	})
	if !b.obs.has(wssec.EventHandshakeRefused, "token_revoked") {
		t.Fatal("B refused without token_revoked")
	}
	// At t0 + 26 min a token without iat whose exp is 40 min after t0 is
	// within the lifetime cap: refused all the same, by default.
	clk.advance(26*time.Minute - wssec.DefaultMaxTokenLifetime - 40*time.Second)
	b.mustRefuse(noIat, http.StatusUnauthorized)
	if !b.obs.has(wssec.EventHandshakeRefused, "token_claims") {
		t.Fatal("the token without iat was refused without token_claims")
	}
}

// TestGuards_RevokeTokenKeptUntilExp (finding 2, two instances): a token
// revoked by jti on A until its exp 40 min away is still refused on B at
// t0 + 26 min (tokens without iat allowed, as the scenario).
func TestGuards_RevokeTokenKeptUntilExp(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	clk := newTestClock()
	a := newInstanceAt(t, addr, prefix, clk.now, nil, wssec.WithTokensWithoutIssuedAt())
	b := newInstanceAt(t, addr, prefix, clk.now, nil, wssec.WithTokensWithoutIssuedAt())
	t0 := clk.now()
	exp := t0.Add(40 * time.Minute)
	tok := tokenAt(t, "alice", "j-40", time.Time{}, exp)
	b.mustOpen(token(t, "bob")) // B's feed is up before the revocation
	if err := a.g.RevokeToken(context.Background(), "j-40", exp); err != nil {
		t.Fatal(err)
	}
	b.awaitRevoked(t, "alice", "j-40")
	clk.advance(26 * time.Minute)
	eventually(t, 10*time.Second, "B refuses the revoked token", func() bool {
		c, status := b.dial(tok, "")
		if c != nil {
			c.Close()
		}
		return status == http.StatusUnauthorized
	})
	if !b.obs.has(wssec.EventHandshakeRefused, "token_revoked") {
		t.Fatal("B refused without token_revoked")
	}
}

// TestGuards_BanEndsSessionsOnEveryInstance (finding 3, two instances):
// refused messages on A ban alice and her address; her socket on B (from
// another address) and every socket on B from the banned address close
// with 1008 "banned"; others stay, and B refuses her handshake.
func TestGuards_BanEndsSessionsOnEveryInstance(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	opts := []wssec.Option{
		wssec.WithTrustedProxies("127.0.0.0/8"), wssec.WithDenialLimit(10),
		wssec.WithBanPolicy(wssec.BanPolicy{Threshold: 3, Window: time.Minute, Duration: time.Minute}),
	}
	a := newInstance(t, addr, prefix, nil, opts...)
	b := newInstance(t, addr, prefix, nil, opts...)
	offender := a.dialFrom("203.0.113.1", token(t, "alice"))
	aliceOnB := b.dialFrom("198.51.100.7", token(t, "alice"))
	carolOnB := b.dialFrom("203.0.113.1", token(t, "carol"))
	bobOnB := b.dialFrom("198.51.100.8", token(t, "bob"))
	for range 3 {
		offender.WriteMessage(websocket.TextMessage, []byte(`{"action":"no_such_action"}`))
	}
	for name, c := range map[string]*websocket.Conn{"alice's socket on B": aliceOnB, "carol's socket on B from the banned address": carolOnB} {
		if code, reason := closeFrame(t, c); code != websocket.ClosePolicyViolation || reason != "banned" {
			t.Fatalf("%s: %d %q, want 1008 \"banned\"", name, code, reason)
		}
	}
	if !stillOpen(bobOnB) {
		t.Fatal("bob's socket on B was closed by alice's ban")
	}
	if !b.obs.has(wssec.EventDisconnected, "banned") {
		t.Fatal("B closed the sockets without a disconnected/banned event")
	}
	h := http.Header{"Origin": {guardOrigin}, "Authorization": {"Bearer " + token(t, "alice")}, "X-Forwarded-For": {"198.51.100.9"}}
	c, resp, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial(b.url, h)
	if err == nil {
		c.Close()
		t.Fatal("B admitted the banned subject")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("banned subject at B: %v, want 429", err)
	}
}

// TestGuards_DisconnectClosesOnEveryInstance: Disconnect on A closes the
// subject's sockets on A and B with 1008 and the reason, and revokes
// nothing.
func TestGuards_DisconnectClosesOnEveryInstance(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	a := newInstance(t, addr, prefix, nil)
	b := newInstance(t, addr, prefix, nil)
	alice := token(t, "alice")
	onA, onB := a.mustOpen(alice), b.mustOpen(alice)
	bob := b.mustOpen(token(t, "bob"))
	// A ping round trip each: both sockets are held by their Guards.
	if !stillOpen(onA) || !stillOpen(onB) {
		t.Fatal("alice's sockets are not usable")
	}
	if err := a.g.Disconnect(context.Background(), "alice", "signed out everywhere"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*websocket.Conn{"A": onA, "B": onB} {
		if code, reason := closeFrame(t, c); code != websocket.ClosePolicyViolation || reason != "signed out everywhere" {
			t.Fatalf("alice's socket on %s: %d %q, want 1008 \"signed out everywhere\"", name, code, reason)
		}
	}
	if !stillOpen(bob) {
		t.Fatal("bob's socket was closed")
	}
	b.mustOpen(alice) // nothing revoked
}

// TestGuards_EvictOldestAcrossInstances: with one socket per subject and
// WithEvictOldest, a login at B replaces alice's session at A: A's socket
// closes with 1008 "session replaced" and B admits the new one.
func TestGuards_EvictOldestAcrossInstances(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	opts := []wssec.Option{wssec.WithConnLimits(32, 1, 100), wssec.WithEvictOldest()}
	a := newInstance(t, addr, prefix, nil, opts...)
	b := newInstance(t, addr, prefix, nil, opts...)
	alice := token(t, "alice")
	old := a.mustOpen(alice)
	// A ping round trip: A holds the socket (the client has its 101
	// before A registers it, and B's eviction notice is sent once).
	if !stillOpen(old) {
		t.Fatal("the old session on A is not usable")
	}
	fresh := b.mustOpen(alice)
	if code, reason := closeFrame(t, old); code != websocket.ClosePolicyViolation || reason != "session replaced" {
		t.Fatalf("the old session on A: %d %q, want 1008 \"session replaced\"", code, reason)
	}
	if !stillOpen(fresh) {
		t.Fatal("the new session on B is not usable")
	}
}

// TestGuards_APIBanEndsSessionsOnEveryInstance: BanSubject on A closes
// the subject's socket on B with 1008 "banned", and B refuses it.
func TestGuards_APIBanEndsSessionsOnEveryInstance(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	ban := wssec.WithBanPolicy(wssec.BanPolicy{Threshold: 3, Window: time.Minute, Duration: time.Minute})
	a := newInstance(t, addr, prefix, nil, ban)
	b := newInstance(t, addr, prefix, nil, ban)
	onB := b.mustOpen(token(t, "alice"))
	bob := b.mustOpen(token(t, "bob"))
	if err := a.g.BanSubject(context.Background(), "alice", time.Hour); err != nil {
		t.Fatal(err)
	}
	if code, reason := closeFrame(t, onB); code != websocket.ClosePolicyViolation || reason != "banned" {
		t.Fatalf("alice's socket on B: %d %q, want 1008 \"banned\"", code, reason)
	}
	if !stillOpen(bob) {
		t.Fatal("bob's socket on B was closed")
	}
	b.mustRefuse(token(t, "alice"), http.StatusTooManyRequests)
}

// TestGuards_FullMirrorFailsClosed: when B's bounded mirror cannot hold
// every live revocation, B answers no revocation check: every token
// handshake is refused with 503 (fail closed, never a forgotten
// revocation) and B reports EventRevocationsFull ("store_full").
func TestGuards_FullMirrorFailsClosed(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	a := newInstance(t, addr, prefix, nil)
	b := newInstance(t, addr, prefix, []Option{WithMirrorCapacity(1)})
	b.mustOpen(token(t, "alice")) // B's feed is up
	for _, sub := range []string{"bob", "carol"} {
		if err := a.g.Revoke(context.Background(), sub); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "B fails closed", func() bool {
		c, status := b.dial(token(t, "dave"), "")
		if c != nil {
			c.Close()
		}
		return status == http.StatusServiceUnavailable
	})
	if !b.obs.has(wssec.EventRevocationsFull, "store_full") {
		t.Fatal("B refused without a revocations_full/store_full event")
	}
	a.mustOpen(token(t, "dave")) // A's mirror has room
}
