package redisstore

import (
	"errors"
	"testing"
	"time"

	"github.com/wssec/wssec"
)

func TestAcquire_TwoStoresEnforceOneQuota(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	prefix := WithPrefix(testPrefix(t))
	a := newStore(t, newClient(t, addr), prefix)
	b := newStore(t, newClient(t, addr), prefix)
	ctx := testCtx(t)
	slots := []wssec.Slot{{Key: "ip:192.0.2.1", Max: 2}, {Key: "total", Max: 100}}

	admitted := 0
	var releases []func()
	for i := range 6 {
		st := a
		if i%2 == 1 {
			st = b
		}
		rel, err := st.Acquire(ctx, slots)
		var qe *wssec.QuotaError
		switch {
		case err == nil:
			admitted++
			releases = append(releases, rel)
		case errors.As(err, &qe):
			if qe.Slot != slots[0] {
				t.Errorf("QuotaError names %+v, want %+v", qe.Slot, slots[0])
			}
		default:
			t.Fatalf("Acquire: %v", err)
		}
	}
	if admitted != 2 {
		t.Fatalf("admitted %d across two stores, want 2", admitted)
	}
	// All or none: the refusals took no slot of "total".
	if n := a.client.ZCard(ctx, a.keys.pool("total")).Val(); n != 2 {
		t.Errorf("total holds %d leases, want 2", n)
	}
	for _, rel := range releases {
		rel()
	}
	if n := a.client.ZCard(ctx, a.keys.pool("total")).Val(); n != 0 {
		t.Errorf("total holds %d leases after release, want 0", n)
	}
}

func TestRelease_CountsOnce(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	prefix := WithPrefix(testPrefix(t))
	a := newStore(t, newClient(t, addr), prefix)
	b := newStore(t, newClient(t, addr), prefix)
	ctx := testCtx(t)
	slot := []wssec.Slot{{Key: "sub:bob", Max: 1}}

	relA, err := a.Acquire(ctx, slot)
	if err != nil {
		t.Fatalf("A: %v", err)
	}
	relA()
	relB, err := b.Acquire(ctx, slot)
	if err != nil {
		t.Fatalf("B after A released: %v", err)
	}
	defer relB()
	relA() // a second release must not free B's slot
	relA()
	if _, err := a.Acquire(ctx, slot); !errors.Is(err, wssec.ErrQuotaExceeded) {
		t.Fatalf("Acquire after a double release: %v, want the pool full", err)
	}
	if n := a.client.ZCard(ctx, a.keys.pool("sub:bob")).Val(); n != 1 {
		t.Errorf("pool holds %d leases, want 1", n)
	}
}

func TestAcquire_EmptyAndZeroMax(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	s := newStore(t, newClient(t, addr))
	ctx := testCtx(t)
	rel, err := s.Acquire(ctx, nil)
	if err != nil || rel == nil {
		t.Fatalf("Acquire(nil) = release %t, %v", rel != nil, err)
	}
	rel()
	if n := s.RoundTrips(); n != 0 {
		t.Errorf("Acquire(nil) made %d round trips", n)
	}
	if _, err := s.Acquire(ctx, []wssec.Slot{{Key: "none", Max: 0}}); !errors.Is(err, wssec.ErrQuotaExceeded) {
		t.Errorf("a pool of 0: %v, want full", err)
	}
}

// TestLeases_CrashedStoreFreesSlots: a Store closed without releasing (as
// a crashed instance) stops renewing, so its slots free themselves after
// the lease TTL, while a live Store's renewed lease outlives many TTLs.
func TestLeases_CrashedStoreFreesSlots(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	prefix := WithPrefix(testPrefix(t))
	// A 2 s lease is renewed every 667 ms: a renewal may stall 1.3 s on a
	// loaded machine before the live lease would lapse.
	ttl := WithLeaseTTL(2 * time.Second)
	crashed := newStore(t, newClient(t, addr), prefix, ttl)
	live := newStore(t, newClient(t, addr), prefix, ttl)
	observer := newStore(t, newClient(t, addr), prefix, ttl)
	ctx := testCtx(t)
	crashPool := []wssec.Slot{{Key: "ip:198.51.100.1", Max: 1}}
	livePool := []wssec.Slot{{Key: "ip:198.51.100.2", Max: 1}}

	if _, err := crashed.Acquire(ctx, crashPool); err != nil {
		t.Fatalf("crashed: %v", err)
	}
	relLive, err := live.Acquire(ctx, livePool)
	if err != nil {
		t.Fatalf("live: %v", err)
	}
	defer relLive()
	if err := crashed.Close(); err != nil { // no release: the slot must expire
		t.Fatal(err)
	}
	if _, err := observer.Acquire(ctx, crashPool); !errors.Is(err, wssec.ErrQuotaExceeded) {
		t.Fatalf("right after the crash the slot must still be held: %v", err)
	}

	start := time.Now()
	eventually(t, 10*time.Second, "the crashed store's slot to free itself", func() bool {
		rel, err := observer.Acquire(ctx, crashPool)
		if err == nil {
			rel()
			return true
		}
		if !errors.Is(err, wssec.ErrQuotaExceeded) {
			t.Fatalf("observer: %v", err)
		}
		return false
	})
	// Hold the live lease for three TTLs in all.
	time.Sleep(6*time.Second - time.Since(start))
	if _, err := observer.Acquire(ctx, livePool); !errors.Is(err, wssec.ErrQuotaExceeded) {
		t.Fatalf("the live store's renewed lease was freed: %v", err)
	}
	relLive()
	rel, err := observer.Acquire(ctx, livePool)
	if err != nil {
		t.Fatalf("after the live release: %v", err)
	}
	rel()
}
