package probe

import (
	"context"
	"net/url"
	"strconv"
	"strings"
)

// originCase is one cross-site handshake: Origin value (nil: none).
type originCase struct {
	check  string
	origin *string
}

// originCases derives the foreign and look-alike origins from the page
// origin. Every one of them names a site the endpoint's owner does not
// control (or, for the trailing dot and the other port or scheme, a
// different browser origin), so an upgrade is a fail.
func originCases(page string) []originCase {
	s := func(v string) *string { return &v }
	cases := []originCase{
		{"foreign", s("https://evil.test")},
		{"null", s("null")},
		{"none", nil},
	}
	u, err := url.Parse(page)
	if err != nil || u.Host == "" {
		return cases
	}
	scheme, host, port := u.Scheme, u.Hostname(), u.Port()
	hp := func(h string) string {
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		if port != "" {
			return h + ":" + port
		}
		return h
	}
	other := "http"
	if scheme == "http" {
		other = "https"
	}
	otherPort := "8443"
	if port == otherPort {
		otherPort = "9443"
	}
	if n, err := strconv.Atoi(port); err == nil && n < 65535 {
		otherPort = strconv.Itoa(n + 1)
	}
	h := host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	cases = append(cases,
		originCase{"lookalike-suffix", s(scheme + "://" + hp(host+".evil.test"))},
		originCase{"lookalike-prefix", s(scheme + "://" + hp("evil"+host))},
		originCase{"userinfo", s(scheme + "://" + hp(host) + "@evil.test")},
		originCase{"case", s(scheme + "://" + hp(strings.ToUpper(host)+".Evil.Test"))},
		originCase{"trailing-dot", s(scheme + "://" + hp(host+"."))},
		originCase{"other-port", s(scheme + "://" + h + ":" + otherPort)},
		originCase{"other-scheme", s(other + "://" + hp(host))},
	)
	return cases
}

// checkOrigins: cross-site WebSocket hijacking. Each handshake carries the
// real token (when given), so only the Origin differs from a legitimate one.
func (p *prober) checkOrigins(ctx context.Context) {
	const g = "origin"
	for _, oc := range originCases(p.origin) {
		if ctx.Err() != nil {
			return
		}
		spec := p.legit()
		spec.origin = oc.origin
		shown := "no Origin"
		if oc.origin != nil {
			shown = "Origin " + *oc.origin
		}
		c, err := p.attempt(ctx, spec)
		if err != nil {
			p.add(g, oc.check, NA, "%s: %v", shown, err)
			continue
		}
		c.Close()
		switch {
		case c.upgraded():
			p.add(g, oc.check, Fail, "%s upgraded (101): a page on another site can open this socket", shown)
		case retryable(c.status):
			p.add(g, oc.check, NA, "%s: still %s after retries (rate limited: inconclusive)", shown, c.statusText())
		default:
			p.add(g, oc.check, Pass, "%s refused: %s", shown, c.statusText())
		}
	}
}
