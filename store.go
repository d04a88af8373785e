package wssec

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Store holds the state that must be shared when several instances serve
// one service: handshake rate state and connection quotas. A SharedStore
// also holds revocations, bans, the replay cache and tickets. The default
// keeps all of it in bounded memory inside the Guard; a shared Store (see
// the redisstore package) makes every instance enforce one limit.
//
// An application only hands a Store to WithStore. SharedStore, Slot,
// QuotaError, RateError, Revocation and SessionNotice are the contract a
// Store implementation (redisstore's, or your own) fulfils; nothing else
// needs them.
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

// SessionNotice (for SharedStore implementations, which carry it between
// instances) asks every instance to close some of its live sockets
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

// RateError reports a rate refusal by a Store, and when to retry: a
// Store implementation returns it from SharedStore.AllowAcquire.
type RateError struct{ RetryAfter time.Duration }

func (e *RateError) Error() string {
	return fmt.Sprintf("wssec: rate limited (retry after %s)", e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrRateLimited) true.
func (e *RateError) Unwrap() error { return ErrRateLimited }

// Slot names one connection pool and its size, as the Guard asks a Store
// implementation to take it (Acquire, AllowAcquire).
type Slot struct {
	Key string // "ip:<addr>", "sub:<subject>" or "total"
	Max int
}

// QuotaError reports which pool was full: a Store implementation returns
// it from Acquire and AllowAcquire.
type QuotaError struct{ Slot Slot }

func (e *QuotaError) Error() string {
	return fmt.Sprintf("wssec: connection pool %q full (max %d)", e.Slot.Key, e.Slot.Max)
}

// Unwrap makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

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
		g.emit(ctx, Event{Kind: EventRevocationsFull, Reason: "store_full", Detail: "refused (fail closed): " + err.Error(), RemoteIP: ev.RemoteIP, Subject: ev.Subject, Err: err})
		return
	}
	detail := "decided with this instance's own limits: "
	switch check {
	case storeCheckRevocation, storeCheckReplay, storeCheckTicket:
		detail = "refused (fail closed): "
	}
	g.emit(ctx, Event{Kind: EventStoreUnavailable, Reason: check, Detail: detail + err.Error(), RemoteIP: ev.RemoteIP, Subject: ev.Subject, Err: err})
}

// storeRefusal answers a handshake the store could not decide and that
// must not go through unchecked.
func storeRefusal(err error) *refusal {
	return refuse(503, "store_error", "service unavailable", ErrStoreUnavailable, err)
}
