package wssec

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/wssec/wssec/internal/clientip"
	"github.com/wssec/wssec/internal/ttlcache"
)

// Session defaults.
const (
	DefaultTicketTTL        = 30 * time.Second
	DefaultTicketCapacity   = 100_000
	DefaultReplayCapacity   = 100_000
	DefaultRevokeCapacity   = 100_000
	DefaultExpiryWarning    = 30 * time.Second
	ticketParam             = "ticket"
	ticketBytes             = 16 // 128 bits
	ticketLen               = 22 // base64url of 16 bytes, unpadded
	revokeSubjectKeyPrefix  = "s:"
	revokeTokenIDKeyPrefix  = "j:"
	replayTokenIDKeyPrefix  = "r:"
	maxTokenIDLen           = 256
	revocationCheckInterval = time.Second
)

// ErrRevoked: the token or its subject was revoked.
var ErrRevoked = errors.New("wssec: token revoked")

// WithSingleUseTokens makes every token usable for one handshake only: its
// jti is remembered until exp and a second handshake with it gets 401.
// Tokens without a jti are refused. The cache holds at most n ids
// (default 100 000 when n ≤ 0); when it is full of live ids new handshakes
// are refused with 503 rather than forgetting an id (fail closed).
func WithSingleUseTokens(n int) Option {
	return optionFunc(func(c *config) {
		c.singleUse = true
		if n > 0 {
			c.replayCapacity = n
		}
	})
}

// WithTickets configures one-time tickets (see Guard.IssueTicket): ttl is
// how long a ticket stays valid (default 30 s; at most 5 minutes),
// capacity how many may be outstanding (default 100 000), and bindIP
// binds each ticket to the client IP it was issued to (resolved through
// trusted proxies), so a ticket that leaks cannot be redeemed elsewhere.
func WithTickets(ttl time.Duration, capacity int, bindIP bool) Option {
	return optionFunc(func(c *config) {
		c.ticketTTL, c.ticketCapacity, c.ticketBindIP = ttl, capacity, bindIP
	})
}

// WithExpiryWarning sets how long before the token's expiry the client is
// sent {"action":"token_expiring","payload":{"in_seconds":N}}, so it can
// re-authenticate in band with {"action":"auth","payload":{"token":…}}.
// Default 30 s; zero disables the warning.
func WithExpiryWarning(d time.Duration) Option {
	return optionFunc(func(c *config) { c.expiryWarning = d })
}

// sessions holds revocations, the replay cache and tickets.
type sessions struct {
	revoked *ttlcache.Cache[string, int64]    // subject → revoked-before (unix ns); jti → 0
	replay  *ttlcache.Cache[string, struct{}] // jti seen at a handshake
	tickets *ttlcache.Cache[string, ticket]
	holdFor time.Duration // how long a subject revocation must be kept
}

type ticket struct {
	p  *Principal
	ip netip.Addr // zero unless bound
}

func newSessions(c *config) *sessions {
	s := &sessions{
		revoked: ttlcache.New[string, int64](DefaultRevokeCapacity),
		tickets: ttlcache.New[string, ticket](c.ticketCapacity),
		holdFor: c.maxTokenLifetime + c.clockSkew,
	}
	if c.singleUse {
		s.replay = ttlcache.New[string, struct{}](c.replayCapacity)
	}
	return s
}

// admit applies the replay cache to a verified principal.
func (g *Guard) admit(p *Principal) *refusal {
	now := g.now()
	if g.sess.replay != nil {
		if p.ID == "" || len(p.ID) > maxTokenIDLen {
			return tokenRefusal("token_replay", "single-use tokens need a jti")
		}
		exp := p.ExpiresAt.Add(g.cfg.clockSkew).UnixNano()
		switch err := g.sess.replay.Add(replayTokenIDKeyPrefix+p.ID, struct{}{}, exp, now.UnixNano()); {
		case errors.Is(err, ttlcache.ErrExists):
			return tokenRefusal("token_replay", "token already used")
		case err != nil:
			return refuse(503, "replay_cache_full", "service unavailable", ErrCapacity, err)
		}
	}
	return nil
}

// isRevoked reports whether p's token id or its subject (for tokens issued
// before the revocation) was revoked.
func (g *Guard) isRevoked(p *Principal, now time.Time) bool {
	if p == nil || p.Subject == "" && p.ID == "" {
		return false
	}
	n := now.UnixNano()
	if p.ID != "" {
		if _, ok := g.sess.revoked.Get(revokeTokenIDKeyPrefix+p.ID, n); ok {
			return true
		}
	}
	if p.Subject != "" {
		if before, ok := g.sess.revoked.Get(revokeSubjectKeyPrefix+p.Subject, n); ok {
			// A token without iat cannot prove it is newer: revoked.
			if p.IssuedAt.IsZero() || p.IssuedAt.UnixNano() <= before {
				return true
			}
		}
	}
	return false
}

// Revoke revokes every token of subject issued up to now and closes the
// subject's live sockets with 1008. Tokens issued afterwards are accepted
// again. It returns an error only if the revocation could not be recorded.
func (g *Guard) Revoke(ctx context.Context, subject string) error {
	return g.RevokeIssuedBefore(ctx, subject, g.now())
}

// RevokeIssuedBefore revokes the tokens of subject whose iat is not after
// t (and tokens without iat), and closes the subject's live sockets that
// hold such a token.
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
	g.sess.revoked.Delete(key)
	if err := g.sess.revoked.Add(key, before, now.Add(g.sess.holdFor).UnixNano(), now.UnixNano()); err != nil {
		return fmt.Errorf("wssec: revoke: %w", err)
	}
	g.closeRevoked(now, Event{Kind: EventRevoked, Reason: "subject_revoked", Subject: subject})
	return nil
}

// RevokeToken revokes one token by its jti until exp (when exp is zero,
// for the longest lifetime a token may have), and closes the sockets that
// hold it.
func (g *Guard) RevokeToken(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" || len(jti) > maxTokenIDLen {
		return fmt.Errorf("wssec: revoke: invalid token id")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := g.now()
	if exp.IsZero() || exp.Sub(now) > g.sess.holdFor {
		exp = now.Add(g.sess.holdFor)
	}
	err := g.sess.revoked.Add(revokeTokenIDKeyPrefix+jti, 0, exp.Add(g.cfg.clockSkew).UnixNano(), now.UnixNano())
	if err != nil && !errors.Is(err, ttlcache.ErrExists) {
		return fmt.Errorf("wssec: revoke: %w", err)
	}
	g.closeRevoked(now, Event{Kind: EventRevoked, Reason: "token_revoked"})
	return nil
}

// closeRevoked closes every live socket whose principal is now revoked.
func (g *Guard) closeRevoked(now time.Time, ev Event) {
	g.emit(context.Background(), ev)
	g.mu.Lock()
	var hit []*Conn
	for c := range g.conns {
		if g.isRevoked(c.Principal(), now) {
			hit = append(hit, c)
		}
	}
	g.mu.Unlock()
	for _, c := range hit {
		c.closeWith(ClosePolicy, "token revoked", false)
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
// that client's IP.
func (g *Guard) IssueTicketForRequest(r *http.Request, p *Principal) (string, error) {
	var ip netip.Addr
	if g.cfg.ticketBindIP {
		remote, err := clientip.ParseRemoteAddr(r.RemoteAddr)
		if err != nil {
			return "", fmt.Errorf("wssec: ticket: %w", err)
		}
		res, err := clientip.Resolve(remote, r.Header, g.trusted)
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
	var b [ticketBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	t := base64.RawURLEncoding.EncodeToString(b[:])
	if err := g.sess.tickets.Add(t, ticket{p: &cp, ip: ip}, now.Add(g.cfg.ticketTTL).UnixNano(), now.UnixNano()); err != nil {
		return "", fmt.Errorf("wssec: ticket: %w", err)
	}
	return t, nil
}

// redeemTicket takes a ticket from the request's query, once.
func (g *Guard) redeemTicket(r *http.Request, ip netip.Addr) (*Principal, bool, *refusal) {
	v, ok := queryValue(r.URL, ticketParam)
	if !ok {
		return nil, false, nil
	}
	if len(v) != ticketLen {
		return nil, true, tokenRefusal("ticket_invalid", "malformed ticket")
	}
	t, ok := g.sess.tickets.Take(v, g.now().UnixNano())
	if !ok {
		return nil, true, tokenRefusal("ticket_invalid", "unknown, used or expired ticket")
	}
	if t.ip.IsValid() && t.ip != ip {
		return nil, true, tokenRefusal("ticket_invalid", "ticket bound to another client")
	}
	if !g.now().Before(t.p.ExpiresAt.Add(g.cfg.clockSkew)) {
		return nil, true, refuse(401, "token_expired", "token expired", ErrTokenExpired, nil)
	}
	return t.p, true, nil
}
