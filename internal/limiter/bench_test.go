package limiter

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

const benchKeys = 1 << 20 // about 1M distinct keys, as many as the table holds

// benchKeySet returns n random distinct-enough keys (collisions in 128 random
// bits do not occur in practice).
func benchKeySet(n int) []Key {
	rng := rand.New(rand.NewPCG(42, 7))
	keys := make([]Key, n)
	for i := range keys {
		for j := 0; j < 16; j += 8 {
			v := rng.Uint64()
			for b := range 8 {
				keys[i][j+b] = byte(v >> (8 * b))
			}
		}
	}
	return keys
}

func BenchmarkGCRA(b *testing.B) {
	g := NewGCRA(20, 40)
	var tat int64
	now := base
	b.ReportAllocs()
	for b.Loop() {
		now += int64(10 * time.Millisecond) // twice the rate: half are refused
		g.Allow(&tat, now)
	}
}

func BenchmarkKeyFromString(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = KeyFromString("user-1234567890@example.com")
	}
}

// BenchmarkTableAllow_1KKeys measures the cost of Allow itself: 1024 keys
// in a table that fits in cache.
func BenchmarkTableAllow_1KKeys(b *testing.B) {
	keys := benchKeySet(1024)
	tb, err := NewTable(4096, NewGCRA(5, 20))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	now := base
	i := 0
	for b.Loop() {
		now += 1000
		tb.Allow(keys[i&1023], now)
		i++
	}
}

// BenchmarkTableAllow_1MKeys draws keys at random from a set as large as the
// table's capacity, on a table that has already seen every key once: the
// steady state of a full table, with hits, misses and evictions.
func BenchmarkTableAllow_1MKeys(b *testing.B) {
	keys := benchKeySet(benchKeys)
	g := NewGCRA(5, 20)
	before := heapAfter()
	tb, err := NewTable(benchKeys, g)
	if err != nil {
		b.Fatal(err)
	}
	perKey := float64(int64(heapAfter())-int64(before)) / benchKeys
	for i, k := range keys {
		tb.Allow(k, base+int64(i))
	}
	mask := uint64(benchKeys - 1)

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		rng := rand.New(rand.NewPCG(1, 2))
		now := base + benchKeys
		for b.Loop() {
			now += 1000 // 1M calls per simulated second
			tb.Allow(keys[rng.Uint64()&mask], now)
		}
		b.ReportMetric(perKey, "bytes/key")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(seed.Add(1), 3))
			now := base + benchKeys
			for pb.Next() {
				now += 1000
				tb.Allow(keys[rng.Uint64()&mask], now)
			}
		})
		b.ReportMetric(perKey, "bytes/key")
	})
	runtime.KeepAlive(tb)
}

// BenchmarkMapOfRateLimiters is the baseline: the usual
// map[Key]*rate.Limiter behind one mutex, unbounded, with the same keys,
// rate and access pattern as BenchmarkTableAllow_1MKeys.
func BenchmarkMapOfRateLimiters(b *testing.B) {
	keys := benchKeySet(benchKeys)
	type limiters struct {
		mu sync.Mutex
		m  map[Key]*rate.Limiter
	}
	ls := &limiters{m: make(map[Key]*rate.Limiter)}
	allow := func(k Key, now time.Time) bool {
		ls.mu.Lock()
		l, ok := ls.m[k]
		if !ok {
			l = rate.NewLimiter(5, 20)
			ls.m[k] = l
		}
		ls.mu.Unlock()
		return l.AllowN(now, 1)
	}
	before := heapAfter()
	start := time.Unix(0, base)
	for i, k := range keys {
		allow(k, start.Add(time.Duration(i)))
	}
	perKey := float64(int64(heapAfter())-int64(before)) / benchKeys
	mask := uint64(benchKeys - 1)

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		rng := rand.New(rand.NewPCG(1, 2))
		now := start.Add(benchKeys)
		for b.Loop() {
			now = now.Add(1000)
			allow(keys[rng.Uint64()&mask], now)
		}
		b.ReportMetric(perKey, "bytes/key")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(seed.Add(1), 3))
			now := start.Add(benchKeys)
			for pb.Next() {
				now = now.Add(1000)
				allow(keys[rng.Uint64()&mask], now)
			}
		})
		b.ReportMetric(perKey, "bytes/key")
	})
	runtime.KeepAlive(ls)
}
