package wssec

import (
	"crypto"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/time/rate"
)

// Option configures a Guard. Options never fail and never log: New
// validates the applied configuration once and reports every problem.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Defaults. Each is the secure choice; the option that changes it says so.
const (
	DefaultMaxPerIP         = 32
	DefaultMaxPerSubject    = 8
	DefaultMaxTotal         = 10000
	DefaultHandshakeRate    = rate.Limit(5)
	DefaultHandshakeBurst   = 20
	DefaultMessageRate      = rate.Limit(20)
	DefaultMessageBurst     = 40
	DefaultMaxMessageSize   = 32 << 10
	DefaultMaxTokenSize     = 8 << 10
	DefaultIdleTimeout      = 60 * time.Second
	DefaultPingInterval     = 25 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMaxConnAge       = 2 * time.Hour
	DefaultSendQueue        = 64
	DefaultDenialLimit      = 5
	DefaultClockSkew        = 30 * time.Second
	DefaultMaxTokenLifetime = 15 * time.Minute
	DefaultSubprotocol      = "wssec.v1"

	// Sessions: tickets, single-use tokens, revocations, expiry warning.
	DefaultTicketTTL      = 30 * time.Second
	DefaultTicketCapacity = 100_000
	DefaultReplayCapacity = 100_000
	DefaultRevokeCapacity = 100_000
	DefaultExpiryWarning  = 30 * time.Second
)

// Server hardening defaults applied by HardenServer.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultServerIdleTimeout = 60 * time.Second
)

type tokenSourceKind uint8

const (
	srcHeader tokenSourceKind = iota + 1
	srcSubprotocol
	srcCookie
	srcQuery
)

// TokenSource names one place a token may be taken from. Build one with
// HeaderToken, SubprotocolToken, CookieToken or QueryToken.
type TokenSource struct {
	kind tokenSourceKind
	name string
}

// HeaderToken takes the token from "Authorization: Bearer <token>".
func HeaderToken() TokenSource { return TokenSource{kind: srcHeader} }

// SubprotocolToken takes the token from a Sec-WebSocket-Protocol entry
// "bearer.<token>", the one header a browser can set on a WebSocket. The
// response never echoes it: the server selects one of WithSubprotocols.
func SubprotocolToken() TokenSource { return TokenSource{kind: srcSubprotocol} }

// CookieToken takes the token from the named cookie. A cookie is ambient
// (the browser attaches it to cross-site requests too), so it is accepted
// only when the request carries an Origin that passed the origin guard;
// WithAllowMissingOrigin never extends to cookies.
func CookieToken(name string) TokenSource { return TokenSource{kind: srcCookie, name: name} }

// QueryToken takes the token from the named query parameter. URLs end up in
// access logs and browser history, so New logs a warning when this source
// is configured; prefer SubprotocolToken or a one-time ticket.
func QueryToken(name string) TokenSource { return TokenSource{kind: srcQuery, name: name} }

func (s TokenSource) String() string {
	switch s.kind {
	case srcHeader:
		return "header"
	case srcSubprotocol:
		return "subprotocol"
	case srcCookie:
		return "cookie:" + s.name
	case srcQuery:
		return "query:" + s.name
	}
	return "invalid"
}

// actionSpec is a registered action: the Go type its payload decodes into
// and its ActionOptions.
type actionSpec struct {
	name  string
	typ   reflect.Type
	opts  actionConfig
	alloc func() (*Message, reflect.Value) // newHolder[T]
}

type config struct {
	origins            []string
	originsSet         bool
	sameOrigin         bool
	allowMissingOrigin bool

	jwksURL       string
	jwksRefresh   time.Duration
	keySet        jwk.Set
	hmacKey       []byte
	authenticator func(*http.Request) (*Principal, error)
	anonymous     bool
	keyOption     string // the last of WithJWKS, WithKeySet, WithHMACKey, WithOIDC, WithPublicKey given
	oidcIssuer    string
	publicKey     crypto.PublicKey
	publicKeySet  bool
	startNoKeys   bool
	claimMapping  ClaimMapping
	tokenType     string

	issuer           string
	audience         []string
	algorithms       []string
	clockSkew        time.Duration
	maxTokenLifetime time.Duration
	maxTokenSize     int
	tokenSources     []TokenSource
	subprotocols     []string

	trustedProxies    []string
	clientIPHeader    string // "" until WithClientIPHeader: X-Forwarded-For
	clientIPHeaderSet bool
	hosts             []string
	hostsSet          bool
	insecureTransport bool

	maxPerIP, maxPerSubject, maxTotal int
	handshakeRate                     rate.Limit
	handshakeBurst                    int
	messageRate                       rate.Limit
	messageBurst                      int
	maxMessageSize                    int64
	compression                       bool
	binary                            bool

	idleTimeout, pingInterval, writeTimeout, maxConnAge time.Duration
	sendQueue                                           int

	actions      []actionSpec
	channelRules []ChannelRule
	policy       Policy
	denialLimit  int

	store     Store
	logger    *slog.Logger
	observers []Observer
	now       func() time.Time

	limiterCapacity int

	allowNoIat     bool // WithTokensWithoutIssuedAt
	evictOldest    bool // WithEvictOldest
	revokeCapacity int  // WithRevocationCapacity
	singleUse      bool
	replayCapacity int
	ticketTTL      time.Duration
	ticketCapacity int
	ticketBindIP   bool
	expiryWarning  time.Duration

	ban        *BanPolicy
	reportOnly map[GuardName]bool

	// compiled is filled by validate, which parses the options above;
	// New hands it to the Guard.
	compiled compiled
}

func defaultConfig() config {
	return config{
		clockSkew:        DefaultClockSkew,
		maxTokenLifetime: DefaultMaxTokenLifetime,
		maxTokenSize:     DefaultMaxTokenSize,
		maxPerIP:         DefaultMaxPerIP,
		maxPerSubject:    DefaultMaxPerSubject,
		maxTotal:         DefaultMaxTotal,
		handshakeRate:    DefaultHandshakeRate,
		handshakeBurst:   DefaultHandshakeBurst,
		messageRate:      DefaultMessageRate,
		messageBurst:     DefaultMessageBurst,
		maxMessageSize:   DefaultMaxMessageSize,
		idleTimeout:      DefaultIdleTimeout,
		pingInterval:     DefaultPingInterval,
		writeTimeout:     DefaultWriteTimeout,
		maxConnAge:       DefaultMaxConnAge,
		sendQueue:        DefaultSendQueue,
		denialLimit:      DefaultDenialLimit,
		jwksRefresh:      5 * time.Minute,
		limiterCapacity:  1 << 16,
		replayCapacity:   DefaultReplayCapacity,
		revokeCapacity:   DefaultRevokeCapacity,
		ticketTTL:        DefaultTicketTTL,
		ticketCapacity:   DefaultTicketCapacity,
		expiryWarning:    DefaultExpiryWarning,
	}
}

// WithOrigins sets the allowed browser origins: exact origins
// ("https://app.example.com", "http://localhost:8080") and wildcard
// subdomains ("https://*.example.com", which matches a.example.com and
// a.b.example.com but not example.com). Patterns are parsed by New: a path,
// a bare "*", "h*", "https://*", or a wildcard that is not a whole left-most
// label is a configuration error. Unicode hosts are converted to punycode and
// default ports are folded.
//
// Default: same-origin only (the Origin's host and port equal the request's
// Host). Repeated calls add patterns; once any pattern is set, same-origin
// requests are not implicitly allowed.
func WithOrigins(patterns ...string) Option {
	return optionFunc(func(c *config) {
		c.origins = append(c.origins, patterns...)
		c.originsSet = true
	})
}

// WithSameOrigin keeps same-origin requests allowed beside the patterns
// of WithOrigins (without WithOrigins, same-origin is the default anyway).
// Behind a proxy that rewrites Host, same-origin compares against the
// rewritten Host: list the public origin with WithOrigins instead.
func WithSameOrigin() Option {
	return optionFunc(func(c *config) { c.sameOrigin = true })
}

// WithAllowMissingOrigin admits handshakes without an Origin header, as
// sent by non-browser clients. A browser always sends Origin, so this does
// not weaken cross-site protection for token sources a page cannot forge;
// cookie tokens are still refused without a matching Origin, and "null"
// origins are always refused. Default: refused. New logs a warning.
func WithAllowMissingOrigin() Option {
	return optionFunc(func(c *config) { c.allowMissingOrigin = true })
}

// WithJWKS verifies tokens with the keys published at url, which must be
// https (or http on a loopback address, for a local sidecar or tests). The
// first fetch happens in New under a timeout, so a bad URL fails fast
// (see WithStartWithoutKeys); the set is refreshed in the background
// every 5 minutes, and a token whose kid is unknown triggers a refetch at
// once, at most one every 5 seconds. An outage keeps the last good set.
// Keys with "use":"enc", an encryption alg, or a key type or curve that
// cannot verify here are skipped (a config_warning event, reason
// jwks_key_skipped, names them); private or symmetric keys refuse the set.
//
// Without WithIssuer every issuer whose tokens this key set verifies is
// accepted. Several issuers can share one signing key (every Entra ID
// tenant is signed by the same Microsoft keys), so set WithIssuer, or use
// WithOIDC, which always checks it. The last of WithJWKS, WithKeySet,
// WithHMACKey, WithOIDC and WithPublicKey wins.
func WithJWKS(url string) Option {
	return optionFunc(func(c *config) {
		c.clearKeys()
		c.jwksURL, c.keyOption = url, "WithJWKS"
	})
}

// clearKeys forgets the key options given so far: the last one wins.
func (c *config) clearKeys() {
	c.jwksURL, c.keySet, c.hmacKey, c.oidcIssuer = "", nil, nil, ""
	c.publicKey, c.publicKeySet = nil, false
}

// WithOIDC verifies tokens from an OpenID Provider found by discovery
// (OpenID Connect Discovery 1.0): New fetches
// {issuer}/.well-known/openid-configuration (a trailing '/' of issuer is
// removed before the suffix) under a timeout and a 256 KiB cap, requires
// its "issuer" member to equal issuer exactly (no trailing-slash, case or
// host-spelling leniency), and takes the keys from its "jwks_uri". Every
// token's iss must equal issuer; WithIssuer with another value is a
// configuration error. The document and the keys are refreshed together
// on WithJWKSRefresh's schedule, and the key set is handled as for
// WithJWKS (kid-miss refetch, skipped encryption keys, outages).
//
// issuer is the provider's documented issuer URL, e.g.
// "https://keycloak.example.com/realms/acme" or
// "https://login.microsoftonline.com/{tenant-id}/v2.0"; it and the
// document's jwks_uri must be https, or http on a loopback address. The
// last of WithJWKS, WithKeySet, WithHMACKey, WithOIDC and WithPublicKey
// wins.
func WithOIDC(issuer string) Option {
	return optionFunc(func(c *config) {
		c.clearKeys()
		c.oidcIssuer, c.keyOption = issuer, "WithOIDC"
	})
}

// WithPublicKey verifies tokens with one static public key, e.g. read
// from a PEM file with x509.ParsePKIXPublicKey: an *ecdsa.PublicKey on
// P-256, P-384 or P-521 (ES256, ES384, ES512), an ed25519.PublicKey
// (EdDSA) or an *rsa.PublicKey of at least 2048 bits (RS256 to RS512 and
// PS256 to PS512). The accepted algorithms are derived from the key and
// pinned; WithAlgorithms may narrow them. Any other key (a private key,
// a short RSA key, another curve, an HMAC secret) is a configuration
// error. A token's kid is ignored. The last of WithJWKS, WithKeySet,
// WithHMACKey, WithOIDC and WithPublicKey wins.
func WithPublicKey(key crypto.PublicKey) Option {
	return optionFunc(func(c *config) {
		c.clearKeys()
		c.publicKey, c.publicKeySet, c.keyOption = key, true, "WithPublicKey"
	})
}

// WithStartWithoutKeys lets New succeed when the first fetch of a
// WithJWKS or WithOIDC key set fails (the identity provider is down while
// this instance starts). Until keys arrive, every handshake that presents
// a token is refused with 503 and Retry-After (fail closed, reason
// keys_unavailable); the fetch is retried after 1 s, doubling up to 30 s,
// and a handshake with a kid may ask for one as well (at most one every
// 5 seconds). A config_warning event with reason keys_pending is emitted
// by New, jwks_refresh_failed for each failed retry, and keys_available
// when the keys arrive. Default: New fails when the first fetch fails, so
// a wrong URL is found at once.
func WithStartWithoutKeys() Option {
	return optionFunc(func(c *config) { c.startNoKeys = true })
}

// WithClaimMapping reads the Principal's Subject, Tenant, Scopes and Roles
// from the claims m points at (see ClaimMapping), e.g.
// ClaimMapping{Tenant: "/tid", Roles: "/realm_access/roles"}. The
// Principal's Tenant is what "{tenant}" in channel rules compares with.
// Default: sub, tenant, scope or scp, roles. The last call wins.
func WithClaimMapping(m ClaimMapping) Option {
	return optionFunc(func(c *config) { c.claimMapping = m })
}

// WithTokenType requires the token's "typ" header to be typ, compared
// without regard to case and with the "application/" prefix optional
// (RFC 7515 §4.1.9). Use "at+jwt" to accept only RFC 9068 access tokens,
// so that an ID token from the same issuer, signed by the same key, is
// refused (401, reason token_type). Allowed values: "at+jwt" and "JWT";
// anything else is a configuration error. Default: any typ that is
// absent, "JWT" or "at+jwt". The last call wins.
func WithTokenType(typ string) Option {
	return optionFunc(func(c *config) { c.tokenType = typ })
}

// WithJWKSRefresh sets how often a WithJWKS key set (or a WithOIDC
// document and its key set) is refetched in the background. Default 5
// minutes; at least 1 second.
func WithJWKSRefresh(d time.Duration) Option {
	return optionFunc(func(c *config) { c.jwksRefresh = d })
}

// WithKeySet verifies tokens with the public keys of set. A set that mixes
// symmetric and asymmetric keys, or holds private keys, is a configuration
// error. The last of WithJWKS, WithKeySet, WithHMACKey, WithOIDC and
// WithPublicKey wins.
func WithKeySet(set jwk.Set) Option {
	return optionFunc(func(c *config) {
		c.clearKeys()
		c.keySet, c.keyOption = set, "WithKeySet"
	})
}

// WithHMACKey verifies HS256/HS384/HS512 tokens with a shared secret of at
// least 32 bytes (RFC 7518 §3.2: at least the hash size); HS384 needs 48
// bytes and HS512 64. The key is copied. The last of WithJWKS,
// WithKeySet, WithHMACKey, WithOIDC and WithPublicKey wins.
func WithHMACKey(key []byte) Option {
	k := append(make([]byte, 0, len(key)), key...)
	return optionFunc(func(c *config) {
		c.clearKeys()
		c.hmacKey, c.keyOption = k, "WithHMACKey"
	})
}

// WithAuthenticator replaces token verification with a custom scheme. It
// runs after every cheaper guard; a non-nil error refuses the handshake with
// 401, and a nil Principal with a nil error is treated as a refusal too.
func WithAuthenticator(f func(r *http.Request) (*Principal, error)) Option {
	return optionFunc(func(c *config) { c.authenticator = f })
}

// WithAnonymous admits handshakes without any credential. The handler sees
// an empty Principal; per-subject quotas do not apply. Without it, New
// requires one of WithJWKS, WithKeySet, WithHMACKey or WithAuthenticator.
func WithAnonymous() Option {
	return optionFunc(func(c *config) { c.anonymous = true })
}

// WithIssuer requires the token's iss claim to equal s. Default: not
// checked (with WithOIDC: the discovered issuer). Without it, a WithJWKS
// key set shared by several issuers (Entra ID tenants) accepts the
// tokens of all of them. The last call wins.
func WithIssuer(s string) Option { return optionFunc(func(c *config) { c.issuer = s }) }

// WithAudience requires the token's aud claim to contain one of auds.
// Repeated calls add audiences. Default: not checked.
func WithAudience(auds ...string) Option {
	return optionFunc(func(c *config) { c.audience = append(c.audience, auds...) })
}

// WithAlgorithms restricts the accepted signature algorithms (e.g. "ES256",
// "EdDSA"). Default: every algorithm the configured keys support; "none" is
// never accepted. Repeated calls add algorithms.
func WithAlgorithms(algs ...string) Option {
	return optionFunc(func(c *config) { c.algorithms = append(c.algorithms, algs...) })
}

// WithClockSkew sets the leeway applied to exp, nbf and iat. Default 30 s;
// zero means none; negative or over 5 minutes is a configuration error.
func WithClockSkew(d time.Duration) Option {
	return optionFunc(func(c *config) { c.clockSkew = d })
}

// WithMaxTokenLifetime refuses tokens whose exp - iat (or exp - now when
// iat is absent) is longer than d. Default 15 minutes; must be positive.
func WithMaxTokenLifetime(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxTokenLifetime = d })
}

// WithTokensWithoutIssuedAt accepts tokens that carry no iat claim.
// Default: such tokens are refused with 401 ("iat missing"), because no
// revocation can be kept long enough to cover them: a token without iat
// proves neither when it was issued (so a subject revocation cannot tell
// it from a newer token) nor how long it may live (its lifetime is
// measured from the handshake, so one whose exp is far away is accepted
// again once exp comes within WithMaxTokenLifetime). With this option a
// token without iat is refused while a revocation of its subject is kept
// (WithMaxTokenLifetime plus twice WithClockSkew after the revocation),
// and accepted again after that if its exp is still ahead: revoke such
// tokens by jti with RevokeToken and their exp, which is kept until exp.
// Repeated calls have the same effect as one.
func WithTokensWithoutIssuedAt() Option {
	return optionFunc(func(c *config) { c.allowNoIat = true })
}

// WithMaxTokenSize caps the size of a token in bytes, checked before it is
// decoded. Default 8 KiB; must be positive.
func WithMaxTokenSize(n int) Option {
	return optionFunc(func(c *config) { c.maxTokenSize = n })
}

// WithTokenSources sets where tokens are taken from, in order; the first
// source that holds a token is used and the others are not consulted.
// Default: HeaderToken, then SubprotocolToken. Repeated calls replace.
func WithTokenSources(srcs ...TokenSource) Option {
	s := append([]TokenSource(nil), srcs...)
	return optionFunc(func(c *config) { c.tokenSources = s })
}

// WithSubprotocols sets the application's subprotocols. The server selects
// the first of them that the client offers, and never a "bearer." entry.
// A browser that sends its token as a subprotocol must offer one of these
// beside it (new WebSocket(url, ["wssec.v1", "bearer." + token])), since
// Chromium fails a handshake that offered protocols when none is selected.
// Default: "wssec.v1". Repeated calls replace.
func WithSubprotocols(names ...string) Option {
	s := append([]string(nil), names...)
	return optionFunc(func(c *config) { c.subprotocols = s })
}

// WithTrustedProxies sets the proxies (CIDRs or single IPs) whose
// forwarding header is believed: the one WithClientIPHeader names,
// X-Forwarded-For with X-Forwarded-Proto by default. The client is the
// right-most address in it that is not itself a trusted proxy, and the
// scheme that proxy reports decides whether TLS was used.
//
// Default: none, so every forwarding header is ignored and the client is
// the TCP peer. Repeated calls add prefixes. "0.0.0.0/0" and "::/0" (which
// would let every client choose its address) are a configuration error;
// a range holding public addresses is accepted with a warning at New, as
// a CDN's published ranges need.
func WithTrustedProxies(cidrs ...string) Option {
	return optionFunc(func(c *config) { c.trustedProxies = append(c.trustedProxies, cidrs...) })
}

// WithClientIPHeader names the one header the trusted proxies write the
// client address into. Only that header is read from a trusted proxy;
// every other forwarding header is ignored whatever a client puts in it,
// because a proxy passes the headers it does not write through untouched.
// The name is case-insensitive:
//
//   - "X-Forwarded-For" (the default): the client is the right-most entry
//     that is not a trusted proxy, and the scheme comes from
//     X-Forwarded-Proto. It matches nginx's
//     "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" with
//     "proxy_set_header X-Forwarded-Proto $scheme;", and HAProxy's
//     "option forwardfor" with
//     "http-request set-header X-Forwarded-Proto https if { ssl_fc }" and
//     "http-request set-header X-Forwarded-Proto http if !{ ssl_fc }".
//     Traefik, Envoy and the cloud load balancers write it too.
//   - "Forwarded": RFC 7239, exclusively, with the scheme from its
//     proto=, for a proxy that appends its own element to it (for= and
//     proto=). Neither nginx 1.22 nor HAProxy 2.6 writes it with the
//     recipes above: they pass a client's Forwarded through untouched.
//   - "X-Real-IP", "CF-Connecting-IP", "True-Client-IP" or
//     "Fastly-Client-IP": one address that the proxy overwrites (nginx:
//     "proxy_set_header X-Real-IP $remote_addr;"), with the scheme from
//     the right-most X-Forwarded-Proto entry.
//
// Whichever it is, the proxy must write the scheme header itself
// (overwrite, not pass through) on every listener. Without
// WithTrustedProxies this option changes nothing. An unknown or empty
// name is a configuration error. The last call wins.
func WithClientIPHeader(name string) Option {
	return optionFunc(func(c *config) { c.clientIPHeader, c.clientIPHeaderSet = name, true })
}

// WithHosts sets the Host header values the endpoint answers to, the
// defence against DNS rebinding: a page on an attacker's name, whose DNS
// the attacker re-points at this server, sends that name as Host and an
// Origin that agrees with it, so the same-origin check alone admits it.
//
// Patterns use the syntax of WithOrigins, the scheme optional and ports
// included: "app.example.com" (that host on the default port, 443 over
// TLS and 80 otherwise), "app.example.com:8443", "*.example.com",
// "localhost:8080", "[::1]:3000", or "https://app.example.com". A request
// whose Host matches none is refused with 403 (reason host_not_allowed).
// Patterns are parsed by New; a bad one is a configuration error.
// Repeated calls add patterns.
//
// Default: over TLS, or when the Origin matched a WithOrigins pattern,
// Host is not checked (the certificate, or the allowlist, already names
// the service). Over plain ws:// (WithInsecureTransport) in same-origin
// mode, where nothing else would stop a rebinding page, only an IP
// literal or "localhost" is accepted as Host. Behind a proxy that rewrites
// Host, list the public names here or use WithOrigins.
func WithHosts(patterns ...string) Option {
	return optionFunc(func(c *config) {
		c.hosts = append(c.hosts, patterns...)
		c.hostsSet = true
	})
}

// WithInsecureTransport allows plain ws:// handshakes. For development
// only: tokens and messages cross the network in clear text. New logs a
// warning. Default: TLS required (426 Upgrade Required otherwise).
func WithInsecureTransport() Option {
	return optionFunc(func(c *config) { c.insecureTransport = true })
}

// WithConnLimits caps concurrent connections per client IP (IPv6 keyed by
// /64), per subject, and in total. Defaults 32, 8, 10 000; each must be
// positive. Over a per-IP or per-subject quota: 429; at total: 503.
func WithConnLimits(perIP, perSubject, total int) Option {
	return optionFunc(func(c *config) { c.maxPerIP, c.maxPerSubject, c.maxTotal = perIP, perSubject, total })
}

// WithHandshakeRate limits handshakes per client IP with a token bucket,
// checked before any token is looked at. Default 5/s with a burst of 20;
// both must be positive (rate.Inf disables the limit).
func WithHandshakeRate(r rate.Limit, burst int) Option {
	return optionFunc(func(c *config) { c.handshakeRate, c.handshakeBurst = r, burst })
}

// WithMessageRate limits messages per connection with a token bucket.
// Default 20/s with a burst of 40; both must be positive.
func WithMessageRate(r rate.Limit, burst int) Option {
	return optionFunc(func(c *config) { c.messageRate, c.messageBurst = r, burst })
}

// WithMaxMessageSize caps a client message in bytes, checked before it is
// buffered, and also caps the decompressed size when compression is on.
// Default 32 KiB; must be positive. Larger messages close with 1009.
func WithMaxMessageSize(n int64) Option {
	return optionFunc(func(c *config) { c.maxMessageSize = n })
}

// WithCompression negotiates permessage-deflate. Decompressed messages are
// still capped by WithMaxMessageSize. Default: off.
func WithCompression() Option {
	return optionFunc(func(c *config) { c.compression = true })
}

// WithBinaryMessages accepts binary frames carrying the same JSON
// envelope. Default: text frames only; a binary frame is refused.
func WithBinaryMessages() Option {
	return optionFunc(func(c *config) { c.binary = true })
}

// WithIdleTimeout closes a connection when nothing (message or pong)
// arrives for d. Default 60 s; must be positive and longer than the ping
// interval.
func WithIdleTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.idleTimeout = d })
}

// WithPingInterval sets how often the server pings. Default 25 s; must be
// positive.
func WithPingInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.pingInterval = d })
}

// WithWriteTimeout bounds each write to the socket. Default 10 s; must be
// positive.
func WithWriteTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.writeTimeout = d })
}

// WithMaxConnAge closes a connection (1008) after d whatever its activity,
// so credentials and limits are re-evaluated. Default 2 h; must be positive.
func WithMaxConnAge(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxConnAge = d })
}

// WithSendQueue sets how many outgoing messages may wait for a slow
// client; a full queue closes the connection with 1013 instead of growing
// memory. Default 64; must be positive.
func WithSendQueue(n int) Option {
	return optionFunc(func(c *config) { c.sendQueue = n })
}

// WithAction registers an action whose payload decodes strictly into T and
// is checked with T's validator tags (go-playground/validator/v10 syntax).
// The common tags (required, omitempty, min, max, len, gt, gte, lt, lte,
// oneof, alphanum, dive) are compiled here into direct checks with the
// same results; a T with any other tag is checked by validator/v10 itself.
// Only registered actions reach the application; "ping" is built in
// (answered with "pong") and "auth" is reserved. Registering the same
// action twice is a configuration error.
//
// By default every message of the action must carry a non-empty channel,
// which the channel rules then authorize; a message without one is refused
// with invalid_message. opts change that per action: ChannelFree for an
// action that is not about a channel, RequireScope for a scope every
// message of the action needs. See ActionOption. Both checks belong to
// the channel guard: WithReportOnly(GuardChannel) reports them instead of
// refusing.
func WithAction[T any](action string, opts ...ActionOption) Option {
	t := reflect.TypeFor[T]()
	var ac actionConfig
	for _, o := range opts {
		if o != nil {
			o.applyAction(&ac)
		}
	}
	return optionFunc(func(c *config) {
		c.actions = append(c.actions, actionSpec{name: action, typ: t, opts: ac, alloc: newHolder[T]})
	})
}

// ActionOption configures one action registered with WithAction. Build
// one with ChannelFree or RequireScope.
type ActionOption interface {
	applyAction(*actionConfig)
}

// actionConfig is what an action's ActionOptions set.
type actionConfig struct {
	channelFree bool
	scopes      []string
}

type actionOptionFunc func(*actionConfig)

func (f actionOptionFunc) applyAction(c *actionConfig) { f(c) }

// ChannelFree declares an action whose messages need not carry a channel,
// such as a whole-account request ("whoami", "list_rooms"). A message of
// it without a channel passes no channel rule: it is authorized by the
// action's RequireScope scopes and the Policy alone, so a channel-free
// action that changes anything should require a scope. A message that
// does carry a channel is checked by the channel rules as any other. The
// built-in "ping" and "auth" are channel-free. "subscribe" and
// "unsubscribe" cannot be (New refuses it). Default: a channel is
// required.
func ChannelFree() ActionOption {
	return actionOptionFunc(func(c *actionConfig) { c.channelFree = true })
}

// RequireScope makes every message of the action need scope (the
// Principal's HasScope), whether or not it carries a channel; one without
// is refused with forbidden. It adds to, never replaces, the scope a
// channel rule asks for. Repeated calls add scopes, all of which are
// needed. A scope is non-empty and has no space (New refuses it
// otherwise). Default: none beyond the channel rules.
func RequireScope(scope string) ActionOption {
	return actionOptionFunc(func(c *actionConfig) { c.scopes = append(c.scopes, scope) })
}

// WithChannelRules sets the rules that admit channels. Repeated calls add
// rules; the first rule whose pattern matches decides. Default: every
// channel is denied.
func WithChannelRules(rules ...ChannelRule) Option {
	return optionFunc(func(c *config) { c.channelRules = append(c.channelRules, rules...) })
}

// WithPolicy sets a function that authorizes every message after the
// channel rules allowed it. Default: allow what the channel rules allow.
// The last call wins.
func WithPolicy(p Policy) Option {
	return optionFunc(func(c *config) { c.policy = p })
}

// WithDenialLimit closes a connection with 1008 after n refused messages.
// Default 5; must be positive.
func WithDenialLimit(n int) Option {
	return optionFunc(func(c *config) { c.denialLimit = n })
}

// WithStore sets where quotas and rate state live. Default: bounded memory
// in this process.
func WithStore(s Store) Option {
	return optionFunc(func(c *config) { c.store = s })
}

// WithLogger sets the logger for security events. Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithObserver adds an Observer that receives every security event.
// Repeated calls add observers.
func WithObserver(o Observer) Option {
	return optionFunc(func(c *config) { c.observers = append(c.observers, o) })
}

// WithClock sets the clock for every time-based limit and token check, so
// tests need not sleep. Default time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}

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

// WithRevocationCapacity bounds how many revocations (by subject and by
// jti) a Guard keeps in memory at once. Default 100 000 when n ≤ 0. When
// the table is full of live revocations a new one is not forgotten: the
// Guard refuses, until that revocation would have lapsed, every token
// issued up to it (of any subject), closes the sockets the revocation
// names, and emits EventRevocationsFull. A later call replaces an earlier
// one. With a SharedStore the store's own bound applies there too (see
// redisstore.WithMirrorCapacity).
func WithRevocationCapacity(n int) Option {
	return optionFunc(func(c *config) {
		c.revokeCapacity = DefaultRevokeCapacity
		if n > 0 {
			c.revokeCapacity = n
		}
	})
}

// WithEvictOldest makes the per-subject connection quota (WithConnLimits)
// close the subject's oldest socket to admit a new one, instead of
// refusing the new handshake with 429: what a single-session application
// wants (WithConnLimits(perIP, 1, total) plus this option: a new login
// replaces the old session). The evicted socket is closed with 1008 and
// the reason "session replaced". Default: off (the newest is refused).
// With a SharedStore, when the subject's sockets are all on other
// instances, the oldest of them on each such instance is asked to close
// (through SessionNotice). A handshake waits at most two seconds for a
// slot to free (a slot held by a handshake that has not upgraded yet
// included), then gets 429.
// Repeated calls have the same effect as one.
func WithEvictOldest() Option {
	return optionFunc(func(c *config) { c.evictOldest = true })
}

// WithBanPolicy turns automatic bans on. Default: off. Threshold, Window
// and Duration must be positive.
func WithBanPolicy(p BanPolicy) Option {
	return optionFunc(func(c *config) { c.ban = &p })
}

// WithReportOnly makes the named guards log and count what they would
// refuse (an EventReportOnly event, logged as "report_only") but let it
// through, so wssec can be rolled out on a live service without breaking
// clients. Default: every guard enforces. Repeated calls add guards; an
// unknown name, or the token guard, is a configuration error.
func WithReportOnly(guards ...GuardName) Option {
	return optionFunc(func(c *config) {
		if c.reportOnly == nil {
			c.reportOnly = make(map[GuardName]bool)
		}
		for _, gn := range guards {
			c.reportOnly[gn] = true
		}
	})
}
