package wssec

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// authPayload is the payload of the built-in "auth" action:
// {"action":"auth","payload":{"token":"…"}}.
type authPayload struct {
	Token string `json:"token" validate:"required"`
}

// reauth runs the built-in "auth" action on the reading goroutine: the
// new token goes through the same verification, ban checks, revocation
// and replay checks as a handshake, must name the same subject and
// tenant, and then replaces the principal atomically
// and moves the connection's deadline. On failure the old deadline stands.
func (c *Conn) reauth(id []byte, payload []byte) {
	g := c.g
	old := c.Principal()
	ev := Event{Kind: EventMessageRefused, Action: actionAuth, RemoteIP: c.hs.ip}
	if old != nil {
		ev.Subject = old.Subject
	}
	// fail answers forbidden; the event's Err matches ErrForbidden and,
	// when a handshake check refused the token, that check's sentinel
	// too (ErrTokenExpired, ErrRevoked, ErrStoreUnavailable, …).
	fail := func(reason, detail string, cause error) {
		ev.Reason, ev.Detail, ev.Err = reason, detail, ErrForbidden
		if cause != nil {
			ev.Err = fmt.Errorf("%w: %w", ErrForbidden, cause)
		}
		c.deny(id, "forbidden", "re-authentication refused", ev, true)
	}
	var ap authPayload
	if err := json.Unmarshal(payload, &ap); err != nil || ap.Token == "" {
		fail("reauth_invalid", "auth payload needs a token", nil)
		return
	}
	if g.ver == nil {
		fail("reauth_unsupported", "this endpoint does not verify tokens", nil)
		return
	}
	p, ref := g.ver.verify(c.ctx, ap.Token)
	if ref != nil {
		fail(ref.reason, ref.err.Error(), ref)
		return
	}
	if old == nil || p.Subject != old.Subject || p.Tenant != old.Tenant {
		fail("reauth_subject", "token names another subject or tenant", nil)
		return
	}
	// The ban checks of a handshake: a banned client IP or subject does
	// not re-authenticate, and its socket ends (a ban normally closed it
	// already; this covers a ban this instance learned of late).
	if ref := g.banCheck(c.ctx, clientKey(c.hs.ip), p.Subject, ev); ref != nil {
		fail(ref.reason, ref.err.Error(), ref)
		c.closeFor(ErrBanned, ClosePolicy, "banned")
		return
	}
	if v := g.checkRevocation(c.ctx, p); g.apply(c.ctx, &v, &ev) != nil {
		if v.store != nil {
			fail("store_error", "revocation status unknown (fail closed)", v.ref)
		} else {
			fail("token_revoked", "token revoked", v.ref)
		}
		return
	}
	v := g.checkReplay(c.ctx, p)
	if ref := g.apply(c.ctx, &v, &ev); ref != nil {
		fail(ref.reason, ref.err.Error(), ref)
		return
	}
	c.principal.Store(p)
	c.rearm(p.ExpiresAt)
	in := int64(math.Floor(p.ExpiresAt.Sub(g.now()).Seconds()))
	c.enqueue(authOKFrame(id, in))
	g.emit(c.ctx, Event{Kind: EventReauthenticated, RemoteIP: c.hs.ip, Subject: p.Subject})
}

func authOKFrame(id []byte, expiresIn int64) []byte {
	type body struct {
		ExpiresIn int64 `json:"expires_in"`
	}
	f := struct {
		Action  string `json:"action"`
		ID      string `json:"id,omitempty"`
		Payload body   `json:"payload"`
	}{Action: actionAuth, ID: string(id), Payload: body{expiresIn}}
	b, _ := json.Marshal(f)
	return b
}

func expiringFrame(in time.Duration) []byte {
	type body struct {
		InSeconds int64 `json:"in_seconds"`
	}
	f := struct {
		Action  string `json:"action"`
		Payload body   `json:"payload"`
	}{Action: "token_expiring", Payload: body{int64(math.Ceil(in.Seconds()))}}
	b, _ := json.Marshal(f)
	return b
}

// ExpiresAt returns when the connection's credentials expire (the
// principal's exp); the connection closes with 1008 then (plus the clock
// skew) unless the client re-authenticates. Zero means no expiry. It is
// for a handler that tells its client when to re-authenticate, or that
// plans work within the token's life.
func (c *Conn) ExpiresAt() time.Time {
	if p := c.Principal(); p != nil {
		return p.ExpiresAt
	}
	return time.Time{}
}
