// Package ttlcache is a bounded map whose entries expire. It backs the
// replay cache, the ticket store and token-id revocations: sets that must
// never grow without bound, where evicting a live entry would be a
// security hole (a replay admitted, a revocation forgotten), so a full
// cache refuses new entries instead of evicting live ones.
//
// Entries are queued in insertion order; expired entries are dropped from
// the front of the queue as inserts pass, so the cost per operation is
// amortised O(1) and no operation sweeps the whole map.
package ttlcache

import (
	"errors"
	"sync"
)

// Errors returned by Add.
var (
	ErrFull   = errors.New("ttlcache: full")
	ErrExists = errors.New("ttlcache: key exists")
)

type entry[V any] struct {
	v   V
	exp int64
	gen uint64
}

type queued[K comparable] struct {
	key K
	gen uint64
}

// Cache is a bounded map with expiring entries. Times are Unix
// nanoseconds passed in by the caller, so tests control the clock. It is
// safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu   sync.Mutex // guards the fields below
	m    map[K]entry[V]
	q    []queued[K] // ring buffer of insertions
	head int         // index of the oldest insertion
	n    int         // queued insertions
	gen  uint64
	cap  int
}

// New returns a cache that holds at most capacity live entries (at least 1).
func New[K comparable, V any](capacity int) *Cache[K, V] {
	if capacity < 1 {
		capacity = 1
	}
	return &Cache[K, V]{m: make(map[K]entry[V]), q: make([]queued[K], capacity), cap: capacity}
}

// Cap returns the capacity.
func (c *Cache[K, V]) Cap() int { return c.cap }

// Len returns the number of entries held, expired ones not yet dropped
// included.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// dropFront removes queued insertions that are stale (deleted or
// replaced) or expired, stopping at the first live one.
func (c *Cache[K, V]) dropFront(now int64) {
	for c.n > 0 {
		q := c.q[c.head]
		e, ok := c.m[q.key]
		if ok && e.gen == q.gen && e.exp > now {
			return
		}
		if ok && e.gen == q.gen {
			delete(c.m, q.key)
		}
		c.q[c.head] = queued[K]{}
		c.head = (c.head + 1) % c.cap
		c.n--
	}
}

// Add inserts key with value v until exp, unless a live entry for key
// exists (ErrExists: set-if-absent semantics) or the cache holds capacity
// live entries (ErrFull).
func (c *Cache[K, V]) Add(key K, v V, exp, now int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok && e.exp > now {
		return ErrExists
	}
	c.dropFront(now)
	if c.n == c.cap {
		// Stale queue slots may sit behind a live front entry; compact
		// once the queue is full of them before declaring the cache full.
		if len(c.m) < c.cap {
			c.compact(now)
		}
		if c.n == c.cap {
			return ErrFull
		}
	}
	c.gen++
	c.m[key] = entry[V]{v: v, exp: exp, gen: c.gen}
	c.q[(c.head+c.n)%c.cap] = queued[K]{key: key, gen: c.gen}
	c.n++
	return nil
}

// compact rebuilds the queue from live entries. It runs only when the
// queue is full but the map is not, which takes at least capacity
// deletions since the last compaction: amortised O(1) per operation.
func (c *Cache[K, V]) compact(now int64) {
	nq := make([]queued[K], c.cap)
	n := 0
	for i := 0; i < c.n; i++ {
		q := c.q[(c.head+i)%c.cap]
		e, ok := c.m[q.key]
		if !ok || e.gen != q.gen {
			continue
		}
		if e.exp <= now {
			delete(c.m, q.key)
			continue
		}
		nq[n] = q
		n++
	}
	c.q, c.head, c.n = nq, 0, n
}

// Get returns the live value for key.
func (c *Cache[K, V]) Get(key K, now int64) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || e.exp <= now {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Take returns the live value for key and removes it: a second Take of
// the same key fails. This is single use.
func (c *Cache[K, V]) Take(key K, now int64) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	delete(c.m, key)
	if e.exp <= now {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Delete removes key.
func (c *Cache[K, V]) Delete(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
