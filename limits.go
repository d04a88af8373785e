package wssec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wssec/wssec/internal/limiter"
	"golang.org/x/time/rate"
)

// Store holds the state that must be shared when several instances serve
// one service: handshake rate state and connection quotas. A SharedStore
// also holds revocations, bans, the replay cache and tickets. The default
// keeps all of it in bounded memory inside the Guard; a shared Store (see
// the redisstore package) makes every instance enforce one limit.
//
// Implementations must be safe for concurrent use. An error from Allow or
// Acquire (other than a *QuotaError) means the Store could not decide; the
// Guard then decides with its own in-memory limits and emits an
// EventStoreUnavailable, so an outage of a shared store degrades to
// per-instance limits instead of refusing every client.
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

// SharedStore is a Store that also holds what several instances must agree
// on for sessions to stay honest: revocations (with a feed that tells every
// instance, so each closes its own sockets), bans, the single-use token
// cache and one-time tickets. When the Store given to WithStore is a
// SharedStore (the redisstore package's is), the Guard keeps that state
// there; with a plain Store it stays in the instance.
//
// Implementations must be safe for concurrent use. Durations are relative
// to the store's own clock, so instances need not agree on the time.
//
// What an error means (the Guard's failure policy): an error from
// Revoked, Once, PutTicket or TakeTicket refuses the handshake or the
// re-authentication with 503 (fail closed: a credential is never accepted
// unchecked); an error from Allow, Acquire, AllowAcquire, Ban or Banned
// makes the Guard decide with its own in-memory limits and bans instead
// (the service stays up, each instance enforcing its own limits). Every
// such failure is an EventStoreUnavailable; the next call tries the
// store again, so recovery needs no restart.
type SharedStore interface {
	Store
	// AllowAcquire is Allow and then, if the rate admits the event,
	// Acquire, as one decision: a remote store makes it in one round
	// trip. A rate refusal is a *RateError and takes no slot; a full pool
	// is a *QuotaError.
	AllowAcquire(ctx context.Context, key string, r rate.Limit, burst int, now time.Time, slots []Slot) (release func(), err error)
	// Revoke records rev for rev.TTL and announces it through Subscribe
	// to every instance sharing the store, this one included.
	Revoke(ctx context.Context, rev Revocation) error
	// Revoked reports whether a token of subject, with id tokenID (may be
	// empty) and issued at issuedAt (zero when unknown), is revoked. The
	// Guard passes the token's iat less its clock skew, so that a token
	// stamped by an issuer whose clock runs ahead counts as issued before
	// a revocation made at the same moment.
	Revoked(ctx context.Context, subject, tokenID string, issuedAt time.Time) (bool, error)
	// Ban bans key ("ip:<addr>" or "sub:<subject>") for ttl.
	Ban(ctx context.Context, key string, ttl time.Duration) error
	// Banned reports whether key is banned and for how long yet.
	Banned(ctx context.Context, key string) (remaining time.Duration, banned bool, err error)
	// Once records key for ttl and reports whether it was absent: true
	// the first time, false on every later call until ttl has passed.
	Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
	// PutTicket stores a one-time ticket's data for ttl. id is the
	// ticket itself: implementations must not log it.
	PutTicket(ctx context.Context, id string, data []byte, ttl time.Duration) error
	// TakeTicket returns a ticket's data and deletes it, atomically, so a
	// ticket is redeemed at most once; ok is false when it is unknown,
	// used or expired.
	TakeTicket(ctx context.Context, id string) (data []byte, ok bool, err error)
	// Subscribe calls fn with every revocation any instance records, and
	// with the zero Revocation after the feed was interrupted (some may
	// have been missed: re-check every live socket), until ctx is done.
	// fn is called from one goroutine and must not block for long.
	// Subscribe returns once the feed is set up; the goroutine it starts
	// ends when ctx is done.
	Subscribe(ctx context.Context, fn func(Revocation)) error
	// Announce tells every instance sharing the store, this one
	// included, to close the live sockets n names: it reaches them
	// through SubscribeSessions. It keeps nothing: an instance whose
	// feed is down when n is sent does not see it.
	Announce(ctx context.Context, n SessionNotice) error
	// SubscribeSessions calls fn with every notice announced by any
	// instance and with one for every ban recorded by Ban (naming the
	// banned subject or client IP, Reason "banned"), until ctx is done,
	// so that each instance closes its own sockets of that party. fn is
	// called from one goroutine and must not block for long. It returns
	// once the feed is set up, like Subscribe.
	SubscribeSessions(ctx context.Context, fn func(SessionNotice)) error
}

// SessionNotice asks every instance to close some of its live sockets
// without revoking a token: those of Subject, or those whose client IP
// (an IPv6 address by its /64, as the per-client limits key it) is IP,
// with close code 1008 and Reason. Guard.Disconnect and bans send one.
//
// With Oldest set, only the oldest socket of Subject on each instance is
// closed (the per-subject quota's WithEvictOldest, when the subject's
// sockets are on other instances).
type SessionNotice struct {
	Subject string
	IP      netip.Addr
	Reason  string
	Oldest  bool
}

// Revocation is a revocation recorded in a SharedStore: either every
// token of Subject issued at or before IssuedBefore (tokens without an
// issue time included), or the one token whose id is TokenID (then
// IssuedBefore, when set, is only when it was revoked). TTL is how long
// it must be kept: until the last token it covers has expired (for a
// subject, the maximum token lifetime plus twice the clock skew; for a
// token id, until its exp plus the skew).
type Revocation struct {
	Subject      string
	IssuedBefore time.Time
	TokenID      string
	TTL          time.Duration
}

// IsZero reports whether r is the zero Revocation, the feed's "re-check
// everything" signal.
func (r Revocation) IsZero() bool { return r.Subject == "" && r.TokenID == "" }

// Matches reports whether r revokes a token of subject, with id tokenID,
// issued at issuedAt (zero when unknown).
func (r Revocation) Matches(subject, tokenID string, issuedAt time.Time) bool {
	switch {
	case r.TokenID != "":
		return tokenID == r.TokenID
	case r.Subject != "":
		return subject == r.Subject && (issuedAt.IsZero() || !issuedAt.After(r.IssuedBefore))
	}
	return false
}

// RateError reports a rate refusal by a Store, and when to retry.
type RateError struct{ RetryAfter time.Duration }

func (e *RateError) Error() string {
	return fmt.Sprintf("wssec: rate limited (retry after %s)", e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrRateLimited) true.
func (e *RateError) Unwrap() error { return ErrRateLimited }

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

// ipSlots are the pools a client takes before its token is read.
func (l *limits) ipSlots(key netip.Addr) []Slot {
	return []Slot{{Key: "ip:" + key.String(), Max: l.maxIP}, {Key: "total", Max: l.maxTot}}
}

// admitClient applies the handshake rate per client and takes a per-IP and
// a total slot, before any signature is checked. With a SharedStore both
// are one decision of the store (one round trip). When the store cannot
// decide, the instance's own limits decide, and an event says so.
func (g *Guard) admitClient(ctx context.Context, key netip.Addr, ev Event) (*lease, *refusal) {
	l, now := g.lim, g.now()
	useStore := l.store != nil
	if ss, ok := l.store.(SharedStore); ok {
		rel, err := ss.AllowAcquire(ctx, "hs:"+key.String(), l.hsRate, l.hsBurst, now, l.ipSlots(key))
		var re *RateError
		var qe *QuotaError
		switch {
		case err == nil:
			return &lease{l: l, storeRel: rel}, nil
		case errors.As(err, &re):
			if ref := g.enforce(ctx, GuardHandshakeRate, rateRefusal(re.RetryAfter), ev); ref != nil {
				return nil, ref
			}
			return g.acquireClient(ctx, key, true, ev) // report-only: the slots alone
		case errors.As(err, &qe):
			return g.quotaRefused(ctx, quotaRefusal(err), ev)
		}
		g.storeFailed(ctx, storeCheckRate, err, ev)
		useStore = false
	}
	ok, wait, err := l.allowHandshake(ctx, key, now, useStore)
	if err != nil {
		g.storeFailed(ctx, storeCheckRate, err, ev)
		useStore = false
		ok, wait, _ = l.allowHandshake(ctx, key, now, false)
	}
	if !ok {
		if ref := g.enforce(ctx, GuardHandshakeRate, rateRefusal(wait), ev); ref != nil {
			return nil, ref
		}
	}
	return g.acquireClient(ctx, key, useStore, ev)
}

// acquireClient takes the per-IP and total slots.
func (g *Guard) acquireClient(ctx context.Context, key netip.Addr, useStore bool, ev Event) (*lease, *refusal) {
	ls, ref, err := g.lim.acquireIP(ctx, key, useStore)
	if err != nil {
		g.storeFailed(ctx, storeCheckQuota, err, ev)
		ls, ref, _ = g.lim.acquireIP(ctx, key, false)
	}
	if ref != nil {
		return g.quotaRefused(ctx, ref, ev)
	}
	return ls, nil
}

// acquireSubject adds the per-subject slot to ls, after the token.
func (g *Guard) acquireSubject(ctx context.Context, ls *lease, sub string, ev Event) *refusal {
	useStore := g.lim.store != nil
	ref, err := ls.acquireSubject(ctx, sub, useStore)
	if err == nil && ref != nil && g.cfg.evictOldest {
		ref, err = g.acquireEvicting(ctx, ls, sub, ref, useStore)
	}
	if err != nil {
		g.storeFailed(ctx, storeCheckQuota, err, ev)
		ref, _ = ls.acquireSubject(ctx, sub, false)
		if ref != nil && g.cfg.evictOldest {
			ref, _ = g.acquireEvicting(ctx, ls, sub, ref, false)
		}
	}
	if ref != nil {
		ref.retryAfter = 1
		return g.enforce(ctx, GuardQuota, ref, ev)
	}
	return nil
}

// quotaRefused answers a full pool, or lets the client through holding no
// slot when the quota guard is report-only.
func (g *Guard) quotaRefused(ctx context.Context, ref *refusal, ev Event) (*lease, *refusal) {
	ref.retryAfter = 1
	if ref = g.enforce(ctx, GuardQuota, ref, ev); ref != nil {
		return nil, ref
	}
	return &lease{l: g.lim}, nil
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

// counts reports the live counters, for tests and metrics.
func (l *limits) counts() (ips, subs, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.perIP), len(l.perSub), l.total
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

// Checks a Store decides, as named in EventStoreUnavailable.
const (
	storeCheckRate       = "rate"
	storeCheckQuota      = "quota"
	storeCheckBan        = "ban"
	storeCheckRevocation = "revocation"
	storeCheckReplay     = "replay"
	storeCheckTicket     = "ticket"
	numStoreChecks       = 6
)

var storeChecks = [numStoreChecks]string{storeCheckRate, storeCheckQuota, storeCheckBan, storeCheckRevocation, storeCheckReplay, storeCheckTicket}

// storeFailed records that the store could not decide check: an
// EventStoreUnavailable, at most one a second per check, so an outage
// (or an attacker during one) cannot flood the log.
func (g *Guard) storeFailed(ctx context.Context, check string, err error, ev Event) {
	i := 0
	for i < numStoreChecks-1 && storeChecks[i] != check {
		i++
	}
	now := g.now().UnixNano()
	last := g.storeWarned[i].Load()
	if now-last < int64(time.Second) && now >= last || !g.storeWarned[i].CompareAndSwap(last, now) {
		return
	}
	if errors.Is(err, ErrRevocationsFull) {
		g.emit(ctx, Event{Kind: EventRevocationsFull, Reason: "store_full", Detail: "refused (fail closed): " + err.Error(), RemoteIP: ev.RemoteIP, Subject: ev.Subject})
		return
	}
	detail := "decided with this instance's own limits: "
	switch check {
	case storeCheckRevocation, storeCheckReplay, storeCheckTicket:
		detail = "refused (fail closed): "
	}
	g.emit(ctx, Event{Kind: EventStoreUnavailable, Reason: check, Detail: detail + err.Error(), RemoteIP: ev.RemoteIP, Subject: ev.Subject})
}
