package redisstore

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec"
)

// These tests run two Guards in one process, each with its own Store and
// Redis client, behind two real servers on loopback: what two instances
// of a service behind a load balancer see.

var guardKey = []byte("0123456789abcdef0123456789abcdef")

const guardOrigin = "http://app.test"

// instance is one secured server sharing Redis with the others.
type instance struct {
	t     testing.TB
	g     *wssec.Guard
	store *Store
	srv   *httptest.Server
	url   string
	obs   *eventLog
}

// eventLog is an Observer that keeps every event.
type eventLog struct {
	mu  sync.Mutex
	evs []wssec.Event
}

func (r *eventLog) Observe(e wssec.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

// count reports how many events of kind were seen.
func (r *eventLog) count(kind wssec.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// has reports whether an event of kind with reason was seen.
func (r *eventLog) has(kind wssec.EventKind, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.evs {
		if e.Kind == kind && e.Reason == reason {
			return true
		}
	}
	return false
}

func newInstance(t testing.TB, addr, prefix string, storeOpts []Option, opts ...wssec.Option) *instance {
	t.Helper()
	return newInstanceAt(t, addr, prefix, nil, storeOpts, opts...)
}

// newInstanceAt is newInstance with the Guard's and the Store's mirror
// clock set to now (when not nil), so tests can move time forward.
func newInstanceAt(t testing.TB, addr, prefix string, now func() time.Time, storeOpts []Option, opts ...wssec.Option) *instance {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ContextTimeoutEnabled: true})
	st, err := New(client, append([]Option{WithPrefix(prefix)}, storeOpts...)...)
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	if now != nil {
		st.now = now // before any goroutine of the Store starts
		opts = append([]wssec.Option{wssec.WithClock(now)}, opts...)
	}
	in := &instance{t: t, store: st, obs: &eventLog{}}
	base := []wssec.Option{
		wssec.WithHMACKey(guardKey),
		wssec.WithInsecureTransport(),
		wssec.WithOrigins(guardOrigin),
		wssec.WithStore(st),
		wssec.WithObserver(in.obs),
		wssec.WithLogger(slog.New(slog.DiscardHandler)),
		wssec.WithHandshakeRate(1000, 1000), // tests poll; their own options may lower it
	}
	g, err := wssec.New(append(base, opts...)...)
	if err != nil {
		st.Close()
		client.Close()
		t.Fatal(err)
	}
	in.g = g
	in.srv = httptest.NewServer(g.Handler(func(ctx context.Context, c *wssec.Conn) {
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				return
			}
		}
	}))
	in.url = "ws" + strings.TrimPrefix(in.srv.URL, "http")
	t.Cleanup(func() {
		in.srv.CloseClientConnections()
		in.g.Close()
		in.srv.Close()
		in.store.Close()
		client.Close()
	})
	return in
}

// token mints an HS256 token for sub, issued now.
func token(t testing.TB, sub string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewBuilder().Subject(sub).IssuedAt(now).Expiration(now.Add(5 * time.Minute)).Build()
	if err != nil {
		t.Fatal(err)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), guardKey))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dial opens a socket with tok (and rawQuery, if any); it returns the
// HTTP status of a refusal, or the open socket.
func (in *instance) dial(tok, rawQuery string) (*websocket.Conn, int) {
	in.t.Helper()
	h := http.Header{"Origin": {guardOrigin}}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	u := in.url
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(u, h)
	if err == nil {
		in.t.Cleanup(func() { c.Close() })
		return c, http.StatusSwitchingProtocols
	}
	if resp == nil {
		in.t.Fatalf("dial %s: %v", in.url, err)
	}
	return nil, resp.StatusCode
}

// mustOpen dials and fails the test unless the socket opened.
func (in *instance) mustOpen(tok string) *websocket.Conn {
	in.t.Helper()
	c, status := in.dial(tok, "")
	if c == nil {
		in.t.Fatalf("handshake refused with %d, want an open socket", status)
	}
	return c
}

// mustRefuse dials and fails the test unless the handshake got status.
func (in *instance) mustRefuse(tok string, status int) {
	in.t.Helper()
	if c, got := in.dial(tok, ""); got != status {
		if c != nil {
			c.Close()
		}
		in.t.Fatalf("handshake got %d, want %d", got, status)
	}
}

// closeCode reads from c until it is closed and returns the close code.
func closeCode(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			t.Fatalf("socket ended without a close frame: %v", err)
		}
	}
}

// stillOpen reports whether c is open: a ping through the Guard's built-in
// ping action is answered.
func stillOpen(c *websocket.Conn) bool {
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"ping","id":"p"}`)); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := c.ReadMessage()
	return err == nil && strings.Contains(string(msg), "pong")
}

func TestGuards_SubjectQuotaIsShared(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	limits := wssec.WithConnLimits(32, 2, 100)
	a := newInstance(t, addr, prefix, nil, limits)
	b := newInstance(t, addr, prefix, nil, limits)
	alice := token(t, "alice")

	first := a.mustOpen(alice)
	b.mustOpen(alice)
	// Two sockets of alice exist across the instances: a third is refused
	// on either one, while another subject still connects.
	a.mustRefuse(alice, http.StatusTooManyRequests)
	b.mustRefuse(alice, http.StatusTooManyRequests)
	b.mustOpen(token(t, "bob"))
	if !a.obs.has(wssec.EventHandshakeRefused, "quota_subject") || !b.obs.has(wssec.EventHandshakeRefused, "quota_subject") {
		t.Fatal("quota_subject refusals were not reported on both instances")
	}

	// A socket that ends gives its slot back, to whichever instance.
	first.Close()
	eventually(t, 10*time.Second, "alice's freed slot is usable on the other instance", func() bool {
		c, _ := b.dial(alice, "")
		return c != nil
	})
}

func TestGuards_RevokeClosesSocketsOnEveryInstance(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	a := newInstance(t, addr, prefix, nil)
	b := newInstance(t, addr, prefix, nil)
	alice, bob := token(t, "alice"), token(t, "bob")

	aliceOnB := b.mustOpen(alice)
	aliceOnA := a.mustOpen(alice)
	bobOnB := b.mustOpen(bob)

	start := time.Now()
	if err := a.g.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(t, aliceOnB); code != websocket.ClosePolicyViolation {
		t.Fatalf("alice's socket on the other instance closed with %d, want 1008", code)
	}
	t.Logf("revocation on A closed alice's socket on B after %v", time.Since(start))
	if code := closeCode(t, aliceOnA); code != websocket.ClosePolicyViolation {
		t.Fatalf("alice's socket on the revoking instance closed with %d, want 1008", code)
	}
	if !stillOpen(bobOnB) {
		t.Fatal("bob's socket was closed by alice's revocation")
	}
	// The old token is refused at the next handshake, on both instances.
	b.mustRefuse(alice, http.StatusUnauthorized)
	a.mustRefuse(alice, http.StatusUnauthorized)
}

func TestGuards_RevokeTokenIDIsShared(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	a := newInstance(t, addr, prefix, nil)
	b := newInstance(t, addr, prefix, nil)
	now := time.Now()
	tok, err := jwt.NewBuilder().Subject("carol").JwtID("jti-1").IssuedAt(now).Expiration(now.Add(5 * time.Minute)).Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), guardKey))
	if err != nil {
		t.Fatal(err)
	}
	c := b.mustOpen(string(signed))
	if err := a.g.RevokeToken(context.Background(), "jti-1", now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(t, c); code != websocket.ClosePolicyViolation {
		t.Fatalf("socket holding the revoked token closed with %d, want 1008", code)
	}
	b.mustRefuse(string(signed), http.StatusUnauthorized)
	b.mustOpen(token(t, "carol")) // another token of carol's, issued now, has no jti: not revoked
}

func TestGuards_BanIsShared(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	ban := wssec.WithBanPolicy(wssec.BanPolicy{Threshold: 3, Window: time.Minute, Duration: time.Minute})
	a := newInstance(t, addr, prefix, nil, ban)
	b := newInstance(t, addr, prefix, nil, ban)
	b.mustOpen(token(t, "bob")) // before the ban: this client is welcome on B

	for range 3 {
		a.mustRefuse("not-a-token", http.StatusUnauthorized)
	}
	if !a.obs.has(wssec.EventBanned, "token") {
		t.Fatal("three bad tokens placed no ban")
	}
	// B never saw a bad token from this client, and still refuses it.
	eventually(t, 10*time.Second, "the ban reaches the other instance", func() bool {
		c, status := b.dial(token(t, "bob"), "")
		if c != nil {
			c.Close()
		}
		return status == http.StatusTooManyRequests
	})
	if !b.obs.has(wssec.EventHandshakeRefused, "banned") {
		t.Fatal("B refused without a banned event")
	}
}

func TestGuards_CrashedInstanceFreesItsSlots(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	// A 2 s lease is renewed every 667 ms: a renewal may stall 1.3 s on a
	// loaded machine before the live lease would lapse.
	lease := []Option{WithLeaseTTL(2 * time.Second)}
	limits := wssec.WithConnLimits(32, 1, 100)
	a := newInstance(t, addr, prefix, lease, limits)
	b := newInstance(t, addr, prefix, lease, limits)
	alice := token(t, "alice")

	a.mustOpen(alice)
	b.mustRefuse(alice, http.StatusTooManyRequests)
	// A live instance renews its leases: the slot is still held well past
	// the lease TTL.
	time.Sleep(5 * time.Second)
	b.mustRefuse(alice, http.StatusTooManyRequests)

	// A "crashes": its store stops renewing and never releases. Its slot
	// frees itself within the lease TTL.
	a.store.Close()
	eventually(t, 10*time.Second, "the crashed instance's slot expires", func() bool {
		c, _ := b.dial(alice, "")
		return c != nil
	})
}

func TestGuards_RedisOutage(t *testing.T) {
	addr, stop, restart := startRedis(t)
	prefix := testPrefix(t)
	limits := wssec.WithConnLimits(32, 1, 100)
	a := newInstance(t, addr, prefix, nil, limits)
	b := newInstance(t, addr, prefix, nil, limits)
	slow := newInstance(t, addr, prefix, nil, wssec.WithHandshakeRate(0.01, 3))
	alice := token(t, "alice")

	// A ticket issued while Redis is up...
	ticket, err := a.g.IssueTicket(context.Background(), &wssec.Principal{Subject: "dave", ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}

	stop()
	// ...cannot be redeemed while it is down: the ticket check fails closed.
	if _, status := b.dial("", "ticket="+ticket); status != http.StatusServiceUnavailable {
		t.Fatalf("ticket with Redis down: %d, want 503", status)
	}
	if !b.obs.has(wssec.EventStoreUnavailable, "ticket") {
		t.Fatal("no store_unavailable event for the ticket check")
	}
	if _, err := a.g.IssueTicket(context.Background(), &wssec.Principal{Subject: "dave", ExpiresAt: time.Now().Add(time.Minute)}); err == nil {
		t.Fatal("IssueTicket succeeded with Redis down")
	}
	// Revocation status is unknown: token handshakes fail closed too, once
	// the store noticed its feed is down.
	eventually(t, 10*time.Second, "the revocation check fails closed", func() bool {
		c, status := b.dial(alice, "")
		if c != nil {
			c.Close()
		}
		return status == http.StatusServiceUnavailable
	})
	if !b.obs.has(wssec.EventStoreUnavailable, "revocation") || !b.obs.has(wssec.EventHandshakeRefused, "store_error") {
		t.Fatal("no store_unavailable and store_error events for the revocation check")
	}
	// The handshake rate keeps working, from the instance's own limiter:
	// its burst of 3 runs out and the next handshake gets 429.
	for range 3 {
		if c, _ := slow.dial(alice, ""); c != nil {
			c.Close()
		}
	}
	slow.mustRefuse(alice, http.StatusTooManyRequests)
	if !slow.obs.has(wssec.EventStoreUnavailable, "rate") || !slow.obs.has(wssec.EventHandshakeRefused, "handshake_rate") {
		t.Fatal("no store_unavailable and handshake_rate events for the rate check")
	}

	if b.obs.has(wssec.EventStoreUnavailable, "revocation_feed") {
		t.Fatal("a revocation_feed gap was reported before the feed came back")
	}

	// Redis comes back: the Guards resume shared enforcement by
	// themselves: B takes alice's one slot, so A must refuse her.
	restart()
	var held *websocket.Conn
	eventually(t, 10*time.Second, "handshakes are accepted again", func() bool {
		held, _ = b.dial(alice, "")
		return held != nil
	})
	eventually(t, 10*time.Second, "the per-subject quota is shared again", func() bool {
		c, _ := a.dial(alice, "")
		if c != nil {
			c.Close() // A's feed is not back yet, or it counted locally
		}
		return a.obs.has(wssec.EventHandshakeRefused, "quota_subject")
	})
	// The gap in the revocation feed is reported once it is closed, on
	// every instance, so an alert can say revocations took effect late.
	eventually(t, 10*time.Second, "a revocation_feed event on both instances", func() bool {
		return a.obs.has(wssec.EventStoreUnavailable, "revocation_feed") && b.obs.has(wssec.EventStoreUnavailable, "revocation_feed")
	})
}

// TestGuards_SingleUseAndTicketsAreShared: a single-use token used at one
// instance is refused at the other, and a ticket issued by one instance
// is redeemed at the other, once.
func TestGuards_SingleUseAndTicketsAreShared(t *testing.T) {
	addr, _, _ := startRedis(t)
	prefix := testPrefix(t)
	once := wssec.WithSingleUseTokens(0)
	a := newInstance(t, addr, prefix, nil, once)
	b := newInstance(t, addr, prefix, nil, once)

	now := time.Now()
	tok, err := jwt.NewBuilder().Subject("erin").JwtID("once-1").IssuedAt(now).Expiration(now.Add(5 * time.Minute)).Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), guardKey))
	if err != nil {
		t.Fatal(err)
	}
	a.mustOpen(string(signed))
	b.mustRefuse(string(signed), http.StatusUnauthorized)
	if !b.obs.has(wssec.EventHandshakeRefused, "token_replay") {
		t.Fatal("the replay at the other instance was not reported as token_replay")
	}

	ticket, err := a.g.IssueTicket(context.Background(), &wssec.Principal{Subject: "frank", ExpiresAt: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if c, status := b.dial("", "ticket="+ticket); c == nil {
		t.Fatalf("ticket from A at B: %d, want an open socket", status)
	}
	if _, status := a.dial("", "ticket="+ticket); status != http.StatusUnauthorized {
		t.Fatalf("the same ticket again, at A: %d, want 401", status)
	}
}
