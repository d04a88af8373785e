package wssec

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/time/rate"
)

// ---------------------------------------------------------------------------
// Helpers for the handshake tests (shared with quota_test.go).

// fakeClock is a clock the test advances by hand, so a rate limit lifts
// without sleeping. Safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// attempt is the outcome of one real handshake.
type attempt struct {
	conn   *websocket.Conn
	status int
	header http.Header
	body   string // the refusal body (gorilla keeps its first KiB)
	err    error
}

// try dials the fixture with a plain dialer and the given headers.
func (f *fixture) try(h http.Header) attempt {
	return f.tryWith(nil, h)
}

// tryWith dials the fixture with d (nil: a plain dialer) and h. An accepted
// socket is closed when the test ends.
func (f *fixture) tryWith(d *websocket.Dialer, h http.Header) attempt {
	f.t.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	dd := *d
	dd.HandshakeTimeout = 5 * time.Second
	c, resp, err := dd.Dial(f.url, h)
	a := attempt{conn: c, err: err}
	if resp != nil {
		a.status = resp.StatusCode
		a.header = resp.Header
		if resp.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			a.body = string(b)
			resp.Body.Close()
		}
	}
	if c != nil {
		f.t.Cleanup(func() { c.Close() })
	}
	return a
}

// startFixture is newFixture with a choice of TLS. With TLS it returns a
// dialer that trusts the server's certificate; the fixture's url is wss://
// and its origin https://.
func startFixture(t *testing.T, useTLS bool, serve func(context.Context, *Conn), opts ...Option) (*fixture, *websocket.Dialer) {
	t.Helper()
	if !useTLS {
		return newFixture(t, serve, opts...), &websocket.Dialer{}
	}
	f := buildFixture(t, httptest.NewTLSServer, serve, opts...)
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	return f, &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}
}

// host is the fixture's host:port, as the client sends it in Host.
func (f *fixture) host() string {
	_, h, _ := strings.Cut(f.srv.URL, "://")
	return h
}

// lastEvent returns the last observed event of kind.
func (r *recorder) last(kind EventKind) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].Kind == kind {
			return r.events[i], true
		}
	}
	return Event{}, false
}

// all returns a copy of every observed event.
func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// logRecords parses the JSON log, one record a line.
func logRecords(t *testing.T, l *logBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, line)
		}
		out = append(out, rec)
	}
	return out
}

// lastLogged returns the last log record whose event is kind.
func lastLogged(t *testing.T, l *logBuffer, kind EventKind) map[string]any {
	t.Helper()
	recs := logRecords(t, l)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i]["event"] == string(kind) {
			return recs[i]
		}
	}
	return nil
}

// wantRefused asserts that a was refused with status before any upgrade,
// that the handler never ran, and that the refusal was reported with
// reason both to the Observer and in the JSON log.
func wantRefused(t *testing.T, f *fixture, a attempt, status int, reason string) {
	t.Helper()
	if a.conn != nil || a.err == nil {
		t.Fatalf("handshake accepted; want %d %s", status, reason)
	}
	if a.status != status {
		t.Fatalf("status %d (body %q); want %d", a.status, a.body, status)
	}
	if !f.handlerNeverRan() {
		t.Fatalf("the handler ran for a refused handshake")
	}
	ev, ok := f.events.last(EventHandshakeRefused)
	if !ok {
		t.Fatalf("no %s event observed", EventHandshakeRefused)
	}
	if ev.Reason != reason || ev.Status != status {
		t.Fatalf("observed event reason %q status %d; want %q %d", ev.Reason, ev.Status, reason, status)
	}
	rec := lastLogged(t, f.logs, EventHandshakeRefused)
	if rec == nil {
		t.Fatalf("no %s record in the log:\n%s", EventHandshakeRefused, f.logs.String())
	}
	if rec["reason"] != reason {
		t.Fatalf("logged reason %v; want %q", rec["reason"], reason)
	}
	if s, _ := rec["status"].(float64); int(s) != status {
		t.Fatalf("logged status %v; want %d", rec["status"], status)
	}
	if rec["level"] != "WARN" {
		t.Fatalf("logged level %v; want WARN", rec["level"])
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("refusal Content-Type %q; want text/plain", ct)
	}
	if a.header.Get("Sec-WebSocket-Accept") != "" {
		t.Fatalf("a refusal carries Sec-WebSocket-Accept")
	}
	if strings.Count(strings.TrimSpace(a.body), "\n") != 0 || strings.TrimSpace(a.body) == "" {
		t.Fatalf("refusal body %q; want one short line", a.body)
	}
}

// wantAccepted asserts that a was upgraded and that the handler ran.
func wantAccepted(t *testing.T, f *fixture, a attempt) *Conn {
	t.Helper()
	if a.err != nil || a.conn == nil {
		t.Fatalf("handshake refused: status %d body %q err %v", a.status, a.body, a.err)
	}
	if a.status != http.StatusSwitchingProtocols {
		t.Fatalf("status %d; want 101", a.status)
	}
	select {
	case c := <-f.ran:
		// Upgrade reports the acceptance before it returns the Conn.
		if f.events != nil && !f.events.has(EventHandshakeAccepted, "") {
			t.Fatalf("no %s event observed", EventHandshakeAccepted)
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("handshake accepted but the handler did not run")
		return nil
	}
}

// wantNoSecret asserts that secret appears nowhere a client or an operator
// could read it: the refusal body and headers, the log, the events.
func wantNoSecret(t *testing.T, f *fixture, a attempt, secret string) {
	t.Helper()
	if secret == "" {
		t.Fatal("wantNoSecret: empty secret")
	}
	if strings.Contains(a.body, secret) {
		t.Fatalf("the refusal body echoes the token: %q", a.body)
	}
	for k, vs := range a.header {
		for _, v := range vs {
			if strings.Contains(v, secret) {
				t.Fatalf("response header %s echoes the token", k)
			}
		}
	}
	if strings.Contains(f.logs.String(), secret) {
		t.Fatalf("the log holds the token:\n%s", f.logs.String())
	}
	for _, e := range f.events.all() {
		if strings.Contains(e.Detail, secret) || strings.Contains(e.Reason, secret) ||
			strings.Contains(e.Origin, secret) || strings.Contains(e.Subject, secret) {
			t.Fatalf("an event holds the token: %+v", e)
		}
	}
}

// wantRetryAfter asserts a Retry-After of at least one whole second.
func wantRetryAfter(t *testing.T, a attempt) int {
	t.Helper()
	v := a.header.Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q; want a positive number of seconds", v)
	}
	return n
}

// wantCounts asserts the live quota counters, waiting (bounded) for slots
// that a closing connection releases on its own goroutine.
func wantCounts(t *testing.T, g *Guard, ips, subs, total int) {
	t.Helper()
	eventually(t, "quota counters to settle", func() bool {
		a, b, c := g.lim.counts()
		return a == ips && b == subs && c == total
	})
}

// wantCountsNow asserts the counters without waiting: for refusals, whose
// slots are released before the answer is written.
func wantCountsNow(t *testing.T, g *Guard, ips, subs, total int) {
	t.Helper()
	a, b, c := g.lim.counts()
	if a != ips || b != subs || c != total {
		t.Fatalf("counters (ips %d, subs %d, total %d); want (%d, %d, %d)", a, b, c, ips, subs, total)
	}
}

// hdr builds handshake headers from name/value pairs; a name may repeat.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// b64 is unpadded base64url, as in a compact JWS.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// handJWT builds a compact JWS by hand from a header and claims, signing
// the input with sign (nil leaves the signature empty). It is how the
// tests build tokens that jwx refuses to produce.
func handJWT(t testing.TB, header, claims map[string]any, sign func(input string) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(h) + "." + b64(c)
	if sign == nil {
		return input + "."
	}
	return input + "." + b64(sign(input))
}

// hs256 signs with HMAC-SHA256 under key.
func hs256(key []byte) func(string) []byte {
	return func(input string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return m.Sum(nil)
	}
}

// goodClaims are claims every check accepts: sub, iat now, exp in 5 min.
func goodClaims() map[string]any {
	now := time.Now()
	return map[string]any{"sub": "alice", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
}

// bearer is an Authorization header holding tok, with the origin given.
func bearer(origin, tok string) http.Header {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	h.Set("Authorization", "Bearer "+tok)
	return h
}

// newECKey returns an ES256 private key as a JWK with kid, and the public
// JWK with the same kid.
func newECKey(t testing.TB, kid string) (priv, pub jwk.Key) {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jwkPair(t, raw, &raw.PublicKey, kid)
}

// newRSAKey returns a 2048-bit RSA key: the raw private key and its JWK
// pair.
func newRSAKey(t testing.TB, kid string) (raw *rsa.PrivateKey, priv, pub jwk.Key) {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = jwkPair(t, raw, &raw.PublicKey, kid)
	return raw, priv, pub
}

func jwkPair(t testing.TB, rawPriv, rawPub any, kid string) (priv, pub jwk.Key) {
	t.Helper()
	priv, err := jwk.Import(rawPriv)
	if err != nil {
		t.Fatal(err)
	}
	pub, err = jwk.Import(rawPub)
	if err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		if err := priv.Set(jwk.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
		if err := pub.Set(jwk.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
	}
	return priv, pub
}

// keySet builds a jwk.Set from keys.
func keySet(t testing.TB, keys ...jwk.Key) jwk.Set {
	t.Helper()
	s := jwk.NewSet()
	for _, k := range keys {
		if err := s.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// ---------------------------------------------------------------------------
// Origin: cross-site WebSocket hijacking.

// TestCSWSH_Origin runs the origin guard through a real handshake: the
// default same-origin rule, the missing and "null" origins, and wildcard
// patterns against lookalike hosts.
func TestCSWSH_Origin(t *testing.T) {
	const self = "<self>" // stands for the fixture's own origin
	const none = ""       // no Origin header at all
	wildcard := WithOrigins("https://*.example.com")
	cases := []struct {
		name   string
		opts   []Option
		origin string
		status int
		reason string
	}{
		{"same origin accepted by default", nil, self, 101, ""},
		{"cross-site origin", nil, "https://evil.example", 403, "origin_not_allowed"},
		{"cross-site origin same host other scheme", nil, "https://<host>", 403, "origin_not_allowed"},
		{"cross-site origin same host other port", nil, "http://127.0.0.1:1", 403, "origin_not_allowed"},
		{"null origin", nil, "null", 403, "origin_null"},
		{"missing origin", nil, none, 403, "origin_missing"},
		{"malformed origin", nil, "http://<host>/path", 403, "origin_not_allowed"},
		{"missing origin with WithAllowMissingOrigin", []Option{WithAllowMissingOrigin()}, none, 101, ""},
		{"null origin with WithAllowMissingOrigin", []Option{WithAllowMissingOrigin()}, "null", 403, "origin_null"},
		{"cross-site origin with WithAllowMissingOrigin", []Option{WithAllowMissingOrigin()}, "https://evil.example", 403, "origin_not_allowed"},
		{"wildcard matches a subdomain", []Option{wildcard}, "https://a.example.com", 101, ""},
		{"wildcard matches a deeper subdomain", []Option{wildcard}, "https://a.b.example.com", 101, ""},
		{"wildcard matches ignoring case", []Option{wildcard}, "https://A.Example.COM", 101, ""},
		{"wildcard trick: suffix host", []Option{wildcard}, "https://evil.example.com.attacker.net", 403, "origin_not_allowed"},
		{"wildcard trick: no dot boundary", []Option{wildcard}, "https://notexample.com", 403, "origin_not_allowed"},
		{"wildcard does not match the bare domain", []Option{wildcard}, "https://example.com", 403, "origin_not_allowed"},
		{"wildcard does not match another scheme", []Option{wildcard}, "http://a.example.com", 403, "origin_not_allowed"},
		{"wildcard does not match another port", []Option{wildcard}, "https://a.example.com:8443", 403, "origin_not_allowed"},
		{"wildcard trick: userinfo", []Option{wildcard}, "https://a.example.com@evil.net", 403, "origin_not_allowed"},
		{"patterns replace same-origin", []Option{wildcard}, self, 403, "origin_not_allowed"},
		{"null origin with patterns", []Option{wildcard}, "null", 403, "origin_null"},
	}
	tok := mint(t, claims{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Option{WithInsecureTransport(), WithHMACKey(testKey)}, tc.opts...)
			f := newFixture(t, nil, opts...)
			origin := strings.ReplaceAll(tc.origin, "<host>", f.host())
			if origin == self {
				origin = f.origin
			}
			a := f.try(bearer(origin, tok))
			if tc.status == 101 {
				wantAccepted(t, f, a)
				return
			}
			wantRefused(t, f, a, tc.status, tc.reason)
			if errs := f.events.reasons(EventHandshakeRefused); len(errs) != 1 {
				t.Fatalf("refusals %v; want exactly one", errs)
			}
			if ev, _ := f.events.last(EventHandshakeRefused); origin != "" && ev.Origin != origin {
				t.Fatalf("event origin %q; want %q", ev.Origin, origin)
			}
		})
	}
}

// TestCSWSH_CrossSiteOrigin is the classic hijack: a page on another site
// opens a socket to the service and the browser attaches the victim's
// cookie. The cookie must not help.
func TestCSWSH_CrossSiteOrigin(t *testing.T) {
	tok := mint(t, claims{})
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithTokenSources(CookieToken("session")))
	h := hdr("Origin", "https://attacker.example", "Cookie", "session="+tok)
	a := f.try(h)
	wantRefused(t, f, a, 403, "origin_not_allowed")
	wantNoSecret(t, f, a, tok)
	wantCountsNow(t, f.g, 0, 0, 0)
}

// TestCSWSH_SeveralOriginHeaders refuses a request that carries two Origin
// headers, whichever one would match.
func TestCSWSH_SeveralOriginHeaders(t *testing.T) {
	tok := mint(t, claims{})
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
	h := bearer(f.origin, tok)
	h.Add("Origin", "https://evil.example")
	wantRefused(t, f, f.try(h), 403, "origin_not_allowed")
}

// ---------------------------------------------------------------------------
// Transport: TLS required, X-Forwarded-Proto believed only from proxies.

func TestTransport(t *testing.T) {
	tok := mint(t, claims{})
	key := WithHMACKey(testKey)
	proxy := WithTrustedProxies("127.0.0.1/32")
	cases := []struct {
		name   string
		tls    bool
		opts   []Option
		proto  string // X-Forwarded-Proto sent, "" for none
		https  bool   // send an https:// Origin for the same host
		status int
	}{
		{"plain ws without WithInsecureTransport", false, nil, "", false, 426},
		{"plain ws with WithInsecureTransport", false, []Option{WithInsecureTransport()}, "", false, 101},
		{"TLS server without WithInsecureTransport", true, nil, "", true, 101},
		{"X-Forwarded-Proto https from an untrusted peer", false, nil, "https", true, 426},
		{"X-Forwarded-Proto wss from an untrusted peer", false, nil, "wss", true, 426},
		{"X-Forwarded-Proto https from a trusted proxy", false, []Option{proxy}, "https", true, 101},
		{"X-Forwarded-Proto http from a trusted proxy", false, []Option{proxy}, "http", false, 426},
		{"no X-Forwarded-Proto from a trusted proxy", false, []Option{proxy}, "", false, 426},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, d := startFixture(t, tc.tls, nil, append([]Option{key}, tc.opts...)...)
			origin := "http://" + f.host()
			if tc.https {
				origin = "https://" + f.host()
			}
			h := bearer(origin, tok)
			if tc.proto != "" {
				h.Set("X-Forwarded-Proto", tc.proto)
			}
			a := f.tryWith(d, h)
			if tc.status == 101 {
				wantAccepted(t, f, a)
				return
			}
			wantRefused(t, f, a, tc.status, "transport_insecure")
			wantNoSecret(t, f, a, tok)
			wantCountsNow(t, f.g, 0, 0, 0)
		})
	}
}

// TestTransport_TLSRequiredBeforeOtherChecks: with TLS required, a plain
// request is refused with 426 whatever else is wrong with it.
func TestTransport_TLSRequiredBeforeOtherChecks(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey))
	a := f.try(hdr("Origin", "https://evil.example"))
	wantRefused(t, f, a, 426, "transport_insecure")
}

// ---------------------------------------------------------------------------
// Client IP: X-Forwarded-For believed only from trusted proxies.

// TestXFF_SpoofedFromUntrustedPeer: a client that rotates X-Forwarded-For
// must not escape its per-IP quota or handshake rate.
func TestXFF_SpoofedFromUntrustedPeer(t *testing.T) {
	tok := mint(t, claims{})
	t.Run("per-IP quota keyed by the peer", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(1, 8, 100))
		h := bearer(f.origin, tok)
		h.Set("X-Forwarded-For", "203.0.113.1")
		first := wantAccepted(t, f, f.try(h))
		if got := first.RemoteIP(); got != "127.0.0.1" {
			t.Fatalf("RemoteIP %q; want the peer 127.0.0.1", got)
		}
		h.Set("X-Forwarded-For", "198.51.100.2")
		a := f.try(h)
		wantRefused(t, f, a, 429, "quota_ip")
		wantRetryAfter(t, a)
		ev, _ := f.events.last(EventHandshakeRefused)
		if ev.RemoteIP.String() != "127.0.0.1" {
			t.Fatalf("event RemoteIP %v; want the peer 127.0.0.1", ev.RemoteIP)
		}
		if strings.Contains(f.logs.String(), `"remote_ip":"198.51.100.2"`) {
			t.Fatalf("the spoofed address was logged as the client")
		}
	})
	t.Run("handshake rate keyed by the peer", func(t *testing.T) {
		clk := newFakeClock()
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithHandshakeRate(rate.Limit(1), 1), WithClock(clk.now))
		h := bearer(f.origin, tok)
		h.Set("X-Forwarded-For", "203.0.113.1")
		wantAccepted(t, f, f.try(h))
		h.Set("X-Forwarded-For", "198.51.100.2")
		a := f.try(h)
		wantRefused(t, f, a, 429, "handshake_rate")
		wantRetryAfter(t, a)
	})
	t.Run("Forwarded header from an untrusted peer", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(1, 8, 100))
		h := bearer(f.origin, tok)
		h.Set("Forwarded", "for=203.0.113.1")
		wantAccepted(t, f, f.try(h))
		h.Set("Forwarded", "for=198.51.100.2")
		wantRefused(t, f, f.try(h), 429, "quota_ip")
	})
	t.Run("malformed forwarding headers from an untrusted peer are ignored", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
		h := bearer(f.origin, tok)
		h.Set("X-Forwarded-For", "not an address, at all")
		h.Set("Forwarded", `for="garbage`)
		wantAccepted(t, f, f.try(h))
	})
}

// TestXFF_TrustedProxy: behind a trusted proxy the forwarded client is the
// key for limits and the address reported.
func TestXFF_TrustedProxy(t *testing.T) {
	tok := mint(t, claims{})
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(1, 8, 100), WithTrustedProxies("127.0.0.1/32"))
	h := bearer(f.origin, tok)
	h.Set("X-Forwarded-For", "203.0.113.1")
	c1 := wantAccepted(t, f, f.try(h))
	if got := c1.RemoteIP(); got != "203.0.113.1" {
		t.Fatalf("RemoteIP %q; want the forwarded client 203.0.113.1", got)
	}
	h.Set("X-Forwarded-For", "198.51.100.2")
	c2 := wantAccepted(t, f, f.try(h))
	if got := c2.RemoteIP(); got != "198.51.100.2" {
		t.Fatalf("RemoteIP %q; want 198.51.100.2", got)
	}
	wantCounts(t, f.g, 2, 1, 2)

	// The forwarded client, not the proxy, holds the quota.
	h.Set("X-Forwarded-For", "203.0.113.1")
	a := f.try(h)
	wantRefused(t, f, a, 429, "quota_ip")
	if ev, _ := f.events.last(EventHandshakeRefused); ev.RemoteIP.String() != "203.0.113.1" {
		t.Fatalf("event RemoteIP %v; want 203.0.113.1", ev.RemoteIP)
	}
	if rec := lastLogged(t, f.logs, EventHandshakeRefused); rec["remote_ip"] != "203.0.113.1" {
		t.Fatalf("logged remote_ip %v; want 203.0.113.1", rec["remote_ip"])
	}

	// A client cannot pose as a proxy by prepending addresses: the
	// right-most untrusted hop is the client.
	h.Set("X-Forwarded-For", "192.0.2.9, 203.0.113.1")
	wantRefused(t, f, f.try(h), 429, "quota_ip")

	// Malformed forwarding headers from a trusted proxy are refused.
	h.Set("X-Forwarded-For", "not-an-ip")
	wantRefused(t, f, f.try(h), 400, "forwarded_malformed")
}

// ---------------------------------------------------------------------------
// Handshake rate.

func TestHandshakeFlood(t *testing.T) {
	tok := mint(t, claims{})
	clk := newFakeClock()
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey),
		WithHandshakeRate(rate.Limit(1), 2), WithClock(clk.now))
	h := bearer(f.origin, tok)

	t.Run("burst admitted", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			wantAccepted(t, f, f.try(h))
		}
	})
	t.Run("flood refused with Retry-After", func(t *testing.T) {
		a := f.try(h)
		wantRefused(t, f, a, 429, "handshake_rate")
		if n := wantRetryAfter(t, a); n != 1 {
			t.Fatalf("Retry-After %d; want 1 (one token a second)", n)
		}
		wantNoSecret(t, f, a, tok)
		// Still refused while the clock stands still.
		wantRefused(t, f, f.try(h), 429, "handshake_rate")
	})
	t.Run("refused before the token is read", func(t *testing.T) {
		a := f.try(bearer(f.origin, "garbage"))
		wantRefused(t, f, a, 429, "handshake_rate")
	})
	t.Run("limit lifts when the clock advances", func(t *testing.T) {
		clk.advance(time.Second)
		wantAccepted(t, f, f.try(h))
		wantRefused(t, f, f.try(h), 429, "handshake_rate")
	})
	t.Run("another client is not affected", func(t *testing.T) {
		// Only through a trusted proxy can one loopback peer be two clients.
		f2 := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey),
			WithHandshakeRate(rate.Limit(1), 1), WithClock(clk.now), WithTrustedProxies("127.0.0.1/32"))
		h2 := bearer(f2.origin, tok)
		h2.Set("X-Forwarded-For", "203.0.113.1")
		wantAccepted(t, f2, f2.try(h2))
		wantRefused(t, f2, f2.try(h2), 429, "handshake_rate")
		h2.Set("X-Forwarded-For", "203.0.113.2")
		wantAccepted(t, f2, f2.try(h2))
	})
}

// ---------------------------------------------------------------------------
// Connection quotas.

func TestQuota(t *testing.T) {
	alice := mint(t, claims{sub: "alice"})
	bob := mint(t, claims{sub: "bob"})
	t.Run("per IP", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(2, 8, 100))
		wantAccepted(t, f, f.try(bearer(f.origin, alice)))
		wantAccepted(t, f, f.try(bearer(f.origin, bob)))
		a := f.try(bearer(f.origin, alice))
		wantRefused(t, f, a, 429, "quota_ip")
		wantRetryAfter(t, a)
		wantNoSecret(t, f, a, alice)
		wantCountsNow(t, f.g, 1, 2, 2)
	})
	t.Run("per IP refused before the token is read", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(1, 8, 100))
		wantAccepted(t, f, f.try(bearer(f.origin, alice)))
		wantRefused(t, f, f.try(bearer(f.origin, "garbage")), 429, "quota_ip")
	})
	t.Run("per subject", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(32, 1, 100))
		wantAccepted(t, f, f.try(bearer(f.origin, alice)))
		a := f.try(bearer(f.origin, alice))
		wantRefused(t, f, a, 429, "quota_subject")
		wantRetryAfter(t, a)
		if ev, _ := f.events.last(EventHandshakeRefused); ev.Subject != "alice" {
			t.Fatalf("event subject %q; want alice", ev.Subject)
		}
		wantNoSecret(t, f, a, alice)
		wantCountsNow(t, f.g, 1, 1, 1)
		wantAccepted(t, f, f.try(bearer(f.origin, bob)))
		wantCountsNow(t, f.g, 1, 2, 2)
	})
	t.Run("total capacity", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(32, 8, 1))
		wantAccepted(t, f, f.try(bearer(f.origin, alice)))
		a := f.try(bearer(f.origin, bob))
		wantRefused(t, f, a, 503, "capacity")
		wantNoSecret(t, f, a, bob)
		wantCountsNow(t, f.g, 1, 1, 1)
	})
	t.Run("slot freed when a socket closes", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(1, 1, 1))
		a := f.try(bearer(f.origin, alice))
		srv := wantAccepted(t, f, a)
		wantRefused(t, f, f.try(bearer(f.origin, alice)), 429, "quota_ip")
		a.conn.Close()
		waitGone(t, srv)
		wantCountsNow(t, f.g, 0, 0, 0)
		wantAccepted(t, f, f.try(bearer(f.origin, alice)))
	})
}

// waitGone waits (bounded) until a server-side Conn is torn down.
func waitGone(t *testing.T, c *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("connection not torn down: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Tokens.

// TestJWT runs every token refusal through a real handshake: 401 with
// WWW-Authenticate, the reason observed and logged, and the token echoed
// nowhere.
func TestJWT(t *testing.T) {
	rsaRaw, _, rsaPub := newRSAKey(t, "")
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaRaw.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	ecPriv1, ecPub1 := newECKey(t, "k1")
	_, ecPub2 := newECKey(t, "k2")
	ecStranger, _ := newECKey(t, "k3")
	ecImpostor, _ := newECKey(t, "k1") // claims kid k1 with another key

	hsHeader := func(extra map[string]any) map[string]any {
		h := map[string]any{"alg": "HS256", "typ": "JWT"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	now := time.Now()
	ecSet := WithKeySet(keySet(t, ecPub1, ecPub2))
	cases := []struct {
		name   string
		opts   []Option // beyond WithInsecureTransport; WithHMACKey(testKey) when nil
		token  func(t *testing.T) string
		status int
		reason string
	}{
		{"malformed: two segments", nil, func(*testing.T) string { return "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0" }, 401, "token_malformed"},
		{"malformed: not base64url", nil, func(*testing.T) string { return "e30.e30.sig+nature/with=bad" }, 401, "token_malformed"},
		{"malformed: header not JSON", nil, func(*testing.T) string {
			return b64([]byte("not json")) + "." + b64([]byte(`{"sub":"alice"}`)) + ".c2ln"
		}, 401, "token_header"},
		{"expired", nil, func(t *testing.T) string {
			return mint(t, claims{iat: now.Add(-10 * time.Minute), exp: now.Add(-5 * time.Minute)})
		}, 401, "token_expired"},
		{"expired within the clock skew is accepted", nil, func(t *testing.T) string {
			return mint(t, claims{iat: now.Add(-5 * time.Minute), exp: now.Add(-5 * time.Second)})
		}, 101, ""},
		{"exp missing", nil, func(t *testing.T) string { return mint(t, claims{noExp: true}) }, 401, "token_claims"},
		{"not yet valid (nbf)", nil, func(t *testing.T) string {
			return mint(t, claims{nbf: now.Add(5 * time.Minute), exp: now.Add(10 * time.Minute)})
		}, 401, "token_not_yet_valid"},
		{"issued in the future (iat)", nil, func(t *testing.T) string {
			return mint(t, claims{iat: now.Add(5 * time.Minute), exp: now.Add(10 * time.Minute)})
		}, 401, "token_claims"},
		{"wrong issuer", []Option{WithHMACKey(testKey), WithIssuer("https://auth.example.com")}, func(t *testing.T) string {
			return mint(t, claims{iss: "https://evil.example"})
		}, 401, "token_issuer"},
		{"missing issuer", []Option{WithHMACKey(testKey), WithIssuer("https://auth.example.com")}, func(t *testing.T) string {
			return mint(t, claims{})
		}, 401, "token_issuer"},
		{"right issuer", []Option{WithHMACKey(testKey), WithIssuer("https://auth.example.com")}, func(t *testing.T) string {
			return mint(t, claims{iss: "https://auth.example.com"})
		}, 101, ""},
		{"wrong audience", []Option{WithHMACKey(testKey), WithAudience("wssec-api")}, func(t *testing.T) string {
			return mint(t, claims{aud: []string{"other-api"}})
		}, 401, "token_audience"},
		{"missing audience", []Option{WithHMACKey(testKey), WithAudience("wssec-api")}, func(t *testing.T) string {
			return mint(t, claims{})
		}, 401, "token_audience"},
		{"right audience", []Option{WithHMACKey(testKey), WithAudience("wssec-api")}, func(t *testing.T) string {
			return mint(t, claims{aud: []string{"other-api", "wssec-api"}})
		}, 101, ""},
		{"lifetime too long", []Option{WithHMACKey(testKey), WithMaxTokenLifetime(5 * time.Minute)}, func(t *testing.T) string {
			return mint(t, claims{exp: now.Add(10 * time.Minute)})
		}, 401, "token_lifetime"},
		{"lifetime too long by default (15 min)", nil, func(t *testing.T) string {
			return mint(t, claims{exp: now.Add(24 * time.Hour)})
		}, 401, "token_lifetime"},
		{"lifetime too long without iat", []Option{WithHMACKey(testKey), WithMaxTokenLifetime(5 * time.Minute), WithTokensWithoutIssuedAt()}, func(t *testing.T) string {
			c := goodClaims()
			delete(c, "iat")
			c["exp"] = now.Add(10 * time.Minute).Unix()
			return handJWT(t, hsHeader(nil), c, hs256(testKey))
		}, 401, "token_lifetime"},
		{"iat missing (refused by default)", nil, func(t *testing.T) string {
			c := goodClaims()
			delete(c, "iat")
			return handJWT(t, hsHeader(nil), c, hs256(testKey))
		}, 401, "token_claims"},
		{"iat missing, WithTokensWithoutIssuedAt", []Option{WithHMACKey(testKey), WithTokensWithoutIssuedAt()}, func(t *testing.T) string {
			c := goodClaims()
			delete(c, "iat")
			return handJWT(t, hsHeader(nil), c, hs256(testKey))
		}, 101, ""},
		{"wrong signature", nil, func(t *testing.T) string {
			return handJWT(t, hsHeader(nil), goodClaims(), hs256([]byte("another-secret-another-secret-00")))
		}, 401, "token_signature"},
		{"alg none, empty signature", nil, func(t *testing.T) string {
			return handJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, goodClaims(), nil)
		}, 401, "token_malformed"},
		{"alg none, with a signature", nil, func(t *testing.T) string {
			return handJWT(t, map[string]any{"alg": "none"}, goodClaims(), hs256(testKey))
		}, 401, "token_alg"},
		{"alg NoNe, with a signature", nil, func(t *testing.T) string {
			return handJWT(t, map[string]any{"alg": "NoNe"}, goodClaims(), hs256(testKey))
		}, 401, "token_alg"},
		{"HS256 signed with the RSA public key as secret", []Option{WithKeySet(keySet(t, rsaPub))}, func(t *testing.T) string {
			return handJWT(t, hsHeader(nil), goodClaims(), hs256(pubPEM))
		}, 401, "token_alg"},
		{"HS256 signed with the RSA public key DER as secret", []Option{WithKeySet(keySet(t, rsaPub))}, func(t *testing.T) string {
			return handJWT(t, hsHeader(nil), goodClaims(), hs256(pubDER))
		}, 401, "token_alg"},
		{"RS256 with the RSA key set", []Option{WithKeySet(keySet(t, rsaPub))}, func(t *testing.T) string {
			return mintWith(t, jwa.RS256(), rsaRaw, claims{})
		}, 101, ""},
		{"ES256 with a known kid", []Option{ecSet}, func(t *testing.T) string {
			return mintWith(t, jwa.ES256(), ecPriv1, claims{})
		}, 101, ""},
		{"unknown kid", []Option{ecSet}, func(t *testing.T) string {
			return mintWith(t, jwa.ES256(), ecStranger, claims{})
		}, 401, "token_kid"},
		{"kid missing with several keys", []Option{ecSet}, func(t *testing.T) string {
			raw, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return mintWith(t, jwa.ES256(), raw, claims{})
		}, 401, "token_kid"},
		{"known kid, another key", []Option{ecSet}, func(t *testing.T) string {
			return mintWith(t, jwa.ES256(), ecImpostor, claims{})
		}, 401, "token_signature"},
		{"HS256 against an EC key set", []Option{ecSet}, func(t *testing.T) string {
			return handJWT(t, hsHeader(map[string]any{"kid": "k1"}), goodClaims(), hs256(testKey))
		}, 401, "token_alg"},
		{"crit header", nil, func(t *testing.T) string {
			return handJWT(t, hsHeader(map[string]any{"crit": []string{"exp"}}), goodClaims(), hs256(testKey))
		}, 401, "token_header"},
		{"embedded jwk header", nil, func(t *testing.T) string {
			k := map[string]any{"kty": "oct", "k": b64(testKey)}
			return handJWT(t, hsHeader(map[string]any{"jwk": k}), goodClaims(), hs256(testKey))
		}, 401, "token_header"},
		{"jku header", nil, func(t *testing.T) string {
			return handJWT(t, hsHeader(map[string]any{"jku": "https://attacker.example/jwks.json"}), goodClaims(), hs256(testKey))
		}, 401, "token_header"},
		{"x5u header", nil, func(t *testing.T) string {
			return handJWT(t, hsHeader(map[string]any{"x5u": "https://attacker.example/cert.pem"}), goodClaims(), hs256(testKey))
		}, 401, "token_header"},
		{"oversized token (over 8 KiB)", nil, func(t *testing.T) string {
			c := goodClaims()
			c["pad"] = strings.Repeat("A", 9<<10)
			return handJWT(t, hsHeader(nil), c, hs256(testKey))
		}, 401, "token_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts == nil {
				opts = []Option{WithHMACKey(testKey)}
			}
			f := newFixture(t, nil, append([]Option{WithInsecureTransport()}, opts...)...)
			tok := tc.token(t)
			a := f.try(bearer(f.origin, tok))
			if tc.status == 101 {
				wantAccepted(t, f, a)
				return
			}
			wantRefused(t, f, a, tc.status, tc.reason)
			wantChallenge(t, a.header.Get("WWW-Authenticate"), tc.reason)
			wantNoSecret(t, f, a, tok)
			wantCountsNow(t, f.g, 0, 0, 0)
		})
	}
}

// TestJWT_Missing: no credential anywhere is 401 token_missing.
func TestJWT_Missing(t *testing.T) {
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
	a := f.try(hdr("Origin", f.origin))
	wantRefused(t, f, a, 401, "token_missing")
	if got := a.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	wantCountsNow(t, f.g, 0, 0, 0)
}

// TestJWT_NotBearer: an Authorization header of another scheme is refused,
// not skipped in favour of a later source.
func TestJWT_NotBearer(t *testing.T) {
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
	const secret = "dXNlcjpodW50ZXIy"
	tok := mint(t, claims{})
	d := &websocket.Dialer{Subprotocols: []string{DefaultSubprotocol, "bearer." + tok}}
	a := f.tryWith(d, hdr("Origin", f.origin, "Authorization", "Basic "+secret))
	wantRefused(t, f, a, 401, "token_malformed")
	wantNoSecret(t, f, a, secret)
	wantNoSecret(t, f, a, tok)
}

// TestJWT_AlgNone is the regression test named after the attack: an
// unsigned token, whatever the spelling of "none", never authenticates.
func TestJWT_AlgNone(t *testing.T) {
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		for _, sig := range []bool{false, true} {
			name := alg + " without signature"
			if sig {
				name = alg + " with a signature"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
				var sign func(string) []byte
				if sig {
					sign = hs256(testKey)
				}
				tok := handJWT(t, map[string]any{"alg": alg, "typ": "JWT"}, goodClaims(), sign)
				a := f.try(bearer(f.origin, tok))
				if a.status != 401 || a.conn != nil || !f.handlerNeverRan() {
					t.Fatalf("status %d; want 401 and no handler", a.status)
				}
				if ev, _ := f.events.last(EventHandshakeRefused); !strings.HasPrefix(ev.Reason, "token_") {
					t.Fatalf("reason %q; want a token refusal", ev.Reason)
				}
				wantNoSecret(t, f, a, tok)
			})
		}
	}
}

// TestJWT_HMACWithPublicKey is the algorithm-confusion attack: the
// attacker signs HS256 with the server's RSA public key (which is public)
// as the HMAC secret.
func TestJWT_HMACWithPublicKey(t *testing.T) {
	rsaRaw, _, rsaPub := newRSAKey(t, "")
	der, err := x509.MarshalPKIXPublicKey(&rsaRaw.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	f := newFixture(t, nil, WithInsecureTransport(), WithKeySet(keySet(t, rsaPub)))
	tok := handJWT(t, map[string]any{"alg": "HS256", "typ": "JWT"}, goodClaims(), hs256(pemBytes))
	a := f.try(bearer(f.origin, tok))
	wantRefused(t, f, a, 401, "token_alg")
	wantNoSecret(t, f, a, tok)
	// The same claims properly signed are accepted: the refusal is the alg.
	wantAccepted(t, f, f.try(bearer(f.origin, mintWith(t, jwa.RS256(), rsaRaw, claims{}))))
}

// TestJWT_Subprotocol: a token in a "bearer." subprotocol authenticates,
// and the server selects its own protocol, never echoing the token.
func TestJWT_Subprotocol(t *testing.T) {
	tok := mint(t, claims{})
	t.Run("accepted, wssec.v1 selected", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
		d := &websocket.Dialer{Subprotocols: []string{DefaultSubprotocol, "bearer." + tok}}
		a := f.tryWith(d, hdr("Origin", f.origin))
		c := wantAccepted(t, f, a)
		if got := a.header.Get("Sec-WebSocket-Protocol"); got != DefaultSubprotocol {
			t.Fatalf("selected subprotocol %q; want %q", got, DefaultSubprotocol)
		}
		if got := a.conn.Subprotocol(); got != DefaultSubprotocol {
			t.Fatalf("client sees subprotocol %q", got)
		}
		if got := c.Subprotocol(); got != DefaultSubprotocol {
			t.Fatalf("server Conn subprotocol %q", got)
		}
		if p := c.Principal(); p == nil || p.Subject != "alice" {
			t.Fatalf("principal %+v; want alice", p)
		}
		wantNoSecret(t, f, a, tok)
	})
	t.Run("bearer listed first, wssec.v1 still selected", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
		d := &websocket.Dialer{Subprotocols: []string{"bearer." + tok, DefaultSubprotocol}}
		a := f.tryWith(d, hdr("Origin", f.origin))
		wantAccepted(t, f, a)
		if got := a.header.Get("Sec-WebSocket-Protocol"); got != DefaultSubprotocol {
			t.Fatalf("selected subprotocol %q; want %q", got, DefaultSubprotocol)
		}
	})
	t.Run("only the bearer entry offered: nothing selected", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
		d := &websocket.Dialer{Subprotocols: []string{"bearer." + tok}}
		a := f.tryWith(d, hdr("Origin", f.origin))
		wantAccepted(t, f, a)
		if got := a.header.Get("Sec-WebSocket-Protocol"); got != "" {
			t.Fatalf("selected subprotocol %q; want none (never the bearer entry)", got)
		}
	})
	t.Run("custom subprotocols", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithSubprotocols("chat.v2", "chat.v1"))
		d := &websocket.Dialer{Subprotocols: []string{"chat.v1", "bearer." + tok}}
		a := f.tryWith(d, hdr("Origin", f.origin))
		wantAccepted(t, f, a)
		if got := a.header.Get("Sec-WebSocket-Protocol"); got != "chat.v1" {
			t.Fatalf("selected subprotocol %q; want chat.v1", got)
		}
	})
	t.Run("bad token in the subprotocol", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
		bad := handJWT(t, map[string]any{"alg": "HS256"}, goodClaims(), hs256([]byte("not-the-key-not-the-key-not-the-")))
		d := &websocket.Dialer{Subprotocols: []string{DefaultSubprotocol, "bearer." + bad}}
		a := f.tryWith(d, hdr("Origin", f.origin))
		wantRefused(t, f, a, 401, "token_signature")
		wantNoSecret(t, f, a, bad)
	})
	t.Run("two bearer entries", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
		d := &websocket.Dialer{Subprotocols: []string{DefaultSubprotocol, "bearer." + tok, "bearer." + tok}}
		a := f.tryWith(d, hdr("Origin", f.origin))
		wantRefused(t, f, a, 401, "token_malformed")
		wantNoSecret(t, f, a, tok)
	})
}

// TestJWT_Cookie: a cookie token counts only with a verified Origin.
func TestJWT_Cookie(t *testing.T) {
	tok := mint(t, claims{})
	src := WithTokenSources(CookieToken("session"))
	t.Run("same origin accepted", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), src)
		c := wantAccepted(t, f, f.try(hdr("Origin", f.origin, "Cookie", "session="+tok)))
		if p := c.Principal(); p == nil || p.Subject != "alice" {
			t.Fatalf("principal %+v; want alice", p)
		}
	})
	t.Run("no Origin with WithAllowMissingOrigin is token missing", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), src, WithAllowMissingOrigin())
		a := f.try(hdr("Cookie", "session="+tok))
		wantRefused(t, f, a, 401, "token_missing")
		wantNoSecret(t, f, a, tok)
		wantCountsNow(t, f.g, 0, 0, 0)
	})
	t.Run("cross-site origin", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), src, WithAllowMissingOrigin())
		a := f.try(hdr("Origin", "https://attacker.example", "Cookie", "session="+tok))
		wantRefused(t, f, a, 403, "origin_not_allowed")
		wantNoSecret(t, f, a, tok)
	})
	t.Run("bad cookie token", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), src)
		bad := mint(t, claims{exp: time.Now().Add(-time.Hour), iat: time.Now().Add(-2 * time.Hour)})
		a := f.try(hdr("Origin", f.origin, "Cookie", "session="+bad))
		wantRefused(t, f, a, 401, "token_expired")
		wantNoSecret(t, f, a, bad)
	})
	t.Run("header not consulted when only the cookie is configured", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), src)
		a := f.try(bearer(f.origin, tok))
		wantRefused(t, f, a, 401, "token_missing")
		wantNoSecret(t, f, a, tok)
	})
}

// ---------------------------------------------------------------------------
// Wrap and Upgrade entry points.

// TestWrap_PassesNonUpgradeRequests: a plain GET reaches next untouched,
// even with a Guard that would refuse it as a WebSocket handshake.
func TestWrap_PassesNonUpgradeRequests(t *testing.T) {
	logs := &logBuffer{}
	rec := &recorder{}
	g, err := New(WithHMACKey(testKey), WithObserver(rec),
		WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	var ran int
	var mu sync.Mutex
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ran++
		mu.Unlock()
		if _, ok := PrincipalFrom(r.Context()); ok {
			t.Errorf("a plain request carries a Principal")
		}
		io.WriteString(w, "hello")
	})
	srv := httptest.NewServer(g.Wrap(next))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name   string
		method string
		h      http.Header
	}{
		{"plain GET", http.MethodGet, nil},
		{"GET with a cross-site Origin", http.MethodGet, hdr("Origin", "https://evil.example")},
		{"POST without token", http.MethodPost, nil},
		{"Upgrade to another protocol", http.MethodGet, hdr("Connection", "Upgrade", "Upgrade", "h2c")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+"/page", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.h {
				req.Header[k] = v
			}
			mu.Lock()
			before := ran
			mu.Unlock()
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "hello" {
				t.Fatalf("status %d body %q; want 200 hello", resp.StatusCode, body)
			}
			mu.Lock()
			after := ran
			mu.Unlock()
			if after != before+1 {
				t.Fatalf("next ran %d times; want once", after-before)
			}
			for _, k := range []string{"WWW-Authenticate", "Retry-After", "X-Content-Type-Options", "Cache-Control", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol"} {
				if v := resp.Header.Get(k); v != "" {
					t.Fatalf("wssec header %s: %q on a pass-through response", k, v)
				}
			}
		})
	}
	if len(rec.all()) != 0 || logs.String() != "" {
		t.Fatalf("pass-through requests produced events: %v\n%s", rec.all(), logs.String())
	}
	wantCountsNow(t, g, 0, 0, 0)
}

// TestUpgrade_DirectRunsEveryGuard is the "convenience entry point that
// skips a check" pitfall: a user who wires g.Upgrade into a plain
// http.HandlerFunc, without Wrap, still gets every guard.
func TestUpgrade_DirectRunsEveryGuard(t *testing.T) {
	tok := mint(t, claims{})
	type result struct {
		c   *Conn
		err error
	}
	setup := func(t *testing.T, opts ...Option) (*fixture, chan result) {
		f := &fixture{t: t, logs: &logBuffer{}, events: &recorder{}, ran: make(chan *Conn, 64)}
		base := []Option{
			WithLogger(slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
			WithObserver(f.events),
		}
		g, err := New(append(base, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		f.g = g
		results := make(chan result, 8)
		f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := g.Upgrade(w, r)
			results <- result{c, err}
			if err != nil {
				return
			}
			f.ran <- c
			defer c.Close(CloseNormal, "")
			for {
				if _, err := c.ReadMessage(c.Context()); err != nil {
					return
				}
			}
		}))
		f.url = "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws"
		f.origin = f.srv.URL
		t.Cleanup(func() {
			g.Close()
			f.srv.Close()
		})
		return f, results
	}
	recv := func(t *testing.T, ch chan result) result {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("the handler did not report")
			return result{}
		}
	}
	cases := []struct {
		name     string
		opts     []Option
		h        func(f *fixture) http.Header
		status   int
		reason   string
		sentinel error
	}{
		{"cross-site Origin", []Option{WithInsecureTransport()}, func(*fixture) http.Header {
			return bearer("https://evil.example", tok)
		}, 403, "origin_not_allowed", ErrOriginNotAllowed},
		{"plain ws without TLS", nil, func(f *fixture) http.Header {
			return bearer(f.origin, tok)
		}, 426, "transport_insecure", ErrInsecureTransport},
		{"missing token", []Option{WithInsecureTransport()}, func(f *fixture) http.Header {
			return hdr("Origin", f.origin)
		}, 401, "token_missing", ErrTokenMissing},
		{"bad token", []Option{WithInsecureTransport()}, func(f *fixture) http.Header {
			return bearer(f.origin, "a.b.c")
		}, 401, "token_malformed", ErrTokenInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, results := setup(t, append([]Option{WithHMACKey(testKey)}, tc.opts...)...)
			a := f.try(tc.h(f))
			wantRefused(t, f, a, tc.status, tc.reason)
			r := recv(t, results)
			if r.c != nil || !errors.Is(r.err, tc.sentinel) {
				t.Fatalf("Upgrade returned (%v, %v); want an error matching %v", r.c, r.err, tc.sentinel)
			}
			wantCountsNow(t, f.g, 0, 0, 0)
		})
	}
	t.Run("quota applies without Wrap", func(t *testing.T) {
		f, results := setup(t, WithHMACKey(testKey), WithInsecureTransport(), WithConnLimits(1, 8, 10))
		a := f.try(bearer(f.origin, tok))
		srv := wantAccepted(t, f, a)
		if r := recv(t, results); r.err != nil {
			t.Fatalf("Upgrade: %v", r.err)
		}
		wantCountsNow(t, f.g, 1, 1, 1)
		wantRefused(t, f, f.try(bearer(f.origin, tok)), 429, "quota_ip")
		if r := recv(t, results); !errors.Is(r.err, ErrQuotaExceeded) {
			t.Fatalf("Upgrade error %v; want ErrQuotaExceeded", r.err)
		}
		a.conn.Close()
		waitGone(t, srv)
		wantCountsNow(t, f.g, 0, 0, 0)
	})
	t.Run("not a WebSocket request", func(t *testing.T) {
		f, results := setup(t, WithHMACKey(testKey), WithInsecureTransport())
		resp, err := http.Get(f.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("status %d; want 400", resp.StatusCode)
		}
		if r := recv(t, results); !errors.Is(r.err, ErrNotWebSocket) {
			t.Fatalf("Upgrade error %v; want ErrNotWebSocket", r.err)
		}
	})
}

// TestWrap_PrincipalInContext: an accepted handshake reaches next with
// the Principal, before any upgrade.
func TestWrap_PrincipalInContext(t *testing.T) {
	g, err := New(WithHMACKey(testKey), WithInsecureTransport(), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	subs := make(chan string, 1)
	srv := httptest.NewServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			subs <- ""
		} else {
			subs <- p.Subject
		}
		http.Error(w, "no socket today", http.StatusTeapot)
	})))
	t.Cleanup(srv.Close)
	f := &fixture{t: t, g: g, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http"), origin: srv.URL}
	a := f.try(bearer(f.origin, mint(t, claims{sub: "carol"})))
	if a.status != http.StatusTeapot {
		t.Fatalf("status %d; want the handler's 418", a.status)
	}
	if s := <-subs; s != "carol" {
		t.Fatalf("principal subject %q; want carol", s)
	}
	wantCounts(t, g, 0, 0, 0)
}
