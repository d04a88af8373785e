package ttlcache

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestAddIfAbsentAndExpiry(t *testing.T) {
	c := New[string, int](4)
	if err := c.Add("a", 1, 100, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Add("a", 2, 100, 50); !errors.Is(err, ErrExists) {
		t.Fatalf("second Add of a live key: %v, want ErrExists", err)
	}
	if v, ok := c.Get("a", 99); !ok || v != 1 {
		t.Fatalf("Get before expiry = %v, %v", v, ok)
	}
	if _, ok := c.Get("a", 100); ok {
		t.Fatal("Get at expiry found the entry")
	}
	if err := c.Add("a", 3, 200, 100); err != nil {
		t.Fatalf("Add after expiry: %v", err)
	}
}

func TestTakeIsSingleUse(t *testing.T) {
	c := New[string, string](4)
	c.Add("t", "p", 100, 0)
	if v, ok := c.Take("t", 10); !ok || v != "p" {
		t.Fatalf("first Take = %q, %v", v, ok)
	}
	if _, ok := c.Take("t", 10); ok {
		t.Fatal("second Take succeeded")
	}
	c.Add("u", "p", 100, 0)
	if _, ok := c.Take("u", 100); ok {
		t.Fatal("Take of an expired entry succeeded")
	}
}

func TestFullRefusesInsteadOfEvictingLive(t *testing.T) {
	c := New[string, int](3)
	for i := 0; i < 3; i++ {
		if err := c.Add(strconv.Itoa(i), i, 100, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add("x", 9, 100, 10); !errors.Is(err, ErrFull) {
		t.Fatalf("Add to a full cache of live entries: %v, want ErrFull", err)
	}
	for i := 0; i < 3; i++ {
		if _, ok := c.Get(strconv.Itoa(i), 10); !ok {
			t.Fatalf("live entry %d was evicted", i)
		}
	}
	// Once they expire, room is made without a sweep.
	if err := c.Add("x", 9, 300, 100); err != nil {
		t.Fatalf("Add after expiry: %v", err)
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1", c.Len())
	}
}

func TestDeletedEntriesFreeRoom(t *testing.T) {
	c := New[string, int](3)
	c.Add("long", 0, 1000, 0) // a live entry at the front of the queue
	c.Add("b", 0, 1000, 0)
	c.Add("c", 0, 1000, 0)
	c.Take("b", 1)
	c.Take("c", 1)
	if err := c.Add("d", 0, 1000, 1); err != nil {
		t.Fatalf("Add after deletions behind a live front: %v", err)
	}
	if err := c.Add("e", 0, 1000, 1); err != nil {
		t.Fatalf("second Add after deletions: %v", err)
	}
	if err := c.Add("f", 0, 1000, 1); !errors.Is(err, ErrFull) {
		t.Fatalf("Add beyond capacity: %v, want ErrFull", err)
	}
}

// TestBoundedAtOneMillion inserts a million entries into a cache of 10 000
// and checks it never holds more than its capacity.
func TestBoundedAtOneMillion(t *testing.T) {
	const capacity = 10000
	c := New[string, struct{}](capacity)
	var full int
	for i := 0; i < 1_000_000; i++ {
		now := int64(i)
		// Entries live 20 000 ticks: at any time twice the capacity is live.
		if err := c.Add(strconv.Itoa(i), struct{}{}, now+20000, now); errors.Is(err, ErrFull) {
			full++
		}
		if i%1000 == 0 && c.Len() > capacity {
			t.Fatalf("Len = %d > capacity %d", c.Len(), capacity)
		}
	}
	if c.Len() > capacity {
		t.Fatalf("Len = %d > capacity %d", c.Len(), capacity)
	}
	if full == 0 {
		t.Fatal("a cache under twice its capacity of live entries never refused")
	}
}

// TestAgreesWithModel drives a cache and a plain map with the same random
// operations (entries expiring in any order, deletions, re-insertions of
// expired keys): every answer must agree, a live entry is never lost, and
// ErrFull comes exactly when capacity entries are live. (The insertion
// queue this replaced refused with 2 of 3 live when an expired entry sat
// behind a live one.)
func TestAgreesWithModel(t *testing.T) {
	for _, capacity := range []int{1, 3, 64, 65, 200, 1000} {
		rng := rand.New(rand.NewPCG(uint64(capacity), 7))
		c := New[int, int](capacity)
		model := map[int][2]int64{} // key -> value, exp
		live := func(now int64) int {
			n := 0
			for _, e := range model {
				if e[1] > now {
					n++
				}
			}
			return n
		}
		for step := range 20000 {
			now := int64(step)
			k := rng.IntN(3 * capacity)
			switch op := rng.IntN(10); {
			case op < 6:
				exp := now + 1 + rng.Int64N(int64(4*capacity))
				err := c.Add(k, step, exp, now)
				e, ok := model[k]
				switch {
				case ok && e[1] > now:
					if !errors.Is(err, ErrExists) {
						t.Fatalf("cap %d step %d: Add of live key %d: %v, want ErrExists", capacity, step, k, err)
					}
				case live(now) >= capacity:
					if !errors.Is(err, ErrFull) {
						t.Fatalf("cap %d step %d: Add with %d live: %v, want ErrFull", capacity, step, live(now), err)
					}
				default:
					if err != nil {
						t.Fatalf("cap %d step %d: Add with %d live of %d: %v", capacity, step, live(now), capacity, err)
					}
					model[k] = [2]int64{int64(step), exp}
				}
			case op < 8:
				v, ok := c.Get(k, now)
				e, mok := model[k]
				if want := mok && e[1] > now; ok != want || (ok && int64(v) != e[0]) {
					t.Fatalf("cap %d step %d: Get(%d) = %d, %v; model %v", capacity, step, k, v, ok, e)
				}
			case op < 9:
				v, ok := c.Take(k, now)
				e, mok := model[k]
				if want := mok && e[1] > now; ok != want || (ok && int64(v) != e[0]) {
					t.Fatalf("cap %d step %d: Take(%d) = %d, %v; model %v", capacity, step, k, v, ok, e)
				}
				delete(model, k)
			default:
				c.Delete(k)
				delete(model, k)
			}
			if len(c.h) > 2*capacity+1 {
				t.Fatalf("cap %d: index grew to %d nodes", capacity, len(c.h))
			}
		}
	}
}

// TestNewCostsLittle: a cache's memory follows what it holds, not its
// bound (a Guard has several caches of 100 000 entries).
func TestNewCostsLittle(t *testing.T) {
	var c *Cache[string, int64]
	allocs := testing.AllocsPerRun(10, func() { c = New[string, int64](100_000) })
	if cap(c.h) != 0 {
		t.Fatalf("a new cache of 100 000 holds an index of %d", cap(c.h))
	}
	if allocs > 4 {
		t.Fatalf("New: %v allocations", allocs)
	}
}

func BenchmarkAddTake(b *testing.B) {
	c := New[string, int](1 << 16)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := keys[i%len(keys)]
		c.Add(k, i, int64(i)+100, int64(i))
		c.Take(k, int64(i))
	}
}
