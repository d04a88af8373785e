// Package probe is wsprobe's engine: it checks a WebSocket endpoint from
// outside, the way an attacker would, and reports each check as pass, fail
// or n/a with one line of evidence. cmd/wsprobe is its command line; the
// examples' tests call Run directly.
//
// Every check sends real traffic and decides from what comes back. Every
// flood is bounded in count, bytes and time, and Run refuses a target that
// does not resolve to loopback addresses only unless Config.OwnTarget is
// set; every connection to the target resolves and checks again and dials
// the checked address.
package probe

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Verdict is a check's outcome.
type Verdict string

// The verdicts.
const (
	Pass Verdict = "pass"
	Fail Verdict = "fail"
	NA   Verdict = "n/a"
)

// Finding is one check's result.
type Finding struct {
	Group    string  `json:"group"`
	Check    string  `json:"check"`
	Verdict  Verdict `json:"verdict"`
	Evidence string  `json:"evidence"`
}

// Report is what Run found.
type Report struct {
	Target   string    `json:"target"`
	Findings []Finding `json:"findings"`
	Failed   int       `json:"failed"`
	Passed   int       `json:"passed"`
	NA       int       `json:"na"`
}

// Find returns the finding group/check, or false.
func (r *Report) Find(group, check string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.Group == group && f.Check == check {
			return f, true
		}
	}
	return Finding{}, false
}

// Config is one probe run. The zero value of each field is its default,
// except URL, which is required.
type Config struct {
	// URL is the endpoint, ws:// or wss://.
	URL string
	// PlainURL is the endpoint's ws:// twin to try when URL is wss://.
	// Default: URL with ws:// on port 80 when URL uses wss:// on 443;
	// otherwise the plain-transport check is n/a.
	PlainURL string
	// Origin is the legitimate page origin. Default: URL's own origin
	// (https for wss, http for ws).
	Origin string
	// Token is a valid token for the endpoint; the token checks are n/a
	// without it. ExpiredToken is one whose exp has passed.
	Token, ExpiredToken string
	// MoreTokens are valid tokens of other users. The forwarding check
	// takes Token and these in turn, so that a per-user limit does not
	// bite before the per-address one it is after.
	MoreTokens []string
	// TokenIn is where tokens go: "header" (Authorization: Bearer, the
	// default), "subprotocol" (bearer.<token>), "cookie:NAME" or
	// "query:NAME".
	TokenIn string
	// JWKS is the endpoint's JWKS URL, for the HS256-with-public-key check.
	// The report shows it, like URL (Report.Target), without userinfo,
	// query or fragment.
	JWKS string
	// Subprotocols are offered on every handshake.
	Subprotocols []string
	// Header is added to every handshake.
	Header http.Header
	// Message is a message the endpoint answers, sent by the flood and
	// slow-reading checks. Default {"action":"ping","id":"wsprobe"}.
	Message string
	// MaxMessage is the largest message the endpoint is meant to accept;
	// the oversized checks send more. Default 1 MiB.
	MaxMessage int64
	// MaxSockets bounds the sockets the forwarding check holds open at
	// once. Default 64.
	MaxSockets int
	// FloodCount bounds the messages of the message flood. Default 2000.
	FloodCount int
	// SlowReadBytes bounds what the slow-reading check writes. Default
	// 96 MiB; the check fails when more than half of that comes back
	// after the probe stalled (more than kernel socket buffers hold).
	SlowReadBytes int64
	// Idle is how long the idle check waits for a ping or a close; 0
	// skips it. (The command's default is 60 s.)
	Idle time.Duration
	// Budget bounds the whole run. Default 3 minutes.
	Budget time.Duration
	// Source is the local address to connect from. Default: any.
	Source string
	// RootCAs verifies the endpoint's certificate (default: the system
	// roots); InsecureSkipVerify skips verification.
	RootCAs            *x509.CertPool
	InsecureSkipVerify bool
	// OwnTarget allows a target that is not loopback-only.
	OwnTarget bool
	// Skip names groups not to run ("transport", "origin", "token",
	// "forwarding", "messages", "lifetime").
	Skip []string

	// lookup resolves a host name for the loopback guard and its dials;
	// nil is net.DefaultResolver. Tests replace it.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

func (c *Config) tokenPlace() (kind, name string) {
	kind, name, _ = strings.Cut(c.TokenIn, ":")
	if kind == "" {
		kind = "header"
	}
	return kind, name
}

// Errors Run returns before any traffic.
var (
	ErrNotLoopback = errors.New("wsprobe: the target resolves to an address that is not loopback; pass -i-own-this-target to probe an endpoint you own")
	ErrConfig      = errors.New("wsprobe: bad configuration")
)

// prober is one run.
type prober struct {
	cfg      Config
	url      *url.URL
	plain    *url.URL // nil when none
	origin   string
	deadline time.Time

	mu       sync.Mutex // guards findings
	findings []Finding
}

func (p *prober) add(group, check string, v Verdict, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.findings = append(p.findings, Finding{Group: group, Check: check, Verdict: v, Evidence: fmt.Sprintf(format, args...)})
}

// validate fills defaults and checks the configuration.
func validate(cfg Config) (*prober, error) {
	var errs []error
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		errs = append(errs, fmt.Errorf("%w: -url must be ws:// or wss:// with a host, got %q", ErrConfig, shownRawURL(cfg.URL)))
	}
	if cfg.Message == "" {
		cfg.Message = `{"action":"ping","id":"wsprobe"}`
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = 1 << 20
	}
	if cfg.MaxSockets <= 0 {
		cfg.MaxSockets = 64
	}
	if cfg.FloodCount <= 0 {
		cfg.FloodCount = 2000
	}
	if cfg.SlowReadBytes <= 0 {
		cfg.SlowReadBytes = 96 << 20
	}
	if cfg.Budget <= 0 {
		cfg.Budget = 3 * time.Minute
	}
	switch kind, name := cfg.tokenPlace(); {
	case kind == "header" || kind == "subprotocol":
	case (kind == "cookie" || kind == "query") && name != "":
	default:
		errs = append(errs, fmt.Errorf("%w: -token-in must be header, subprotocol, cookie:NAME or query:NAME, got %q", ErrConfig, cfg.TokenIn))
	}
	if cfg.Source != "" && net.ParseIP(cfg.Source) == nil {
		errs = append(errs, fmt.Errorf("%w: -source must be an IP address, got %q", ErrConfig, cfg.Source))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p := &prober{cfg: cfg, url: u}
	p.origin = cfg.Origin
	if p.origin == "" {
		scheme := "http"
		if u.Scheme == "wss" {
			scheme = "https"
		}
		p.origin = scheme + "://" + u.Host
	}
	switch {
	case cfg.PlainURL != "":
		pu, err := url.Parse(cfg.PlainURL)
		if err != nil || pu.Scheme != "ws" || pu.Host == "" {
			return nil, fmt.Errorf("%w: -plain-url must be ws:// with a host, got %q", ErrConfig, shownRawURL(cfg.PlainURL))
		}
		p.plain = pu
	case u.Scheme == "wss" && (u.Port() == "" || u.Port() == "443"):
		pu := *u
		pu.Scheme, pu.Host = "ws", u.Hostname()
		if strings.Contains(pu.Host, ":") {
			pu.Host = "[" + pu.Host + "]"
		}
		p.plain = &pu
	}
	return p, nil
}

// checkLoopback resolves every host the probe sends traffic to and
// requires each address to be loopback, so that Run refuses before any
// traffic. Each dial checks again (see dial).
func (p *prober) checkLoopback(ctx context.Context) error {
	hosts := []string{p.url.Hostname()}
	if p.plain != nil {
		hosts = append(hosts, p.plain.Hostname())
	}
	for _, h := range hosts {
		if _, err := p.loopbackAddrs(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// loopbackAddrs resolves host and returns its addresses when every one
// is loopback.
func (p *prober) loopbackAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	lookup := p.cfg.lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("wsprobe: resolving %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("wsprobe: resolving %s: no address", host)
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return nil, fmt.Errorf("%w (%s is %s)", ErrNotLoopback, host, a)
		}
	}
	return addrs, nil
}

// dial connects to host:port with d. Every connection the probe makes to
// the endpoint goes through here. Unless OwnTarget is set it resolves host
// itself, refuses unless every address is loopback, and dials the checked
// addresses, so a name whose DNS answer changes after checkLoopback (or
// between two dials) cannot move the probe off loopback. TLS still names
// host (SNI) and the request its Host, as the callers set them.
func (p *prober) dial(ctx context.Context, d *net.Dialer, host, port string) (net.Conn, error) {
	if p.cfg.OwnTarget {
		return d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	}
	addrs, err := p.loopbackAddrs(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (p *prober) skip(group string) bool {
	for _, s := range p.cfg.Skip {
		if s == group {
			return true
		}
	}
	return false
}

// Run probes the endpoint and returns the report. The error is a bad
// configuration, a target that is not loopback without OwnTarget, or a
// legitimate handshake that fails (nothing else can be judged then).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	p, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	if !p.cfg.OwnTarget {
		if err := p.checkLoopback(ctx); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Budget)
	defer cancel()
	p.deadline, _ = ctx.Deadline()

	c, err := p.attempt(ctx, p.legit())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBaseline, err)
	}
	c.Close()
	if !c.upgraded() {
		return nil, fmt.Errorf("%w: %s", errBaseline, c.statusText())
	}

	// The idle check mostly waits: it runs beside the others.
	var wg sync.WaitGroup
	if !p.skip("lifetime") {
		wg.Go(func() { p.checkIdle(ctx) })
	}
	groups := []struct {
		name string
		run  func(context.Context)
	}{
		// Forwarding first: its first fill then starts with the endpoint's
		// handshake rate budget untouched by the other checks.
		{"forwarding", p.checkForwarding},
		{"transport", p.checkTransport},
		{"origin", p.checkOrigins},
		{"token", p.checkTokens},
		{"messages", p.checkMessages},
		{"lifetime", p.checkSlowRead},
	}
	for _, g := range groups {
		if p.skip(g.name) {
			continue
		}
		if ctx.Err() != nil {
			p.add(g.name, "-", NA, "budget of %s spent before this group", p.cfg.Budget)
			continue
		}
		g.run(ctx)
	}
	wg.Wait()

	r := &Report{Target: shownURL(p.url), Findings: p.sorted()}
	for _, f := range r.Findings {
		switch f.Verdict {
		case Pass:
			r.Passed++
		case Fail:
			r.Failed++
		default:
			r.NA++
		}
	}
	return r, nil
}

var groupOrder = map[string]int{"transport": 0, "origin": 1, "token": 2, "forwarding": 3, "messages": 4, "lifetime": 5}

// sorted returns the findings in group order, each group in the order its
// checks were added.
func (p *prober) sorted() []Finding {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Finding, 0, len(p.findings))
	for g := 0; g < len(groupOrder); g++ {
		for _, f := range p.findings {
			if groupOrder[f.Group] == g {
				out = append(out, f)
			}
		}
	}
	return out
}

// legit is the handshake a legitimate client makes.
func (p *prober) legit() dialSpec {
	o := p.origin
	return dialSpec{url: p.url, origin: &o, token: p.cfg.Token}
}

// remaining is the time left in the budget, at most d.
func (p *prober) remaining(d time.Duration) time.Duration {
	left := time.Until(p.deadline)
	if left < d {
		return max(left, 0)
	}
	return d
}
