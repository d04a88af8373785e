package origin

import (
	"net/netip"
	"strings"
)

// Origin is a parsed serialized origin (RFC 6454), as a browser sends it in
// the Origin header. Values from ParseOrigin are canonical: Scheme is
// "http" or "https", Host is lowercase ASCII (punycode for IDNs; an IPv6
// address in RFC 5952 form without brackets), and Port is always explicit,
// with the scheme's default (http 80, https 443) filled in.
type Origin struct {
	Scheme string
	Host   string
	Port   uint16
}

// ParseOrigin parses the value of an Origin header. It refuses "null",
// schemes other than http and https (so "file://…"), a missing scheme, a
// path (even "/"), userinfo, a query or fragment, a bad or empty port, an
// empty host, a host with a trailing dot or non-LDH labels, whitespace,
// control characters, non-ASCII bytes, and input longer than MaxLength.
//
// It does not allocate when s is already lowercase: the returned Host is a
// substring of s. Input with uppercase letters is lowercased into a copy.
func ParseOrigin(s string) (Origin, error) {
	if s == "" {
		return Origin{}, ErrEmpty
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
	if s == "null" {
		return Origin{}, ErrNull
	}
	i := strings.Index(s, "://")
	if i < 0 {
		return Origin{}, ErrNoScheme
	}
	scheme, ok := canonScheme(s[:i])
	if !ok {
		return Origin{}, ErrScheme
	}
	rest := s[i+len("://"):]
	if err := checkAuthority(rest); err != nil {
		return Origin{}, err
	}
	hp, err := splitHostPort(rest)
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

// String returns the serialized origin: "scheme://host", with the port
// only when it is not the scheme's default and IPv6 hosts in brackets.
// ParseOrigin(o.String()) returns o again for an o from ParseOrigin. The
// zero Origin returns "".
func (o Origin) String() string {
	if o == (Origin{}) {
		return ""
	}
	b := make([]byte, 0, len(o.Scheme)+len("://[]:65535")+len(o.Host))
	b = append(b, o.Scheme...)
	b = append(b, "://"...)
	b = appendHostPort(b, o.Scheme, o.Host, o.Port)
	return string(b)
}

// SameOrigin reports whether o is the origin of the request itself: its
// scheme is https when tls is true and http otherwise, and its host and
// port equal those of requestHost (the Host header, "host[:port]" or
// "[ipv6][:port]", default port 443 with tls and 80 without). tls must say
// whether the client reached the service over TLS, directly or through a
// trusted proxy.
//
// Host names compare ASCII case-insensitively; IPv6 addresses compare as
// addresses. A malformed requestHost, or one with a trailing dot, is never
// the same origin. o must come from ParseOrigin.
func SameOrigin(o Origin, requestHost string, tls bool) bool {
	scheme, port := "http", uint16(80)
	if tls {
		scheme, port = "https", 443
	}
	if o.Scheme != scheme || o.Host == "" {
		return false
	}
	hp, err := splitHostPort(requestHost)
	if err != nil {
		return false
	}
	if hp.hasPort {
		port = hp.port
	}
	if port != o.Port {
		return false
	}
	if !hp.ipv6 {
		return asciiEqualFold(hp.host, o.Host)
	}
	a, err := netip.ParseAddr(hp.host)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return false
	}
	b, err := netip.ParseAddr(o.Host)
	if err != nil || !b.Is6() || b.Zone() != "" {
		return false
	}
	return a == b
}
