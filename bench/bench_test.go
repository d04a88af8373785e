package bench

import (
	"context"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if RunChildIfAsked() { // the server half of TestIdleMemory
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// keys are generated once per test binary; tokens last 10 minutes, which
// outlasts any benchmark run (wssec caps token lifetime at 15 minutes).
var keys = sync.OnceValue(func() map[Alg]*Key {
	m := map[Alg]*Key{}
	for _, a := range []Alg{ES256, EdDSA, HS256} {
		k, err := NewKey(a)
		if err != nil {
			panic(err)
		}
		m[a] = k
	}
	return m
})

func token(tb testing.TB, a Alg) string {
	tb.Helper()
	t, err := keys()[a].Token(10 * time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func start(tb testing.TB, kind Kind, a Alg) *Server {
	tb.Helper()
	s, err := Start(kind, Options{Key: keys()[a]})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// runPool times pool.Count(b.N) and closes the pool.
func runPool(b *testing.B, p *Pool, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ReportAllocs()
	b.ResetTimer()
	if err := p.Count(b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func benchRoundTrip(b *testing.B, clients int) {
	for _, kind := range allKinds {
		b.Run(string(kind), func(b *testing.B) {
			s := start(b, kind, ES256)
			p, err := EchoPool(context.Background(), s.Target(), s.Header(token(b, ES256)), clients)
			runPool(b, p, err)
		})
	}
}

// BenchmarkRoundTrip: one client, 64-byte request and answer. ns/op is
// the round-trip latency; allocs/op counts client and server together.
// raw_writer is the diagnostic RawWriter server.
func BenchmarkRoundTrip(b *testing.B) { benchRoundTrip(b, 1) }

// BenchmarkRoundTrip64Clients: 64 clients at once; ns/op is the inverse
// of the total throughput.
func BenchmarkRoundTrip64Clients(b *testing.B) { benchRoundTrip(b, 64) }

// BenchmarkHandshake: accepted handshakes (dial, upgrade, close) by
// HandshakeWorkers clients at once; ns/op is the inverse of handshakes/s.
// The "_cached" cases reuse one token, as a client reconnecting does:
// wssec verifies its signature once and then takes it from its
// verified-token cache. "_fresh" gives every handshake a token of its own
// (minted before the timer starts), so each one checks a signature. The
// raw and hand-rolled servers have no cache.
func BenchmarkHandshake(b *testing.B) {
	cases := []struct {
		name  string
		kind  Kind
		alg   Alg
		fresh bool
	}{
		{"raw", Raw, ES256, false},
		{"handrolled_ES256", HandRolled, ES256, false},
		{"wssec_ES256_cached", WSSec, ES256, false},
		{"wssec_ES256_fresh", WSSec, ES256, true},
		{"wssec_EdDSA_cached", WSSec, EdDSA, false},
		{"wssec_EdDSA_fresh", WSSec, EdDSA, true},
		{"wssec_HS256_cached", WSSec, HS256, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s := start(b, tc.kind, tc.alg)
			var p *Pool
			var err error
			if tc.fresh {
				supply := NewTokenSupply(keys()[tc.alg], 10*time.Minute)
				if err := supply.Fill(b.N); err != nil {
					b.Fatal(err)
				}
				p, err = FreshHandshakePool(context.Background(), s.Target(), Origin, supply, HandshakeWorkers)
			} else {
				p, err = HandshakePool(context.Background(), s.Target(), s.Header(token(b, tc.alg)), HandshakeWorkers)
			}
			runPool(b, p, err)
			if got := s.WaitUpgrades(int64(b.N), 5*time.Second); got != int64(b.N) {
				b.Fatalf("%d upgrades for %d handshakes", got, b.N)
			}
		})
	}
}

// BenchmarkRefusedHandshake: handshakes a server must refuse with a plain
// HTTP status, never an upgrade. The wssec cases carry the names of the
// issue; the hand-rolled ones are for comparison (its bad-Origin check
// runs inside Upgrade, after the token was verified).
func BenchmarkRefusedHandshake(b *testing.B) {
	good := "Bearer " + token(b, ES256)
	cases := []struct {
		name   string
		kind   Kind
		header http.Header
		status int
	}{
		{"bad_origin", WSSec, ProtectedHeader(BadOrigin, good), http.StatusForbidden},
		{"bad_token", WSSec, ProtectedHeader(Origin, "Bearer not-a.jwt"), http.StatusUnauthorized},
		{"rate_limited", WSSec, ProtectedHeader(Origin, good), http.StatusTooManyRequests},
		{"handrolled_bad_origin", HandRolled, ProtectedHeader(BadOrigin, good), http.StatusForbidden},
		{"handrolled_bad_token", HandRolled, ProtectedHeader(Origin, "Bearer not-a.jwt"), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var s *Server
			if tc.name == "rate_limited" {
				var err error
				if s, err = StartRateLimited(keys()[ES256]); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
			} else {
				s = start(b, tc.kind, ES256)
			}
			p, err := RefusedPool(context.Background(), s.Target(), tc.header, tc.status, HandshakeWorkers)
			runPool(b, p, err)
			if n := s.Upgrades(); n != 0 {
				b.Fatalf("%d sockets upgraded", n)
			}
		})
	}
}

// allKinds is the three servers compared and the diagnostic one.
var allKinds = []Kind{Raw, HandRolled, WSSec, RawWriter}
