package redisstore

import (
	"sync"
	"time"

	"github.com/wssec/wssec"
)

// mirror is the local copy of the live revocations and bans, kept current
// by the notices feed so that Revoked and Banned need no round trip. It
// answers only while up (subscribed and loaded). Each of its two halves
// (revocations, bans) holds at most capacity live entries; a half that
// had to refuse an entry reports itself full, and so fails, until a
// reload fits again: it never forgets a revocation silently.
type mirror struct {
	capacity int

	mu       sync.Mutex // guards the fields below
	up       bool       // the feed is subscribed and the snapshot loaded
	revFull  bool       // a revocation was refused for lack of room
	banFull  bool       // a ban was refused for lack of room
	subjects map[string]subjectRev
	tokens   map[string]time.Time // expiry by token id
	bans     map[string]time.Time // expiry by banned key
}

// subjectRev is a subject revocation: tokens issued at or before
// issuedBefore (Unix µs) are revoked until expires.
type subjectRev struct {
	issuedBefore int64
	expires      time.Time
}

func newMirror(capacity int) *mirror {
	return &mirror{
		capacity: capacity,
		subjects: make(map[string]subjectRev),
		tokens:   make(map[string]time.Time),
		bans:     make(map[string]time.Time),
	}
}

// setUp marks the feed up or down.
func (m *mirror) setUp(up bool) {
	m.mu.Lock()
	m.up = up
	m.mu.Unlock()
}

// full reports whether either half has refused an entry.
func (m *mirror) full() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.revFull || m.banFull
}

// replace loads a snapshot and marks the mirror up.
func (m *mirror) replace(revs, bans []notice, revOverflow, banOverflow bool, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subjects = make(map[string]subjectRev, len(revs))
	m.tokens = make(map[string]time.Time)
	m.bans = make(map[string]time.Time, len(bans))
	m.revFull, m.banFull = revOverflow, banOverflow
	for _, n := range revs {
		m.applyLocked(n, now)
	}
	for _, n := range bans {
		m.applyLocked(n, now)
	}
	m.up = true
}

// apply merges one notice.
func (m *mirror) apply(n notice, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applyLocked(n, now)
}

// applyLocked merges n as Redis does: the expiry only grows, and so does a
// live subject revocation's IssuedBefore.
func (m *mirror) applyLocked(n notice, now time.Time) {
	exp := now.Add(n.ttl())
	switch n.Kind {
	case kindSubject:
		cur, ok := m.subjects[n.ID]
		switch {
		case ok && cur.expires.After(now):
			cur.issuedBefore = max(cur.issuedBefore, *n.IB)
			cur.expires = later(cur.expires, exp)
		case ok || m.roomLocked(false, now):
			cur = subjectRev{issuedBefore: *n.IB, expires: exp}
		default:
			m.revFull = true
			return
		}
		m.subjects[n.ID] = cur
	case kindToken:
		cur, ok := m.tokens[n.ID]
		if !ok && !m.roomLocked(false, now) {
			m.revFull = true
			return
		}
		m.tokens[n.ID] = later(cur, exp)
	case kindBan:
		cur, ok := m.bans[n.ID]
		if !ok && !m.roomLocked(true, now) {
			m.banFull = true
			return
		}
		m.bans[n.ID] = later(cur, exp)
	}
}

// roomLocked reports whether one more revocation (or ban) fits, dropping
// expired entries of that half first when it is full.
func (m *mirror) roomLocked(ban bool, now time.Time) bool {
	if ban {
		if len(m.bans) < m.capacity {
			return true
		}
		sweep(m.bans, now)
		return len(m.bans) < m.capacity
	}
	if len(m.subjects)+len(m.tokens) < m.capacity {
		return true
	}
	for k, v := range m.subjects {
		if !v.expires.After(now) {
			delete(m.subjects, k)
		}
	}
	sweep(m.tokens, now)
	return len(m.subjects)+len(m.tokens) < m.capacity
}

// sweep deletes the expired entries of an expiry map.
func sweep(entries map[string]time.Time, now time.Time) {
	for k, exp := range entries {
		if !exp.After(now) {
			delete(entries, k)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// revoked answers Revoked from the mirror.
func (m *mirror) revoked(subject, tokenID string, issuedAt, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.up:
		return false, feedDown("revoked")
	case m.revFull:
		return false, mirrorFull("revoked")
	}
	if tokenID != "" {
		if exp, ok := m.tokens[tokenID]; ok && exp.After(now) &&
			(wssec.Revocation{TokenID: tokenID}).Matches(subject, tokenID, issuedAt) {
			return true, nil
		}
	}
	if e, ok := m.subjects[subject]; ok && e.expires.After(now) {
		r := wssec.Revocation{Subject: subject, IssuedBefore: time.UnixMicro(e.issuedBefore)}
		return r.Matches(subject, tokenID, issuedAt), nil
	}
	return false, nil
}

// banned answers Banned from the mirror.
func (m *mirror) banned(key string, now time.Time) (time.Duration, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !m.up:
		return 0, false, feedDown("banned")
	case m.banFull:
		return 0, false, mirrorFull("banned")
	}
	if exp, ok := m.bans[key]; ok && exp.After(now) {
		return exp.Sub(now), true, nil
	}
	return 0, false, nil
}
