package limiter

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"
)

// ErrCapacity is returned (wrapped) by [NewTable] for a capacity outside
// [1, MaxCapacity].
var ErrCapacity = errors.New("limiter: table capacity out of range")

// MaxCapacity is the largest capacity [NewTable] accepts (2^32 keys, 96 GiB).
const MaxCapacity = 1 << 32

const (
	// windowLen is the number of consecutive slots in each of a key's two
	// candidate windows; one Allow examines at most 2*windowLen slots.
	windowLen = 8
	// maxShards is the most shards a Table has; a power of two.
	maxShards = 64
	// minShardSlots keeps the shards of small tables large compared with a
	// window, so that the two windows of a key rarely overlap.
	minShardSlots = 128
)

// entry is one slot: 24 bytes and no pointers, so the garbage collector
// never scans the slot array. tat == 0 marks an unused slot; a stored TAT is
// never 0 (see setTAT).
type entry struct {
	key Key
	tat int64
}

// shard is one independently locked part of a Table.
type shard struct {
	mu    sync.Mutex
	slots []entry // fixed length; a sub-slice of the Table's single array
	n     int     // slots in use

	_ [128 - 8 - 24 - 8]byte // keep shards on separate cache lines
}

// Table is a bounded, concurrent map from [Key] to GCRA state: one [GCRA]
// applied independently to every key, for example handshakes per client IP.
// It is safe for simultaneous use by multiple goroutines. Create one with
// [NewTable]; the zero Table refuses every event.
//
// # Layout
//
// A Table is one array of capacity slots of 24 bytes each (a 16-byte key and
// an 8-byte TAT, no pointers, so the garbage collector never scans it), cut
// into up to 64 shards, each guarded by its own mutex. The key's hash, keyed
// with a seed drawn at random for each Table, picks a shard and two windows
// of 8 consecutive slots in it; the key is stored in one of those 16 slots.
// Allow hashes once, locks one shard and examines at most 16 slots: O(1) per
// call, no allocation, no background sweeping.
//
// A new key goes into the window with more unused slots (the "power of two
// choices"), which keeps windows evenly filled: with 70% of the capacity in
// live keys, inserting another key almost never has to evict a live one.
//
// # Eviction
//
// The table never holds more than capacity keys. A key that is not present
// takes an unused slot in one of its windows if there is one, or else evicts
// the entry of its two windows with the smallest TAT. An expired entry
// (TAT ≤ now) always has a smaller TAT than a live one, so it is evicted
// first; since an expired entry behaves exactly like an absent key, evicting
// it loses nothing. Live state is lost only when all 16 slots hold live
// entries, and then it is the least restricted one (closest to a full
// bucket). Because windows are bounded, this can start a little before the
// whole table is live.
//
// Trade-off: a client that controls more distinct keys than the table holds,
// and uses them within one burst window, can push other keys' state out.
// Eviction resets a key to a full bucket, so it can only make the limiter
// more lenient for the evicted key; it never refuses an innocent key. The
// keys being throttled hardest have the largest TAT and are evicted last,
// and the keyed hash keeps a client from aiming its keys at one victim's
// windows. Size the table for the number of keys expected to be active
// within one burst window (burst/rate).
type Table struct {
	g      GCRA
	seed   maphash.Seed
	shift  uint // hash >> shift selects the shard
	bits   uint // log2(len(shards)); hash << bits places the first window
	cap    int
	shards []shard
}

// NewTable returns a Table that holds at most capacity keys, each limited by
// g. All its memory is allocated here: 24 bytes per key of capacity plus
// about 8 KiB. A capacity outside [1, MaxCapacity] is an error wrapping
// [ErrCapacity].
func NewTable(capacity int, g GCRA) (*Table, error) {
	if capacity < 1 || uint64(capacity) > MaxCapacity {
		return nil, fmt.Errorf("%w: got %d, want 1 to %d", ErrCapacity, capacity, uint64(MaxCapacity))
	}
	nshards := maxShards
	for nshards > 1 && capacity/nshards < minShardSlots {
		nshards /= 2
	}
	lg := uint(bits.TrailingZeros(uint(nshards)))
	t := &Table{
		g:      g,
		seed:   maphash.MakeSeed(),
		shift:  64 - lg, // 64 when there is one shard: h>>64 == 0
		bits:   lg,
		cap:    capacity,
		shards: make([]shard, nshards),
	}
	slots := make([]entry, capacity)
	size, extra := capacity/nshards, capacity%nshards
	off := 0
	for i := range t.shards {
		n := size
		if i < extra {
			n++
		}
		t.shards[i].slots = slots[off : off+n : off+n]
		off += n
	}
	return t, nil
}

// Allow charges one event for key at time now (ns) and reports whether it is
// admitted, with the same meaning of ok and retryAfter as [GCRA.Allow]. A key
// not yet present (or evicted) starts with a full bucket. When the Table's
// GCRA is unlimited or refuses everything, Allow answers without touching
// the table.
func (t *Table) Allow(key Key, now int64) (ok bool, retryAfter time.Duration) {
	if t.g.interval == 0 {
		return t.g.fixed()
	}
	h := maphash.Bytes(t.seed, key[:])
	s := &t.shards[h>>t.shift]
	s.mu.Lock()
	ok, retryAfter = s.allow(key, h<<t.bits, now, &t.g)
	s.mu.Unlock()
	return ok, retryAfter
}

// allow is Table.Allow on one locked shard; h holds the hash bits left after
// the shard was chosen.
func (s *shard) allow(key Key, h uint64, now int64, g *GCRA) (bool, time.Duration) {
	slots := s.slots
	n := uint64(len(slots))
	w := min(windowLen, len(slots))
	// Two window starts, uniform in [0, n) without division, from disjoint
	// bits of h (the high bits, then the low 32 bits).
	a, _ := bits.Mul64(h, n)
	b, _ := bits.Mul64(h<<32, n)
	starts := [2]int{int(a), int(b)}

	var (
		free      [2]int   // unused slots seen in each window
		firstFree [2]int   // the first unused slot of each window
		victim    = int(a) // the used slot with the smallest TAT
		victimTAT = int64(math.MaxInt64)
	)
	for c, i := range starts {
		firstFree[c] = -1
		for range w {
			e := &slots[i]
			switch {
			case e.tat == 0:
				if free[c] == 0 {
					firstFree[c] = i
				}
				free[c]++
			case e.key == key:
				ok, d := g.Allow(&e.tat, now)
				setTAT(e, e.tat)
				return ok, d
			case e.tat < victimTAT:
				victim, victimTAT = i, e.tat
			}
			if i++; i == len(slots) {
				i = 0
			}
		}
	}
	switch {
	case free[0] >= free[1] && free[0] > 0:
		victim = firstFree[0]
		s.n++
	case free[1] > 0:
		victim = firstFree[1]
		s.n++
	}
	// A new key starts with a full bucket, and burst ≥ 1: admitted.
	e := &slots[victim]
	e.key = key
	setTAT(e, now+g.interval)
	return true, 0
}

// setTAT stores tat, replacing 0 (the unused-slot mark) by 1: the entry then
// refuses for at most 1 ns longer, and only for a clock near zero.
func setTAT(e *entry, tat int64) {
	if tat == 0 {
		tat = 1
	}
	e.tat = tat
}

// Len returns the number of keys the table holds, never more than its
// capacity. Expired entries count until they are reused.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// Cap returns the capacity the Table was created with.
func (t *Table) Cap() int { return t.cap }

// GCRA returns the limiter configuration the Table applies to every key.
func (t *Table) GCRA() GCRA { return t.g }
