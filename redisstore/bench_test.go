package redisstore

import (
	"testing"
	"time"

	"github.com/wssec/wssec"
)

// BenchmarkAllowAcquire is the shared-store part of one handshake: the
// handshake rate and the per-IP and total slots in one script, then the
// release. It reports the Redis round trips per handshake.
func BenchmarkAllowAcquire(b *testing.B) {
	addr, _, _ := startRedis(b)
	s := newStore(b, newClient(b, addr))
	ctx := testCtx(b)
	slots := []wssec.Slot{{Key: "ip:192.0.2.1", Max: 1 << 20}, {Key: "total", Max: 1 << 20}}
	// Load the script so that the loop measures the steady state.
	if rel, err := s.AllowAcquire(ctx, "hs:warm", 1e9, 1<<20, time.Now(), slots); err == nil {
		rel()
	}
	before := s.RoundTrips()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rel, err := s.AllowAcquire(ctx, "hs:192.0.2.1", 1e9, 1<<20, time.Now(), slots)
		if err != nil {
			b.Fatal(err)
		}
		rel()
	}
	b.StopTimer()
	b.ReportMetric(float64(s.RoundTrips()-before)/float64(b.N), "roundtrips/op")
}

// BenchmarkRevoked is the per-handshake revocation check: answered from
// the mirror, with no round trip.
func BenchmarkRevoked(b *testing.B) {
	addr, _, _ := startRedis(b)
	s := newStore(b, newClient(b, addr))
	ctx := testCtx(b)
	if _, err := s.Revoked(ctx, "alice", "jti", time.Now()); err != nil {
		b.Fatal(err)
	}
	before := s.RoundTrips()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Revoked(ctx, "alice", "jti", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(s.RoundTrips()-before)/float64(b.N), "roundtrips/op")
}
