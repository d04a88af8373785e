package wssec

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/wssec/wssec/internal/clientip"
	"github.com/wssec/wssec/internal/ttlcache"
)

// Tickets, revocation keys and the revocation check.
const (
	ticketParam             = "ticket"
	ticketBytes             = 16 // 128 bits
	ticketLen               = 22 // base64url of 16 bytes, unpadded
	revokeSubjectKeyPrefix  = "s:"
	revokeTokenIDKeyPrefix  = "j:"
	replayTokenIDKeyPrefix  = "r:"
	maxTokenIDLen           = 256
	revocationCheckInterval = time.Second
)

// sessions holds revocations, the replay cache and tickets.
type sessions struct {
	revoked *ttlcache.Cache[string, int64]    // subject → revoked-before (unix ns); jti → 0
	replay  *ttlcache.Cache[string, struct{}] // jti seen at a handshake
	tickets *ttlcache.Cache[string, ticket]
	// holdFor is how long a subject revocation must be kept: a token it
	// covers was issued (by the issuer's clock) at most one clock skew
	// after the revocation, lives at most the maximum lifetime, and is
	// accepted up to one clock skew past its exp.
	holdFor time.Duration

	// The floor stands in for revocations the full table could not hold:
	// while now < floorUntil, every token whose iat (less the clock skew)
	// is not after floorBefore, and every token without iat, is refused.
	// It never forgets a revocation; it refuses more than was revoked.
	floorMu     sync.Mutex // guards the two fields below
	floorBefore int64      // unix ns
	floorUntil  int64      // unix ns
}

type ticket struct {
	p  *Principal
	ip netip.Addr // zero unless bound
}

func newSessions(c *config) *sessions {
	s := &sessions{
		revoked: ttlcache.New[string, int64](c.revokeCapacity),
		tickets: ttlcache.New[string, ticket](c.ticketCapacity),
		holdFor: c.maxTokenLifetime + 2*c.clockSkew,
	}
	if c.singleUse {
		s.replay = ttlcache.New[string, struct{}](c.replayCapacity)
	}
	return s
}

// raiseFloor records a revocation the table could not hold: one that
// covers tokens issued up to before, kept until until. A floor that has
// lapsed is replaced; a live one only grows.
func (s *sessions) raiseFloor(before, until, now int64) {
	s.floorMu.Lock()
	defer s.floorMu.Unlock()
	if now >= s.floorUntil {
		s.floorBefore, s.floorUntil = before, until
		return
	}
	s.floorBefore = max(s.floorBefore, before)
	s.floorUntil = max(s.floorUntil, until)
}

// underFloor reports whether the floor refuses a token issued at iat
// (already less the clock skew; zero when unknown).
func (s *sessions) underFloor(iat time.Time, now int64) bool {
	s.floorMu.Lock()
	defer s.floorMu.Unlock()
	return now < s.floorUntil && (iat.IsZero() || iat.UnixNano() <= s.floorBefore)
}

// skewedIssuedAt is the earliest time p's token may have been issued by
// this Guard's clock: its iat less the clock skew the Guard allowed for
// it (zero when the token has no iat). Revocations compare with it, so a
// token stamped by an issuer whose clock runs ahead is not mistaken for
// one issued after a revocation.
func (g *Guard) skewedIssuedAt(p *Principal) time.Time {
	if p.IssuedAt.IsZero() {
		return time.Time{}
	}
	return p.IssuedAt.Add(-g.cfg.clockSkew)
}

// isRevoked reports whether p may not be admitted (at a handshake or a
// re-authentication) because its token id or its subject (for tokens
// issued before the revocation, less the clock skew) was revoked, in
// this instance or, with a SharedStore, by any instance, or because the
// full revocation table's floor covers it. An error means the store could
// not say.
func (g *Guard) isRevoked(ctx context.Context, p *Principal, now time.Time) (bool, error) {
	if p == nil || p.Subject == "" && p.ID == "" {
		return false, nil
	}
	if g.sess.underFloor(g.skewedIssuedAt(p), now.UnixNano()) {
		return true, nil
	}
	return g.revokedLive(ctx, p, now)
}

// revokedLive is isRevoked without the floor: the check of sockets that
// are already open, which the floor (a stand-in for admission) does not
// close.
func (g *Guard) revokedLive(ctx context.Context, p *Principal, now time.Time) (bool, error) {
	if p == nil || p.Subject == "" && p.ID == "" {
		return false, nil
	}
	n := now.UnixNano()
	iat := g.skewedIssuedAt(p)
	if p.ID != "" {
		if _, ok := g.sess.revoked.Get(revokeTokenIDKeyPrefix+p.ID, n); ok {
			return true, nil
		}
	}
	if p.Subject != "" {
		if before, ok := g.sess.revoked.Get(revokeSubjectKeyPrefix+p.Subject, n); ok {
			// A token without iat cannot prove it is newer: revoked.
			if iat.IsZero() || iat.UnixNano() <= before {
				return true, nil
			}
		}
	}
	if g.shared != nil {
		return g.shared.Revoked(ctx, p.Subject, p.ID, iat)
	}
	return false, nil
}

// Revoke revokes every token of subject issued up to now and closes the
// subject's live sockets with 1008 "token revoked". Since an issuer's
// clock may run ahead of this one by up to the clock skew, a token whose
// iat is up to WithClockSkew after now is revoked too: a new token for
// the subject is accepted once its iat is more than the skew after the
// revocation. The revocation is kept until every token it covers has
// expired (WithMaxTokenLifetime plus twice the skew). With a SharedStore
// it reaches every instance, each of which closes its own sockets of the
// subject. It returns an error if the revocation could not be recorded in
// the store (it then still holds in this instance).
func (g *Guard) Revoke(ctx context.Context, subject string) error {
	return g.RevokeIssuedBefore(ctx, subject, g.now())
}

// RevokeIssuedBefore revokes the tokens of subject whose iat is not after
// t plus the clock skew (and tokens without iat), and closes the
// subject's live sockets that hold such a token, on every instance with a
// SharedStore. It is kept until every token it covers has expired.
func (g *Guard) RevokeIssuedBefore(ctx context.Context, subject string, t time.Time) error {
	if subject == "" || len(subject) > maxSubjectLen {
		return fmt.Errorf("wssec: revoke: invalid subject")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := g.now()
	key := revokeSubjectKeyPrefix + subject
	before := t.UnixNano()
	if prev, ok := g.sess.revoked.Get(key, now.UnixNano()); ok && prev > before {
		before = prev
	}
	// Covered tokens were issued up to before (plus the skew): they
	// expire, at the latest, holdFor after it (or after now).
	until := time.Unix(0, max(before, now.UnixNano())).Add(g.sess.holdFor)
	rev := Revocation{Subject: subject, IssuedBefore: time.Unix(0, before), TTL: until.Sub(now)}
	// The table may keep a longer hold of an earlier revocation: a
	// replaced entry's hold is at most holdFor past its own before, which
	// is not after this one's.
	g.sess.revoked.Delete(key)
	err := g.recordRevocation(ctx, key, before, before, until, now)
	if g.shared != nil {
		if serr := g.shared.Revoke(ctx, rev); serr != nil {
			err = errors.Join(err, fmt.Errorf("wssec: revoke: not shared with other instances: %w", serr))
		}
	}
	g.emit(ctx, Event{Kind: EventRevoked, Reason: "subject_revoked", Subject: subject})
	g.closeRevoked(ctx, now, rev)
	return err
}

// recordRevocation adds a revocation to the table; when the table is
// full of live revocations it raises the floor instead (covering tokens
// issued up to floorBefore), and says so.
func (g *Guard) recordRevocation(ctx context.Context, key string, v, floorBefore int64, until, now time.Time) error {
	err := g.sess.revoked.Add(key, v, until.UnixNano(), now.UnixNano())
	switch {
	case err == nil, errors.Is(err, ttlcache.ErrExists):
		return nil
	case errors.Is(err, ttlcache.ErrFull):
		g.sess.raiseFloor(floorBefore, until.UnixNano(), now.UnixNano())
		g.emit(ctx, Event{Kind: EventRevocationsFull, Reason: "table_full",
			Detail: fmt.Sprintf("revocation table full (%d): every token issued before %s is refused until %s", g.sess.revoked.Cap(), time.Unix(0, floorBefore).UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))})
		return nil
	}
	return fmt.Errorf("wssec: revoke: %w", err)
}

// RevokeToken revokes one token by its jti and closes the sockets that
// hold it, on every instance with a SharedStore. The revocation is kept
// until exp plus the clock skew, however far away exp is; pass the
// token's exp. When exp is zero it is kept for the longest lifetime a
// token with iat may have (WithMaxTokenLifetime plus twice the skew).
func (g *Guard) RevokeToken(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" || len(jti) > maxTokenIDLen {
		return fmt.Errorf("wssec: revoke: invalid token id")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := g.now()
	until := now.Add(g.sess.holdFor)
	if !exp.IsZero() {
		until = exp.Add(g.cfg.clockSkew)
	}
	if !until.After(now) { // already expired: nothing can use it
		until = now.Add(time.Millisecond)
	}
	// The token was issued before now: if the table is full, the floor
	// refuses every token issued up to now until this one expires.
	err := g.recordRevocation(ctx, revokeTokenIDKeyPrefix+jti, 0, now.UnixNano(), until, now)
	rev := Revocation{TokenID: jti, IssuedBefore: now, TTL: until.Sub(now)}
	if g.shared != nil {
		if serr := g.shared.Revoke(ctx, rev); serr != nil {
			err = errors.Join(err, fmt.Errorf("wssec: revoke: not shared with other instances: %w", serr))
		}
	}
	g.emit(ctx, Event{Kind: EventRevoked, Reason: "token_revoked"})
	g.closeRevoked(ctx, now, rev)
	return err
}

// closeRevoked closes every live socket that rev names or whose principal
// is now revoked (the zero rev: re-check every socket). A socket whose
// revocation the store cannot answer for stays open: the store's feed
// re-checks every socket when it is back.
func (g *Guard) closeRevoked(ctx context.Context, now time.Time, rev Revocation) {
	// The checks run outside the lock: a store may answer slowly.
	for _, c := range g.liveConns() {
		p := c.Principal()
		if p == nil {
			continue
		}
		hit := !rev.IsZero() && rev.Matches(p.Subject, p.ID, g.skewedIssuedAt(p))
		if !hit {
			hit, _ = g.revokedLive(ctx, p, now)
		}
		if hit {
			c.closeFor(ErrRevoked, ClosePolicy, "token revoked")
			continue
		}
		// After a gap in the feed, bans it did not carry are checked too.
		if rev.IsZero() && g.bans != nil {
			ev := Event{Kind: EventDisconnected, RemoteIP: c.hs.ip, Subject: p.Subject}
			if g.banCheck(ctx, clientKey(c.hs.ip), p.Subject, ev) != nil {
				g.emit(ctx, Event{Kind: EventDisconnected, Reason: "banned", RemoteIP: c.hs.ip, Subject: p.Subject, CloseCode: ClosePolicy, Detail: "1 socket(s) closed: banned"})
				c.closeFor(ErrBanned, ClosePolicy, "banned")
			}
		}
	}
}

// liveConns returns a snapshot of the live connections.
func (g *Guard) liveConns() []*Conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	live := make([]*Conn, 0, len(g.conns))
	for c := range g.conns {
		live = append(live, c)
	}
	return live
}

// onRevocation is the SharedStore's feed: a revocation recorded by any
// instance (or, as the zero Revocation, a gap in the feed) re-checks this
// instance's live sockets.
func (g *Guard) onRevocation(rev Revocation) {
	if rev.IsZero() && g.feedLoads.Add(1) > 1 {
		g.emit(context.Background(), Event{Kind: EventStoreUnavailable, Reason: reasonRevocationFeed,
			Detail: "the revocation feed was re-subscribed and reloaded after a gap; every live socket is checked again"})
	}
	g.closeRevoked(context.Background(), g.now(), rev)
}

// Disconnect closes subject's live sockets with 1008 and reason (default
// "disconnected"; at most 123 bytes are sent), on every instance with a
// SharedStore, without revoking any token: the client may connect again
// with a token it holds. It is what a "log out other devices" button
// (together with a revocation) or an admin console needs; to keep the
// subject out, use Revoke. A socket whose handshake is still in flight
// when Disconnect runs is not closed. It returns an error if the store
// could not announce it (this instance's sockets are closed all the
// same).
func (g *Guard) Disconnect(ctx context.Context, subject, reason string) error {
	if subject == "" || len(subject) > maxSubjectLen {
		return errors.New("wssec: disconnect: invalid subject")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if reason == "" {
		reason = "disconnected"
	}
	n := SessionNotice{Subject: subject, Reason: reason}
	g.closeSessions(ctx, n, "disconnect")
	if g.shared != nil {
		if err := g.shared.Announce(ctx, n); err != nil {
			return fmt.Errorf("wssec: disconnect: not shared with other instances: %w", err)
		}
	}
	return nil
}

// closeSessions closes this instance's live sockets that n names, and
// emits one EventDisconnected with why when it closed any.
func (g *Guard) closeSessions(ctx context.Context, n SessionNotice, why string) {
	if n.Subject == "" && !n.IP.IsValid() {
		return
	}
	reason := n.Reason
	if reason == "" {
		reason = "disconnected"
	}
	var named []*Conn
	for _, c := range g.liveConns() {
		if c.isClosing() {
			continue
		}
		p := c.Principal()
		if n.Subject != "" && p != nil && p.Subject == n.Subject ||
			n.IP.IsValid() && clientKey(c.hs.ip) == clientKey(n.IP) {
			named = append(named, c)
		}
	}
	if len(named) == 0 {
		return
	}
	// Reported before the sockets close: once a client reads its close
	// frame, the event is out.
	g.emit(ctx, Event{Kind: EventDisconnected, Reason: why, Subject: n.Subject, RemoteIP: n.IP, CloseCode: ClosePolicy,
		Detail: fmt.Sprintf("%d socket(s) closed: %s", len(named), truncate(reason, 123))})
	var cause error // a Disconnect's close matches ErrClosed only
	if why == "banned" {
		cause = ErrBanned
	}
	for _, c := range named {
		c.closeFor(cause, ClosePolicy, reason)
	}
}

// onSession is the SharedStore's session feed: a ban or a disconnect
// announced by any instance closes this instance's sockets it names.
func (g *Guard) onSession(n SessionNotice) {
	ctx := context.Background()
	switch {
	case n.Oldest:
		if n.Subject != "" {
			g.evictOldestNow(ctx, n.Subject)
		}
	case n.Reason == "banned":
		if !g.cfg.reportOnly[GuardBan] {
			g.closeSessions(ctx, n, "banned")
		}
	default:
		g.closeSessions(ctx, n, "disconnect")
	}
}

// evictReason is the close reason of a socket evicted by WithEvictOldest.
const evictReason = "session replaced"

// evictOldest closes sub's oldest live socket in this instance and waits
// (bounded by ctx and evictWait) until its slot is given back. It
// reports whether it closed one.
func (g *Guard) evictOldest(ctx context.Context, sub string) bool {
	oldest := g.evictOldestNow(ctx, sub)
	if oldest == nil {
		return false
	}
	t := time.NewTimer(evictWait)
	defer t.Stop()
	select {
	case <-oldest.gone:
	case <-t.C:
	case <-ctx.Done():
	}
	return true
}

// evictOldestNow closes sub's oldest live socket in this instance, if
// any, and returns it.
func (g *Guard) evictOldestNow(ctx context.Context, sub string) *Conn {
	var oldest *Conn
	for _, c := range g.liveConns() {
		p := c.Principal()
		if p == nil || p.Subject != sub || c.isClosing() {
			continue
		}
		if oldest == nil || c.opened.Before(oldest.opened) {
			oldest = c
		}
	}
	if oldest == nil {
		return nil
	}
	g.emit(ctx, Event{Kind: EventDisconnected, Reason: "session_replaced", Subject: sub, RemoteIP: oldest.hs.ip, CloseCode: ClosePolicy, Detail: "oldest socket closed to admit a new one"})
	oldest.closeWith(ClosePolicy, evictReason, false)
	return oldest
}

// evictWait bounds how long a handshake waits for an evicted socket to
// give its slot back (a closing socket waits up to a second for the
// client's close frame before it does).
const evictWait = 2 * time.Second

// acquireEvicting is the per-subject quota with WithEvictOldest: while
// the subject's pool is full it evicts the subject's oldest socket (here,
// or with a SharedStore on the other instances) and tries again, for at
// most evictWait.
func (g *Guard) acquireEvicting(ctx context.Context, ls *lease, sub string, ref *refusal, useStore bool) (*refusal, error) {
	deadline := time.Now().Add(evictWait)
	announced := false
	for ref != nil && ref.reason == "quota_subject" && time.Now().Before(deadline) {
		if !g.evictOldest(ctx, sub) {
			// No socket of the subject here to evict: it is on another
			// instance, or its handshake holds the slot and is still
			// being upgraded. Ask the other instances once, and wait.
			if !announced && g.shared != nil && useStore {
				announced = true
				_ = g.shared.Announce(ctx, SessionNotice{Subject: sub, Reason: evictReason, Oldest: true})
			}
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ref, nil
			}
		}
		var err error
		if ref, err = ls.acquireSubject(ctx, sub, useStore); err != nil {
			return nil, err
		}
	}
	return ref, nil
}

// isClosing reports whether Close has begun.
func (c *Conn) isClosing() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// IssueTicket returns a one-time ticket for p, to be redeemed once, within
// the ticket TTL (30 s by default), as ?ticket=… on the WebSocket URL. Call
// it from an HTTP endpoint that already authenticated p, so a browser can
// open a socket without putting a long-lived token in a URL. The ticket is
// 128 random bits; it is never logged. The socket it opens is bounded by
// p.ExpiresAt (or the maximum token lifetime when that is zero).
func (g *Guard) IssueTicket(ctx context.Context, p *Principal) (string, error) {
	return g.issueTicket(ctx, p, netip.Addr{})
}

// IssueTicketForRequest is IssueTicket for the client that sent r: with
// ticket IP binding on (WithTickets), the ticket is redeemable only from
// that client's IP, and IssueTicket, which knows no client, refuses.
func (g *Guard) IssueTicketForRequest(r *http.Request, p *Principal) (string, error) {
	var ip netip.Addr
	if g.cfg.ticketBindIP {
		remote, err := clientip.ParseRemoteAddr(r.RemoteAddr)
		if err != nil {
			return "", fmt.Errorf("wssec: ticket: %w", err)
		}
		res, err := clientip.Resolve(remote, r.Header, g.trusted, g.ipFrom)
		if err != nil {
			return "", fmt.Errorf("wssec: ticket: %w", err)
		}
		ip = res.Client
	}
	return g.issueTicket(r.Context(), p, ip)
}

func (g *Guard) issueTicket(ctx context.Context, p *Principal, ip netip.Addr) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if p == nil || p.Subject == "" || len(p.Subject) > maxSubjectLen {
		return "", errors.New("wssec: ticket: the principal needs a subject")
	}
	if g.cfg.ticketBindIP && !ip.IsValid() {
		return "", errors.New("wssec: ticket: IP binding is on; use IssueTicketForRequest")
	}
	now := g.now()
	cp := *p
	if cp.ExpiresAt.IsZero() {
		cp.ExpiresAt = now.Add(g.cfg.maxTokenLifetime)
	}
	if cp.IssuedAt.IsZero() {
		// Issued now: a later revocation of the subject covers the
		// ticket, and one older than the clock skew does not.
		cp.IssuedAt = now
	}
	var b [ticketBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	t := base64.RawURLEncoding.EncodeToString(b[:])
	if g.shared != nil {
		data, err := encodeTicket(ticket{p: &cp, ip: ip})
		if err != nil {
			return "", fmt.Errorf("wssec: ticket: %w", err)
		}
		if err := g.shared.PutTicket(ctx, t, data, g.cfg.ticketTTL); err != nil {
			return "", fmt.Errorf("wssec: ticket: %w", err)
		}
		return t, nil
	}
	if err := g.sess.tickets.Add(t, ticket{p: &cp, ip: ip}, now.Add(g.cfg.ticketTTL).UnixNano(), now.UnixNano()); err != nil {
		return "", fmt.Errorf("wssec: ticket: %w", err)
	}
	return t, nil
}

// sharedTicket is a ticket as a SharedStore keeps it.
type sharedTicket struct {
	Subject   string         `json:"sub"`
	Tenant    string         `json:"tenant,omitempty"`
	Scopes    []string       `json:"scopes,omitempty"`
	Roles     []string       `json:"roles,omitempty"`
	ExpiresAt time.Time      `json:"exp"`
	Claims    map[string]any `json:"claims,omitempty"`
	ID        string         `json:"jti,omitempty"`
	IssuedAt  time.Time      `json:"iat,omitzero"`
	IP        netip.Addr     `json:"ip,omitzero"`
}

func encodeTicket(t ticket) ([]byte, error) {
	p := t.p
	return json.Marshal(sharedTicket{p.Subject, p.Tenant, p.Scopes, p.Roles, p.ExpiresAt, p.Claims, p.ID, p.IssuedAt, t.ip})
}

func decodeTicket(data []byte) (ticket, error) {
	var st sharedTicket
	if err := json.Unmarshal(data, &st); err != nil {
		return ticket{}, err
	}
	if st.Subject == "" || st.ExpiresAt.IsZero() {
		return ticket{}, errors.New("ticket without subject or expiry")
	}
	p := &Principal{Subject: st.Subject, Tenant: st.Tenant, Scopes: st.Scopes, Roles: st.Roles, ExpiresAt: st.ExpiresAt, Claims: st.Claims, ID: st.ID, IssuedAt: st.IssuedAt}
	return ticket{p: p, ip: st.IP}, nil
}

// redeemTicket takes a ticket from the request's query, once. With a
// SharedStore a ticket issued by any instance is redeemed; when the store
// cannot answer, the handshake is refused (fail closed).
func (g *Guard) redeemTicket(ctx context.Context, r *http.Request, ip netip.Addr) (*Principal, bool, verdict) {
	v, ok := queryValue(r.URL, ticketParam)
	if !ok {
		return nil, false, verdict{}
	}
	invalid := func(detail string) verdict { return verdict{ref: tokenRefusal("ticket_invalid", detail)} }
	if len(v) != ticketLen {
		return nil, true, invalid("malformed ticket")
	}
	var t ticket
	if g.shared != nil {
		data, found, err := g.shared.TakeTicket(ctx, v)
		if err != nil {
			return nil, true, storeVerdict(storeCheckTicket, err, storeRefusal(err))
		}
		if found {
			if t, err = decodeTicket(data); err != nil {
				return nil, true, invalid("unreadable ticket")
			}
		}
		ok = found
	} else {
		t, ok = g.sess.tickets.Take(v, g.now().UnixNano())
	}
	if !ok {
		return nil, true, invalid("unknown, used or expired ticket")
	}
	if t.ip.IsValid() && t.ip != ip {
		return nil, true, invalid("ticket bound to another client")
	}
	if !g.now().Before(t.p.ExpiresAt.Add(g.cfg.clockSkew)) {
		return nil, true, verdict{ref: refuse(401, "token_expired", "token expired", ErrTokenExpired, nil)}
	}
	return t.p, true, verdict{}
}
