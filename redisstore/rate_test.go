package redisstore

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/wssec/wssec"
	"golang.org/x/time/rate"
)

func TestGCRAParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		r       rate.Limit
		burst   int
		iv, win int64
		ok      bool
	}{
		{"50 per second", 50, 3, 20_000, 60_000, true},
		{"one per minute", rate.Every(time.Minute), 1, 60_000_000, 60_000_000, true},
		{"faster than a microsecond", 1e9, 2, 1, 2, true},
		{"huge burst capped", 1, math.MaxInt, 1_000_000, maxMicros, true},
		{"tiny rate capped", 1e-30, 1, maxMicros, maxMicros, true},
		{"zero rate", 0, 5, 0, 0, false},
		{"negative rate", -1, 5, 0, 0, false},
		{"NaN rate", rate.Limit(math.NaN()), 5, 0, 0, false},
		{"zero burst", 10, 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iv, win, ok := gcra(tt.r, tt.burst)
			if iv != tt.iv || win != tt.win || ok != tt.ok {
				t.Errorf("gcra(%v, %d) = %d, %d, %v; want %d, %d, %v", tt.r, tt.burst, iv, win, ok, tt.iv, tt.win, tt.ok)
			}
		})
	}
}

func TestAllow_GCRA(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	s := newStore(t, newClient(t, addr))
	ctx := testCtx(t)
	const burst = 3
	const r = rate.Limit(50) // one event every 20 ms

	for i := range burst {
		ok, wait, err := s.Allow(ctx, "hs:a", r, burst, time.Now())
		if err != nil || !ok || wait != 0 {
			t.Fatalf("event %d of the burst: ok=%v wait=%s err=%v", i+1, ok, wait, err)
		}
	}
	ok, wait, err := s.Allow(ctx, "hs:a", r, burst, time.Now())
	if err != nil || ok {
		t.Fatalf("event past the burst: ok=%v err=%v, want a refusal", ok, err)
	}
	if wait <= 0 || wait > 20*time.Millisecond {
		t.Fatalf("retryAfter = %s, want in (0, 20ms]", wait)
	}
	// Another key has its own bucket.
	if ok, _, err := s.Allow(ctx, "hs:b", r, burst, time.Now()); err != nil || !ok {
		t.Fatalf("another key: ok=%v err=%v", ok, err)
	}
	// The bucket refills.
	eventually(t, 5*time.Second, "a refilled token", func() bool {
		ok, _, err := s.Allow(ctx, "hs:a", r, burst, time.Now())
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		return ok
	})
	// The key expires once the bucket is full again.
	pttl, err := s.client.PTTL(ctx, s.keys.rate("hs:a")).Result()
	if err != nil || pttl <= 0 || pttl > burst*20*time.Millisecond {
		t.Errorf("PTTL of the rate key = %s, %v; want in (0, 60ms]", pttl, err)
	}
}

func TestAllow_NoRoundTripForFixedAnswers(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	s := newStore(t, newClient(t, addr))
	ctx := testCtx(t)
	tests := []struct {
		name  string
		r     rate.Limit
		burst int
		ok    bool
	}{
		{"infinite rate", rate.Inf, 0, true},
		{"zero rate", 0, 10, false},
		{"zero burst", 10, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.RoundTrips()
			ok, wait, err := s.Allow(ctx, "k", tt.r, tt.burst, time.Now())
			if err != nil || ok != tt.ok {
				t.Fatalf("Allow = %v, %s, %v; want ok=%v", ok, wait, err, tt.ok)
			}
			if !ok && wait != never {
				t.Errorf("retryAfter = %s, want never", wait)
			}
			if n := s.RoundTrips() - before; n != 0 {
				t.Errorf("%d round trips, want 0", n)
			}
			rel, err := s.AllowAcquire(ctx, "k", tt.r, tt.burst, time.Now(), nil)
			var re *wssec.RateError
			switch {
			case tt.ok && err != nil:
				t.Errorf("AllowAcquire: %v", err)
			case !tt.ok && !errors.As(err, &re):
				t.Errorf("AllowAcquire: %v, want a *wssec.RateError", err)
			}
			if rel != nil {
				rel()
			}
		})
	}
}

func TestAllowAcquire(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	s := newStore(t, newClient(t, addr))
	ctx := testCtx(t)
	slow := rate.Every(time.Hour)
	pool := wssec.Slot{Key: "ip:10.0.0.1", Max: 5}

	t.Run("rate refusal takes no slot", func(t *testing.T) {
		rel, err := s.AllowAcquire(ctx, "hs:1", slow, 1, time.Now(), []wssec.Slot{pool})
		if err != nil {
			t.Fatalf("first AllowAcquire: %v", err)
		}
		defer rel()
		before := s.RoundTrips()
		_, err = s.AllowAcquire(ctx, "hs:1", slow, 1, time.Now(), []wssec.Slot{pool})
		var re *wssec.RateError
		if !errors.As(err, &re) || !errors.Is(err, wssec.ErrRateLimited) {
			t.Fatalf("second AllowAcquire: %v, want a *wssec.RateError", err)
		}
		if re.RetryAfter <= 0 || re.RetryAfter > time.Hour {
			t.Errorf("RetryAfter = %s, want in (0, 1h]", re.RetryAfter)
		}
		if n := s.RoundTrips() - before; n != 1 {
			t.Errorf("%d round trips, want 1", n)
		}
		if n := s.client.ZCard(ctx, s.keys.pool(pool.Key)).Val(); n != 1 {
			t.Errorf("pool holds %d leases, want 1", n)
		}
	})

	t.Run("full pool is a QuotaError", func(t *testing.T) {
		one := wssec.Slot{Key: "sub:alice", Max: 1}
		rel, err := s.AllowAcquire(ctx, "hs:2", 100, 10, time.Now(), []wssec.Slot{pool, one})
		if err != nil {
			t.Fatalf("first AllowAcquire: %v", err)
		}
		defer rel()
		_, err = s.AllowAcquire(ctx, "hs:2", 100, 10, time.Now(), []wssec.Slot{pool, one})
		var qe *wssec.QuotaError
		if !errors.As(err, &qe) || !errors.Is(err, wssec.ErrQuotaExceeded) {
			t.Fatalf("second AllowAcquire: %v, want a *wssec.QuotaError", err)
		}
		if qe.Slot != one {
			t.Errorf("QuotaError names %+v, want %+v", qe.Slot, one)
		}
		// All or none: the refused call took no slot in the first pool
		// (which holds this subtest's lease only: the last one released).
		if n := s.client.ZCard(ctx, s.keys.pool(pool.Key)).Val(); n != 1 {
			t.Errorf("pool %s holds %d leases, want 1", pool.Key, n)
		}
	})

	t.Run("infinite rate acquires only", func(t *testing.T) {
		rel, err := s.AllowAcquire(ctx, "hs:3", rate.Inf, 0, time.Now(), []wssec.Slot{{Key: "inf", Max: 1}})
		if err != nil {
			t.Fatalf("AllowAcquire: %v", err)
		}
		rel()
		if s.client.Exists(ctx, s.keys.rate("hs:3")).Val() != 0 {
			t.Error("an infinite rate wrote rate state")
		}
	})
}
