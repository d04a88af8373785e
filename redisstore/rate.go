package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wssec/wssec"
	"golang.org/x/time/rate"
)

// never is the retryAfter of a limit that admits nothing (r <= 0 or
// burst < 1), as in the in-memory limiter.
const never = time.Duration(math.MaxInt64)

// maxMicros caps the emission interval and the burst window (about 142
// years) so that the script's arithmetic on doubles stays exact.
const maxMicros = int64(1) << 52

// gcra converts a rate and burst to the script's emission interval and
// burst window in microseconds. ok is false when the limit admits nothing.
// The semantics are those of the in-memory limiter: from a fresh state
// exactly burst events are admitted at once, then one every 1/r.
func gcra(r rate.Limit, burst int) (interval, window int64, ok bool) {
	if !(r > 0) || burst < 1 {
		return 0, 0, false
	}
	interval = maxMicros
	if iv := math.Round(1e6 / float64(r)); iv < float64(maxMicros) {
		interval = max(int64(iv), 1)
	}
	window = maxMicros
	if int64(burst) <= maxMicros/interval {
		window = int64(burst) * interval
	}
	return interval, window, true
}

// Allow takes one event from the token bucket named key, refilled at r
// per second up to burst, in one script: a GCRA whose state is one key
// holding the theoretical arrival time in server microseconds, expiring
// when the bucket would be full again. now is ignored: the script uses the
// Redis server's clock, so instances with skewed clocks agree. When Allow
// refuses, retryAfter is the exact time until the next event would be
// admitted. r = rate.Inf admits everything without a round trip; r <= 0
// or burst < 1 refuses everything (retryAfter is the largest Duration).
// An error (ErrUnavailable when Redis cannot be reached) means the Store
// could not decide.
func (s *Store) Allow(ctx context.Context, key string, r rate.Limit, burst int, now time.Time) (ok bool, retryAfter time.Duration, err error) {
	if err := s.checkOpen(); err != nil {
		return false, 0, err
	}
	if r == rate.Inf {
		return true, 0, nil
	}
	iv, win, ok := gcra(r, burst)
	if !ok {
		return false, never, nil
	}
	code, val, err := s.gate(ctx, "allow", s.keys.rate(key), iv, win, nil, "")
	if err != nil {
		return false, 0, err
	}
	if code == gateRate {
		return false, time.Duration(val) * time.Microsecond, nil
	}
	return true, 0, nil
}

// Acquire takes one slot in each of slots, all or none, in one script.
// Each pool is a sorted set of leases scored by their expiry: a slot is a
// lease that this Store renews every lease TTL/3 until it is released, so
// the slots of an instance that crashed (or of a Store closed without
// releasing) free themselves within the lease TTL. When a pool is full
// Acquire returns a *wssec.QuotaError naming it and takes nothing.
//
// The returned release removes the lease from every pool under the
// Store's timeout; only its first call counts, and it is safe to call
// from any goroutine, even after Close. When the removal fails (Redis
// down) the lease, no longer renewed, expires after the lease TTL.
func (s *Store) Acquire(ctx context.Context, slots []wssec.Slot) (release func(), err error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	return s.acquire(ctx, "acquire", "", 0, 0, slots)
}

// AllowAcquire is Allow and then, if the rate admits the event, Acquire,
// decided by one script in one round trip. A rate refusal is a
// *wssec.RateError and takes no slot; a full pool is a *wssec.QuotaError
// (the rate event was then charged, as with Allow followed by Acquire).
// now is ignored, as in Allow.
func (s *Store) AllowAcquire(ctx context.Context, key string, r rate.Limit, burst int, now time.Time, slots []wssec.Slot) (release func(), err error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if r == rate.Inf {
		return s.acquire(ctx, "allow-acquire", "", 0, 0, slots)
	}
	iv, win, ok := gcra(r, burst)
	if !ok {
		return nil, &wssec.RateError{RetryAfter: never}
	}
	return s.acquire(ctx, "allow-acquire", s.keys.rate(key), iv, win, slots)
}

// The gate script's answers.
const (
	gateOK    = 0
	gateRate  = 1
	gateQuota = 2
)

// gate runs the gate script: the GCRA on rateKey (when not empty) and then
// the quota check on slots under lease id. It returns the script's code
// and value (the wait in µs, or the 1-based index of the full pool).
func (s *Store) gate(ctx context.Context, op, rateKey string, iv, win int64, slots []wssec.Slot, id string) (code, val int64, err error) {
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	keys := make([]string, 0, 1+len(slots))
	args := make([]any, 0, 5+len(slots))
	hasRate := 0
	if rateKey != "" {
		keys = append(keys, rateKey)
		hasRate = 1
	}
	args = append(args, hasRate, iv, win, ms(s.cfg.leaseTTL), id)
	for _, sl := range slots {
		keys = append(keys, s.keys.pool(sl.Key))
		args = append(args, sl.Max)
	}
	res, err := s.run(octx, s.sc.gate, keys, args...).Slice()
	if err != nil {
		return 0, 0, wrap(ctx, op, err)
	}
	if len(res) != 2 {
		return 0, 0, fail(op, fmt.Errorf("unexpected reply of %d elements", len(res)))
	}
	if code, err = toInt64(res[0]); err == nil {
		val, err = toInt64(res[1])
	}
	if err != nil {
		return 0, 0, fail(op, err)
	}
	if code == gateQuota && (val < 1 || val > int64(len(slots))) {
		return 0, 0, fail(op, fmt.Errorf("unexpected pool index %d", val))
	}
	return code, val, nil
}

// lease is one held set of slots: member members[i] of pool keys[i].
type lease struct {
	keys    []string
	members []string
}

// acquire runs the gate and, when it admits, registers the lease for
// renewal and returns its release.
func (s *Store) acquire(ctx context.Context, op, rateKey string, iv, win int64, slots []wssec.Slot) (func(), error) {
	if len(slots) == 0 && rateKey == "" {
		return func() {}, nil
	}
	n := s.leaseSeq.Add(1)
	id := s.instance + ":" + strconv.FormatUint(n, 10)
	code, val, err := s.gate(ctx, op, rateKey, iv, win, slots, id)
	if err != nil {
		return nil, err
	}
	switch code {
	case gateRate:
		return nil, &wssec.RateError{RetryAfter: time.Duration(val) * time.Microsecond}
	case gateQuota:
		return nil, &wssec.QuotaError{Slot: slots[val-1]}
	}
	if len(slots) == 0 {
		return func() {}, nil
	}
	l := &lease{keys: make([]string, len(slots)), members: make([]string, len(slots))}
	for i, sl := range slots {
		l.keys[i] = s.keys.pool(sl.Key)
		l.members[i] = id + "/" + strconv.Itoa(i+1)
	}
	release := s.releaser(n, l)
	if err := s.hold(n, l); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// hold registers a lease for renewal, starting the renewer with the
// first one.
func (s *Store) hold(n uint64, l *lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.leases[n] = l
	if !s.renewing {
		s.renewing = true
		s.wg.Add(1)
		go s.renewLoop()
	}
	return nil
}

// releaser returns the release function of lease n.
func (s *Store) releaser(n uint64, l *lease) func() {
	var done atomic.Bool
	return func() {
		if !done.CompareAndSwap(false, true) {
			return
		}
		s.mu.Lock()
		delete(s.leases, n)
		s.mu.Unlock()
		// Wait out a renewal batch that was chosen before the lease left
		// the list: it would re-add the member after the removal below.
		s.renewMu.Lock()
		s.renewMu.Unlock() //nolint:staticcheck // an intentionally empty critical section
		args := make([]any, len(l.members))
		for i, m := range l.members {
			args[i] = m
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
		defer cancel()
		_ = s.run(ctx, s.sc.release, l.keys, args...).Err()
	}
}

// renewBatch is how many leases one renewal script re-scores.
const renewBatch = 500

// renewLoop re-scores every held lease every lease TTL/3 until Close. A
// failed batch is tried again at the next tick.
func (s *Store) renewLoop() {
	defer s.wg.Done()
	t := time.NewTicker(max(s.cfg.leaseTTL/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.renewAll()
		}
	}
}

// renewAll renews the leases held now, renewBatch at a time.
func (s *Store) renewAll() {
	s.mu.Lock()
	ids := make([]uint64, 0, len(s.leases))
	for n := range s.leases {
		ids = append(ids, n)
	}
	s.mu.Unlock()
	for len(ids) > 0 && s.ctx.Err() == nil {
		k := min(len(ids), renewBatch)
		s.renew(ids[:k])
		ids = ids[k:]
	}
}

// renew re-scores the leases among ids that are still held.
func (s *Store) renew(ids []uint64) {
	s.renewMu.Lock()
	defer s.renewMu.Unlock()
	var keys []string
	index := make(map[string]int)
	args := []any{ms(s.cfg.leaseTTL)}
	s.mu.Lock()
	for _, n := range ids {
		l, ok := s.leases[n]
		if !ok {
			continue
		}
		for i, k := range l.keys {
			j, ok := index[k]
			if !ok {
				keys = append(keys, k)
				j = len(keys)
				index[k] = j
			}
			args = append(args, j, l.members[i])
		}
	}
	s.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	ctx, cancel := s.opCtx(s.ctx)
	defer cancel()
	_ = s.run(ctx, s.sc.renew, keys, args...).Err()
}
