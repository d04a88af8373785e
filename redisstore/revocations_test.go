package redisstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wssec/wssec"
)

// recorder collects what a Subscribe callback receives.
type recorder struct {
	mu   sync.Mutex
	revs []wssec.Revocation
}

func (r *recorder) fn(rev wssec.Revocation) {
	r.mu.Lock()
	r.revs = append(r.revs, rev)
	r.mu.Unlock()
}

// count returns how many received revocations satisfy match.
func (r *recorder) count(match func(wssec.Revocation) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rev := range r.revs {
		if match(rev) {
			n++
		}
	}
	return n
}

func isZero(r wssec.Revocation) bool { return r.IsZero() }

func TestRevoke_ReachesOtherStore(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	prefix := WithPrefix(testPrefix(t))
	a := newStore(t, newClient(t, addr), prefix)
	b := newStore(t, newClient(t, addr), prefix)
	ctx := testCtx(t)
	var rec recorder
	if err := b.Subscribe(ctx, rec.fn); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	eventually(t, 5*time.Second, "the first resync signal", func() bool { return rec.count(isZero) == 1 })

	now := time.Now()
	if err := a.Revoke(ctx, wssec.Revocation{Subject: "alice", IssuedBefore: now, TTL: time.Minute}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	eventually(t, 5*time.Second, "B's callback to see alice's revocation", func() bool {
		return rec.count(func(r wssec.Revocation) bool {
			return r.Subject == "alice" && r.TTL == time.Minute && !r.IssuedBefore.Before(now.Truncate(time.Microsecond))
		}) == 1
	})
	if err := a.Revoke(ctx, wssec.Revocation{TokenID: "jti-1", TTL: time.Minute}); err != nil {
		t.Fatalf("Revoke token: %v", err)
	}
	eventually(t, 5*time.Second, "B's callback to see the token revocation", func() bool {
		return rec.count(func(r wssec.Revocation) bool { return r.TokenID == "jti-1" }) == 1
	})
	// An older revocation of alice does not move IssuedBefore back.
	if err := a.Revoke(ctx, wssec.Revocation{Subject: "alice", IssuedBefore: now.Add(-time.Hour), TTL: time.Minute}); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	eventually(t, 5*time.Second, "the older revocation's notice", func() bool {
		return rec.count(func(r wssec.Revocation) bool { return r.Subject == "alice" }) == 2
	})

	tests := []struct {
		name     string
		subject  string
		tokenID  string
		issuedAt time.Time
		want     bool
	}{
		{"alice, issued before", "alice", "", now.Add(-time.Minute), true},
		{"alice, issued at the instant", "alice", "", now, true},
		{"alice, issued between the two revocations", "alice", "", now.Add(-30 * time.Minute), true},
		{"alice, no issue time", "alice", "", time.Time{}, true},
		{"alice, issued after", "alice", "", now.Add(time.Second), false},
		{"bob", "bob", "", now.Add(-time.Minute), false},
		{"revoked token id", "carol", "jti-1", now.Add(time.Hour), true},
		{"other token id", "carol", "jti-2", now, false},
	}
	for _, st := range []*Store{a, b} {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := st.Revoked(ctx, tt.subject, tt.tokenID, tt.issuedAt)
				if err != nil || got != tt.want {
					t.Errorf("Revoked = %v, %v; want %v", got, err, tt.want)
				}
			})
		}
	}
	// A Store whose feed starts later loads the revocations from the snapshot.
	c := newStore(t, newClient(t, addr), prefix)
	if got, err := c.Revoked(ctx, "alice", "", now); err != nil || !got {
		t.Errorf("a late store: Revoked = %v, %v; want true", got, err)
	}
	// Revoked needs no round trip once the feed is up.
	before := b.RoundTrips()
	for range 10 {
		if _, err := b.Revoked(ctx, "alice", "", now); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.RoundTrips() - before; n != 0 {
		t.Errorf("Revoked made %d round trips", n)
	}
}

func TestRevoke_Validation(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	s := newStore(t, newClient(t, addr))
	ctx := testCtx(t)
	tests := []struct {
		name string
		rev  wssec.Revocation
	}{
		{"no TTL", wssec.Revocation{Subject: "a"}},
		{"negative TTL", wssec.Revocation{Subject: "a", TTL: -time.Second}},
		{"nothing named", wssec.Revocation{TTL: time.Second}},
		{"subject too long", wssec.Revocation{Subject: strings.Repeat("x", maxIDLen+1), TTL: time.Second}},
		{"subject not UTF-8", wssec.Revocation{Subject: "a\xff", TTL: time.Second}},
		{"token id not UTF-8", wssec.Revocation{TokenID: "\xc0", TTL: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Revoke(ctx, tt.rev)
			if err == nil || !strings.HasPrefix(err.Error(), "redisstore: ") {
				t.Errorf("Revoke(%+v) = %v, want a redisstore: error", tt.rev, err)
			}
		})
	}
	if s.RoundTrips() != 0 {
		t.Errorf("invalid revocations made %d round trips", s.RoundTrips())
	}
}

func TestRevoke_ExpiresAfterTTL(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	s := newStore(t, newClient(t, addr))
	ctx := testCtx(t)
	if err := s.Revoke(ctx, wssec.Revocation{TokenID: "short", TTL: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the revocation to expire", func() bool {
		got, err := s.Revoked(ctx, "", "short", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return !got
	})
	eventually(t, 5*time.Second, "Redis to drop it", func() bool {
		return s.client.Exists(ctx, s.keys.revs).Val() == 0
	})
}

func TestBan_ReachesOtherStore(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	prefix := WithPrefix(testPrefix(t))
	a := newStore(t, newClient(t, addr), prefix)
	b := newStore(t, newClient(t, addr), prefix)
	ctx := testCtx(t)
	var rec recorder
	if err := b.Subscribe(ctx, rec.fn); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := a.Ban(ctx, "ip:203.0.113.7", time.Minute); err != nil {
		t.Fatalf("Ban: %v", err)
	}
	eventually(t, 5*time.Second, "B to see the ban", func() bool {
		_, banned, err := b.Banned(ctx, "ip:203.0.113.7")
		if err != nil {
			t.Fatal(err)
		}
		return banned
	})
	left, banned, err := b.Banned(ctx, "ip:203.0.113.7")
	if err != nil || !banned || left <= 0 || left > time.Minute {
		t.Errorf("Banned = %s, %v, %v; want (0, 1m], true", left, banned, err)
	}
	if _, banned, err := b.Banned(ctx, "ip:203.0.113.8"); err != nil || banned {
		t.Errorf("another key: banned=%v err=%v", banned, err)
	}
	// A shorter later ban does not shorten it.
	if err := a.Ban(ctx, "ip:203.0.113.7", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if left, _, _ := a.Banned(ctx, "ip:203.0.113.7"); left < 30*time.Second {
		t.Errorf("a shorter ban shortened the first to %s", left)
	}
	// Bans are not revocations: the callback saw only the resync signal.
	if n := rec.count(func(r wssec.Revocation) bool { return !r.IsZero() }); n != 0 {
		t.Errorf("the callback received %d revocations for bans", n)
	}
	// A late store loads the ban from the snapshot.
	c := newStore(t, newClient(t, addr), prefix)
	if _, banned, err := c.Banned(ctx, "ip:203.0.113.7"); err != nil || !banned {
		t.Errorf("a late store: banned=%v err=%v", banned, err)
	}
	for _, tt := range []struct {
		name string
		key  string
		ttl  time.Duration
	}{{"empty key", "", time.Second}, {"zero ttl", "k", 0}, {"long key", strings.Repeat("k", maxIDLen+1), time.Second}, {"key not UTF-8", "ip:\xff", time.Second}} {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.Ban(ctx, tt.key, tt.ttl); err == nil {
				t.Error("Ban succeeded")
			}
		})
	}
}

func TestSubscribe_Once(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	s := newStore(t, newClient(t, addr))
	ctx := testCtx(t)
	sub, cancel := context.WithCancel(ctx)
	var first, second recorder
	if err := s.Subscribe(sub, first.fn); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, second.fn); !errors.Is(err, ErrSubscribed) {
		t.Fatalf("second Subscribe: %v, want ErrSubscribed", err)
	}
	if err := s.Subscribe(ctx, nil); err == nil {
		t.Fatal("Subscribe(nil) succeeded")
	}
	cancel()
	if err := s.Subscribe(ctx, second.fn); err != nil {
		t.Fatalf("Subscribe after the first ctx ended: %v", err)
	}
	if err := s.Revoke(ctx, wssec.Revocation{Subject: "x", IssuedBefore: time.Now(), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the new callback to get the revocation", func() bool {
		return second.count(func(r wssec.Revocation) bool { return r.Subject == "x" }) == 1
	})
	if n := first.count(func(r wssec.Revocation) bool { return r.Subject == "x" }); n != 0 {
		t.Errorf("the cancelled callback was called %d times", n)
	}
}

func TestMirror_FullFailsClosed(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	prefix := WithPrefix(testPrefix(t))
	a := newStore(t, newClient(t, addr), prefix)
	b := newStore(t, newClient(t, addr), prefix, WithMirrorCapacity(2))
	ctx := testCtx(t)
	if _, err := b.Revoked(ctx, "s0", "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"s1", "s2", "s3"} {
		if err := a.Revoke(ctx, wssec.Revocation{Subject: sub, IssuedBefore: time.Now(), TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "B's revocation mirror to fail closed", func() bool {
		_, err := b.Revoked(ctx, "s0", "", time.Time{})
		return errors.Is(err, ErrMirrorFull)
	})
	// The ban mirror is separate and keeps working.
	if _, _, err := b.Banned(ctx, "ip:1"); err != nil {
		t.Errorf("Banned: %v", err)
	}
	// A store that starts now finds the snapshot too big, and fails closed too.
	c := newStore(t, newClient(t, addr), prefix, WithMirrorCapacity(2))
	if _, err := c.Revoked(ctx, "s0", "", time.Time{}); !errors.Is(err, ErrMirrorFull) {
		t.Errorf("late store: %v, want ErrMirrorFull", err)
	}
}

func TestMirror_RecoversWhenEntriesExpire(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	s := newStore(t, newClient(t, addr), WithMirrorCapacity(1))
	ctx := testCtx(t)
	for _, id := range []string{"t1", "t2"} {
		if err := s.Revoke(ctx, wssec.Revocation{TokenID: id, TTL: 300 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Revoked(ctx, "", "t1", time.Time{}); !errors.Is(err, ErrMirrorFull) {
		t.Fatalf("Revoked: %v, want ErrMirrorFull", err)
	}
	eventually(t, 10*time.Second, "a reload once the entries expired", func() bool {
		_, err := s.Revoked(ctx, "", "t1", time.Time{})
		return err == nil
	})
}
