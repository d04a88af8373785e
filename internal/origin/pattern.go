package origin

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pattern is a compiled allowlist entry: an exact origin
// "scheme://host[:port]" or a wildcard "scheme://*.example.com[:port]".
//
// The scheme and port always match exactly (the default port is implied
// when none is written). An exact pattern matches one host; a wildcard
// matches every host that ends in "." followed by its suffix, at any depth,
// but not the suffix itself.
//
// Patterns are comparable with ==: two patterns are equal when they have
// the same canonical form. The zero Pattern matches nothing.
type Pattern struct {
	scheme   string // "http" or "https"; "" for the zero Pattern
	host     string // exact host (IPv6 without brackets), or for a wildcard the suffix with its leading dot: ".example.com"
	port     uint16 // always explicit
	wildcard bool
}

// ParsePattern compiles an allowlist entry. It accepts "http" or "https"
// (in any case), "://", then either a host or "*." and a host of at least
// two labels, then an optional ":port". It refuses anything else — a
// path (even "/"), query, fragment, userinfo, whitespace, a wildcard
// anywhere but as the whole left-most label, a wildcard with an IP address
// — with one of the Err… values of this package.
//
// The host is lowercased; Unicode labels are encoded in punycode; IPv4
// addresses must be dotted decimal; IPv6 addresses go between brackets and
// are stored in RFC 5952 form; a trailing dot is refused.
func ParsePattern(s string) (Pattern, error) {
	switch {
	case s == "":
		return Pattern{}, ErrEmpty
	case len(s) > MaxLength:
		return Pattern{}, ErrTooLong
	case s == "*":
		return Pattern{}, ErrBareWildcard
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return Pattern{}, ErrInvalidUTF8
			}
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return Pattern{}, ErrSpace
		}
	}

	i := strings.Index(s, "://")
	if i < 0 {
		return Pattern{}, ErrNoScheme
	}
	scheme, ok := canonScheme(s[:i])
	if !ok {
		return Pattern{}, ErrScheme
	}
	rest := s[i+len("://"):]
	if err := checkAuthority(rest); err != nil {
		return Pattern{}, err
	}
	if strings.HasPrefix(rest, "*.[") {
		return Pattern{}, ErrWildcardIP
	}
	hp, err := splitHostPort(rest)
	if err != nil {
		return Pattern{}, err
	}
	p := Pattern{scheme: scheme, port: hp.port}
	if !hp.hasPort {
		p.port = defaultPort(scheme)
	}

	if hp.ipv6 {
		if strings.IndexByte(hp.host, '*') >= 0 {
			return Pattern{}, ErrWildcardIP
		}
		if p.host, err = canonIPv6(hp.host); err != nil {
			return Pattern{}, err
		}
		return p, nil
	}

	host := hp.host
	if host == "*" {
		return Pattern{}, ErrWildcardBroad
	}
	if strings.HasPrefix(host, "*.") {
		p.wildcard = true
		host = host[len("*."):]
	}
	if strings.IndexByte(host, '*') >= 0 {
		if p.wildcard && hasWildcardLabel(host) {
			return Pattern{}, ErrWildcardTwice
		}
		return Pattern{}, ErrWildcardPosition
	}
	if p.wildcard && host == "" {
		return Pattern{}, ErrWildcardBroad
	}
	if host, err = normalizeHost(host); err != nil {
		return Pattern{}, err
	}
	if p.wildcard && isNumericLabel(lastLabel(host)) {
		return Pattern{}, ErrWildcardIP
	}
	if _, err := checkDomain(host); err != nil {
		return Pattern{}, err
	}
	if p.wildcard {
		if strings.IndexByte(host, '.') < 0 {
			return Pattern{}, ErrWildcardBroad
		}
		host = "." + host
	}
	p.host = host
	return p, nil
}

// MustParsePattern is like ParsePattern but panics on error. It is meant
// for tests and for patterns that are constants in the program.
func MustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic("origin: pattern " + strconv.Quote(s) + ": " + err.Error())
	}
	return p
}

// hasWildcardLabel reports whether some label of h is exactly "*".
func hasWildcardLabel(h string) bool {
	for _, l := range strings.Split(h, ".") {
		if l == "*" {
			return true
		}
	}
	return false
}

// normalizeHost lowercases a pattern host and encodes its non-ASCII labels
// in punycode. It does not validate the result (checkDomain does).
func normalizeHost(h string) (string, error) {
	ascii := true
	for i := 0; i < len(h); i++ {
		if h[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return lowerASCII(h), nil
	}
	h = strings.ToLower(h)
	// UTS #46 maps these full stops to ".".
	h = strings.Map(func(r rune) rune {
		switch r {
		case '\u3002', '\uff0e', '\uff61':
			return '.'
		}
		return r
	}, h)

	out := make([]byte, 0, len(h)+16)
	for i, label := range strings.Split(h, ".") {
		if i > 0 {
			out = append(out, '.')
		}
		if isASCII(label) {
			out = append(out, label...)
			continue
		}
		if utf8.RuneCountInString(label) > maxLabelLen {
			return "", ErrLabelTooLong
		}
		for _, r := range label {
			if r >= utf8.RuneSelf && !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsNumber(r) {
				return "", ErrIDN
			}
		}
		var err error
		out = append(out, "xn--"...)
		if out, err = appendPunycode(out, label); err != nil {
			return "", err
		}
	}
	return string(out), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// String returns the canonical form of p: lowercase, punycode host,
// IPv6 in brackets, the default port left out. ParsePattern(p.String())
// returns p again. The zero Pattern returns "".
func (p Pattern) String() string {
	if p.scheme == "" {
		return ""
	}
	b := make([]byte, 0, len(p.scheme)+len("://[]:65535")+len(p.host)+1)
	b = append(b, p.scheme...)
	b = append(b, "://"...)
	if p.wildcard {
		b = append(b, '*')
	}
	b = appendHostPort(b, p.scheme, p.host, p.port)
	return string(b)
}

// Wildcard reports whether p is a wildcard pattern ("*.example.com").
func (p Pattern) Wildcard() bool { return p.wildcard }

// Match reports whether o matches p. o must come from ParseOrigin (or
// be in the same canonical form); the zero Pattern matches nothing.
func (p Pattern) Match(o Origin) bool {
	if p.scheme == "" || o.Scheme != p.scheme || o.Port != p.port {
		return false
	}
	if !p.wildcard {
		return o.Host == p.host
	}
	return matchSuffix(o.Host, p.host)
}

// matchSuffix reports whether host ends in dotSuffix (".example.com") on a
// label boundary with a non-empty label before it.
func matchSuffix(host, dotSuffix string) bool {
	n := len(host) - len(dotSuffix)
	return n > 0 && host[n-1] != '.' && host[n:] == dotSuffix
}

// appendHostPort appends host (bracketed if IPv6) and ":port" unless port
// is the scheme's default.
func appendHostPort(b []byte, scheme, host string, port uint16) []byte {
	if strings.IndexByte(host, ':') >= 0 {
		b = append(b, '[')
		b = append(b, host...)
		b = append(b, ']')
	} else {
		b = append(b, host...)
	}
	if port != defaultPort(scheme) {
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(port), 10)
	}
	return b
}
