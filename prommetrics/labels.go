package prommetrics

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"
)

// other is the label value of everything a label set does not admit.
const other = "other"

// maxLabelLen bounds the length of an admitted label value.
const maxLabelLen = 128

// validLabelValue reports whether v may be a label value: 1 to 128 bytes
// of [A-Za-z0-9_.:*{}/[]-]. That covers reason codes, registered actions,
// origin patterns ("https://*.example.com", "http://[::1]:8080") and
// channel patterns ("tenant:{tenant}:orders"), and nothing that needs
// escaping.
func validLabelValue(v string) bool {
	if len(v) == 0 || len(v) > maxLabelLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("_.:*{}/[]-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// cowMap is a map read without locks: readers load an immutable snapshot,
// writers (rare, and bounded by the label limit) copy it under mu.
type cowMap[K comparable, V any] struct {
	snap atomic.Pointer[map[K]V]
	mu   sync.Mutex // serialises writers
}

func (c *cowMap[K, V]) load(k K) (V, bool) {
	if m := c.snap.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// loadOrStore returns the value under k, storing mk()'s when there is
// none yet and admit(len) allows one more entry. ok is false when the
// entry was not admitted.
func (c *cowMap[K, V]) loadOrStore(k K, admit func(n int) bool, mk func() V) (v V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.snap.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v, true
		}
	}
	n := 0
	if old != nil {
		n = len(*old)
	}
	if !admit(n) {
		var zero V
		return zero, false
	}
	next := make(map[K]V, n+1)
	if old != nil {
		maps.Copy(next, *old)
	}
	v = mk()
	next[k] = v
	c.snap.Store(&next)
	return v, true
}

// labelSet admits at most max distinct values of one label; every other
// value, and every value validLabelValue refuses, becomes "other". It is
// safe for concurrent use; a lookup of an admitted value takes no lock.
type labelSet struct {
	max      int
	vals     cowMap[string, string] // each value maps to its own copy
	full     atomic.Bool            // max values admitted: no need to lock again
	overflow func()                 // counts a value turned into "other"
}

func newLabelSet(max int, overflow func()) *labelSet {
	return &labelSet{max: max, overflow: overflow}
}

// intern returns v as a label value, admitting it if there is room. ""
// becomes "other".
func (s *labelSet) intern(v string) string {
	if c, ok := s.vals.load(v); ok {
		return c
	}
	if v == "" || v == other { // nothing to name: not an overflow
		return other
	}
	if s.full.Load() || !validLabelValue(v) {
		s.overflow()
		return other
	}
	c, ok := s.vals.loadOrStore(v, func(n int) bool {
		if n >= s.max {
			s.full.Store(true)
			return false
		}
		return true
	}, func() string { return strings.Clone(v) }) // keep no reference to the event's memory
	if !ok {
		s.overflow()
		return other
	}
	return c
}

// known returns v if it was admitted already, else "other", admitting
// nothing.
func (s *labelSet) known(v string) string {
	if c, ok := s.vals.load(v); ok {
		return c
	}
	return other
}
