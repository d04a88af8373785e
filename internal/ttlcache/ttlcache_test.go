package ttlcache

import (
	"errors"
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
