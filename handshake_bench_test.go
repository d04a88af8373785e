package wssec

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// The handshake guard benchmarks run (*Guard).guard, everything Wrap does
// before it hands an accepted request on or answers a refusal, on a
// prepared request: no socket, no upgrade, no client. The configuration is
// the one of bench/servers.go (newGuard), so the numbers line up with the
// end-to-end benchmarks there.

const (
	hsBenchOrigin    = "http://app.example.test"
	hsBenchBadOrigin = "http://evil.example.test"
	hsBenchRemote    = "127.0.0.1:5555"
)

type hsBenchSay struct {
	Text string `json:"t" validate:"required,max=200"`
}

// hsBenchGuard is bench/servers.go's wssec server with keyOpt, plus opts.
func hsBenchGuard(tb testing.TB, keyOpt Option, opts ...Option) *Guard {
	tb.Helper()
	base := []Option{
		WithOrigins(hsBenchOrigin),
		keyOpt,
		WithAction[hsBenchSay]("say"),
		WithChannelRules(ChannelRule{Pattern: "chat:{tenant}", Write: "echo:write"}),
		WithPolicy(benchPolicy),
		WithMessageRate(1e6, 1_000_000_000),
		WithHandshakeRate(1e6, 1_000_000_000),
		WithConnLimits(1<<20, 1<<20, 1<<20),
		WithInsecureTransport(),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))),
	}
	g, err := New(append(base, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

// hsBenchRequest is an upgrade request from 127.0.0.1 with origin and
// authorization ("" leaves a header out).
func hsBenchRequest(origin, authorization string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/ws", nil)
	r.RemoteAddr = hsBenchRemote
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return r
}

// headerOnlyWriter is a ResponseWriter whose header map is reused: the
// refusal's headers are set for real, the body is dropped. A fresh
// httptest.ResponseRecorder per handshake would add its own allocations
// (the recorder, its header map and body buffer) to the guard's.
type headerOnlyWriter struct {
	h      http.Header
	status int
}

func (w *headerOnlyWriter) Header() http.Header         { return w.h }
func (w *headerOnlyWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerOnlyWriter) WriteHeader(status int)      { w.status = status }

// esBenchKey is a fresh P-256 key and its public JWK set.
func esBenchKey(tb testing.TB) (*ecdsa.PrivateKey, jwk.Set) {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return priv, esKeySet(tb, priv)
}

func hsBenchClaims() claims {
	return claims{sub: "bench-user", tenant: "acme", scope: "echo:write", exp: time.Now().Add(10 * time.Minute)}
}

// refusedCase is one kind of refused handshake.
type refusedCase struct {
	name   string
	g      *Guard
	r      *http.Request
	status int
	reason string
}

// refusedCases builds the refused handshakes of the issue: each must be
// answered without an upgrade and without a signature check.
func refusedCases(tb testing.TB) []refusedCase {
	priv, set := esBenchKey(tb)
	good := "Bearer " + mintWith(tb, jwa.ES256(), priv, hsBenchClaims())
	plain := hsBenchGuard(tb, WithKeySet(set))

	// One handshake per 1 000 s per IP, spent here.
	limited := hsBenchGuard(tb, WithKeySet(set), WithHandshakeRate(0.001, 1))
	if _, ref := limited.guard(httptest.NewRecorder(), hsBenchRequest(hsBenchOrigin, "")); ref == nil || ref.status != http.StatusUnauthorized {
		tb.Fatalf("spending the handshake bucket: %v", ref)
	}

	// A ban on the first refusal of a class, lasting an hour: one bad
	// origin places it.
	banned := hsBenchGuard(tb, WithKeySet(set), WithBanPolicy(BanPolicy{Threshold: 1, Window: time.Minute, Duration: time.Hour}))
	if _, ref := banned.guard(httptest.NewRecorder(), hsBenchRequest(hsBenchBadOrigin, good)); ref == nil || ref.reason != "origin_not_allowed" {
		tb.Fatalf("placing the ban: %v", ref)
	}

	return []refusedCase{
		{"bad_origin", plain, hsBenchRequest(hsBenchBadOrigin, good), http.StatusForbidden, "origin_not_allowed"},
		{"bad_token", plain, hsBenchRequest(hsBenchOrigin, "Bearer not-a.jwt"), http.StatusUnauthorized, "token_malformed"},
		{"banned_ip", banned, hsBenchRequest(hsBenchOrigin, good), http.StatusTooManyRequests, "banned"},
		{"rate_limited", limited, hsBenchRequest(hsBenchOrigin, good), http.StatusTooManyRequests, "handshake_rate"},
	}
}

// checkRefusal runs c once with a fresh recorder and checks the answer.
func (c refusedCase) check(tb testing.TB) {
	tb.Helper()
	w := httptest.NewRecorder()
	hs, ref := c.g.guard(w, c.r)
	if hs != nil || ref == nil {
		tb.Fatalf("%s: accepted", c.name)
	}
	if w.Code != c.status || ref.reason != c.reason {
		tb.Fatalf("%s: %d %s, want %d %s", c.name, w.Code, ref.reason, c.status, c.reason)
	}
}

// BenchmarkGuardRefused is the guard work for a refused handshake: the
// checks up to the refusal, its event, the ban bookkeeping and the
// response headers. It fails if any case checks a signature.
func BenchmarkGuardRefused(b *testing.B) {
	for _, c := range refusedCases(b) {
		b.Run(c.name, func(b *testing.B) {
			c.check(b)
			sig, _ := verifications(c.g)
			w := &headerOnlyWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				if _, ref := c.g.guard(w, c.r); ref == nil {
					b.Fatal("accepted")
				}
			}
			if w.status != c.status {
				b.Fatalf("status %d, want %d", w.status, c.status)
			}
			if n, _ := verifications(c.g); n != sig {
				b.Fatalf("%d signature checks for refused handshakes", n-sig)
			}
		})
	}
	// The baseline of bad_token, in the same process: what refusing the
	// same garbage costs a handler that hands it straight to jwx.
	b.Run("baseline_jwx_bad_token", func(b *testing.B) {
		priv, _ := esBenchKey(b)
		opt := jwt.WithKey(jwa.ES256(), priv.Public())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jwt.ParseString("not-a.jwt", opt); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}

// TestGuardRefusedAllocs holds the refused handshakes to the issue's
// budget of 10 allocations of guard work, and to no signature check.
func TestGuardRefusedAllocs(t *testing.T) {
	if raceBuild() {
		t.Skip("the race detector changes allocation counts")
	}
	const budget = 10
	for _, c := range refusedCases(t) {
		t.Run(c.name, func(t *testing.T) {
			c.check(t)
			sig, _ := verifications(c.g)
			w := &headerOnlyWriter{h: make(http.Header)}
			n := testing.AllocsPerRun(200, func() {
				clear(w.h)
				c.g.guard(w, c.r)
			})
			if n > budget {
				t.Errorf("%.0f allocations for a refused handshake; the budget is %d", n, budget)
			}
			if n, _ := verifications(c.g); n != sig {
				t.Errorf("%d signature checks for refused handshakes", n-sig)
			}
		})
	}
}

// BenchmarkGuardAccepted is the guard work for an accepted handshake (the
// lease is released each time so the quotas never fill). "cached" reuses
// one token, as a reconnect does; "uncached" removes the token from the
// verified-token cache before each handshake, so every one checks the
// signature (and caches the token again), as a first connection does.
func BenchmarkGuardAccepted(b *testing.B) {
	esPriv, esSet := esBenchKey(b)
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	edPub, err := jwk.Import(edPriv.Public())
	if err != nil {
		b.Fatal(err)
	}
	edSet := jwk.NewSet()
	if err := edSet.AddKey(edPub); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name   string
		keyOpt Option
		tok    string
		cached bool
	}{
		{"ES256_cached", WithKeySet(esSet), mintWith(b, jwa.ES256(), esPriv, hsBenchClaims()), true},
		{"ES256_uncached", WithKeySet(esSet), mintWith(b, jwa.ES256(), esPriv, hsBenchClaims()), false},
		{"EdDSA_cached", WithKeySet(edSet), mintWith(b, jwa.EdDSA(), edPriv, hsBenchClaims()), true},
		{"EdDSA_uncached", WithKeySet(edSet), mintWith(b, jwa.EdDSA(), edPriv, hsBenchClaims()), false},
		{"HS256_cached", WithHMACKey(testKey), mintWith(b, jwa.HS256(), testKey, hsBenchClaims()), true},
		{"HS256_uncached", WithHMACKey(testKey), mintWith(b, jwa.HS256(), testKey, hsBenchClaims()), false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			g := hsBenchGuard(b, tc.keyOpt)
			r := hsBenchRequest(hsBenchOrigin, "Bearer "+tc.tok)
			d := digestToken(tc.tok)
			w := &headerOnlyWriter{h: make(http.Header)}
			accept := func() {
				hs, ref := g.guard(w, r)
				if ref != nil {
					b.Fatalf("refused: %v", ref)
				}
				hs.lease.release()
			}
			accept() // verifies and caches the token
			sig0, hits0 := verifications(g)
			b.ReportAllocs()
			for b.Loop() {
				if !tc.cached {
					g.ver.cache.c.Load().Delete(d)
				}
				accept()
			}
			sig, hits := verifications(g)
			sig, hits = sig-sig0, hits-hits0
			if tc.cached && sig != 0 || !tc.cached && hits != 0 {
				b.Fatalf("%d signature checks and %d cache hits", sig, hits)
			}
			b.ReportMetric(float64(sig)/float64(b.N), "sigchecks/op")
		})
	}
}
