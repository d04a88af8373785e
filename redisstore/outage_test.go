package redisstore

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/wssec/wssec"
)

// TestOutage stops Redis mid-test: every operation fails promptly with
// ErrUnavailable, Revoked and Banned fail once the feed noticed, and after
// a restart the feed recovers by itself, signals a resync, and the pools
// count the live leases again.
func TestOutage(t *testing.T) {
	t.Parallel()
	addr, stop, restart := startRedis(t)
	const timeout = 300 * time.Millisecond
	s := newStore(t, newClient(t, addr), WithTimeout(timeout), WithLeaseTTL(600*time.Millisecond))
	ctx := testCtx(t)
	var rec recorder
	if err := s.Subscribe(ctx, rec.fn); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	eventually(t, 5*time.Second, "the feed to load", func() bool {
		_, err := s.Revoked(ctx, "alice", "", time.Time{})
		return err == nil
	})
	pool := []wssec.Slot{{Key: "ip:192.0.2.9", Max: 10}}
	held, err := s.Acquire(ctx, pool)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	defer held()

	stop()

	const ticketID = "outage-ticket-secret"
	ops := []struct {
		name string
		call func() error
	}{
		{"Allow", func() error { _, _, err := s.Allow(ctx, "hs:x", 10, 10, time.Now()); return err }},
		{"Acquire", func() error { _, err := s.Acquire(ctx, pool); return err }},
		{"AllowAcquire", func() error { _, err := s.AllowAcquire(ctx, "hs:x", 10, 10, time.Now(), pool); return err }},
		{"Once", func() error { _, err := s.Once(ctx, "jti", time.Minute); return err }},
		{"PutTicket", func() error { return s.PutTicket(ctx, ticketID, []byte("x"), time.Minute) }},
		{"TakeTicket", func() error { _, _, err := s.TakeTicket(ctx, ticketID); return err }},
		{"Revoke", func() error {
			return s.Revoke(ctx, wssec.Revocation{Subject: "a", IssuedBefore: time.Now(), TTL: time.Minute})
		}},
		{"Ban", func() error { return s.Ban(ctx, "ip:1", time.Minute) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			start := time.Now()
			err := op.call()
			if took := time.Since(start); took > timeout+time.Second {
				t.Errorf("took %s with a %s timeout", took, timeout)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error %v, want ErrUnavailable", err)
			}
			if len(err.Error()) < 12 || err.Error()[:12] != "redisstore: " {
				t.Errorf("error %q lacks the redisstore: prefix", err)
			}
			noTicketID(t, err, ticketID)
		})
	}
	eventually(t, 10*time.Second, "Revoked to fail once the feed is down", func() bool {
		_, err := s.Revoked(ctx, "alice", "", time.Time{})
		return errors.Is(err, ErrFeedDown) && errors.Is(err, ErrUnavailable)
	})
	if _, _, err := s.Banned(ctx, "ip:1"); !errors.Is(err, ErrFeedDown) {
		t.Errorf("Banned while the feed is down: %v, want ErrFeedDown", err)
	}
	resyncs := rec.count(isZero)

	restart()

	eventually(t, 15*time.Second, "the resync signal after the restart", func() bool {
		return rec.count(isZero) > resyncs
	})
	if _, err := s.Revoked(ctx, "alice", "", time.Time{}); err != nil {
		t.Errorf("Revoked after recovery: %v", err)
	}
	if _, _, err := s.Banned(ctx, "ip:1"); err != nil {
		t.Errorf("Banned after recovery: %v", err)
	}
	if ok, _, err := s.Allow(ctx, "hs:y", 10, 10, time.Now()); err != nil || !ok {
		t.Errorf("Allow after recovery: %v, %v", ok, err)
	}
	// The restarted Redis lost every key; the renewer puts the held lease
	// back within a renewal period.
	eventually(t, 5*time.Second, "the held lease to be counted again", func() bool {
		return s.client.ZCard(ctx, s.keys.pool(pool[0].Key)).Val() == 1
	})
}

// TestNew_RedisDown: New and Subscribe succeed while Redis is down; the
// mirror answers once Redis is up.
func TestNew_RedisDown(t *testing.T) {
	t.Parallel()
	addr, stop, restart := startRedis(t)
	stop()
	s := newStore(t, newClient(t, addr), WithTimeout(200*time.Millisecond))
	ctx := testCtx(t)
	var rec recorder
	if err := s.Subscribe(ctx, rec.fn); err != nil {
		t.Fatalf("Subscribe while Redis is down: %v", err)
	}
	if _, err := s.Revoked(ctx, "a", "", time.Time{}); !errors.Is(err, ErrFeedDown) {
		t.Fatalf("Revoked while Redis is down: %v, want ErrFeedDown", err)
	}
	restart()
	eventually(t, 15*time.Second, "the feed to come up", func() bool {
		_, err := s.Revoked(ctx, "a", "", time.Time{})
		return err == nil
	})
	if rec.count(isZero) != 1 {
		t.Errorf("%d resync signals, want 1", rec.count(isZero))
	}
}

// TestHungRedis pauses Redis (SIGSTOP: connections stay open, nothing
// answers): operations still fail within the timeout, the feed's ping
// notices the dead subscription, and all recovers when Redis resumes.
func TestHungRedis(t *testing.T) {
	t.Parallel()
	if os.Getenv("WSSEC_REDIS_ADDR") != "" {
		t.Skip("needs its own redis-server to pause")
	}
	p := startRedisProc(t)
	const timeout = 300 * time.Millisecond
	s := newStore(t, newClient(t, p.Addr()), WithTimeout(timeout))
	ctx := testCtx(t)
	var rec recorder
	if err := s.Subscribe(ctx, rec.fn); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the feed to load", func() bool {
		_, err := s.Revoked(ctx, "a", "", time.Time{})
		return err == nil
	})
	p.Signal(syscall.SIGSTOP)
	defer p.Signal(syscall.SIGCONT) // before the cleanup kills it

	start := time.Now()
	_, _, err := s.Allow(ctx, "hs:x", 10, 10, time.Now())
	if took := time.Since(start); took > timeout+time.Second {
		t.Errorf("Allow took %s with a %s timeout", took, timeout)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Allow against a hung Redis: %v, want ErrUnavailable", err)
	}
	eventually(t, pingEvery+timeout+5*time.Second, "the feed to notice the hung server", func() bool {
		_, err := s.Revoked(ctx, "a", "", time.Time{})
		return errors.Is(err, ErrFeedDown)
	})
	resyncs := rec.count(isZero)
	p.Signal(syscall.SIGCONT)
	eventually(t, 15*time.Second, "the feed to recover", func() bool {
		_, err := s.Revoked(ctx, "a", "", time.Time{})
		return err == nil && rec.count(isZero) > resyncs
	})
}
