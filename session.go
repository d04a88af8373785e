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

// admit applies the replay cache to a verified principal. With a
// SharedStore the cache is shared; when the store cannot answer, the
// token is refused (fail closed).
func (g *Guard) admit(ctx context.Context, p *Principal, ev Event) *refusal {
	if !g.cfg.singleUse {
		return nil
	}
	if p.ID == "" || len(p.ID) > maxTokenIDLen {
		return tokenRefusal("token_replay", "single-use tokens need a jti")
	}
	now := g.now()
	exp := p.ExpiresAt.Add(g.cfg.clockSkew)
	if g.shared != nil {
		first, err := g.shared.Once(ctx, replayTokenIDKeyPrefix+p.ID, max(exp.Sub(now), time.Millisecond))
		if err != nil {
			g.storeFailed(ctx, storeCheckReplay, err, ev)
			return storeRefusal(err)
		}
		if !first {
			return tokenRefusal("token_replay", "token already used")
		}
		return nil
	}
	switch err := g.sess.replay.Add(replayTokenIDKeyPrefix+p.ID, struct{}{}, exp.UnixNano(), now.UnixNano()); {
	case errors.Is(err, ttlcache.ErrExists):
		return tokenRefusal("token_replay", "token already used")
	case err != nil:
		return refuse(503, "replay_cache_full", "service unavailable", ErrCapacity, err)
	}
	return nil
}

// isRevoked reports whether p's token id or its subject (for tokens issued
// before the revocation) was revoked: in this instance, or, with a
// SharedStore, by any instance. An error means the store could not say.
func (g *Guard) isRevoked(ctx context.Context, p *Principal, now time.Time) (bool, error) {
	if p == nil || p.Subject == "" && p.ID == "" {
		return false, nil
	}
	n := now.UnixNano()
	if p.ID != "" {
		if _, ok := g.sess.revoked.Get(revokeTokenIDKeyPrefix+p.ID, n); ok {
			return true, nil
		}
	}
	if p.Subject != "" {
		if before, ok := g.sess.revoked.Get(revokeSubjectKeyPrefix+p.Subject, n); ok {
			// A token without iat cannot prove it is newer: revoked.
			if p.IssuedAt.IsZero() || p.IssuedAt.UnixNano() <= before {
				return true, nil
			}
		}
	}
	if g.shared != nil {
		return g.shared.Revoked(ctx, p.Subject, p.ID, p.IssuedAt)
	}
	return false, nil
}

// Revoke revokes every token of subject issued up to now and closes the
// subject's live sockets with 1008. Tokens issued afterwards are accepted
// again. With a SharedStore the revocation reaches every instance, each
// of which closes its own sockets of the subject. It returns an error if
// the revocation could not be recorded (in the store: it then still holds
// in this instance).
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
	err := g.sess.revoked.Add(key, before, now.Add(g.sess.holdFor).UnixNano(), now.UnixNano())
	if err != nil {
		err = fmt.Errorf("wssec: revoke: %w", err)
	}
	if g.shared != nil {
		rev := Revocation{Subject: subject, IssuedBefore: time.Unix(0, before), TTL: g.sess.holdFor}
		if serr := g.shared.Revoke(ctx, rev); serr != nil {
			err = errors.Join(err, fmt.Errorf("wssec: revoke: not shared with other instances: %w", serr))
		}
	}
	g.emit(ctx, Event{Kind: EventRevoked, Reason: "subject_revoked", Subject: subject})
	g.closeRevoked(ctx, now)
	return err
}

// RevokeToken revokes one token by its jti until exp (when exp is zero,
// for the longest lifetime a token may have), and closes the sockets that
// hold it, on every instance with a SharedStore.
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
	until := exp.Add(g.cfg.clockSkew)
	err := g.sess.revoked.Add(revokeTokenIDKeyPrefix+jti, 0, until.UnixNano(), now.UnixNano())
	if err != nil && !errors.Is(err, ttlcache.ErrExists) {
		err = fmt.Errorf("wssec: revoke: %w", err)
	} else {
		err = nil
	}
	if g.shared != nil {
		rev := Revocation{TokenID: jti, TTL: max(until.Sub(now), time.Millisecond)}
		if serr := g.shared.Revoke(ctx, rev); serr != nil {
			err = errors.Join(err, fmt.Errorf("wssec: revoke: not shared with other instances: %w", serr))
		}
	}
	g.emit(ctx, Event{Kind: EventRevoked, Reason: "token_revoked"})
	g.closeRevoked(ctx, now)
	return err
}

// closeRevoked closes every live socket whose principal is now revoked.
// A socket whose revocation the store cannot answer for stays open: the
// store's feed re-checks every socket when it is back.
func (g *Guard) closeRevoked(ctx context.Context, now time.Time) {
	g.mu.Lock()
	live := make([]*Conn, 0, len(g.conns))
	for c := range g.conns {
		live = append(live, c)
	}
	g.mu.Unlock()
	// The checks run outside the lock: a store may answer slowly.
	for _, c := range live {
		if revoked, _ := g.isRevoked(ctx, c.Principal(), now); revoked {
			c.closeWith(ClosePolicy, "token revoked", false)
		}
	}
}

// onRevocation is the SharedStore's feed: a revocation recorded by any
// instance (or, as the zero Revocation, a gap in the feed) re-checks this
// instance's live sockets.
func (g *Guard) onRevocation(Revocation) {
	g.closeRevoked(context.Background(), g.now())
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
func (g *Guard) redeemTicket(ctx context.Context, r *http.Request, ip netip.Addr, ev Event) (*Principal, bool, *refusal) {
	v, ok := queryValue(r.URL, ticketParam)
	if !ok {
		return nil, false, nil
	}
	if len(v) != ticketLen {
		return nil, true, tokenRefusal("ticket_invalid", "malformed ticket")
	}
	var t ticket
	if g.shared != nil {
		data, found, err := g.shared.TakeTicket(ctx, v)
		if err != nil {
			g.storeFailed(ctx, storeCheckTicket, err, ev)
			return nil, true, storeRefusal(err)
		}
		if found {
			if t, err = decodeTicket(data); err != nil {
				return nil, true, tokenRefusal("ticket_invalid", "unreadable ticket")
			}
		}
		ok = found
	} else {
		t, ok = g.sess.tickets.Take(v, g.now().UnixNano())
	}
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
