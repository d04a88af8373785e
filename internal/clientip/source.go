package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

type sourceKind uint8

const (
	kindXFF       sourceKind = iota // X-Forwarded-For with X-Forwarded-Proto
	kindForwarded                   // RFC 7239 Forwarded, with its proto=
	kindSingle                      // one address in a named header
)

// Source names the one forwarding header [Resolve] reads from a trusted
// proxy. Every other forwarding header is ignored, whatever it holds: a
// proxy that passes a client's own Forwarded header through untouched (as
// nginx and HAProxy do with their usual X-Forwarded-For recipes) cannot
// let that client choose its address or scheme.
//
// The zero Source is [XForwardedFor]. Build others with [ParseSource].
// A Source is comparable and safe to copy.
type Source struct {
	kind sourceKind
	name string // canonical header name; "" for the zero Source
}

// XForwardedFor reads X-Forwarded-For (the client is the right-most entry
// that is not a trusted proxy) and takes the scheme from X-Forwarded-Proto.
// It is the zero Source.
var XForwardedFor = Source{}

// Forwarded reads the RFC 7239 Forwarded header, for= and proto= of the
// client's element, and nothing else.
var Forwarded = Source{kind: kindForwarded, name: "Forwarded"}

// singleAddressHeaders are the headers that hold one address, written
// (overwritten) by the proxy or CDN that sets them.
var singleAddressHeaders = []string{"X-Real-Ip", "Cf-Connecting-Ip", "True-Client-Ip", "Fastly-Client-Ip"}

// SourceNames lists the header names ParseSource accepts, in their usual
// spelling.
var SourceNames = []string{"X-Forwarded-For", "Forwarded", "X-Real-IP", "CF-Connecting-IP", "True-Client-IP", "Fastly-Client-IP"}

// ParseSource returns the Source for a header name, in any case:
// "X-Forwarded-For" (with X-Forwarded-Proto), "Forwarded", or a
// single-address header ("X-Real-IP", "CF-Connecting-IP",
// "True-Client-IP", "Fastly-Client-IP"), whose scheme comes from
// X-Forwarded-Proto. Any other name, an empty name or one with spaces is
// an error wrapping [ErrInvalidSource].
func ParseSource(name string) (Source, error) {
	if name == "" {
		return Source{}, fmt.Errorf("%w: empty header name", ErrInvalidSource)
	}
	for i := 0; i < len(name); i++ {
		if !isTchar(name[i]) {
			return Source{}, fmt.Errorf("%w: %q is not a header name", ErrInvalidSource, name)
		}
	}
	canon := http.CanonicalHeaderKey(name)
	switch canon {
	case "X-Forwarded-For":
		return XForwardedFor, nil
	case "Forwarded":
		return Forwarded, nil
	case "X-Forwarded-Proto", "X-Forwarded-Scheme", "X-Forwarded-Host", "X-Forwarded-Port":
		return Source{}, fmt.Errorf("%w: %s does not name the client; name the address header (X-Forwarded-For reads X-Forwarded-Proto with it)", ErrInvalidSource, name)
	}
	for _, h := range singleAddressHeaders {
		if canon == h {
			return Source{kind: kindSingle, name: h}, nil
		}
	}
	return Source{}, fmt.Errorf("%w: unknown header %q; one of %s", ErrInvalidSource, name, strings.Join(SourceNames, ", "))
}

// String returns the name of the address header, in its usual spelling.
func (s Source) String() string {
	switch s.kind {
	case kindXFF:
		return "X-Forwarded-For"
	case kindSingle:
		for i, h := range singleAddressHeaders {
			if h == s.name {
				return SourceNames[2+i]
			}
		}
	}
	return s.name
}

// forwardingHeaders are the headers the hints look for, canonical.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Real-Ip", "Cf-Connecting-Ip", "True-Client-Ip", "Fastly-Client-Ip"}

// PresentHeaders returns the names of the forwarding headers h carries,
// in a fixed order. It is meant for log hints: it never returns values.
func PresentHeaders(h http.Header) []string {
	var out []string
	for _, name := range forwardingHeaders {
		if _, ok := h[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

// IgnoredHeaders returns the names of the forwarding headers h carries
// that s does not read, in a fixed order; for log hints, never values.
func (s Source) IgnoredHeaders(h http.Header) []string {
	var out []string
	for _, name := range PresentHeaders(h) {
		if !s.reads(name) {
			out = append(out, name)
		}
	}
	return out
}

// reads reports whether s reads the canonical header name.
func (s Source) reads(name string) bool {
	switch s.kind {
	case kindForwarded:
		return name == "Forwarded"
	case kindSingle:
		return name == s.name || name == "X-Forwarded-Proto"
	}
	return name == "X-Forwarded-For" || name == "X-Forwarded-Proto"
}

// resolveSingle reads one address from the single-address header name and
// the scheme from the right-most X-Forwarded-Proto entry. A missing header
// leaves the client as the peer; several lines, a list, or a value that is
// not an IP address (optionally with a port) is ErrMalformed.
func resolveSingle(res Result, name string, lines, xfp []string) (Result, error) {
	if err := checkSize(lines, xfp); err != nil {
		return Result{}, err
	}
	switch len(lines) {
	case 0:
	case 1:
		v := trimOWS(lines[0])
		if strings.IndexByte(v, ',') >= 0 {
			return Result{}, fmt.Errorf("%w: %s holds a list", ErrMalformed, name)
		}
		a, ok := parseHostPort(v, false)
		if !ok {
			return Result{}, fmt.Errorf("%w: %s is not an IP address", ErrMalformed, name)
		}
		res.Client = a
	default:
		return Result{}, fmt.Errorf("%w: %s sent %d times", ErrMalformed, name, len(lines))
	}
	if np := countItems(xfp); np > 0 {
		p, ok := canonicalProto(nthItem(xfp, np-1))
		if !ok {
			return Result{}, fmt.Errorf("%w: X-Forwarded-Proto", ErrInvalidProto)
		}
		res.Proto = p
	}
	return res, nil
}

// ContainsPublic reports whether p holds any address that is not
// loopback, private (RFC 1918, RFC 4193), link-local or shared address
// space (RFC 6598, as used inside cloud networks): a trusted range that
// does lets hosts on the internet choose their client address.
func ContainsPublic(p netip.Prefix) bool {
	p = p.Masked()
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	for _, r := range nonPublic {
		if r.Addr().BitLen() == p.Addr().BitLen() && p.Bits() >= r.Bits() && r.Contains(p.Addr()) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}
