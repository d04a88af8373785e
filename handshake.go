package wssec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssec/wssec/internal/clientip"
	"github.com/wssec/wssec/internal/jwtpre"
	"github.com/wssec/wssec/internal/origin"
	"github.com/wssec/wssec/internal/ttlcache"
)

// The request path, top to bottom: Wrap, Handler and Upgrade are the
// entry points; guard answers a refusal; check runs the guard steps in
// order, cheapest first, and is the one place that acts on what they
// find (apply); then each step, in the order check runs it. A step only
// decides: it returns a verdict and never logs, counts or switches to
// report-only itself.

// Wrap guards WebSocket upgrade requests and passes every other request to
// next untouched. A refused handshake is answered here with a plain HTTP
// status and never reaches next. An accepted one reaches next with the
// Principal in its context (PrincipalFrom); next then calls Upgrade. If
// next returns without upgrading, the slots the request held are released.
//
// A request is guarded once per Guard: when this Guard's Wrap already
// accepted it (r.Use(g.Wrap) in front of g.Handler, or Wrap twice), a
// later Wrap, Handler or Upgrade of the same Guard reuses that result —
// one handshake-rate token, one connection slot — instead of guarding
// again.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		if hs := g.handshakeFrom(r); hs != nil && !hs.consumed.Load() {
			next.ServeHTTP(w, r) // an outer Wrap guarded it and owns its lease
			return
		}
		hs, ref := g.guard(w, r)
		if ref != nil {
			return
		}
		defer func() {
			if !hs.upgraded.Load() {
				hs.lease.release()
			}
		}()
		ctx := context.WithValue(r.Context(), handshakeKey{}, hs)
		ctx = context.WithValue(ctx, principalKey{}, hs.principal)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// guard runs the guards and answers a refusal, which it returns.
func (g *Guard) guard(w http.ResponseWriter, r *http.Request) (*handshake, *refusal) {
	if g.isClosed() {
		ref := refuse(503, "shutting_down", "server shutting down", ErrClosed, nil)
		g.emit(r.Context(), Event{Kind: EventHandshakeRefused, Reason: ref.reason, Status: ref.status, Origin: r.Header.Get("Origin"), Err: ref.err})
		ref.write(w)
		return nil, ref
	}
	hs, ref, ev := g.check(r.Context(), r)
	if ref != nil {
		ev.Reason, ev.Status = ref.reason, ref.status
		ev.Detail, ev.Err = ref.err.Error(), ref.err
		g.emit(r.Context(), ev)
		g.recordRefusal(r.Context(), classify(ref.reason), clientKey(ev.RemoteIP), ev.Subject)
		ref.write(w)
		return nil, ref
	}
	return hs, nil
}

// Upgrade upgrades an accepted request to a secured Conn. If Wrap did not
// guard the request, Upgrade runs every guard itself first, so no path
// skips a check; if it did, Upgrade reuses that result and guards nothing
// twice. On refusal it has already answered the client and returns
// the refusal (matching one of the sentinel errors).
func (g *Guard) Upgrade(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	hs := g.handshakeFrom(r)
	if hs != nil && !hs.consumed.CompareAndSwap(false, true) {
		hs = nil // a second Upgrade of one request: guard again (and fail in gorilla)
	}
	owned := false // this call, not Wrap, owns the lease
	if hs == nil {
		if !isUpgrade(r) {
			http.Error(w, "websocket upgrade required", http.StatusBadRequest)
			return nil, ErrNotWebSocket
		}
		var ref *refusal
		if hs, ref = g.guard(w, r); ref != nil {
			return nil, ref // already answered and logged
		}
		owned = true
	}
	ws, err := g.upg.Upgrade(reasonWriter{w}, r, nil)
	if err != nil {
		if owned {
			hs.lease.release()
		}
		return nil, fmt.Errorf("wssec: upgrade: %w", err)
	}
	c := g.newConn(ws, hs)
	if c == nil { // the Guard closed meanwhile
		hs.lease.release()
		return nil, ErrClosed
	}
	hs.upgraded.Store(true)
	ev := Event{Kind: EventHandshakeAccepted, RemoteIP: hs.ip, Origin: hs.origin, Pattern: hs.pattern, Subject: hs.principal.Subject, Detail: "via " + hs.via}
	g.emit(r.Context(), ev)
	// A revocation recorded after the guards checked this principal but
	// before c was registered did not see c in its scan of live sockets:
	// Revoke records before it scans, so checking after registering
	// closes that gap. A store that cannot answer fails closed, as at the
	// handshake (503): the socket closes with 1013, try again later.
	v := g.checkRevocation(r.Context(), hs.principal)
	switch ref := g.apply(r.Context(), &v, &ev); {
	case v.store != nil:
		c.closeFor(ErrStoreUnavailable, CloseTryAgainLater, "service unavailable")
	case ref != nil:
		c.closeFor(ErrRevoked, ClosePolicy, "token revoked")
	case g.banCheck(r.Context(), clientKey(hs.ip), hs.principal.Subject, ev) != nil:
		c.closeFor(ErrBanned, ClosePolicy, "banned") // the same gap, for a ban
	}
	return c, nil
}

// Handler guards the endpoint, upgrades accepted requests and runs serve
// with a context that carries the Principal and ends when the connection
// does. Behind this Guard's Wrap (r.Use(g.Wrap) in chi) it does not guard
// again: one handshake costs one rate token and one connection slot. When
// serve returns, the connection is closed normally (1000); if serve
// panics, the panic is logged and the connection closed with 1011.
//
// serve runs on a goroutine of its own and the HTTP handler returns right
// after the upgrade, so net/http lets go of the request and its buffers:
// an idle socket holds less. serve must return once ctx is done.
func (g *Guard) Handler(serve func(ctx context.Context, c *Conn)) http.Handler {
	return g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := g.Upgrade(w, r)
		if err != nil {
			return
		}
		g.mu.Lock()
		if g.closed { // Close has begun: it does not wait for this one
			g.mu.Unlock()
			c.serve(serve)
			return
		}
		g.serving.Add(1)
		g.mu.Unlock()
		go func() {
			defer g.serving.Done()
			c.serve(serve)
		}()
	}))
}

// serve runs the application's serve function for c and closes c after it.
func (c *Conn) serve(fn func(ctx context.Context, c *Conn)) {
	defer func() {
		if v := recover(); v != nil {
			c.g.log.Error("wssec: serve function panicked", "panic", v, "stack", string(debug.Stack()))
			c.Close(CloseInternalError, "internal error")
			return
		}
		c.Close(websocket.CloseNormalClosure, "")
	}()
	fn(c.Context(), c)
}

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

// verdict is what one guard step found: a refusal (nil when the step
// admits the request), whose guard field names the guard that refused
// when it can run report-only; and, when the Store could not decide, the
// failure (the step then decided without the store, or refused: see
// SharedStore for which). Two words, so a step returns it in registers.
type verdict struct {
	ref   *refusal
	store *storeFailure
}

// storeFailure is a Store's error and the check it could not decide.
type storeFailure struct {
	check string // storeCheckRate, …
	err   error
}

// refusedBy is the verdict of a step of guard that refuses with ref (nil:
// admits).
func refusedBy(guard GuardName, ref *refusal) verdict {
	if ref != nil {
		ref.guard = guard
	}
	return verdict{ref: ref}
}

// storeVerdict is the verdict of a step whose store could not decide
// check: ref is the refusal when the step fails closed, nil when it
// decided without the store.
func storeVerdict(check string, err error, ref *refusal) verdict {
	return verdict{ref: ref, store: &storeFailure{check: check, err: err}}
}

// apply acts on a step's verdict, the one place that does: a store
// failure becomes an EventStoreUnavailable (storeFailed), a refusal by a
// report-only guard an EventReportOnly and no refusal (enforce), and any
// other refusal is returned for the caller to answer. ev is what the
// handshake has learned so far (client IP, origin, subject); apply does
// not change it.
func (g *Guard) apply(ctx context.Context, v *verdict, ev *Event) *refusal {
	if v.ref == nil && v.store == nil {
		return nil // the common case, inlined: nothing to act on
	}
	return g.act(ctx, v, ev)
}

// act is apply for a verdict that holds something.
func (g *Guard) act(ctx context.Context, v *verdict, ev *Event) *refusal {
	if v.store != nil {
		g.storeFailed(ctx, v.store.check, v.store.err, *ev)
	}
	return g.enforce(ctx, v.ref, ev)
}

// check runs the guard steps, cheapest first, and applies each verdict
// as it comes: nothing that costs a signature check runs for a request a
// cheaper step refused. On refusal nothing was upgraded, no slot is held,
// and the caller answers with the refusal and ev (the refused event,
// filled in as far as the steps got). The numbers are the README's
// (Layout).
func (g *Guard) check(ctx context.Context, r *http.Request) (*handshake, *refusal, Event) {
	ev := Event{Kind: EventHandshakeRefused, Origin: r.Header.Get("Origin")}
	var v verdict // each step's, in turn

	// 1. Client: the peer's address, and the client's address and scheme
	// as a trusted proxy reports them (one parse). A trusted proxy's
	// header fault is a 400 of its own, decided before the transport: it
	// is not a plain-ws:// problem.
	var res clientip.Result
	remote, v := g.checkClient(r, &res)
	ev.RemoteIP = remote
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		return nil, ref, ev
	}

	// 2. Transport: TLS, directly or as the trusted proxy reports it.
	secure, v := g.checkTransport(r, &res)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		return nil, ref, ev
	}
	ip := res.Client
	ev.RemoteIP = ip
	key := clientKey(ip)

	// 3. Client IP ban: a banned client gets no further work.
	v = g.checkIPBan(ctx, key)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		return nil, ref, ev
	}

	// 4. Origin.
	hs := &handshake{g: g, ip: ip}
	sameOrigin, v := g.checkOrigin(r, secure, hs)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		return nil, ref, ev
	}
	ev.Pattern = hs.pattern

	// 5. Host.
	v = g.checkHost(r.Host, secure, sameOrigin)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		return nil, ref, ev
	}

	// 6. Handshake rate per client, then 7. connection quotas per IP and
	// in total: both before any signature is checked.
	rate, v := g.checkRate(ctx, key)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		return nil, ref, ev
	}
	ls, v := g.checkIPQuota(ctx, key, rate)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		return nil, ref, ev
	}
	if ls == nil {
		ls = &lease{l: g.lim} // let through by a report-only quota: no slot held
	}

	// 8. Credential: a one-time ticket, the custom authenticator, or a
	// token, verified. From here on a refusal gives the slots back.
	p, v := g.checkCredential(ctx, r, hs)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		ls.release()
		return nil, ref, ev
	}

	// 9. Replay: a single-use token is admitted once.
	if hs.via == "token" {
		v = g.checkReplay(ctx, p)
		if ref := g.apply(ctx, &v, &ev); ref != nil {
			ls.release()
			return nil, ref, ev
		}
	}

	// 10. Revocation, of every kind of credential.
	v = g.checkRevocation(ctx, p)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		ls.release()
		return nil, ref, ev
	}
	ev.Subject = p.Subject

	// 11. Subject ban.
	v = g.checkSubjectBan(ctx, p.Subject)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		ls.release()
		return nil, ref, ev
	}

	// 12. Connection quota per subject.
	v = g.checkSubjectQuota(ctx, ls, p.Subject)
	if ref := g.apply(ctx, &v, &ev); ref != nil {
		ls.release()
		return nil, ref, ev
	}
	hs.principal, hs.lease = p, ls
	return hs, nil, ev
}

// 1. checkClient parses the peer's address and resolves, into res, the
// client's address and scheme behind trusted proxies. It returns the
// peer's address (zero when unparseable) for the refusal's event.
func (g *Guard) checkClient(r *http.Request, res *clientip.Result) (netip.Addr, verdict) {
	remote, err := clientip.ParseRemoteAddr(r.RemoteAddr)
	if err != nil {
		return remote, verdict{ref: refuse(400, "remote_addr", "bad request", ErrBadForwarded, err)}
	}
	if *res, err = clientip.Resolve(remote, r.Header, g.trusted, g.ipFrom); err != nil {
		return remote, verdict{ref: refuse(400, "forwarded_malformed", "bad forwarding headers", ErrBadForwarded, err)}
	}
	return remote, verdict{}
}

// 2. checkTransport requires TLS unless WithInsecureTransport: the
// request's own, or the scheme a trusted proxy reports. It reports
// whether the request arrived securely.
func (g *Guard) checkTransport(r *http.Request, res *clientip.Result) (secure bool, v verdict) {
	secure = r.TLS != nil
	if res.ViaProxy {
		switch res.Proto {
		case "https", "wss":
			secure = true
		case "http", "ws":
			secure = false
		}
	}
	if !secure && !g.cfg.insecureTransport {
		v = refusedBy(GuardTransport, refuse(426, "transport_insecure", "TLS required: connect with wss://", ErrInsecureTransport, g.transportHint(r.Header, *res)))
	}
	return secure, v
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

// 3. checkIPBan refuses a banned client key (WithBanPolicy, BanIP). When
// the store cannot say, this instance's own bans decide.
func (g *Guard) checkIPBan(ctx context.Context, key netip.Addr) verdict {
	if g.bans == nil {
		return verdict{}
	}
	banned, wait, err := g.ipBanned(ctx, key)
	return g.banVerdict(banned, wait, err)
}

// banVerdict is the verdict of a ban check.
func (g *Guard) banVerdict(banned bool, wait time.Duration, storeErr error) verdict {
	var v verdict
	if storeErr != nil {
		v = storeVerdict(storeCheckBan, storeErr, nil)
	}
	if banned {
		v.ref = banRefusal(wait)
		v.ref.guard = GuardBan
	}
	return v
}

// 4. checkOrigin applies the origin allowlist (or same-origin by default).
// It reports whether the Origin was admitted as the request's own origin
// (same-origin) rather than by an allowlist pattern.
func (g *Guard) checkOrigin(r *http.Request, secure bool, hs *handshake) (sameOrigin bool, v verdict) {
	vals := r.Header.Values("Origin")
	if len(vals) == 0 {
		if g.cfg.allowMissingOrigin {
			return false, verdict{}
		}
		return false, refusedBy(GuardOrigin, refuse(403, "origin_missing", "origin not allowed", ErrOriginNotAllowed, errors.New("no Origin header")))
	}
	if len(vals) > 1 {
		return false, refusedBy(GuardOrigin, refuse(403, "origin_not_allowed", "origin not allowed", ErrOriginNotAllowed, errors.New("several Origin headers")))
	}
	o, err := origin.ParseOrigin(vals[0])
	if err != nil {
		reason := "origin_not_allowed"
		if vals[0] == "null" {
			reason = "origin_null"
		}
		return false, refusedBy(GuardOrigin, refuse(403, reason, "origin not allowed", ErrOriginNotAllowed, err))
	}
	if g.origins != nil {
		i, ok := g.origins.Match(o)
		switch {
		case ok:
			hs.pattern = g.originLabels[i]
		case g.cfg.sameOrigin && origin.SameOrigin(o, r.Host, secure):
			sameOrigin = true
		default:
			return false, refusedBy(GuardOrigin, refuse(403, "origin_not_allowed", "origin not allowed", ErrOriginNotAllowed, nil))
		}
	} else if !origin.SameOrigin(o, r.Host, secure) {
		return false, refusedBy(GuardOrigin, refuse(403, "origin_not_allowed", "origin not allowed", ErrOriginNotAllowed, errors.New("not same-origin")))
	} else {
		sameOrigin = true
	}
	hs.origin = vals[0]
	return sameOrigin, verdict{}
}

// 5. checkHost applies WithHosts. Without it, only a plain-transport
// same-origin handshake is checked: there a DNS-rebinding page (its own
// name as Host, an Origin to match) would pass every other guard, so the
// Host must be an IP literal or "localhost", names no DNS answer can
// re-point. Over TLS the certificate names the service; an allowlisted
// Origin names the page. It belongs to the origin guard (GuardOrigin).
func (g *Guard) checkHost(host string, secure, sameOrigin bool) verdict {
	if g.hosts == nil && (secure || !sameOrigin) {
		return verdict{}
	}
	o, err := origin.RequestOrigin(host, secure)
	if err != nil {
		return refusedBy(GuardOrigin, refuse(403, "host_not_allowed", "host not allowed", ErrHostNotAllowed, fmt.Errorf("Host: %w", err)))
	}
	if g.hosts != nil {
		if _, ok := g.hosts.Match(o); ok {
			return verdict{}
		}
		return refusedBy(GuardOrigin, refuse(403, "host_not_allowed", "host not allowed", ErrHostNotAllowed, errors.New("Host matches no WithHosts pattern")))
	}
	if origin.IsLiteralOrLocalhost(o) {
		return verdict{}
	}
	return refusedBy(GuardOrigin, refuse(403, "host_not_allowed", "host not allowed", ErrHostNotAllowed,
		errors.New("same-origin over plain ws:// with a DNS name as Host (DNS rebinding?): list the names the service answers to with WithHosts")))
}

// rateOutcome is what the rate step leaves for the quota step. With a
// SharedStore, the one round trip that decided the rate also took the
// client's slots (held) or found a pool full (full, a *QuotaError).
// useStore is false once the store has failed during this handshake, so
// the quota step decides with the instance's own limits.
type rateOutcome struct {
	held     *lease
	full     error
	useStore bool
}

// 6. checkRate applies the handshake rate per client key. With a
// SharedStore it asks for the rate and the client's slots at once (one
// round trip); when the store cannot decide, the instance's own limiter
// does.
func (g *Guard) checkRate(ctx context.Context, key netip.Addr) (rateOutcome, verdict) {
	l, now := g.lim, g.now()
	out := rateOutcome{useStore: l.store != nil}
	var v verdict
	if ss, ok := l.store.(SharedStore); ok {
		rel, err := ss.AllowAcquire(ctx, "hs:"+key.String(), l.hsRate, l.hsBurst, now, l.ipSlots(key))
		var re *RateError
		switch {
		case err == nil:
			out.held = &lease{l: l, storeRel: rel}
			return out, verdict{}
		case errors.As(err, &re):
			// Let through by a report-only rate, the client still
			// needs its slots: the quota step takes them.
			return out, refusedBy(GuardHandshakeRate, rateRefusal(re.RetryAfter))
		case errors.As(err, new(*QuotaError)):
			out.full = err
			return out, verdict{}
		}
		v = storeVerdict(storeCheckRate, err, nil)
		out.useStore = false
	}
	ok, wait, err := l.allowHandshake(ctx, key, now, out.useStore)
	if err != nil {
		v = storeVerdict(storeCheckRate, err, nil)
		out.useStore = false
		ok, wait, _ = l.allowHandshake(ctx, key, now, false)
	}
	if !ok {
		v.ref = rateRefusal(wait)
		v.ref.guard = GuardHandshakeRate
	}
	return out, v
}

// 7. checkIPQuota takes a per-IP and a total slot, unless the rate step
// already did (or found a pool full). When the store cannot decide, the
// instance's own counters do. The lease is nil when a pool is full.
func (g *Guard) checkIPQuota(ctx context.Context, key netip.Addr, rate rateOutcome) (*lease, verdict) {
	if rate.held != nil {
		return rate.held, verdict{}
	}
	var v verdict
	var ls *lease
	var ref *refusal
	if rate.full != nil {
		ref = quotaRefusal(rate.full)
	} else {
		var err error
		if ls, ref, err = g.lim.acquireIP(ctx, key, rate.useStore); err != nil {
			v = storeVerdict(storeCheckQuota, err, nil)
			ls, ref, _ = g.lim.acquireIP(ctx, key, false)
		}
	}
	if ref != nil {
		ref.retryAfter, ref.guard = 1, GuardQuota
		v.ref = ref
	}
	return ls, v
}

// 8. checkCredential finds and verifies the credential: a one-time
// ticket if the URL carries one, else the custom authenticator, else a
// token from the configured sources. It records in hs how the client
// authenticated.
func (g *Guard) checkCredential(ctx context.Context, r *http.Request, hs *handshake) (*Principal, verdict) {
	if p, found, v := g.redeemTicket(ctx, r, hs.ip); found || v.ref != nil {
		hs.via = "ticket"
		return p, v
	}
	if g.cfg.authenticator != nil {
		hs.via = "authenticator"
		p, err := g.cfg.authenticator(r)
		if err != nil || p == nil {
			if err == nil {
				err = errors.New("authenticator returned no principal")
			}
			return nil, verdict{ref: refuse(401, "authenticator", "unauthorized", ErrTokenInvalid, err)}
		}
		if len(p.Subject) > maxSubjectLen {
			return nil, verdict{ref: refuse(401, "authenticator", "unauthorized", ErrTokenInvalid, errors.New("subject too long"))}
		}
		return p, verdict{}
	}
	if g.ver == nil { // WithAnonymous alone
		hs.via = "anonymous"
		return &Principal{}, verdict{}
	}
	tok, ref := g.extractToken(r, hs)
	if ref != nil {
		return nil, verdict{ref: ref}
	}
	if tok == "" {
		if g.cfg.anonymous {
			hs.via = "anonymous"
			return &Principal{}, verdict{}
		}
		return nil, verdict{ref: refuse(401, "token_missing", "token missing", ErrTokenMissing, nil)}
	}
	hs.via = "token"
	p, ref := g.ver.verify(ctx, tok)
	return p, verdict{ref: ref}
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

// 9. checkReplay applies the replay cache (WithSingleUseTokens) to a
// verified token's principal, at a handshake or a re-authentication.
// With a SharedStore the cache is shared; when the store cannot answer,
// the token is refused (fail closed).
func (g *Guard) checkReplay(ctx context.Context, p *Principal) verdict {
	if !g.cfg.singleUse {
		return verdict{}
	}
	if p.ID == "" || len(p.ID) > maxTokenIDLen {
		return verdict{ref: tokenRefusal("token_replay", "single-use tokens need a jti")}
	}
	now := g.now()
	exp := p.ExpiresAt.Add(g.cfg.clockSkew)
	if g.shared != nil {
		first, err := g.shared.Once(ctx, replayTokenIDKeyPrefix+p.ID, max(exp.Sub(now), time.Millisecond))
		if err != nil {
			return storeVerdict(storeCheckReplay, err, storeRefusal(err))
		}
		if !first {
			return verdict{ref: tokenRefusal("token_replay", "token already used")}
		}
		return verdict{}
	}
	switch err := g.sess.replay.Add(replayTokenIDKeyPrefix+p.ID, struct{}{}, exp.UnixNano(), now.UnixNano()); {
	case errors.Is(err, ttlcache.ErrExists):
		return verdict{ref: tokenRefusal("token_replay", "token already used")}
	case err != nil:
		return verdict{ref: refuse(503, "replay_cache_full", "service unavailable", ErrCapacity, err)}
	}
	return verdict{}
}

// 10. checkRevocation refuses a principal whose token or subject was
// revoked (isRevoked). When the store cannot answer, it refuses (fail
// closed) with the store's error in the verdict.
func (g *Guard) checkRevocation(ctx context.Context, p *Principal) verdict {
	revoked, err := g.isRevoked(ctx, p, g.now())
	if err != nil {
		return storeVerdict(storeCheckRevocation, err, storeRefusal(err))
	}
	if revoked {
		return verdict{ref: refuse(401, "token_revoked", "invalid token", ErrRevoked, nil)}
	}
	return verdict{}
}

// 11. checkSubjectBan refuses a banned subject; an anonymous principal
// (no subject) has none.
func (g *Guard) checkSubjectBan(ctx context.Context, sub string) verdict {
	if g.bans == nil {
		return verdict{}
	}
	banned, wait, err := g.subjectBanned(ctx, sub)
	return g.banVerdict(banned, wait, err)
}

// 12. checkSubjectQuota adds the per-subject slot to ls. With
// WithEvictOldest a full pool closes the subject's oldest socket
// instead. When the store cannot decide, the instance's own counters do.
// An anonymous principal (no subject) takes no slot.
func (g *Guard) checkSubjectQuota(ctx context.Context, ls *lease, sub string) verdict {
	if sub == "" {
		return verdict{}
	}
	var v verdict
	useStore := g.lim.store != nil
	ref, err := ls.acquireSubject(ctx, sub, useStore)
	if err == nil && ref != nil && g.cfg.evictOldest {
		ref, err = g.acquireEvicting(ctx, ls, sub, ref, useStore)
	}
	if err != nil {
		v = storeVerdict(storeCheckQuota, err, nil)
		ref, _ = ls.acquireSubject(ctx, sub, false)
		if ref != nil && g.cfg.evictOldest {
			ref, _ = g.acquireEvicting(ctx, ls, sub, ref, false)
		}
	}
	if ref != nil {
		ref.retryAfter, ref.guard = 1, GuardQuota
		v.ref = ref
	}
	return v
}
