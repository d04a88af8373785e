package origin

import (
	"net/netip"
	"strings"
)

const (
	maxHostLen  = 253
	maxLabelLen = 63
)

// defaultPort returns the port a scheme implies, or 0 for another scheme.
func defaultPort(scheme string) uint16 {
	switch scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}

// canonScheme returns the lowercase scheme as a constant string, so that
// parsed values never keep the input alive through the scheme.
func canonScheme(s string) (string, bool) {
	switch {
	case asciiEqualFold(s, "https"):
		return "https", true
	case asciiEqualFold(s, "http"):
		return "http", true
	}
	return "", false
}

// checkAuthority refuses the delimiters that would start userinfo, a path,
// a query or a fragment after "scheme://". WHATWG URL parsing reads a
// backslash as a slash in http(s) URLs, so it counts as a path.
func checkAuthority(rest string) error {
	i := strings.IndexAny(rest, "/\\?#@")
	if i < 0 {
		return nil
	}
	switch rest[i] {
	case '?':
		return ErrQuery
	case '#':
		return ErrFragment
	case '@':
		return ErrUserinfo
	}
	return ErrPath
}

// hostPort is the result of splitHostPort.
type hostPort struct {
	host    string // without brackets
	ipv6    bool   // host was written between brackets
	port    uint16
	hasPort bool
}

// splitHostPort splits "host[:port]" or "[ipv6][:port]". It checks the
// brackets and the port, not the host itself.
func splitHostPort(s string) (hostPort, error) {
	var hp hostPort
	var port string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return hp, ErrBracket
		}
		hp.host, hp.ipv6 = s[1:end], true
		rest := s[end+1:]
		if strings.ContainsAny(hp.host, "[]") {
			return hp, ErrBracket
		}
		switch {
		case rest == "":
		case rest[0] == ':':
			port, hp.hasPort = rest[1:], true
		default:
			return hp, ErrBracket
		}
	} else {
		if strings.ContainsAny(s, "[]") {
			return hp, ErrBracket
		}
		hp.host = s
		if i := strings.IndexByte(s, ':'); i >= 0 {
			if strings.IndexByte(s[i+1:], ':') >= 0 {
				return hp, ErrUnbracketedIPv6
			}
			hp.host, port, hp.hasPort = s[:i], s[i+1:], true
		}
	}
	if hp.host == "" {
		return hp, ErrEmptyHost
	}
	if hp.hasPort {
		p, err := parsePort(port)
		if err != nil {
			return hp, err
		}
		hp.port = p
	}
	return hp, nil
}

// parsePort parses a decimal port from 1 to 65535 with no sign, no leading
// zero and nothing but ASCII digits.
func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, ErrEmptyPort
	}
	if len(s) > 5 || s[0] == '0' {
		return 0, ErrPort
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, ErrPort
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, ErrPort
	}
	return uint16(n), nil
}

// canonIPv6 validates the text between brackets and returns its RFC 5952
// form. It returns s itself (no allocation) when s is already canonical.
func canonIPv6(s string) (string, error) {
	if strings.IndexByte(s, '%') >= 0 {
		return "", ErrIPv6Zone
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return "", ErrIPv6
	}
	var buf [64]byte
	c := a.AppendTo(buf[:0])
	if string(c) == s {
		return s, nil
	}
	return string(c), nil
}

// checkDomain validates a lowercase ASCII host that is not an IPv6
// literal: LDH labels of 1 to 63 bytes without a leading or trailing
// hyphen, at most 253 bytes, no trailing dot. A host whose last label is
// numeric must be a dotted-decimal IPv4 address; ipv4 reports that case.
func checkDomain(h string) (ipv4 bool, err error) {
	if h == "" {
		return false, ErrEmptyHost
	}
	if h[len(h)-1] == '.' {
		return false, ErrTrailingDot
	}
	start := 0
	for i := 0; i <= len(h); i++ {
		if i < len(h) && h[i] != '.' {
			c := h[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false, ErrHostChar
			}
			continue
		}
		label := h[start:i]
		switch {
		case label == "":
			return false, ErrEmptyLabel
		case len(label) > maxLabelLen:
			return false, ErrLabelTooLong
		case label[0] == '-' || label[len(label)-1] == '-':
			return false, ErrLabelHyphen
		}
		start = i + 1
	}
	if len(h) > maxHostLen {
		return false, ErrHostTooLong
	}
	if isNumericLabel(lastLabel(h)) {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is4() {
			return false, ErrNumericHost
		}
		return true, nil
	}
	return false, nil
}

// lastLabel returns the text after the last dot of h.
func lastLabel(h string) string {
	return h[strings.LastIndexByte(h, '.')+1:]
}

// isNumericLabel reports whether WHATWG URL host parsing would read the
// label as a number (and the host as IPv4): all decimal digits, or "0x"
// followed by hexadecimal digits.
func isNumericLabel(l string) bool {
	if l == "" {
		return false
	}
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		for i := 2; i < len(l); i++ {
			if !isHexDigit(l[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// asciiEqualFold reports whether a and b are equal under ASCII case
// folding only. Unlike strings.EqualFold it never matches a non-ASCII rune
// to an ASCII letter (U+017F "ſ" folds to "s", U+212A "K" to "k").
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerByte(a[i]) != lowerByte(b[i]) {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// lowerASCII lowercases the ASCII letters of s, leaving other bytes alone.
// It returns s itself when there is nothing to change.
func lowerASCII(s string) string {
	i := 0
	for i < len(s) && !('A' <= s[i] && s[i] <= 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		b[i] = lowerByte(b[i])
	}
	return string(b)
}
