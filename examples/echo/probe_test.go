package main

// wsprobe (internal/probe) against this example, directly and behind the
// shipped nginx and HAProxy configurations: every applicable check passes.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec/internal/probe"
	"github.com/wssec/wssec/internal/proxytest"
)

// startEcho serves the example in-process; proxies as newServer takes them.
func startEcho(t *testing.T, key []byte, proxies ...string) *httptest.Server {
	t.Helper()
	g, mux, err := newServer(key, slog.New(slog.NewTextHandler(io.Discard, nil)), proxies...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { g.Close(); srv.Close() })
	return srv
}

func fetchToken(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Post(base+"/token", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token == "" {
		t.Fatalf("no token: %v", err)
	}
	return body.Token
}

func expiredToken(t *testing.T, key []byte) string {
	return signed(t, key, "visitor", time.Now().Add(-5*time.Minute))
}

// otherUsers signs tokens for five other subjects, so the per-subject
// limit (8 sockets) does not bite before the per-address ones the
// forwarding check is after.
func otherUsers(t *testing.T, key []byte) []string {
	var toks []string
	for _, sub := range []string{"bob", "carol", "dave", "erin", "frank"} {
		toks = append(toks, signed(t, key, sub, time.Now().Add(5*time.Minute)))
	}
	return toks
}

func signed(t *testing.T, key []byte, sub string, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Subject(sub).IssuedAt(exp.Add(-5 * time.Minute)).Expiration(exp).Build()
	if err != nil {
		t.Fatal(err)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), key))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runProbe runs the probe and requires no failed check, plus a pass for
// each check named in passes ("group/check").
func runProbe(t *testing.T, cfg probe.Config, passes ...string) *probe.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := probe.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	var b strings.Builder
	r.WriteTable(&b)
	t.Logf("\n%s", b.String())
	for _, f := range r.Findings {
		if f.Verdict == probe.Fail {
			t.Errorf("%s/%s failed: %s", f.Group, f.Check, f.Evidence)
		}
	}
	for _, gc := range passes {
		g, c, _ := strings.Cut(gc, "/")
		if f, ok := r.Find(g, c); !ok || f.Verdict != probe.Pass {
			t.Errorf("%s: %+v, want pass", gc, f)
		}
	}
	return r
}

// commonPasses are the checks that apply to the example wherever it runs.
var commonPasses = []string{
	"origin/foreign", "origin/null", "origin/none", "origin/lookalike-suffix", "origin/lookalike-prefix",
	"origin/userinfo", "origin/case", "origin/trailing-dot", "origin/other-port", "origin/other-scheme",
	"token/alg-none", "token/signature-stripped", "token/signature-flipped", "token/kid-injection",
	"token/jwk-embedded", "token/jku", "token/query-string", "token/expired",
	"forwarding/client-address",
	"messages/oversized", "messages/fragment-flood", "messages/invalid-utf8", "messages/control-126", "messages/message-flood",
	"lifetime/slow-reader", "lifetime/idle",
}

const sayMessage = `{"action":"say","payload":{"text":"hello"}}`

func TestWSProbe_Direct(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	srv := startEcho(t, key)
	runProbe(t, probe.Config{
		URL:          "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws",
		Token:        fetchToken(t, srv.URL),
		MoreTokens:   otherUsers(t, key),
		ExpiredToken: expiredToken(t, key),
		Message:      sayMessage,
		MaxSockets:   40,
		Idle:         45 * time.Second, // the Guard pings every 25 s
	}, commonPasses...)
}

func TestWSProbe_BehindProxies(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"nginx", "haproxy"} {
		t.Run(kind, func(t *testing.T) {
			key := []byte("0123456789abcdef0123456789abcdef")
			srv := startEcho(t, key, "127.0.0.1/32")
			o := proxytest.Options{Upstream: strings.TrimPrefix(srv.URL, "http://"), IdleTimeout: 2 * time.Second}
			var px *proxytest.Proxy
			if kind == "nginx" {
				px = proxytest.StartNginx(t, "../../deploy/nginx/wssec.conf", o)
			} else {
				px = proxytest.StartHAProxy(t, "../../deploy/haproxy/wssec.cfg", o)
			}
			runProbe(t, probe.Config{
				URL:          "wss://" + px.TLSAddr + "/ws",
				PlainURL:     "ws://" + px.PlainAddr + "/ws",
				Token:        fetchToken(t, srv.URL),
				MoreTokens:   otherUsers(t, key),
				ExpiredToken: expiredToken(t, key),
				Message:      sayMessage,
				MaxSockets:   40,
				Idle:         10 * time.Second, // the proxy closes idle sockets after 2 s
				Source:       "127.0.0.2",      // not the trusted proxy's address
				RootCAs:      px.Roots,
			}, append([]string{"transport/plain-ws", "transport/forwarded-proto", "transport/tls-version", "transport/tls-cbc-sha1"}, commonPasses...)...)
		})
	}
}
