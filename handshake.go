package wssec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/wssec/wssec/internal/clientip"
	"github.com/wssec/wssec/internal/jwtpre"
	"github.com/wssec/wssec/internal/origin"
)

// handshake is what the guards learned about an accepted request. Wrap
// stores it in the request context; Upgrade consumes it exactly once.
type handshake struct {
	g         *Guard
	ip        netip.Addr // client IP after trusted proxies
	origin    string     // the Origin header, "" when absent
	pattern   string     // the allowlist pattern it matched ("" for same-origin)
	via       string     // how the client authenticated: token, ticket, authenticator, anonymous
	principal *Principal
	lease     *lease
	consumed  atomic.Bool // Upgrade took it
	upgraded  atomic.Bool // a Conn owns the lease
}

type handshakeKey struct{}

// clientKey is the key for per-client limits: IPv4 as is, IPv6 by /64.
func clientKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// check runs every guard, cheapest first. On refusal nothing was upgraded,
// no slot is held, and the caller writes the refusal.
func (g *Guard) check(ctx context.Context, r *http.Request) (*handshake, *refusal, Event) {
	ev := Event{Kind: EventHandshakeRefused, Origin: r.Header.Get("Origin")}

	// 1. The client IP and scheme behind trusted proxies (one parse),
	// then transport. A trusted proxy's header fault is a 400 of its own,
	// decided before the transport: it is not a plain-ws:// problem.
	remote, err := clientip.ParseRemoteAddr(r.RemoteAddr)
	if err != nil {
		return nil, refuse(400, "remote_addr", "bad request", ErrBadForwarded, err), ev
	}
	ev.RemoteIP = remote
	res, ferr := clientip.Resolve(remote, r.Header, g.trusted, g.ipFrom)
	if ferr != nil {
		return nil, refuse(400, "forwarded_malformed", "bad forwarding headers", ErrBadForwarded, ferr), ev
	}
	secure := r.TLS != nil
	if res.ViaProxy {
		switch res.Proto {
		case "https", "wss":
			secure = true
		case "http", "ws":
			secure = false
		}
	}
	if !secure && !g.cfg.insecureTransport {
		ref := refuse(426, "transport_insecure", "TLS required: connect with wss://", ErrInsecureTransport, g.transportHint(r.Header, res))
		if ref = g.enforce(ctx, GuardTransport, ref, ev); ref != nil {
			return nil, ref, ev
		}
	}

	// 2. Client IP, and bans: a banned client gets no further work.
	ip := res.Client
	ev.RemoteIP = ip
	key := clientKey(ip)
	if g.bans != nil {
		if banned, wait := g.ipBanned(ctx, key, ev); banned {
			if ref := g.enforce(ctx, GuardBan, banRefusal(wait), ev); ref != nil {
				return nil, ref, ev
			}
		}
	}

	// 3. Origin, then Host.
	hs := &handshake{g: g, ip: ip}
	sameOrigin, ref := g.checkOrigin(r, secure, hs)
	if ref = g.enforce(ctx, GuardOrigin, ref, ev); ref != nil {
		return nil, ref, ev
	}
	ev.Pattern = hs.pattern
	if ref := g.enforce(ctx, GuardOrigin, g.checkHost(r.Host, secure, sameOrigin), ev); ref != nil {
		return nil, ref, ev
	}

	// 4–5. Handshake rate per client, then quotas per IP and in total:
	// all before any signature is checked.
	ls, ref := g.admitClient(ctx, key, ev)
	if ref != nil {
		return nil, ref, ev
	}

	// 6. Token, then subject bans and the per-subject quota.
	p, ref := g.authenticate(ctx, r, hs, ev)
	if ref != nil {
		ls.release()
		return nil, ref, ev
	}
	ev.Subject = p.Subject
	if g.bans != nil {
		if banned, wait := g.subjectBanned(ctx, p.Subject, ev); banned {
			if ref := g.enforce(ctx, GuardBan, banRefusal(wait), ev); ref != nil {
				ls.release()
				return nil, ref, ev
			}
		}
	}
	if p.Subject != "" {
		if ref := g.acquireSubject(ctx, ls, p.Subject, ev); ref != nil {
			ls.release()
			return nil, ref, ev
		}
	}
	hs.principal, hs.lease = p, ls
	return hs, nil, ev
}

// checkOrigin applies the origin allowlist (or same-origin by default).
// It reports whether the Origin was admitted as the request's own origin
// (same-origin) rather than by an allowlist pattern.
func (g *Guard) checkOrigin(r *http.Request, secure bool, hs *handshake) (sameOrigin bool, ref *refusal) {
	vals := r.Header.Values("Origin")
	if len(vals) == 0 {
		if g.cfg.allowMissingOrigin {
			return false, nil
		}
		return false, refuse(403, "origin_missing", "origin not allowed", ErrOriginNotAllowed, errors.New("no Origin header"))
	}
	if len(vals) > 1 {
		return false, refuse(403, "origin_not_allowed", "origin not allowed", ErrOriginNotAllowed, errors.New("several Origin headers"))
	}
	o, err := origin.ParseOrigin(vals[0])
	if err != nil {
		reason := "origin_not_allowed"
		if vals[0] == "null" {
			reason = "origin_null"
		}
		return false, refuse(403, reason, "origin not allowed", ErrOriginNotAllowed, err)
	}
	if g.origins != nil {
		i, ok := g.origins.Match(o)
		switch {
		case ok:
			hs.pattern = g.originLabels[i]
		case g.cfg.sameOrigin && origin.SameOrigin(o, r.Host, secure):
			sameOrigin = true
		default:
			return false, refuse(403, "origin_not_allowed", "origin not allowed", ErrOriginNotAllowed, nil)
		}
	} else if !origin.SameOrigin(o, r.Host, secure) {
		return false, refuse(403, "origin_not_allowed", "origin not allowed", ErrOriginNotAllowed, errors.New("not same-origin"))
	} else {
		sameOrigin = true
	}
	hs.origin = vals[0]
	return sameOrigin, nil
}

// checkHost applies WithHosts. Without it, only a plain-transport
// same-origin handshake is checked: there a DNS-rebinding page (its own
// name as Host, an Origin to match) would pass every other guard, so the
// Host must be an IP literal or "localhost", names no DNS answer can
// re-point. Over TLS the certificate names the service; an allowlisted
// Origin names the page.
func (g *Guard) checkHost(host string, secure, sameOrigin bool) *refusal {
	if g.hosts == nil && (secure || !sameOrigin) {
		return nil
	}
	o, err := origin.RequestOrigin(host, secure)
	if err != nil {
		return refuse(403, "host_not_allowed", "host not allowed", ErrHostNotAllowed, fmt.Errorf("Host: %w", err))
	}
	if g.hosts != nil {
		if _, ok := g.hosts.Match(o); ok {
			return nil
		}
		return refuse(403, "host_not_allowed", "host not allowed", ErrHostNotAllowed, errors.New("Host matches no WithHosts pattern"))
	}
	if origin.IsLiteralOrLocalhost(o) {
		return nil
	}
	return refuse(403, "host_not_allowed", "host not allowed", ErrHostNotAllowed,
		errors.New("same-origin over plain ws:// with a DNS name as Host (DNS rebinding?): list the names the service answers to with WithHosts"))
}

// transportHint explains a 426 for the log (never for the client): which
// forwarding headers arrived and why they did not count. It names headers,
// never their values.
func (g *Guard) transportHint(h http.Header, res clientip.Result) error {
	if !res.ViaProxy {
		names := clientip.PresentHeaders(h)
		if len(names) == 0 {
			return nil
		}
		return fmt.Errorf("forwarding headers (%s) came from %s, which is not a trusted proxy: is WithTrustedProxies missing?", strings.Join(names, ", "), res.Client)
	}
	var b strings.Builder
	if res.Proto == "" {
		fmt.Fprintf(&b, "the trusted proxy sent no scheme (%s)", protoHeaderOf(g.ipFrom))
	} else {
		fmt.Fprintf(&b, "the trusted proxy reports %s", res.Proto)
	}
	if ignored := g.ipFrom.IgnoredHeaders(h); len(ignored) > 0 {
		fmt.Fprintf(&b, "; ignored %s: WithClientIPHeader is %s", strings.Join(ignored, ", "), g.ipFrom)
	}
	return errors.New(b.String())
}

// protoHeaderOf names the header a source takes the scheme from.
func protoHeaderOf(src clientip.Source) string {
	if src == clientip.Forwarded {
		return "Forwarded proto="
	}
	return "X-Forwarded-Proto"
}

// compileRequestRules validates WithTrustedProxies, WithClientIPHeader
// and WithHosts into the Guard.
func (g *Guard) compileRequestRules(c *config, bad func(opt, val, reason string)) {
	ts, err := clientip.ParseSet(c.trustedProxies)
	if err != nil {
		bad("WithTrustedProxies", "", err.Error())
	} else {
		for _, p := range ts.Prefixes() {
			if p.Bits() == 0 {
				bad("WithTrustedProxies", p.String(), "trusts every address, so every client could choose its own address and scheme; list your proxies' addresses")
			}
		}
		g.trusted = ts
	}
	if c.clientIPHeaderSet {
		src, err := clientip.ParseSource(c.clientIPHeader)
		if err != nil {
			bad("WithClientIPHeader", fmt.Sprintf("%q", c.clientIPHeader), err.Error())
		}
		g.ipFrom = src
	}
	if c.hostsSet {
		if len(c.hosts) == 0 {
			bad("WithHosts", "", "no pattern given")
		}
		var ps []origin.HostPattern
		for _, s := range c.hosts {
			p, err := origin.ParseHostPattern(s)
			if err != nil {
				bad("WithHosts", fmt.Sprintf("%q", s), err.Error())
				continue
			}
			ps = append(ps, p)
		}
		g.hosts = origin.NewHostSet(ps)
	}
}

// warnRequestRules logs the accepted but risky proxy settings.
func (g *Guard) warnRequestRules(ctx context.Context) {
	for _, p := range g.trusted.Prefixes() {
		if clientip.ContainsPublic(p) {
			g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "trusted_proxies_public",
				Detail: "WithTrustedProxies: " + p.String() + " holds public addresses; every host in it can choose the client address it reports"})
		}
	}
	if g.cfg.clientIPHeaderSet && g.trusted.Len() == 0 {
		g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "client_ip_header_unused",
			Detail: "WithClientIPHeader without WithTrustedProxies: no header is read"})
	}
}

// authenticate finds and verifies the credential: a one-time ticket if
// the URL carries one, else the custom authenticator, else a token from
// the configured sources. Revocations apply to every kind.
func (g *Guard) authenticate(ctx context.Context, r *http.Request, hs *handshake, ev Event) (*Principal, *refusal) {
	p, ref := g.credential(ctx, r, hs, ev)
	if ref != nil {
		return nil, ref
	}
	revoked, err := g.isRevoked(ctx, p, g.now())
	if err != nil {
		g.storeFailed(ctx, storeCheckRevocation, err, ev)
		return nil, storeRefusal(err)
	}
	if revoked {
		return nil, refuse(401, "token_revoked", "invalid token", ErrRevoked, nil)
	}
	return p, nil
}

func (g *Guard) credential(ctx context.Context, r *http.Request, hs *handshake, ev Event) (*Principal, *refusal) {
	if p, found, ref := g.redeemTicket(ctx, r, hs.ip, ev); found || ref != nil {
		hs.via = "ticket"
		return p, ref
	}
	if g.cfg.authenticator != nil {
		hs.via = "authenticator"
		p, err := g.cfg.authenticator(r)
		if err != nil || p == nil {
			if err == nil {
				err = errors.New("authenticator returned no principal")
			}
			return nil, refuse(401, "authenticator", "unauthorized", ErrTokenInvalid, err)
		}
		if len(p.Subject) > maxSubjectLen {
			return nil, refuse(401, "authenticator", "unauthorized", ErrTokenInvalid, errors.New("subject too long"))
		}
		return p, nil
	}
	if g.ver == nil { // WithAnonymous alone
		hs.via = "anonymous"
		return &Principal{}, nil
	}
	tok, ref := g.extractToken(r, hs)
	if ref != nil {
		return nil, ref
	}
	if tok == "" {
		if g.cfg.anonymous {
			hs.via = "anonymous"
			return &Principal{}, nil
		}
		return nil, refuse(401, "token_missing", "token missing", ErrTokenMissing, nil)
	}
	hs.via = "token"
	p, ref := g.ver.verify(ctx, tok)
	if ref != nil {
		return nil, ref
	}
	if ref := g.checkReplay(ctx, p, ev); ref != nil {
		return nil, ref
	}
	return p, nil
}

// extractToken takes the token from the first configured source that has
// one. A source that holds something unusable is a refusal, not a fall-through.
func (g *Guard) extractToken(r *http.Request, hs *handshake) (string, *refusal) {
	for _, src := range g.cfg.tokenSources {
		switch src.kind {
		case srcHeader:
			vals := r.Header.Values("Authorization")
			if len(vals) == 0 {
				continue
			}
			if len(vals) > 1 {
				return "", tokenRefusal("token_malformed", "several Authorization headers")
			}
			tok, ok := jwtpre.FromAuthorization(vals[0])
			if !ok {
				return "", tokenRefusal("token_malformed", "Authorization is not a Bearer token")
			}
			return tok, nil
		case srcSubprotocol:
			tok, _, err := jwtpre.FromSubprotocols(r.Header.Values("Sec-WebSocket-Protocol"))
			if err != nil {
				return "", tokenRefusal("token_malformed", err.Error())
			}
			if tok != "" {
				return tok, nil
			}
		case srcCookie:
			c, err := r.Cookie(src.name)
			if err != nil || c.Value == "" {
				continue
			}
			if hs.origin == "" {
				// An ambient credential without a verified Origin is how
				// cross-site hijacking works: never accept it.
				continue
			}
			return c.Value, nil
		case srcQuery:
			v, ok := queryValue(r.URL, src.name)
			if ok && v != "" {
				return v, nil
			}
		}
	}
	return "", nil
}

// queryValue returns one query parameter; several values are refused by
// returning none.
func queryValue(u *url.URL, name string) (string, bool) {
	if u == nil || !strings.Contains(u.RawQuery, name) {
		return "", false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", false
	}
	v := q[name]
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// handshakeFrom returns the handshake Wrap accepted for r, if this Guard's.
func (g *Guard) handshakeFrom(r *http.Request) *handshake {
	hs, _ := r.Context().Value(handshakeKey{}).(*handshake)
	if hs == nil || hs.g != g {
		return nil
	}
	return hs
}

// isUpgrade reports whether r asks for a WebSocket upgrade.
func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
