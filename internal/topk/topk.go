// Package topk finds the most frequent keys of an unbounded stream in
// fixed memory, with the space-saving algorithm (Metwally, Agrawal and
// El Abbadi, "Efficient computation of frequent and top-k elements in
// data streams", 2005). wssec uses it for the Origin hosts of refused
// handshakes: an attacker may send a different Origin every time, and
// the table still holds at most K keys.
//
// The guarantees: every key seen more than N/K times in a stream of N
// keys is in the table; a tracked key's Count never underestimates its
// true frequency and overestimates it by at most Err (Count-Err is a lower
// bound, and exact for a key tracked since its first occurrence); the
// Counts of the tracked keys sum to N.
package topk

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// MaxK is the largest table New accepts: Add scans the table when it
// admits a new key, so K stays small.
const MaxK = 1000

// Entry is one tracked key.
type Entry struct {
	Key string
	// Count is an upper bound of the key's occurrences: the occurrences
	// since it was admitted plus Err.
	Count uint64
	// Err is what the key inherited from the key it replaced: Count-Err
	// occurrences are certain.
	Err uint64
}

// Guaranteed returns Count-Err, the occurrences the table is sure of.
func (e Entry) Guaranteed() uint64 { return e.Count - e.Err }

// Sketch is a space-saving table of at most K keys. Its zero value is not
// usable; create one with New. It is safe for concurrent use.
type Sketch struct {
	k int

	mu      sync.Mutex     // guards the fields below
	entries []Entry        // at most k, in no particular order
	index   map[string]int // key -> position in entries
	total   uint64         // N: every Add
}

// New returns a Sketch that tracks at most k keys; k below 1 is 1 and
// above MaxK is MaxK.
func New(k int) *Sketch {
	k = min(max(k, 1), MaxK)
	return &Sketch{k: k, entries: make([]Entry, 0, k), index: make(map[string]int, k)}
}

// K returns the table size.
func (s *Sketch) K() int { return s.k }

// Add counts one occurrence of key. A new key takes a free slot, or else
// the slot of the key with the smallest Count, inheriting that Count as
// its Err. Add keeps its own copy of key. The cost is a map lookup, plus
// a scan of the K entries when key is not tracked.
func (s *Sketch) Add(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if i, ok := s.index[key]; ok {
		s.entries[i].Count++
		return
	}
	key = strings.Clone(key) // keep no reference to the caller's memory
	if len(s.entries) < s.k {
		s.index[key] = len(s.entries)
		s.entries = append(s.entries, Entry{Key: key, Count: 1})
		return
	}
	m := 0
	for i := 1; i < len(s.entries); i++ {
		if s.entries[i].Count < s.entries[m].Count {
			m = i
		}
	}
	min := s.entries[m].Count
	delete(s.index, s.entries[m].Key)
	s.entries[m] = Entry{Key: key, Count: min + 1, Err: min}
	s.index[key] = m
}

// Total returns N, the number of Adds.
func (s *Sketch) Total() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Top returns the tracked keys, most frequent (highest Count) first; ties
// go to the larger Guaranteed count, then to the key in byte order. It
// also returns Total.
func (s *Sketch) Top() ([]Entry, uint64) {
	s.mu.Lock()
	out := slices.Clone(s.entries)
	total := s.total
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Guaranteed(), a.Guaranteed()); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, total
}
