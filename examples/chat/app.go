package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wssec/wssec"
	"golang.org/x/time/rate"
)

//go:embed static
var staticFiles embed.FS

// Protocol limits of the chat, on top of the Guard's own.
const (
	maxTextBytes    = 1000 // the validator's max counts runes; this counts bytes
	maxRoomsPerConn = 16
	sessionCookie   = "chat_session"
	readScope       = "chat:read"
	writeScope      = "chat:write"
)

// publishPayload is the payload of the "publish" action.
type publishPayload struct {
	Text string `json:"text" validate:"required,max=1000"`
}

// config is everything newApp needs; main fills it from the flags and
// tests build it directly.
type config struct {
	// Addr is the address the server listens on. It decides whether plain
	// ws:// may be accepted (loopback only) and, with Origins, which
	// origin the page itself has.
	Addr string
	// Origins are extra allowed browser origins. Empty: same-origin only.
	Origins []string
	// JWKSURL, Issuer and Audience configure an external token issuer;
	// with JWKSURL set the built-in development issuer and /login are off.
	JWKSURL  string
	Issuer   string
	Audience string
	// OIDCIssuer is an OpenID Provider's issuer URL (Keycloak realm, Entra
	// tenant, Auth0 domain...): its keys are found by discovery, every
	// token's iss must equal it, and Audience is then required. It
	// excludes JWKSURL and Issuer; like them it turns the development
	// issuer and /login off.
	OIDCIssuer string
	// TenantClaim is a JSON pointer (RFC 6901) to the claim that holds the
	// tenant in external tokens, e.g. "/tid" (Entra ID) or
	// "/https:~1~1example.com~1tenant" (an Auth0 namespaced claim).
	// Empty: the claim named "tenant".
	TenantClaim string
	// TLS reports whether the server serves https (and so wss).
	TLS bool
	// TrustedProxies are the addresses (or CIDRs) of TLS-terminating
	// proxies in front, such as deploy/nginx on the same machine: their
	// X-Forwarded-For and X-Forwarded-Proto are believed, and without TLS
	// here a handshake must have reached the proxy over TLS. Empty: no
	// proxy, and plain ws:// is accepted on loopback.
	TrustedProxies []string
	// Logger receives the Guard's security events; nil means slog.Default().
	Logger *slog.Logger
	// Store, if set, is where the Guard keeps quotas, rates, revocations,
	// bans and tickets (a redisstore shares them between instances); nil
	// keeps them in this process.
	Store wssec.Store
}

// app is the whole chat server. Build it with newApp, serve Handler, and
// call Close to close every socket with 1001 and stop the hub.
type app struct {
	cfg      config
	guard    *wssec.Guard
	hub      *hub
	metrics  *metrics
	issuer   *devIssuer // nil with an external issuer
	loginLim *rate.Limiter
	handler  http.Handler
}

// newApp validates cfg and builds the Guard, the hub and the routes.
func newApp(cfg config) (*app, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	loopback := isLoopbackAddr(cfg.Addr)
	if !cfg.TLS && !loopback {
		return nil, fmt.Errorf("chat: %q is not a loopback address: TLS is required (-tls-cert and -tls-key)", cfg.Addr)
	}
	external := cfg.JWKSURL != "" || cfg.OIDCIssuer != ""
	switch {
	case cfg.OIDCIssuer != "" && (cfg.JWKSURL != "" || cfg.Issuer != ""):
		return nil, errors.New("chat: -oidc-issuer finds the keys and sets the issuer itself: drop -jwks-url and -issuer")
	case cfg.OIDCIssuer != "" && cfg.Audience == "":
		// Without an audience, any access token the provider issues for
		// any other API of the organisation would open a chat socket.
		return nil, errors.New("chat: -oidc-issuer needs -audience (the aud your provider puts in the chat's access tokens)")
	case !external && (cfg.Issuer != "" || cfg.Audience != "" || cfg.TenantClaim != ""):
		return nil, errors.New("chat: -issuer, -audience and -tenant-claim apply to external tokens: set -jwks-url or -oidc-issuer too")
	}
	a := &app{
		cfg:      cfg,
		hub:      newHub(),
		metrics:  newMetrics(),
		loginLim: rate.NewLimiter(10, 20),
	}

	opts := []wssec.Option{
		wssec.WithLogger(cfg.Logger),
		wssec.WithObserver(a.metrics),
		wssec.WithTokenSources(wssec.HeaderToken(), wssec.SubprotocolToken(), wssec.CookieToken(sessionCookie)),
		wssec.WithAction[struct{}]("subscribe"),
		wssec.WithAction[struct{}]("unsubscribe"),
		wssec.WithAction[publishPayload]("publish"),
		wssec.WithChannelRules(wssec.ChannelRule{Pattern: "tenant:{tenant}:*", Read: readScope, Write: writeScope}),
	}
	switch {
	case len(cfg.TrustedProxies) > 0:
		opts = append(opts, wssec.WithTrustedProxies(cfg.TrustedProxies...))
	case !cfg.TLS:
		opts = append(opts, wssec.WithInsecureTransport()) // loopback only, checked above
	}
	if cfg.Store != nil {
		opts = append(opts, wssec.WithStore(cfg.Store))
	}
	if len(cfg.Origins) > 0 {
		// WithOrigins replaces the same-origin default, so the page's own
		// origin must be listed too.
		origins := append(ownOrigins(cfg.Addr, cfg.TLS), cfg.Origins...)
		opts = append(opts, wssec.WithOrigins(origins...))
	}
	if external {
		if cfg.OIDCIssuer != "" {
			opts = append(opts, wssec.WithOIDC(cfg.OIDCIssuer))
		} else {
			opts = append(opts, wssec.WithJWKS(cfg.JWKSURL))
		}
		if cfg.Issuer != "" {
			opts = append(opts, wssec.WithIssuer(cfg.Issuer))
		}
		if cfg.Audience != "" {
			opts = append(opts, wssec.WithAudience(cfg.Audience))
		}
		if cfg.TenantClaim != "" {
			opts = append(opts, wssec.WithClaimMapping(wssec.ClaimMapping{Tenant: cfg.TenantClaim}))
		}
	} else {
		iss, err := newDevIssuer()
		if err != nil {
			return nil, err
		}
		a.issuer = iss
		opts = append(opts, wssec.WithHMACKey(iss.key), wssec.WithIssuer(devIssuerName))
	}
	g, err := wssec.New(opts...)
	if err != nil {
		return nil, err
	}
	a.guard = g
	a.handler = a.routes()
	return a, nil
}

// Handler returns the app's routes.
func (a *app) Handler() http.Handler { return a.handler }

// Close closes every socket with 1001 (going away), waits for their
// goroutines, and stops the hub. It is safe to call more than once.
func (a *app) Close() error {
	err := a.guard.Close()
	a.hub.close()
	return err
}

func (a *app) routes() http.Handler {
	static, _ := fs.Sub(staticFiles, "static")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	if a.issuer != nil {
		mux.HandleFunc("POST /login", a.login)
	}
	mux.Handle("GET /ws", a.guard.Handler(a.serveSocket))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		a.metrics.writeTo(w, a.hub.stats())
	})
	return securityHeaders(mux)
}

// contentSecurityPolicy allows the page's own scripts, styles and
// sockets, and nothing else: no inline script, no eval, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// securityHeaders sets the browser hardening headers on every answer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// loginRequest is the body of POST /login.
type loginRequest struct {
	User   string `json:"user"`
	Tenant string `json:"tenant"`
}

// login signs a development token for the user and tenant it is given,
// issues a one-time ticket for the socket, and sets the session cookie.
// There is no password: this endpoint exists for the demo only, and is
// off when an external issuer is configured.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	if !a.loginLim.Allow() {
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusTooManyRequests, "too many logins; retry later")
		return
	}
	// A JSON content type cannot be sent cross-site without a CORS
	// preflight (which this server never answers), and a browser's Origin
	// must be this site: together they stop login CSRF.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		httpError(w, http.StatusUnsupportedMediaType, "send application/json")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !a.allowedOrigin(o, r) {
		httpError(w, http.StatusForbidden, "origin not allowed")
		return
	}
	var req loginRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		httpError(w, http.StatusBadRequest, "body must be {\"user\":…,\"tenant\":…}")
		return
	}
	if !validName(req.User) || !validName(req.Tenant) {
		httpError(w, http.StatusBadRequest, "user and tenant: 1 to 32 of a-z 0-9 _ -")
		return
	}
	tok, p, err := a.issuer.issue(req.User, req.Tenant, time.Now())
	if err != nil {
		a.cfg.Logger.Error("chat: signing a token", "err", err)
		httpError(w, http.StatusInternalServerError, "internal error")
		return
	}
	ticket, err := a.guard.IssueTicket(r.Context(), p)
	if err != nil {
		a.cfg.Logger.Warn("chat: issuing a ticket", "err", err)
		httpError(w, http.StatusServiceUnavailable, "try again later")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    tok,
		Path:     "/",
		MaxAge:   int(devTokenLifetime / time.Second),
		HttpOnly: true,
		Secure:   a.https(),
		SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]string{"token": tok, "ticket": ticket})
}

// https reports whether the page is served over https: by this server,
// or by the TLS-terminating proxy in front of it.
func (a *app) https() bool { return a.cfg.TLS || len(a.cfg.TrustedProxies) > 0 }

// allowedOrigin reports whether origin is the request's own origin or one
// of the configured extra origins.
func (a *app) allowedOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if a.https() {
		scheme = "https"
	}
	if u.Scheme == scheme && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range a.cfg.Origins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// validName reports whether s is 1 to 32 characters of [a-z0-9_-].
func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}

// Frames the server sends besides the library's own.
type (
	chatFrame struct {
		Action  string       `json:"action"`
		Channel string       `json:"channel"`
		Payload chatFromText `json:"payload"`
	}
	chatFromText struct {
		From string `json:"from"`
		Text string `json:"text"`
	}
	ackFrame struct {
		Action  string `json:"action"`
		Channel string `json:"channel"`
		ID      string `json:"id,omitempty"`
	}
)

// serveSocket runs one connection: every message it reads has already
// passed the Guard (size, rate, envelope, schema, a channel present and
// allowed by the channel rule).
func (a *app) serveSocket(ctx context.Context, c *wssec.Conn) {
	subs := make(map[string]struct{})
	defer func() {
		for ch := range subs {
			a.hub.unsubscribe(ch, c)
		}
	}()
	// The app's own refusals go through Deny: the same error frame as the
	// guards', an event, and a count toward the denial limit.
	refuse := func(m *wssec.Message, msg string) { c.Deny(m, "invalid_message", msg) }
	for {
		m, err := c.ReadMessage(ctx)
		if err != nil {
			return
		}
		// Every action here is channel-bound (none is registered
		// ChannelFree), so the Guard has refused any message without a
		// channel, and authorized m.Channel with the channel rule.
		switch m.Action {
		case "subscribe":
			if _, ok := subs[m.Channel]; !ok {
				if len(subs) >= maxRoomsPerConn {
					refuse(m, fmt.Sprintf("at most %d rooms per connection", maxRoomsPerConn))
					continue
				}
				if !a.hub.subscribe(m.Channel, c) {
					return // the hub is closed: the app is shutting down
				}
				subs[m.Channel] = struct{}{}
			}
			c.Send(ctx, ackFrame{Action: "subscribed", Channel: m.Channel, ID: m.ID})
		case "unsubscribe":
			if _, ok := subs[m.Channel]; ok {
				a.hub.unsubscribe(m.Channel, c)
				delete(subs, m.Channel)
			}
			c.Send(ctx, ackFrame{Action: "unsubscribed", Channel: m.Channel, ID: m.ID})
		case "publish":
			pl, ok := wssec.DataAs[publishPayload](m)
			if !ok {
				refuse(m, "payload required")
				continue
			}
			if len(pl.Text) > maxTextBytes || !utf8.ValidString(pl.Text) {
				refuse(m, fmt.Sprintf("text longer than %d bytes", maxTextBytes))
				continue
			}
			b, err := json.Marshal(chatFrame{Action: "message", Channel: m.Channel, Payload: chatFromText{From: c.Principal().Subject, Text: pl.Text}})
			if err != nil {
				continue
			}
			a.hub.publish(ctx, m.Channel, b)
		}
	}
}

// ownOrigins returns the origins the page itself is served from, derived
// from the listen address: for a loopback address every loopback name of
// it. An unspecified address (":8443", "0.0.0.0:8443") names no origin:
// list the public one with -origin.
func ownOrigins(addr string, tls bool) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	origin := func(h string) string { return scheme + "://" + net.JoinHostPort(h, port) }
	if isLoopbackAddr(addr) {
		return []string{origin("127.0.0.1"), origin("localhost"), origin("::1")}
	}
	ip := net.ParseIP(host)
	if host == "" || ip != nil && ip.IsUnspecified() {
		return nil
	}
	return []string{origin(host)}
}

// isLoopbackAddr reports whether addr (host:port) is a loopback address.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
