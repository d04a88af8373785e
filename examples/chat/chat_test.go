package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec"
	"github.com/wssec/wssec/internal/redistest"
)

func TestPageAndEndpoints(t *testing.T) {
	_, srv := startApp(t, config{}, nil)

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Security panel") {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q is not strict", csp)
	}
	if strings.Contains(string(body), "<script>") || inlineHandler.Match(body) {
		t.Error("the page has inline script, which its CSP forbids")
	}

	for path, want := range map[string]string{"/static/app.js": "new WebSocket", "/static/style.css": "#refusals", "/healthz": "ok"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
}

func TestLogin(t *testing.T) {
	_, srv := startApp(t, config{}, nil)
	s := login(t, srv.URL, "alice", "acme")
	c := s.cookie
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Value != s.Token || c.MaxAge <= 0 || c.MaxAge > 300 {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, Path=/, the token, at most 5 minutes", c)
	}

	post := func(ct, origin, body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, ct, origin, body string
		want                   int
	}{
		{"ok", "application/json", "", `{"user":"bob","tenant":"acme"}`, 200},
		{"upper case", "application/json", "", `{"user":"Bob","tenant":"acme"}`, 400},
		{"empty user", "application/json", "", `{"user":"","tenant":"acme"}`, 400},
		{"33 chars", "application/json", "", `{"user":"` + strings.Repeat("a", 33) + `","tenant":"acme"}`, 400},
		{"colon in tenant", "application/json", "", `{"user":"bob","tenant":"acme:x"}`, 400},
		{"unknown field", "application/json", "", `{"user":"bob","tenant":"acme","admin":true}`, 400},
		{"two objects", "application/json", "", `{"user":"bob","tenant":"acme"}{}`, 400},
		{"form post (CSRF)", "text/plain", "", `{"user":"bob","tenant":"acme"}`, 415},
		{"foreign origin (CSRF)", "application/json", "http://evil.example", `{"user":"bob","tenant":"acme"}`, 403},
		{"huge body", "application/json", "", `{"user":"` + strings.Repeat("a", 4000) + `","tenant":"acme"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.ct, tc.origin, tc.body); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

// TestHandshakeRefusals is the non-browser half of the demo: what a
// script without credentials, a cross-site page and a forger get.
func TestHandshakeRefusals(t *testing.T) {
	a, srv := startApp(t, config{}, nil)
	s := login(t, srv.URL, "alice", "acme")

	status := func(origin, token string, h http.Header) int {
		t.Helper()
		c, resp, err := dial(srv.URL, origin, token, h)
		if err == nil {
			c.Close()
			return 101
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}
	cookie := http.Header{"Cookie": {sessionCookie + "=" + s.Token}}
	forged := forge(t, s.Token)

	for _, tc := range []struct {
		name          string
		origin, token string
		h             http.Header
		want          int
		reason        string
	}{
		{"no token", srv.URL, "", nil, 401, "token_missing"},
		{"foreign origin with a valid token", "http://evil.example", s.Token, nil, 403, "origin_not_allowed"},
		{"forged token", srv.URL, forged, nil, 401, ""},
		{"cookie, foreign origin (CSWSH)", "http://127.0.0.1:1", "", cookie, 403, "origin_not_allowed"},
		{"cookie, no origin", "", "", cookie, 403, "origin_missing"},
		{"cookie, same origin", srv.URL, "", cookie, 101, ""},
		{"bearer, same origin", srv.URL, s.Token, nil, 101, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := a.metrics.count(wssec.EventHandshakeRefused, tc.reason)
			if got := status(tc.origin, tc.token, tc.h); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			if tc.reason != "" {
				after, codes := a.metrics.count(wssec.EventHandshakeRefused, tc.reason)
				if after != before+1 || !slices.Contains(codes, tc.want) {
					t.Errorf("observer: %s went %d → %d (codes %v), want one more with %d", tc.reason, before, after, codes, tc.want)
				}
			}
		})
	}

	t.Run("ticket is single use", func(t *testing.T) {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"wssec.v1"}}
		h := http.Header{"Origin": {srv.URL}}
		c, _, err := d.Dial(wsURL(srv.URL)+"?ticket="+s.Ticket, h)
		if err != nil {
			t.Fatalf("first use: %v", err)
		}
		c.Close()
		_, resp, err := d.Dial(wsURL(srv.URL)+"?ticket="+s.Ticket, h)
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Fatalf("second use: err=%v, want 401", err)
		}
	})
}

// forge changes the tenant in a token's payload, keeping the signature.
func forge(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	claims, err := jwtSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims["tenant"] = "globex"
	b, _ := json.Marshal(claims)
	return parts[0] + "." + b64url(b) + "." + parts[2]
}

func TestTenantIsolation(t *testing.T) {
	a, srv := startApp(t, config{}, nil)
	alice := mustDial(t, srv.URL, login(t, srv.URL, "alice", "acme").Token)

	send(t, alice, map[string]string{"action": "subscribe", "channel": "tenant:globex:lobby", "id": "x1"})
	f := next(t, alice, "error")
	if f.Error.Code != "forbidden" || f.ID != "x1" {
		t.Fatalf("got %+v, want a forbidden error frame for x1", f)
	}
	send(t, alice, map[string]any{"action": "publish", "channel": "tenant:globex:lobby", "id": "x2", "payload": map[string]string{"text": "hi"}})
	if f := next(t, alice, "error"); f.Error.Code != "forbidden" {
		t.Fatalf("publish to another tenant: %+v", f)
	}
	eventually(t, "observer saw 2 forbidden messages", func() bool {
		n, _ := a.metrics.count(wssec.EventMessageRefused, "forbidden")
		return n == 2
	})
	// The socket still works for its own tenant.
	subscribe(t, alice, "tenant:acme:lobby")
}

func TestPublishReachesSameTenantOnly(t *testing.T) {
	_, srv := startApp(t, config{}, nil)
	alice := mustDial(t, srv.URL, login(t, srv.URL, "alice", "acme").Token)
	bob := mustDial(t, srv.URL, login(t, srv.URL, "bob", "acme").Token)
	carol := mustDial(t, srv.URL, login(t, srv.URL, "carol", "globex").Token)
	subscribe(t, alice, "tenant:acme:lobby")
	subscribe(t, bob, "tenant:acme:lobby")
	subscribe(t, carol, "tenant:globex:lobby")

	send(t, alice, map[string]any{"action": "publish", "channel": "tenant:acme:lobby", "id": "m1", "payload": map[string]string{"text": "hello <b>bob</b>"}})
	for name, c := range map[string]*websocket.Conn{"bob": bob, "alice": alice} {
		f := next(t, c, "message")
		if f.Channel != "tenant:acme:lobby" || f.Payload.From != "alice" || f.Payload.Text != "hello <b>bob</b>" {
			t.Errorf("%s got %+v", name, f)
		}
	}
	// carol, in another tenant, gets nothing: a ping's pong comes first.
	send(t, carol, map[string]string{"action": "ping", "id": "p"})
	carol.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := carol.ReadMessage()
	if err != nil || !strings.Contains(string(b), `"pong"`) {
		t.Fatalf("carol: %s %v, want only her pong", b, err)
	}

	// After unsubscribing, bob no longer receives the room.
	send(t, bob, map[string]string{"action": "unsubscribe", "channel": "tenant:acme:lobby", "id": "u"})
	next(t, bob, "unsubscribed")
	send(t, alice, map[string]any{"action": "publish", "channel": "tenant:acme:lobby", "payload": map[string]string{"text": "again"}})
	next(t, alice, "message")
	send(t, bob, map[string]string{"action": "ping", "id": "p"})
	bob.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := bob.ReadMessage(); err != nil || !strings.Contains(string(b), `"pong"`) {
		t.Fatalf("bob after unsubscribe: %s %v", b, err)
	}
}

func TestPublishLimits(t *testing.T) {
	_, srv := startApp(t, config{}, nil)
	c := mustDial(t, srv.URL, login(t, srv.URL, "alice", "acme").Token)
	subscribe(t, c, "tenant:acme:lobby")
	pub := func(id, text string) map[string]any {
		return map[string]any{"action": "publish", "channel": "tenant:acme:lobby", "id": id, "payload": map[string]string{"text": text}}
	}
	for _, tc := range []struct {
		name string
		msg  any
	}{
		{"1000 runes but 2000 bytes", pub("b", strings.Repeat("é", 1000))},
		{"1001 runes", pub("r", strings.Repeat("a", 1001))},
		{"empty text", pub("e", "")},
		{"no channel", map[string]any{"action": "publish", "id": "n", "payload": map[string]string{"text": "x"}}},
		{"subscribe without channel", map[string]string{"action": "subscribe", "id": "s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send(t, c, tc.msg)
			if f := next(t, c, "error"); f.Error.Code != "invalid_message" {
				t.Fatalf("got %+v, want invalid_message", f)
			}
		})
	}
	// The app refuses through Conn.Deny, so its refusals count toward the
	// library's denial limit (5): the fifth closed the socket with 1008.
	if code := closeCode(t, c); code != websocket.ClosePolicyViolation {
		t.Fatalf("after five refusals: close %d, want 1008", code)
	}
	// Exactly 1000 bytes passes.
	c = mustDial(t, srv.URL, login(t, srv.URL, "alice", "acme").Token)
	subscribe(t, c, "tenant:acme:lobby")
	send(t, c, pub("ok", strings.Repeat("a", 1000)))
	if f := next(t, c, "message"); len(f.Payload.Text) != 1000 {
		t.Fatalf("1000-byte message: %+v", f)
	}
}

// TestAttacksFromThePage replays the page's attack buttons without a browser.
func TestAttacksFromThePage(t *testing.T) {
	_, srv := startApp(t, config{}, nil)
	tok := login(t, srv.URL, "alice", "acme").Token

	t.Run("40 KB message closes 1009", func(t *testing.T) {
		c := mustDial(t, srv.URL, tok)
		send(t, c, map[string]any{"action": "publish", "channel": "tenant:acme:lobby", "payload": map[string]string{"text": strings.Repeat("x", 40<<10)}})
		if code := closeCode(t, c); code != websocket.CloseMessageTooBig {
			t.Fatalf("close %d, want 1009", code)
		}
	})
	t.Run("60 messages at once are rate limited", func(t *testing.T) {
		c := mustDial(t, srv.URL, tok)
		for i := range 60 {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := c.WriteJSON(map[string]any{"action": "ping", "id": fmt.Sprint(i)}); err != nil {
				break // the server may already have closed
			}
		}
		code := closeCode(t, c)
		if code != websocket.CloseTryAgainLater {
			t.Fatalf("close %d, want 1013", code)
		}
	})
}

func TestCloseSendsGoingAway(t *testing.T) {
	a, srv := startApp(t, config{}, nil)
	c := mustDial(t, srv.URL, login(t, srv.URL, "alice", "acme").Token)
	subscribe(t, c, "tenant:acme:lobby")
	a.Close()
	if code := closeCode(t, c); code != websocket.CloseGoingAway {
		t.Fatalf("close %d, want 1001", code)
	}
	a.Close() // idempotent
}

// TestRunShutsDownWith1001 runs main's server loop; cancelling its context
// is what SIGINT does in main.
func TestRunShutsDownWith1001(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	basec := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, flags{addr: "127.0.0.1:0"}, quietLogger(), func(base string) { basec <- base })
	}()
	var base string
	select {
	case base = <-basec:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	c := mustDial(t, base, login(t, base, "alice", "acme").Token)
	subscribe(t, c, "tenant:acme:lobby")
	cancel()
	if code := closeCode(t, c); code != websocket.CloseGoingAway {
		t.Fatalf("close %d, want 1001", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestTransportRules(t *testing.T) {
	for _, tc := range []struct {
		addr string
		tls  bool
		ok   bool
	}{
		{"127.0.0.1:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"192.0.2.10:8080", false, false},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"192.0.2.10:8443", true, true},
	} {
		a, err := newApp(config{Addr: tc.addr, TLS: tc.tls, Logger: quietLogger()})
		if (err == nil) != tc.ok {
			t.Errorf("newApp(%s, tls=%v): err=%v, want ok=%v", tc.addr, tc.tls, err, tc.ok)
		}
		if a != nil {
			a.Close()
		}
	}
	// run refuses before it binds anything.
	err := run(context.Background(), flags{addr: "192.0.2.10:8080"}, quietLogger(), nil)
	if err == nil || !strings.Contains(err.Error(), "tls-cert") {
		t.Errorf("run on a public address without TLS: %v", err)
	}
	if err := run(context.Background(), flags{addr: "127.0.0.1:0", tlsCert: "x.pem"}, quietLogger(), nil); err == nil {
		t.Error("run with -tls-cert alone: want an error")
	}
	if _, err := newApp(config{Addr: "127.0.0.1:0", Issuer: "https://id.example", Logger: quietLogger()}); err == nil {
		t.Error("-issuer without -jwks-url: want an error")
	}
}

func TestExtraOrigins(t *testing.T) {
	// The page's own origin must keep working when -origin adds others.
	ln := httptest.NewUnstartedServer(nil)
	addr := ln.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	a, err := newApp(config{Addr: addr, Origins: []string{"https://chat.example.com"}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln.Config.Handler = a.Handler()
	ln.Start()
	defer ln.Close()
	defer a.Close()
	tok := login(t, ln.URL, "alice", "acme").Token
	for origin, want := range map[string]int{
		ln.URL:                       101,
		"https://chat.example.com":   101,
		"https://evil.example.com":   403,
		"http://chat.example.com":    403,
		"https://x.chat.example.com": 403,
		"http://localhost:" + port:   101,
	} {
		c, resp, err := dial(ln.URL, origin, tok, nil)
		got := 101
		if err != nil {
			if resp == nil {
				t.Fatalf("%s: %v", origin, err)
			}
			got = resp.StatusCode
		} else {
			c.Close()
		}
		if got != want {
			t.Errorf("origin %s: %d, want %d", origin, got, want)
		}
	}
}

// TestExternalIssuer runs the chat against a JWKS, as with -jwks-url.
func TestExternalIssuer(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	key.Set(jwk.KeyIDKey, "k1")
	key.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	set.AddKey(pub)
	jwks, _ := json.Marshal(set)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	defer idp.Close()

	_, srv := startApp(t, config{JWKSURL: idp.URL + "/jwks.json", Issuer: "https://id.example", Audience: "chat"}, nil)

	resp, err := http.Post(srv.URL+"/login", "application/json", bytes.NewReader([]byte(`{"user":"a","tenant":"b"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("login with an external issuer: %d, want 404", resp.StatusCode)
	}

	sign := func(aud string) string {
		now := time.Now()
		tok, _ := jwt.NewBuilder().Issuer("https://id.example").Audience([]string{aud}).Subject("dana").
			IssuedAt(now).Expiration(now.Add(5*time.Minute)).
			Claim("tenant", "acme").Claim("scope", "chat:read chat:write").Build()
		b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	c := mustDial(t, srv.URL, sign("chat"))
	subscribe(t, c, "tenant:acme:lobby")
	if _, resp, err := dial(srv.URL, srv.URL, sign("other-app"), nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("token for another audience: err=%v, want 401", err)
	}
}

func TestMetricsPage(t *testing.T) {
	_, srv := startApp(t, config{}, nil)
	tok := login(t, srv.URL, "alice", "acme").Token
	dial(srv.URL, "http://evil.example", tok, nil)
	c := mustDial(t, srv.URL, tok)
	subscribe(t, c, "tenant:acme:lobby")

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`wssec_events_total{kind="handshake_refused",reason="origin_not_allowed",code="403"} 1`,
		`wssec_events_total{kind="handshake_accepted",reason="",code="0"} 1`,
		"chat_rooms 1",
		"chat_subscriptions 1",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, b)
		}
	}
}

func TestMetricsBoundedSeries(t *testing.T) {
	m := newMetrics()
	for i := range 1000 {
		m.Observe(wssec.Event{Kind: wssec.EventMessageRefused, Reason: strings.Repeat("r", i%300+1)})
		m.Observe(wssec.Event{Kind: wssec.EventConnClosed, Reason: "client text " + string(rune('a'+i%26)), CloseCode: 1000})
	}
	if n := len(m.counts); n > maxMetricSeries+1 {
		t.Fatalf("%d series, want at most %d", n, maxMetricSeries+1)
	}
	if n, _ := m.count(wssec.EventConnClosed, ""); n != 1000 {
		t.Errorf("conn_closed counted %d, want 1000 under one series", n)
	}
}

// inlineHandler finds inline event handler attributes (onclick=…).
var inlineHandler = regexp.MustCompile(`\son[a-z]+\s*=`)

func jwtSegment(seg string) (map[string]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestTLS: with TLS on, the cookie is Secure and a plain ws:// handshake
// (as a TLS-terminating proxy that is not trusted would forward it) gets 426.
func TestTLS(t *testing.T) {
	a, err := newApp(config{Addr: "127.0.0.1:0", TLS: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tlsSrv := httptest.NewTLSServer(a.Handler())
	defer tlsSrv.Close()
	plain := httptest.NewServer(a.Handler())
	defer plain.Close()

	body := strings.NewReader(`{"user":"alice","tenant":"acme"}`)
	resp, err := tlsSrv.Client().Post(tlsSrv.URL+"/login", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	var s session
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	var secure bool
	for _, c := range resp.Cookies() {
		secure = secure || c.Name == sessionCookie && c.Secure
	}
	if resp.StatusCode != 200 || !secure {
		t.Fatalf("login over TLS: %d, secure cookie %v", resp.StatusCode, secure)
	}

	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		Subprotocols:     []string{"wssec.v1", "bearer." + s.Token},
		TLSClientConfig:  tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig,
	}
	c, _, err := d.Dial(wsURL(tlsSrv.URL), http.Header{"Origin": {tlsSrv.URL}})
	if err != nil {
		t.Fatalf("wss: %v", err)
	}
	c.Close()
	_, resp, err = d.Dial(wsURL(plain.URL), http.Header{"Origin": {plain.URL}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain ws:// with TLS required: err=%v, want 426", err)
	}
}

// TestRunWithRedis: with -redis, two chat instances share one Redis: a
// one-time ticket from a login on the first opens a socket on the second,
// once.
func TestRunWithRedis(t *testing.T) {
	addr, _, _ := redistest.Start(t)
	start := func() string {
		ctx, cancel := context.WithCancel(context.Background())
		basec := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, flags{addr: "127.0.0.1:0", redis: addr}, quietLogger(), func(base string) { basec <- base })
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
			http.DefaultClient.CloseIdleConnections()
		})
		select {
		case base := <-basec:
			return base
		case err := <-done:
			t.Fatalf("run: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("server did not start")
		}
		return ""
	}
	first, second := start(), start()
	s := login(t, first, "alice", "acme")
	withTicket := func(base string) int {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"wssec.v1"}}
		c, resp, err := d.Dial(wsURL(base)+"?ticket="+s.Ticket, http.Header{"Origin": {base}})
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	if st := withTicket(second); st != http.StatusSwitchingProtocols {
		t.Fatalf("ticket from the first instance at the second: %d, want 101", st)
	}
	if st := withTicket(first); st != http.StatusUnauthorized {
		t.Fatalf("the same ticket again, at the first: %d, want 401", st)
	}
}
