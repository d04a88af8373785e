package wssec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/wssec/wssec/internal/clientip"
	"github.com/wssec/wssec/internal/jwks"
	"github.com/wssec/wssec/internal/jwtpre"
	"github.com/wssec/wssec/internal/origin"
)

// Guard secures WebSocket handshakes and connections. Create one with New;
// it is safe for concurrent use. Close it to stop its background work and
// close its connections.
type Guard struct {
	cfg config
	compiled
	log    *slog.Logger
	now    func() time.Time
	lim    *limits
	upg    websocket.Upgrader
	sess   *sessions
	msgObs []MessageObserver // the observers that count accepted messages
	bans   *bans             // nil unless WithBanPolicy

	shared SharedStore // the Store, when it shares sessions too; else nil
	// storeWarned is when each store check last emitted
	// EventStoreUnavailable (unix ns), for rate limiting those events.
	storeWarned [numStoreChecks]atomic.Int64
	stopFeed    context.CancelFunc // ends the revocation feed; nil without one
	feedLoads   atomic.Int64       // times the feed (re)loaded its snapshot: all but the first follow a gap

	mu      sync.Mutex // guards conns and closed
	conns   map[*Conn]struct{}
	closed  bool
	wg      sync.WaitGroup // one per registered Conn, done when its teardown ends
	serving sync.WaitGroup // the serve goroutines Handler started
}

// compiled is what config.validate parsed out of the options, so that
// New builds the Guard without parsing anything again.
type compiled struct {
	origins *origin.Set // nil: same-origin only
	// originLabels are the canonical allowlist patterns, by Set index: the
	// only origin values that reach events' Pattern (a bounded label).
	originLabels []string
	trusted      *clientip.Set
	ipFrom       clientip.Source // the header trusted proxies write
	hosts        *origin.HostSet // nil: no WithHosts
	ver          *verifier       // nil with WithAuthenticator or WithAnonymous alone
	msg          *messageRules
}

// New builds a Guard from opts. It validates the whole configuration and
// returns every problem at once (errors.Join of *ConfigError, each
// matching ErrConfig). With WithJWKS it fetches the key set once, under a
// timeout, so a bad URL fails here rather than at the first handshake.
func New(opts ...Option) (*Guard, error) {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, err
	}
	g := &Guard{cfg: *c, compiled: c.compiled, log: c.logger, now: c.now, conns: make(map[*Conn]struct{})}
	lim, err := newLimits(c)
	if err != nil {
		return nil, &ConfigError{Option: "limits", Reason: err.Error()}
	}
	g.lim = lim
	g.sess = newSessions(c)
	if ss, ok := c.store.(SharedStore); ok {
		g.shared = ss
	}
	for _, o := range c.observers {
		if mo, ok := o.(MessageObserver); ok {
			g.msgObs = append(g.msgObs, mo)
		}
	}
	if c.ban != nil {
		if g.bans, err = newBans(*c.ban); err != nil {
			return nil, &ConfigError{Option: "WithBanPolicy", Reason: err.Error()}
		}
	}
	for gn := range c.reportOnly {
		g.emit(context.Background(), Event{Kind: EventConfigWarning, Reason: "report_only", Detail: "WithReportOnly: the " + string(gn) + " guard logs but does not refuse"})
	}

	// The JWKS is fetched last, once everything static is known good.
	if err := g.startKeyFetch(c); err != nil {
		return nil, err
	}

	// The revocation feed starts last: nothing above can fail after it.
	if g.shared != nil {
		ctx, cancel := context.WithCancel(context.Background())
		err := g.shared.Subscribe(ctx, g.onRevocation)
		if err == nil {
			err = g.shared.SubscribeSessions(ctx, g.onSession)
		}
		if err != nil {
			cancel()
			if g.ver != nil && g.ver.dyn != nil {
				g.ver.dyn.f.Close()
			}
			return nil, &ConfigError{Option: "WithStore", Reason: "revocation feed: " + err.Error()}
		}
		g.stopFeed = cancel
	}

	g.upg = websocket.Upgrader{
		HandshakeTimeout:  10 * time.Second,
		ReadBufferSize:    1024,
		WriteBufferSize:   1024,
		WriteBufferPool:   writeBufferPool,
		Subprotocols:      c.subprotocols,
		EnableCompression: c.compression,
		// The origin guard already ran (Upgrade always runs the guards),
		// with stricter rules than gorilla's same-host check.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, _ error) {
			http.Error(w, http.StatusText(status), status)
		},
	}
	g.warnConfig(context.Background())
	return g, nil
}

// writeBufferPool shares write buffers between connections, so an idle
// connection holds none.
var writeBufferPool = &sync.Pool{}

// newConfig applies opts over the defaults and fills in the defaults
// that depend on what the options left unset.
func newConfig(opts []Option) *config {
	c := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if len(c.tokenSources) == 0 {
		c.tokenSources = []TokenSource{HeaderToken(), SubprotocolToken()}
	}
	if c.subprotocols == nil {
		c.subprotocols = []string{DefaultSubprotocol}
	}
	return &c
}

// configErrs collects the problems validate finds, joined once at its
// end.
type configErrs []error

// add records one problem with option opt (val is the offending value,
// quoted where helpful, never a secret).
func (e *configErrs) add(opt, val, reason string) {
	*e = append(*e, &ConfigError{Option: opt, Value: val, Reason: reason})
}

// validate checks every option, one concern at a time, and compiles what
// it checked (origin and host patterns, proxy ranges, keys, schemas,
// channel rules) into c.compiled. It returns every problem at once: the
// errors.Join of *ConfigError, nil when there is none.
func (c *config) validate() error {
	var errs configErrs
	c.validateOrigins(&errs)
	c.validateRequestRules(&errs)
	c.validateLimits(&errs)
	c.validateBans(&errs)
	c.validateSessions(&errs)
	c.validateProtocol(&errs)
	c.compiled.ver = buildVerifier(c, &errs)
	c.validateMessages(&errs)
	return errors.Join(errs...)
}

// validateOrigins parses the WithOrigins patterns.
func (c *config) validateOrigins(errs *configErrs) {
	if !c.originsSet {
		return
	}
	if len(c.origins) == 0 {
		errs.add("WithOrigins", "", "no pattern given")
	}
	var ps []origin.Pattern
	for _, s := range c.origins {
		p, err := origin.ParsePattern(s)
		if err != nil {
			errs.add("WithOrigins", fmt.Sprintf("%q", s), err.Error())
			continue
		}
		ps = append(ps, p)
		c.compiled.originLabels = append(c.compiled.originLabels, p.String())
	}
	c.compiled.origins = origin.NewSet(ps)
}

// validateRequestRules parses WithTrustedProxies, WithClientIPHeader and
// WithHosts.
func (c *config) validateRequestRules(errs *configErrs) {
	ts, err := clientip.ParseSet(c.trustedProxies)
	if err != nil {
		errs.add("WithTrustedProxies", "", err.Error())
	} else {
		for _, p := range ts.Prefixes() {
			if p.Bits() == 0 {
				errs.add("WithTrustedProxies", p.String(), "trusts every address, so every client could choose its own address and scheme; list your proxies' addresses")
			}
		}
		c.compiled.trusted = ts
	}
	if c.clientIPHeaderSet {
		src, err := clientip.ParseSource(c.clientIPHeader)
		if err != nil {
			errs.add("WithClientIPHeader", fmt.Sprintf("%q", c.clientIPHeader), err.Error())
		}
		c.compiled.ipFrom = src
	}
	if c.hostsSet {
		if len(c.hosts) == 0 {
			errs.add("WithHosts", "", "no pattern given")
		}
		var ps []origin.HostPattern
		for _, s := range c.hosts {
			p, err := origin.ParseHostPattern(s)
			if err != nil {
				errs.add("WithHosts", fmt.Sprintf("%q", s), err.Error())
				continue
			}
			ps = append(ps, p)
		}
		c.compiled.hosts = origin.NewHostSet(ps)
	}
}

// validateLimits checks the quotas, rates, sizes and timeouts.
func (c *config) validateLimits(errs *configErrs) {
	positive := func(opt string, n int64) {
		if n <= 0 {
			errs.add(opt, fmt.Sprint(n), "must be positive")
		}
	}
	positive("WithConnLimits perIP", int64(c.maxPerIP))
	positive("WithConnLimits perSubject", int64(c.maxPerSubject))
	positive("WithConnLimits total", int64(c.maxTotal))
	if c.handshakeRate <= 0 {
		errs.add("WithHandshakeRate", fmt.Sprint(c.handshakeRate), "rate must be positive")
	}
	positive("WithHandshakeRate burst", int64(c.handshakeBurst))
	if c.messageRate <= 0 {
		errs.add("WithMessageRate", fmt.Sprint(c.messageRate), "rate must be positive")
	}
	positive("WithMessageRate burst", int64(c.messageBurst))
	positive("WithMaxMessageSize", c.maxMessageSize)
	positive("WithMaxTokenSize", int64(c.maxTokenSize))
	positive("WithIdleTimeout", int64(c.idleTimeout))
	positive("WithPingInterval", int64(c.pingInterval))
	positive("WithWriteTimeout", int64(c.writeTimeout))
	positive("WithMaxConnAge", int64(c.maxConnAge))
	positive("WithSendQueue", int64(c.sendQueue))
	positive("WithDenialLimit", int64(c.denialLimit))
	positive("WithMaxTokenLifetime", int64(c.maxTokenLifetime))
	if c.jwksRefresh < time.Second {
		errs.add("WithJWKSRefresh", c.jwksRefresh.String(), "must be at least 1s")
	}
	if c.pingInterval > 0 && c.idleTimeout > 0 && c.pingInterval >= c.idleTimeout {
		errs.add("WithPingInterval", c.pingInterval.String(), "must be shorter than the idle timeout "+c.idleTimeout.String())
	}
}

// validateBans checks WithBanPolicy and WithReportOnly.
func (c *config) validateBans(errs *configErrs) {
	if c.ban != nil {
		for _, why := range validateBanPolicy(c.ban) {
			errs.add("WithBanPolicy", "", why)
		}
	}
	for gn := range c.reportOnly {
		if !slices.Contains(reportOnlyGuards, gn) {
			errs.add("WithReportOnly", string(gn), "not a guard that can run report-only")
		}
	}
}

// validateSessions checks WithTickets, WithExpiryWarning and
// WithClockSkew.
func (c *config) validateSessions(errs *configErrs) {
	if c.ticketTTL <= 0 || c.ticketTTL > 5*time.Minute {
		errs.add("WithTickets", c.ticketTTL.String(), "ttl must be between 0 and 5m")
	}
	if c.ticketCapacity <= 0 {
		errs.add("WithTickets capacity", fmt.Sprint(c.ticketCapacity), "must be positive")
	}
	if c.expiryWarning < 0 {
		errs.add("WithExpiryWarning", c.expiryWarning.String(), "must not be negative")
	}
	if c.clockSkew < 0 || c.clockSkew > 5*time.Minute {
		errs.add("WithClockSkew", c.clockSkew.String(), "must be between 0 and 5m")
	}
}

// validateProtocol checks WithSubprotocols and WithTokenSources.
func (c *config) validateProtocol(errs *configErrs) {
	for _, p := range c.subprotocols {
		if p == "" || !isToken(p) {
			errs.add("WithSubprotocols", fmt.Sprintf("%q", p), "not a valid protocol token")
		} else if strings.HasPrefix(strings.ToLower(p), "bearer.") {
			errs.add("WithSubprotocols", fmt.Sprintf("%q", p), `the "bearer." prefix is reserved for tokens`)
		}
	}
	seen := map[TokenSource]bool{}
	for _, s := range c.tokenSources {
		switch {
		case s.kind < srcHeader || s.kind > srcQuery:
			errs.add("WithTokenSources", "", "invalid source; build one with HeaderToken, SubprotocolToken, CookieToken or QueryToken")
		case (s.kind == srcCookie || s.kind == srcQuery) && (s.name == "" || !isToken(s.name)):
			errs.add("WithTokenSources", fmt.Sprintf("%q", s.name), "cookie and query sources need a valid name")
		case seen[s]:
			errs.add("WithTokenSources", s.String(), "listed twice")
		}
		seen[s] = true
	}
}

// validateMessages compiles the actions, their schemas and the channel
// rules.
func (c *config) validateMessages(errs *configErrs) {
	mr, merrs := compileMessageRules(c)
	*errs = append(*errs, merrs...)
	c.compiled.msg = mr
}

// warnConfig logs a warning for each accepted but risky setting.
func (g *Guard) warnConfig(ctx context.Context) {
	c := &g.cfg
	for _, p := range g.trusted.Prefixes() {
		if clientip.ContainsPublic(p) {
			g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "trusted_proxies_public",
				Detail: "WithTrustedProxies: " + p.String() + " holds public addresses; every host in it can choose the client address it reports"})
		}
	}
	if c.clientIPHeaderSet && g.trusted.Len() == 0 {
		g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "client_ip_header_unused",
			Detail: "WithClientIPHeader without WithTrustedProxies: no header is read"})
	}
	if c.insecureTransport {
		g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "insecure_transport", Detail: "WithInsecureTransport: plain ws:// is accepted; tokens and messages cross the network in clear text"})
	}
	if c.allowMissingOrigin {
		g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "allow_missing_origin", Detail: "WithAllowMissingOrigin: handshakes without an Origin header are accepted"})
	}
	for _, s := range c.tokenSources {
		if s.kind == srcQuery {
			g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "query_token", Detail: "QueryToken: tokens in URLs reach access logs and browser history"})
		}
	}
	if c.anonymous && g.ver == nil && c.authenticator == nil {
		g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "anonymous", Detail: "WithAnonymous: handshakes need no credential"})
	}
}

// buildVerifier validates the key and token options and builds the token
// verifier from them (nil when tokens are not verified, or on a problem).
func buildVerifier(c *config, errs *configErrs) *verifier {
	bad := errs.add
	var known []string // the valid entries of WithAlgorithms
	for _, a := range c.algorithms {
		if strings.EqualFold(a, "none") {
			bad("WithAlgorithms", `"none"`, "unsigned tokens are never accepted")
			continue
		}
		sa, ok := jwa.LookupSignatureAlgorithm(a)
		if !ok || sa.String() != a {
			bad("WithAlgorithms", fmt.Sprintf("%q", a), "unknown signature algorithm")
			continue
		}
		known = append(known, a)
	}
	switch c.keyOption {
	case "WithJWKS":
		if c.jwksURL == "" {
			bad("WithJWKS", "", "empty URL")
			return nil
		}
	case "WithKeySet":
		if c.keySet == nil {
			bad("WithKeySet", "", "nil key set")
			return nil
		}
	case "WithHMACKey":
		if len(c.hmacKey) == 0 {
			bad("WithHMACKey", "", "empty key (is the secret missing from the environment?)")
			return nil
		}
	case "WithOIDC":
		if c.oidcIssuer == "" {
			bad("WithOIDC", "", "empty issuer")
			return nil
		}
	case "WithPublicKey":
		if c.publicKey == nil {
			bad("WithPublicKey", "", "nil key")
			return nil
		}
	}
	hasKeys := c.keyOption != ""
	if c.authenticator != nil && hasKeys {
		bad("WithAuthenticator", "", "cannot be combined with WithJWKS, WithKeySet, WithHMACKey, WithOIDC or WithPublicKey")
		return nil
	}
	if c.authenticator != nil {
		return nil
	}
	if !hasKeys {
		if !c.anonymous {
			bad("New", "", "no way to authenticate: set WithOIDC, WithJWKS, WithKeySet, WithPublicKey, WithHMACKey or WithAuthenticator (or WithAnonymous for a public endpoint)")
		}
		return nil
	}
	v := &verifier{
		issuer:      c.issuer,
		audience:    c.audience,
		skew:        c.clockSkew,
		maxLifetime: c.maxTokenLifetime,
		allowNoIat:  c.allowNoIat,
		now:         c.now,
	}
	v.tokenOptions(c, bad)
	var fromKeys []string // the algorithms the configured keys verify
	switch {
	case c.keyOption == "WithPublicKey":
		r, err := publicKeyRing(c.publicKey)
		if err != nil {
			bad("WithPublicKey", fmt.Sprintf("%T", c.publicKey), err.Error())
			return nil
		}
		v.static = r
		fromKeys = r.allAlgs()
	case c.keyOption == "WithOIDC":
		if err := jwks.ValidateIssuer(c.oidcIssuer); err != nil {
			bad("WithOIDC", redactURL(c.oidcIssuer), err.Error())
			return nil
		}
		fromKeys = jwksAlgs
	case c.hmacKey != nil:
		if len(c.hmacKey) < 32 {
			bad("WithHMACKey", "", fmt.Sprintf("key of %d bytes; at least 32 required", len(c.hmacKey)))
			return nil
		}
		algs, _ := keyAlgs(c.hmacKey)
		v.static = &ring{keys: []ringKey{{raw: c.hmacKey, algs: algs}}, symmetric: true}
		fromKeys = algs
	case c.keySet != nil:
		r, err := ringFromSet(c.keySet)
		if err != nil {
			bad("WithKeySet", "", err.Error())
			return nil
		}
		v.static = r
		fromKeys = r.allAlgs()
	default:
		if err := jwks.ValidateURL(c.jwksURL); err != nil { // https, or http to a loopback host
			bad("WithJWKS", redactURL(c.jwksURL), err.Error())
			return nil
		}
		fromKeys = jwksAlgs
	}
	algs := fromKeys
	if len(c.algorithms) > 0 {
		if len(known) == 0 {
			return nil // each entry was reported above
		}
		algs = intersect(known, fromKeys)
		if len(algs) == 0 {
			bad("WithAlgorithms", strings.Join(c.algorithms, ","), "none of these algorithms fits the configured keys")
			return nil
		}
	}
	v.algs = algs
	v.pre = jwtpre.Policy{MaxSize: c.maxTokenSize, Algs: algs}
	if v.static != nil {
		r := v.static
		v.pre.Kids = r.hasKid
		v.pre.RequireKid = len(r.keys) > 1
		if len(r.keys) == 1 && r.keys[0].kid == "" {
			v.pre.Kids = nil // a lone key without kid: any kid is ignored
		}
	}
	return v
}

// redactURL shows a URL in an error without its credentials: no userinfo,
// no query, no fragment.
func redactURL(s string) string {
	r := jwks.Redact(s)
	if r == "(unparseable URL)" {
		return r
	}
	return fmt.Sprintf("%q", r)
}

// scrubURL removes from msg, an error text about raw, every part of raw
// that may hold a secret — its userinfo, query and fragment — in whatever
// form it appears (internal/jwks already redacts net/http's *url.Error;
// this is the backstop for any other error that quotes the URL).
func scrubURL(msg, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.ReplaceAll(msg, raw, "(URL)")
	}
	red := jwks.Redact(raw)
	msg = strings.ReplaceAll(msg, raw, red)
	msg = strings.ReplaceAll(msg, u.String(), red)
	var parts []string
	if u.User != nil {
		parts = append(parts, u.User.String())
	}
	parts = append(parts, u.RawQuery, u.Query().Encode(), u.Fragment, u.EscapedFragment())
	for _, p := range parts {
		if p != "" {
			msg = strings.ReplaceAll(msg, p, "REDACTED")
		}
	}
	return msg
}

// isToken reports whether s is an RFC 7230 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

func (g *Guard) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Close refuses new handshakes, closes every live connection with 1001
// (going away) and stops background work. It returns once every
// connection is torn down (socket closed, slot released, conn_closed
// logged) and every serve function Handler started has returned — serve
// must return once its ctx is done. Goroutines the application started
// itself around Upgrade or Wrap are its own to wait for. It is safe to
// call more than once; later calls return at once.
func (g *Guard) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	if g.stopFeed != nil {
		g.stopFeed()
	}
	conns := make([]*Conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.Close(websocket.CloseGoingAway, "server shutdown")
	}
	g.wg.Wait()
	g.serving.Wait()
	if g.ver != nil && g.ver.dyn != nil {
		g.ver.dyn.f.Close()
	}
	return nil
}
