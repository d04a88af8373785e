package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec/internal/redistest"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left behind: a
// lease renewer or a notices feed that Close did not stop, or a go-redis
// client a test did not close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startRedis returns the address of a Redis server for t (see
// redistest.Start): its own redis-server on a free loopback port, or
// WSSEC_REDIS_ADDR; skipped without redis-server, failed with CI=true.
func startRedis(t testing.TB) (addr string, stop func(), restart func()) {
	t.Helper()
	return redistest.Start(t)
}

// startRedisProc starts a redis-server for t, for tests that need more
// control than stop and restart (pausing it, for one).
func startRedisProc(t testing.TB) *redistest.Proc {
	t.Helper()
	return redistest.StartProc(t)
}

// testPrefix returns a key prefix unique to this test run: the test's
// name, made safe, and random hex. Tests that share a server never see
// each other's keys.
func testPrefix(t testing.TB) string {
	var b strings.Builder
	for _, r := range t.Name() {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return b.String() + "-" + hex.EncodeToString(rnd[:])
}

// newClient returns a go-redis client for addr, closed when t ends (after
// any Store built on it, since cleanups run last-in first-out).
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newStore returns a Store on client with a fresh test prefix (a
// WithPrefix among opts overrides it), closed when t ends.
func newStore(t testing.TB, client redis.UniversalClient, opts ...Option) *Store {
	t.Helper()
	s, err := New(client, append([]Option{WithPrefix(testPrefix(t))}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// eventually polls cond every 10 ms until it holds, failing t after
// within.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testCtx returns a context for one test's calls.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
