package wssec

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wssec/wssec/internal/limiter"
	"golang.org/x/time/rate"
)

// Store holds the state that must be shared when several instances serve
// one service: handshake rate state and connection quotas (and, as they
// land, revocations, replay caches and tickets). The default keeps it in
// bounded memory inside the Guard; a shared Store (see the redisstore
// package) makes every instance enforce one limit.
//
// Implementations must be safe for concurrent use. An error from Allow or
// Acquire means the Store could not decide; the Guard then refuses the
// handshake (fails closed) and logs the error.
type Store interface {
	// Allow takes one event from the token bucket named key, refilled at r
	// per second up to burst. When it refuses, retryAfter says when the
	// next event would fit.
	Allow(ctx context.Context, key string, r rate.Limit, burst int, now time.Time) (ok bool, retryAfter time.Duration, err error)
	// Acquire takes one slot in each of slots, all or none. When a pool is
	// full it returns a *QuotaError. The returned release gives every slot
	// back; the Guard calls it exactly once.
	Acquire(ctx context.Context, slots []Slot) (release func(), err error)
}

// Slot names one connection pool and its size.
type Slot struct {
	Key string // "ip:<addr>", "sub:<subject>" or "total"
	Max int
}

// QuotaError reports which pool was full.
type QuotaError struct{ Slot Slot }

func (e *QuotaError) Error() string {
	return fmt.Sprintf("wssec: connection pool %q full (max %d)", e.Slot.Key, e.Slot.Max)
}

// Unwrap makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// limits is the Guard's local, bounded state for rates and quotas.
type limits struct {
	handshakes *limiter.Table // per client IP key
	msgRate    limiter.GCRA   // per connection, state lives in the Conn

	mu      sync.Mutex // guards the counters below
	perIP   map[netip.Addr]int32
	perSub  map[string]int32
	total   int
	maxIP   int
	maxSub  int
	maxTot  int
	store   Store
	hsRate  rate.Limit
	hsBurst int
}

func newLimits(c *config) (*limits, error) {
	hs := limiter.NewGCRA(float64(c.handshakeRate), c.handshakeBurst)
	t, err := limiter.NewTable(c.limiterCapacity, hs)
	if err != nil {
		return nil, err
	}
	return &limits{
		handshakes: t,
		msgRate:    limiter.NewGCRA(float64(c.messageRate), c.messageBurst),
		perIP:      make(map[netip.Addr]int32),
		perSub:     make(map[string]int32),
		maxIP:      c.maxPerIP,
		maxSub:     c.maxPerSubject,
		maxTot:     c.maxTotal,
		store:      c.store,
		hsRate:     c.handshakeRate,
		hsBurst:    c.handshakeBurst,
	}, nil
}

// lease is a set of held connection slots, released exactly once.
type lease struct {
	l        *limits
	ip       netip.Addr
	sub      string
	hasIP    bool // holds a per-IP and a total slot
	hasSub   bool
	released atomic.Bool
	storeRel func()
	subRel   func()
}

// acquireIP takes a per-IP slot and a total slot, before the token is read.
func (l *limits) acquireIP(ctx context.Context, ip netip.Addr) (*lease, *refusal) {
	if l.store != nil {
		rel, err := l.store.Acquire(ctx, []Slot{{Key: "ip:" + ip.String(), Max: l.maxIP}, {Key: "total", Max: l.maxTot}})
		if err != nil {
			return nil, quotaRefusal(err)
		}
		return &lease{l: l, storeRel: rel}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if int(l.perIP[ip]) >= l.maxIP {
		return nil, refuse(429, "quota_ip", "too many connections from this address", ErrQuotaExceeded, nil)
	}
	if l.total >= l.maxTot {
		return nil, refuse(503, "capacity", "server at capacity", ErrCapacity, nil)
	}
	l.perIP[ip]++
	l.total++
	return &lease{l: l, ip: ip, hasIP: true}, nil
}

// acquireSubject adds a per-subject slot to the lease, after the token.
func (ls *lease) acquireSubject(ctx context.Context, sub string) *refusal {
	l := ls.l
	if l.store != nil {
		rel, err := l.store.Acquire(ctx, []Slot{{Key: "sub:" + sub, Max: l.maxSub}})
		if err != nil {
			return quotaRefusal(err)
		}
		ls.subRel = rel
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if int(l.perSub[sub]) >= l.maxSub {
		return refuse(429, "quota_subject", "too many connections for this subject", ErrQuotaExceeded, nil)
	}
	l.perSub[sub]++
	ls.sub, ls.hasSub = sub, true
	return nil
}

func quotaRefusal(err error) *refusal {
	var qe *QuotaError
	if ok := asQuota(err, &qe); ok {
		switch {
		case qe.Slot.Key == "total":
			return refuse(503, "capacity", "server at capacity", ErrCapacity, nil)
		case len(qe.Slot.Key) > 4 && qe.Slot.Key[:4] == "sub:":
			return refuse(429, "quota_subject", "too many connections for this subject", ErrQuotaExceeded, nil)
		default:
			return refuse(429, "quota_ip", "too many connections from this address", ErrQuotaExceeded, nil)
		}
	}
	return refuse(503, "store_error", "service unavailable", ErrCapacity, err)
}

func asQuota(err error, target **QuotaError) bool {
	for err != nil {
		if q, ok := err.(*QuotaError); ok {
			*target = q
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// release gives every slot back; calls after the first do nothing.
func (ls *lease) release() {
	if ls == nil || !ls.released.CompareAndSwap(false, true) {
		return
	}
	if ls.storeRel != nil {
		ls.storeRel()
	}
	if ls.subRel != nil {
		ls.subRel()
	}
	l := ls.l
	if !ls.hasIP && !ls.hasSub {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls.hasIP {
		if n := l.perIP[ls.ip] - 1; n > 0 {
			l.perIP[ls.ip] = n
		} else {
			delete(l.perIP, ls.ip)
		}
		l.total--
	}
	if ls.hasSub {
		if n := l.perSub[ls.sub] - 1; n > 0 {
			l.perSub[ls.sub] = n
		} else {
			delete(l.perSub, ls.sub)
		}
	}
}

// counts reports the live counters, for tests and metrics.
func (l *limits) counts() (ips, subs, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.perIP), len(l.perSub), l.total
}

// allowHandshake applies the per-IP handshake rate.
func (l *limits) allowHandshake(ctx context.Context, key netip.Addr, now time.Time) (bool, time.Duration, error) {
	if l.store != nil {
		return l.store.Allow(ctx, "hs:"+key.String(), l.hsRate, l.hsBurst, now)
	}
	ok, wait := l.handshakes.Allow(limiter.KeyFromAddr(key), now.UnixNano())
	return ok, wait, nil
}
