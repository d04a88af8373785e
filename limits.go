package wssec

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wssec/wssec/internal/limiter"
	"golang.org/x/time/rate"
)

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

// clientKey is the key for per-client limits: IPv4 as is, IPv6 by /64.
func clientKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
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

// ipSlots are the pools a client takes before its token is read.
func (l *limits) ipSlots(key netip.Addr) []Slot {
	return []Slot{{Key: "ip:" + key.String(), Max: l.maxIP}, {Key: "total", Max: l.maxTot}}
}

func rateRefusal(wait time.Duration) *refusal {
	ref := refuse(429, "handshake_rate", "too many handshakes; retry later", ErrRateLimited, nil)
	ref.retryAfter = max(1, int(math.Ceil(wait.Seconds())))
	return ref
}

// acquireIP takes a per-IP slot and a total slot, in the store or in the
// instance. A non-nil error means the store could not decide.
func (l *limits) acquireIP(ctx context.Context, ip netip.Addr, useStore bool) (*lease, *refusal, error) {
	if useStore {
		rel, err := l.store.Acquire(ctx, l.ipSlots(ip))
		if err != nil {
			if !errors.As(err, new(*QuotaError)) {
				return nil, nil, err
			}
			return nil, quotaRefusal(err), nil
		}
		return &lease{l: l, storeRel: rel}, nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if int(l.perIP[ip]) >= l.maxIP {
		return nil, refuse(429, "quota_ip", "too many connections from this address", ErrQuotaExceeded, nil), nil
	}
	if l.total >= l.maxTot {
		return nil, refuse(503, "capacity", "server at capacity", ErrCapacity, nil), nil
	}
	l.perIP[ip]++
	l.total++
	return &lease{l: l, ip: ip, hasIP: true}, nil, nil
}

// acquireSubject adds a per-subject slot to the lease, in the store or in
// the instance. A non-nil error means the store could not decide.
func (ls *lease) acquireSubject(ctx context.Context, sub string, useStore bool) (*refusal, error) {
	l := ls.l
	if useStore {
		rel, err := l.store.Acquire(ctx, []Slot{{Key: "sub:" + sub, Max: l.maxSub}})
		if err != nil {
			if !errors.As(err, new(*QuotaError)) {
				return nil, err
			}
			return quotaRefusal(err), nil
		}
		ls.subRel = rel
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if int(l.perSub[sub]) >= l.maxSub {
		return refuse(429, "quota_subject", "too many connections for this subject", ErrQuotaExceeded, nil), nil
	}
	l.perSub[sub]++
	ls.sub, ls.hasSub = sub, true
	return nil, nil
}

func quotaRefusal(err error) *refusal {
	var qe *QuotaError
	errors.As(err, &qe)
	switch {
	case qe != nil && qe.Slot.Key == "total":
		return refuse(503, "capacity", "server at capacity", ErrCapacity, nil)
	case qe != nil && strings.HasPrefix(qe.Slot.Key, "sub:"):
		return refuse(429, "quota_subject", "too many connections for this subject", ErrQuotaExceeded, nil)
	default:
		return refuse(429, "quota_ip", "too many connections from this address", ErrQuotaExceeded, nil)
	}
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

// allowHandshake applies the per-IP handshake rate, in the store or in
// the instance. A non-nil error means the store could not decide.
func (l *limits) allowHandshake(ctx context.Context, key netip.Addr, now time.Time, useStore bool) (bool, time.Duration, error) {
	if useStore {
		return l.store.Allow(ctx, "hs:"+key.String(), l.hsRate, l.hsBurst, now)
	}
	ok, wait := l.handshakes.Allow(limiter.KeyFromAddr(key), now.UnixNano())
	return ok, wait, nil
}
