// Package ttlcache is a bounded map whose entries expire. It backs the
// replay cache, the ticket store and token-id revocations: sets that must
// never grow without bound, where evicting a live entry would be a
// security hole (a replay admitted, a revocation forgotten), so a full
// cache refuses new entries instead of evicting live ones.
//
// Entries are indexed by expiry in a binary heap; every operation that
// inserts first drops the entries that have expired, so a cache refuses
// with ErrFull exactly when it holds capacity live entries, whatever
// order the entries expire in. An insert costs O(log n) and no operation
// sweeps the whole map except a rebuild of the index, which happens once
// per capacity deletions (amortised O(1)). Memory follows what the cache
// holds, not its capacity.
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

// node is one insertion in the expiry index. It is stale once its key was
// deleted or inserted again (the map's entry has another gen).
type node[K comparable] struct {
	key K
	exp int64
	gen uint64
}

// Cache is a bounded map with expiring entries. Times are Unix
// nanoseconds passed in by the caller, so tests control the clock. It is
// safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu  sync.Mutex // guards the fields below
	m   map[K]entry[V]
	h   []node[K] // min-heap by exp: one node per map entry, plus stale ones
	gen uint64
	cap int
}

// New returns a cache that holds at most capacity live entries (at least 1).
func New[K comparable, V any](capacity int) *Cache[K, V] {
	if capacity < 1 {
		capacity = 1
	}
	return &Cache[K, V]{m: make(map[K]entry[V]), cap: capacity}
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

// live reports whether n is the map's current entry for its key.
func (c *Cache[K, V]) live(n node[K]) bool {
	e, ok := c.m[n.key]
	return ok && e.gen == n.gen
}

// dropExpired removes every entry that has expired by now, and the stale
// nodes it meets on the way. Afterwards every entry in the map is live:
// an expired entry's node has the smallest exp, so it reaches the top.
func (c *Cache[K, V]) dropExpired(now int64) {
	for len(c.h) > 0 {
		top := c.h[0]
		stale := !c.live(top)
		if !stale && top.exp > now {
			return
		}
		if !stale {
			delete(c.m, top.key)
		}
		c.pop()
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
	c.dropExpired(now)
	if len(c.m) >= c.cap {
		return ErrFull
	}
	if len(c.h) >= 2*c.cap {
		c.rebuild() // more than capacity stale nodes: drop them
	}
	c.gen++
	c.m[key] = entry[V]{v: v, exp: exp, gen: c.gen}
	c.push(node[K]{key: key, exp: exp, gen: c.gen})
	return nil
}

// rebuild makes the index anew from the map's entries, dropping stale
// nodes. It runs when stale nodes outnumber the capacity, which takes at
// least capacity deletions since the last rebuild.
func (c *Cache[K, V]) rebuild() {
	h := make([]node[K], 0, max(len(c.m), 1))
	for k, e := range c.m {
		h = append(h, node[K]{key: k, exp: e.exp, gen: e.gen})
	}
	c.h = h
	for i := len(h)/2 - 1; i >= 0; i-- {
		c.down(i)
	}
}

func (c *Cache[K, V]) push(n node[K]) {
	c.h = append(c.h, n)
	c.up(len(c.h) - 1)
}

func (c *Cache[K, V]) pop() {
	last := len(c.h) - 1
	c.h[0] = c.h[last]
	c.h[last] = node[K]{} // no reference to the key kept
	c.h = c.h[:last]
	if last > 0 {
		c.down(0)
	}
	if cap(c.h) > 64 && len(c.h) < cap(c.h)/4 {
		c.h = append(make([]node[K], 0, cap(c.h)/2), c.h...) // give memory back after a burst
	}
}

func (c *Cache[K, V]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if c.h[p].exp <= c.h[i].exp {
			return
		}
		c.h[p], c.h[i] = c.h[i], c.h[p]
		i = p
	}
}

func (c *Cache[K, V]) down(i int) {
	n := len(c.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && c.h[r].exp < c.h[l].exp {
			m = r
		}
		if c.h[i].exp <= c.h[m].exp {
			return
		}
		c.h[i], c.h[m] = c.h[m], c.h[i]
		i = m
	}
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
