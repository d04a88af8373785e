package limiter

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"
)

const sec = int64(time.Second)

// seqKey returns a distinct key for every i.
func seqKey[T ~int | ~uint64](i T) Key {
	var k Key
	binary.LittleEndian.PutUint64(k[:8], uint64(i))
	k[15] = 0xa5
	return k
}

func mustTable(t testing.TB, capacity int, g GCRA) *Table {
	t.Helper()
	tb, err := NewTable(capacity, g)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// peek returns the stored TAT of key, for white-box checks.
func (t *Table) peek(key Key) (int64, bool) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, e := range s.slots {
			if e.tat != 0 && e.key == key {
				s.mu.Unlock()
				return e.tat, true
			}
		}
		s.mu.Unlock()
	}
	return 0, false
}

func TestNewTableCapacity(t *testing.T) {
	for _, c := range []int{0, -1, math.MinInt} {
		if tb, err := NewTable(c, NewGCRA(1, 1)); tb != nil || !errors.Is(err, ErrCapacity) {
			t.Errorf("NewTable(%d) = %v, %v; want nil, ErrCapacity", c, tb, err)
		}
	}
	if math.MaxInt > MaxCapacity {
		if _, err := NewTable(MaxCapacity+1, NewGCRA(1, 1)); !errors.Is(err, ErrCapacity) {
			t.Errorf("NewTable(MaxCapacity+1): err = %v, want ErrCapacity", err)
		}
	}
	// Every slot is in exactly one shard, and no shard is smaller than a
	// probe window unless the whole table is.
	for _, c := range []int{1, 2, 7, 8, 9, 127, 128, 255, 256, 1000, 8191, 8192, 1 << 20, 1_000_003} {
		tb := mustTable(t, c, NewGCRA(1, 1))
		total := 0
		for i := range tb.shards {
			n := len(tb.shards[i].slots)
			total += n
			if n < min(c, minShardSlots) {
				t.Errorf("capacity %d: shard %d has %d slots", c, i, n)
			}
		}
		if total != c || tb.Cap() != c || tb.Len() != 0 {
			t.Errorf("capacity %d: %d slots, Cap %d, Len %d", c, total, tb.Cap(), tb.Len())
		}
	}
	if s := unsafe.Sizeof(entry{}); s != 24 {
		t.Errorf("entry is %d bytes, want 24", s)
	}
	if s := unsafe.Sizeof(shard{}); s != 128 {
		t.Errorf("shard is %d bytes, want 128", s)
	}
}

func TestTableBurstRefillAndRetryAfter(t *testing.T) {
	g := NewGCRA(5, 20) // the default handshake rate: 200 ms per token
	tb := mustTable(t, 1024, g)
	ip := KeyFromAddr(netip.MustParseAddr("192.0.2.1"))
	now := base
	for i := range 20 {
		if ok, d := tb.Allow(ip, now); !ok || d != 0 {
			t.Fatalf("event %d of the burst: Allow = %v, %v; want true, 0", i+1, ok, d)
		}
	}
	if ok, d := tb.Allow(ip, now); ok || d != 200*time.Millisecond {
		t.Fatalf("after burst: Allow = %v, %v; want false, 200ms", ok, d)
	}
	if ok, d := tb.Allow(ip, now+int64(50*time.Millisecond)); ok || d != 150*time.Millisecond {
		t.Fatalf("50 ms later: Allow = %v, %v; want false, 150ms", ok, d)
	}
	now += int64(200 * time.Millisecond)
	if ok, _ := tb.Allow(ip, now); !ok {
		t.Fatal("one interval later: refused")
	}
	if ok, d := tb.Allow(ip, now); ok || d != 200*time.Millisecond {
		t.Fatalf("second event one interval later: Allow = %v, %v; want false, 200ms", ok, d)
	}
	if tb.Len() != 1 {
		t.Fatalf("Len = %d, want 1", tb.Len())
	}
}

func TestTableKeysAreIndependent(t *testing.T) {
	g := NewGCRA(1, 3)
	tb := mustTable(t, 1000, g)
	const keys = 100
	// Exhaust every key, in interleaved order.
	for round := range 3 {
		for i := range keys {
			if ok, _ := tb.Allow(seqKey(i), base); !ok {
				t.Fatalf("round %d key %d refused", round, i)
			}
		}
	}
	for i := range keys {
		if ok, d := tb.Allow(seqKey(i), base); ok || d != time.Second {
			t.Fatalf("key %d after its burst: Allow = %v, %v; want false, 1s", i, ok, d)
		}
	}
	// Other keys, including an IPv6 and a string key, are untouched.
	others := []Key{
		seqKey(keys),
		KeyFromAddr(netip.MustParseAddr("2001:db8::1")),
		KeyFromString("alice"),
	}
	for _, k := range others {
		for i := range 3 {
			if ok, _ := tb.Allow(k, base); !ok {
				t.Fatalf("fresh key %x: event %d refused", k, i+1)
			}
		}
	}
	if got := tb.Len(); got != keys+len(others) {
		t.Fatalf("Len = %d, want %d", got, keys+len(others))
	}
}

func TestTableUnlimitedAndRefuseAllStoreNothing(t *testing.T) {
	inf := mustTable(t, 16, NewGCRA(math.Inf(1), 1))
	deny := mustTable(t, 16, GCRA{})
	for i := range 100 {
		if ok, d := inf.Allow(seqKey(i), base); !ok || d != 0 {
			t.Fatalf("unlimited: Allow = %v, %v", ok, d)
		}
		if ok, d := deny.Allow(seqKey(i), base); ok || d != Never {
			t.Fatalf("refuse-all: Allow = %v, %v", ok, d)
		}
	}
	if inf.Len() != 0 || deny.Len() != 0 {
		t.Fatalf("Len = %d, %d; want 0, 0", inf.Len(), deny.Len())
	}
}

func TestTableEvictionPrefersExpired(t *testing.T) {
	// Capacity 8: one shard whose probe window covers every slot, so the
	// outcome does not depend on the random hash seed.
	g := NewGCRA(1, 3)
	tb := mustTable(t, 8, g)
	if len(tb.shards) != 1 || len(tb.shards[0].slots) != windowLen {
		t.Fatalf("layout: %d shards", len(tb.shards))
	}
	fillers := make([]Key, 7)
	for i := range fillers {
		fillers[i] = KeyFromString("filler-" + string(rune('a'+i)))
		tb.Allow(fillers[i], base) // TAT base+1s: expired from base+1s on
	}
	victim := KeyFromAddr(netip.MustParseAddr("198.51.100.7"))
	tb.Allow(victim, base+10*sec) // TAT base+11s
	if tb.Len() != 8 {
		t.Fatalf("Len = %d, want 8 (full)", tb.Len())
	}

	// At base+10.5s the fillers have expired and the victim has not. New
	// keys (TAT base+11.5s) replace the expired fillers, although the
	// victim's TAT is smaller than theirs.
	now := base + 10*sec + sec/2
	newcomers := make([]Key, 7)
	for i := range newcomers {
		newcomers[i] = seqKey(uint64(i))
		if ok, _ := tb.Allow(newcomers[i], now); !ok {
			t.Fatalf("newcomer %d refused", i)
		}
		if tb.Len() != 8 {
			t.Fatalf("Len = %d, want 8", tb.Len())
		}
	}
	for i, k := range fillers {
		if _, ok := tb.peek(k); ok {
			t.Fatalf("expired filler %d survived while live state was kept", i)
		}
	}
	if tat, ok := tb.peek(victim); !ok || tat != base+11*sec {
		t.Fatalf("victim state = %d, %v; want %d, true", tat, ok, base+11*sec)
	}
	for _, k := range newcomers {
		if _, ok := tb.peek(k); !ok {
			t.Fatal("a newcomer is missing")
		}
	}

	// With no expired entry left, the least restricted entry goes: the
	// victim (TAT base+11s) rather than a newcomer (base+11.5s). Losing its
	// state only makes the limiter more lenient for it.
	tb.Allow(seqKey(100), now)
	if _, ok := tb.peek(victim); ok {
		t.Fatal("victim kept; want the smallest TAT evicted")
	}
	if tb.Len() != 8 {
		t.Fatalf("Len = %d, want 8", tb.Len())
	}
	for i := range 3 {
		if ok, _ := tb.Allow(victim, now); !ok {
			t.Fatalf("evicted victim, event %d: refused; an evicted key must start with a full bucket", i+1)
		}
	}
}

func TestTableExpiredStateBehavesLikeFresh(t *testing.T) {
	// A key whose entry has expired gets exactly a full burst, whether its
	// entry is still stored or was evicted meanwhile.
	g := NewGCRA(2, 4)
	tb := mustTable(t, 64, g)
	k := KeyFromString("bob")
	for range 10 {
		tb.Allow(k, base)
	}
	later := base + 2*sec // TAT was base+2s
	admitted := 0
	for range 10 {
		if ok, _ := tb.Allow(k, later); ok {
			admitted++
		}
	}
	if admitted != 4 {
		t.Fatalf("%d admitted after expiry, want 4", admitted)
	}
}

func TestTableLiveKeyUnderEvictionPressure(t *testing.T) {
	const capacity = 1000
	g := NewGCRA(1, 10)
	tb := mustTable(t, capacity, g)
	// An abusive client exhausts its burst: TAT base+10s.
	abuser := KeyFromAddr(netip.MustParseAddr("203.0.113.66"))
	for range 10 {
		tb.Allow(abuser, base)
	}
	// 10x capacity distinct keys arrive at the same instant (TAT base+1s).
	for i := range 10 * capacity {
		if ok, _ := tb.Allow(seqKey(uint64(i)), base); !ok {
			t.Fatalf("fresh key %d refused", i)
		}
		if n := tb.Len(); n > capacity {
			t.Fatalf("after %d keys: Len = %d > capacity %d", i+1, n, capacity)
		}
	}
	if n := tb.Len(); n < capacity*9/10 {
		t.Fatalf("Len = %d, want the table nearly full", n)
	}
	// The most restricted key is evicted last: it is still refused.
	if ok, d := tb.Allow(abuser, base); ok || d != time.Second {
		t.Fatalf("abuser after the flood: Allow = %v, %v; want false, 1s", ok, d)
	}
}

func TestTableKeepsLiveKeysBelowCapacity(t *testing.T) {
	// With 70% of the capacity live, (almost) no live key is evicted: the
	// two-window layout uses nearly all of its slots before it must evict.
	const capacity = 100_000
	tb := mustTable(t, capacity, NewGCRA(1, 5))
	const live = capacity * 7 / 10
	for i := range live {
		tb.Allow(seqKey(i), base)
	}
	lost := live - tb.Len()
	t.Logf("%d of %d live keys evicted at 70%% load", lost, live)
	if lost > live/1000 {
		t.Fatalf("%d of %d live keys evicted at 70%% load, want ≤ 0.1%%", lost, live)
	}
}

func TestTableTinyCapacity(t *testing.T) {
	g := NewGCRA(1, 2)
	tb := mustTable(t, 1, g)
	a, b := seqKey(1), seqKey(2)
	tb.Allow(a, base)
	tb.Allow(a, base)
	if ok, _ := tb.Allow(a, base); ok {
		t.Fatal("a: third event admitted")
	}
	tb.Allow(b, base) // evicts a
	if tb.Len() != 1 {
		t.Fatalf("Len = %d, want 1", tb.Len())
	}
	if ok, _ := tb.Allow(a, base); !ok {
		t.Fatal("a after eviction: refused")
	}
}

func TestTableConcurrent(t *testing.T) {
	const (
		goroutines = 16
		perG       = 2000
		capacity   = 4096
		burst      = 100
	)
	g := NewGCRA(10, burst)
	tb := mustTable(t, capacity, g)
	shared := KeyFromString("shared")
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for w := range goroutines {
		wg.Go(func() {
			mine := 0
			for i := range perG {
				// Contend on one key at a fixed instant...
				if i%4 == 0 {
					if ok, _ := tb.Allow(shared, base); ok {
						mine++
					}
					continue
				}
				// ...and churn private keys (more of them than the table
				// holds) with a moving clock that stays behind the shared
				// key's, so that the shared key is never the least
				// restricted entry of a probe window and is never evicted.
				k := seqKey(uint64(w)<<32 | uint64(i))
				tb.Allow(k, base-int64(time.Hour)+int64(i)*int64(time.Millisecond))
				if i%256 == 1 {
					if n := tb.Len(); n > capacity {
						t.Errorf("Len = %d > capacity", n)
					}
				}
			}
			mu.Lock()
			admitted += mine
			mu.Unlock()
		})
	}
	wg.Wait()
	// 16*500 attempts on the shared key at one instant: exactly burst admitted.
	if admitted != burst {
		t.Fatalf("shared key: %d admitted, want exactly %d", admitted, burst)
	}
	if n := tb.Len(); n > capacity {
		t.Fatalf("Len = %d > capacity", n)
	}
}

func TestTableAllowDoesNotAllocate(t *testing.T) {
	tb := mustTable(t, 1<<12, NewGCRA(5, 20))
	var i uint64
	if n := testing.AllocsPerRun(10_000, func() {
		i++
		tb.Allow(seqKey(i%(1<<13)), base+int64(i))
	}); n != 0 {
		t.Fatalf("Table.Allow: %v allocs per call, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = KeyFromString("subject-123") }); n != 0 {
		t.Fatalf("KeyFromString: %v allocs per call, want 0", n)
	}
}

// heapAfter returns the live heap after a full collection.
func heapAfter() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestTableMemoryPerKey(t *testing.T) {
	const capacity = 1_000_000
	before := heapAfter()
	tb := mustTable(t, capacity, NewGCRA(5, 20))
	allocated := heapAfter()
	// Using it allocates nothing more (a sample, to keep the test fast under
	// -race; TestTableLiveKeyUnderEvictionPressure overfills a table).
	const used = capacity / 10
	for i := range uint64(used) {
		tb.Allow(seqKey(i), base)
	}
	filled := heapAfter()
	n := tb.Len()
	runtime.KeepAlive(tb)

	perKey := float64(int64(allocated)-int64(before)) / capacity
	t.Logf("%.2f bytes per key of capacity", perKey)
	if perKey > 48 {
		t.Fatalf("%.1f bytes per key, want ≤ 48", perKey)
	}
	if grew := int64(filled) - int64(allocated); grew > 64<<10 {
		t.Fatalf("filling the table grew the heap by %d bytes", grew)
	}
	if n != used {
		t.Fatalf("Len = %d, want %d", n, used)
	}
}

func TestKeyFromString(t *testing.T) {
	a, a2, b := KeyFromString("alice"), KeyFromString("alice"), KeyFromString("alicf")
	if a != a2 {
		t.Fatal("equal strings, different keys")
	}
	if a == b || a == KeyFromString("") || a == (Key{}) {
		t.Fatal("distinct strings, equal keys")
	}
	if [8]byte(a[:8]) == [8]byte(a[8:]) {
		t.Fatal("the two halves of the key are equal: the seeds are not independent")
	}
	seen := make(map[Key]bool)
	for i := range 100_000 {
		k := KeyFromString(string(binary.AppendUvarint(nil, uint64(i))))
		if seen[k] {
			t.Fatalf("collision at %d", i)
		}
		seen[k] = true
	}
}

func TestKeyFromAddr(t *testing.T) {
	v4 := KeyFromAddr(netip.MustParseAddr("192.0.2.1"))
	if v4 != KeyFromAddr(netip.MustParseAddr("::ffff:192.0.2.1")) {
		t.Fatal("IPv4 and its IPv4-mapped form give different keys")
	}
	if v4 == KeyFromAddr(netip.MustParseAddr("192.0.2.2")) {
		t.Fatal("distinct addresses, equal keys")
	}
	if KeyFromAddr(netip.MustParseAddr("fe80::1%eth0")) != KeyFromAddr(netip.MustParseAddr("fe80::1")) {
		t.Fatal("zone changed the key")
	}
}
