package wssec

import (
	"bytes"
	"context"
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
)

// testKey is the HMAC key most tests sign with.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// claims for test tokens; zero fields take sane defaults.
type claims struct {
	sub, tenant, scope, iss, jti string
	aud                          []string
	iat, exp, nbf                time.Time
	noExp                        bool
	extra                        map[string]any
}

// mint signs a token with testKey (HS256).
func mint(t testing.TB, c claims) string {
	t.Helper()
	return mintWith(t, jwa.HS256(), testKey, c)
}

func mintWith(t testing.TB, alg jwa.SignatureAlgorithm, key any, c claims) string {
	t.Helper()
	now := time.Now()
	if c.sub == "" {
		c.sub = "alice"
	}
	if c.iat.IsZero() {
		c.iat = now
	}
	if c.exp.IsZero() {
		c.exp = now.Add(5 * time.Minute)
	}
	b := jwt.NewBuilder().Subject(c.sub).IssuedAt(c.iat)
	if !c.noExp {
		b = b.Expiration(c.exp)
	}
	if !c.nbf.IsZero() {
		b = b.NotBefore(c.nbf)
	}
	if c.iss != "" {
		b = b.Issuer(c.iss)
	}
	if len(c.aud) > 0 {
		b = b.Audience(c.aud)
	}
	if c.jti != "" {
		b = b.JwtID(c.jti)
	}
	if c.tenant != "" {
		b = b.Claim("tenant", c.tenant)
	}
	if c.scope != "" {
		b = b.Claim("scope", c.scope)
	}
	for k, v := range c.extra {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Sign(tok, jwt.WithKey(alg, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

// logBuffer captures slog output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Observe(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) reasons(kind EventKind) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e.Reason)
		}
	}
	return out
}

// has reports whether an event of kind with reason was observed.
func (r *recorder) has(kind EventKind, reason string) bool {
	for _, x := range r.reasons(kind) {
		if x == reason {
			return true
		}
	}
	return false
}

// fixture is a Guard behind an httptest server, with a handler that
// records whether it ran.
type fixture struct {
	t      *testing.T
	g      *Guard
	srv    *httptest.Server
	logs   *logBuffer
	events *recorder
	ran    chan *Conn
	url    string // ws://…/ws
	origin string // the server's own origin
}

// newFixture starts a plain-HTTP server (so most tests add
// WithInsecureTransport via base options) with serve as the handler.
func newFixture(t *testing.T, serve func(ctx context.Context, c *Conn), opts ...Option) *fixture {
	t.Helper()
	return buildFixture(t, httptest.NewServer, serve, opts...)
}

// buildFixture builds the Guard and the /ws route and starts the server
// with start (httptest.NewServer or httptest.NewTLSServer).
func buildFixture(t *testing.T, start func(http.Handler) *httptest.Server, serve func(ctx context.Context, c *Conn), opts ...Option) *fixture {
	t.Helper()
	f := &fixture{t: t, logs: &logBuffer{}, events: &recorder{}, ran: make(chan *Conn, 64)}
	base := []Option{
		WithLogger(slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithObserver(f.events),
	}
	g, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.g = g
	if serve == nil {
		serve = func(ctx context.Context, c *Conn) {
			for {
				if _, err := c.ReadMessage(ctx); err != nil {
					return
				}
			}
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", g.Handler(func(ctx context.Context, c *Conn) {
		f.ran <- c
		serve(ctx, c)
	}))
	f.srv = start(mux)
	scheme, rest, _ := strings.Cut(f.srv.URL, "://")
	f.url = map[string]string{"http": "ws", "https": "wss"}[scheme] + "://" + rest + "/ws"
	f.origin = f.srv.URL
	t.Cleanup(func() {
		g.Close()
		f.srv.Close()
	})
	return f
}

// dial opens a socket with the given headers; it returns the response
// status (101 on success).
func (f *fixture) dial(h http.Header) (*websocket.Conn, int, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(f.url, h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	if c != nil {
		f.t.Cleanup(func() { c.Close() })
	}
	return c, status, err
}

// headers builds handshake headers: the fixture's own Origin and a bearer
// token when tok is not empty.
func (f *fixture) headers(tok string) http.Header {
	h := http.Header{}
	h.Set("Origin", f.origin)
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return h
}

// waitHandlers waits (at most 5 s) until the handler has started for n
// more accepted sockets, so each is registered with the Guard: a client
// reads the 101 before the server has registered its Conn.
func (f *fixture) waitHandlers(n int) {
	f.t.Helper()
	deadline := time.After(5 * time.Second)
	for range n {
		select {
		case <-f.ran:
		case <-deadline:
			f.t.Fatalf("the handler did not start for %d accepted sockets", n)
		}
	}
}

// handlerRan reports whether the handler ran for an accepted socket,
// waiting a bounded time for it: the client has its 101 before Upgrade
// registers the Conn and the handler starts. Once it returns true the
// server has registered the Conn and run its post-registration checks.
func (f *fixture) handlerRan() bool {
	select {
	case <-f.ran:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

// handlerNeverRan asserts no handler ran (without waiting long: a refused
// handshake is answered before the handler could run).
func (f *fixture) handlerNeverRan() bool {
	select {
	case <-f.ran:
		return false
	default:
		return true
	}
}

// eventually polls cond until it holds or a bounded wait ends.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
