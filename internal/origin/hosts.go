package origin

import (
	"net/netip"
	"strconv"
	"strings"
)

// HostPattern is an allowlist entry for the Host header of a request: the
// names a service answers to, which is what stops DNS rebinding (a page on
// an attacker's name, re-pointed at the service, sends that name as Host).
//
// It is written like an origin pattern, with or without the scheme:
//
//   - "app.example.com", "*.example.com", "127.0.0.1", "[::1]": that host
//     on the default port of the request's scheme (443 over TLS, 80
//     otherwise);
//   - "app.example.com:8443", "localhost:8080": that host and port, over
//     either scheme;
//   - "https://app.example.com", "http://localhost:8080": exactly as the
//     origin pattern would match the request's own origin.
//
// The zero HostPattern matches nothing.
type HostPattern struct {
	p         Pattern // its scheme is "" when none was written
	anyScheme bool    // no scheme written: the request's scheme
	hasPort   bool    // a port was written
}

// ParseHostPattern compiles a Host allowlist entry. It accepts what
// [ParsePattern] accepts, and the same without "scheme://"; it refuses
// the same things with the same errors.
func ParseHostPattern(s string) (HostPattern, error) {
	if strings.Contains(s, "://") {
		p, err := ParsePattern(s)
		if err != nil {
			return HostPattern{}, err
		}
		return HostPattern{p: p, hasPort: true}, nil
	}
	if s == "" {
		return HostPattern{}, ErrEmpty
	}
	p, err := ParsePattern("http://" + s)
	if err != nil {
		return HostPattern{}, err
	}
	hp, err := splitHostPort(s)
	if err != nil { // unreachable: ParsePattern split it already
		return HostPattern{}, err
	}
	p.scheme = ""
	return HostPattern{p: p, anyScheme: true, hasPort: hp.hasPort}, nil
}

// String returns the canonical form of h: as the origin pattern when a
// scheme was written, else "host" or "host:port" (IPv6 in brackets).
// ParseHostPattern(h.String()) returns h again. The zero HostPattern
// returns "".
func (h HostPattern) String() string {
	if !h.anyScheme {
		return h.p.String()
	}
	if h.p.host == "" {
		return ""
	}
	var b []byte
	if h.p.wildcard {
		b = append(b, '*')
	}
	if strings.IndexByte(h.p.host, ':') >= 0 {
		b = append(b, '[')
		b = append(b, h.p.host...)
		b = append(b, ']')
	} else {
		b = append(b, h.p.host...)
	}
	if h.hasPort {
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(h.p.port), 10)
	}
	return string(b)
}

// Match reports whether the request origin o (from [RequestOrigin])
// matches h.
func (h HostPattern) Match(o Origin) bool {
	p := h.p
	if h.anyScheme {
		if p.host == "" {
			return false
		}
		p.scheme = o.Scheme
		if !h.hasPort {
			p.port = defaultPort(o.Scheme)
		}
	}
	return p.Match(o)
}

// HostSet is a compiled Host allowlist. It is immutable and safe for
// simultaneous use; a nil or empty HostSet matches nothing.
type HostSet struct {
	patterns []HostPattern
}

// NewHostSet compiles ps into a HostSet, keeping its own copy.
func NewHostSet(ps []HostPattern) *HostSet {
	return &HostSet{patterns: append([]HostPattern(nil), ps...)}
}

// Match returns the index of the first pattern that matches the request
// origin o, and whether there is one. It does not allocate.
func (s *HostSet) Match(o Origin) (int, bool) {
	if s == nil {
		return -1, false
	}
	for i, p := range s.patterns {
		if p.Match(o) {
			return i, true
		}
	}
	return -1, false
}

// RequestOrigin is the origin a request names itself by: the scheme
// ("https" when tls is true, else "http") and the host and port of its
// Host header ("host[:port]" or "[ipv6][:port]"), in the canonical form
// of [ParseOrigin]. A Host that ParseOrigin would refuse as an origin
// host (a trailing dot, non-LDH labels, a zone, a bad port, anything after
// the port) is an error. It does not allocate when requestHost is already
// lowercase and canonical.
func RequestOrigin(requestHost string, tls bool) (Origin, error) {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	s := requestHost
	if s == "" {
		return Origin{}, ErrEmptyHost
	}
	if len(s) > MaxLength {
		return Origin{}, ErrTooLong
	}
	upper := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80:
			return Origin{}, ErrNonASCII
		case c <= ' ' || c == 0x7f:
			return Origin{}, ErrSpace
		case 'A' <= c && c <= 'Z':
			upper = true
		}
	}
	if upper {
		s = lowerASCII(s)
	}
	if err := checkAuthority(s); err != nil {
		return Origin{}, err
	}
	hp, err := splitHostPort(s)
	if err != nil {
		return Origin{}, err
	}
	host := hp.host
	if hp.ipv6 {
		if host, err = canonIPv6(host); err != nil {
			return Origin{}, err
		}
	} else if _, err := checkDomain(host); err != nil {
		return Origin{}, err
	}
	port := hp.port
	if !hp.hasPort {
		port = defaultPort(scheme)
	}
	return Origin{Scheme: scheme, Host: host, Port: port}, nil
}

// IsLiteralOrLocalhost reports whether o's host is an IP address literal
// or "localhost": a name no DNS answer can re-point, so a page whose
// origin it is was served by the machine it names.
func IsLiteralOrLocalhost(o Origin) bool {
	if o.Host == "localhost" {
		return true
	}
	_, err := netip.ParseAddr(o.Host)
	return err == nil
}
