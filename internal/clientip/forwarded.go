package clientip

import (
	"fmt"
	"net/netip"
	"strings"
)

// maxParams caps the pairs of one Forwarded element, which keeps the
// duplicate check cheap. RFC 7239 defines four parameters.
const maxParams = 16

// Bits for the parameters defined by RFC 7239, for the duplicate check.
const (
	paramFor = 1 << iota
	paramBy
	paramHost
	paramProto
)

// fwdHop is one Forwarded element as far as Resolve needs it. Values point
// into the header; a quoted value is kept without its quotes, and esc marks
// one that still contains backslash escapes.
type fwdHop struct {
	forV, protoV     string
	forEsc, protoEsc bool
	hasFor, hasProto bool
}

func resolveForwarded(res Result, lines []string, trusted *Set) (Result, error) {
	if err := checkSize(lines); err != nil {
		return Result{}, err
	}
	var hops [MaxHops]fwdHop
	n, err := parseForwarded(lines, &hops)
	if err != nil {
		return Result{}, err
	}
	chosen := 0
	for i := n - 1; i >= 0; i-- {
		a, err := hops[i].node(i)
		if err != nil {
			return Result{}, err
		}
		res.Client, chosen = a, i
		if !trusted.Contains(a) {
			break
		}
	}
	if h := &hops[chosen]; h.hasProto {
		v := h.protoV
		if h.protoEsc {
			v = unescape(v)
		}
		p, ok := canonicalProto(v)
		if !ok {
			return Result{}, fmt.Errorf("%w: Forwarded element %d", ErrInvalidProto, chosen)
		}
		res.Proto = p
	}
	return res, nil
}

func malformedElem(elem int, why string) error {
	return fmt.Errorf("%w: Forwarded element %d: %s", ErrMalformed, elem, why)
}

// parseForwarded checks the syntax of every Forwarded line and records the
// elements, in order, in hops. It returns the number of elements.
func parseForwarded(lines []string, hops *[MaxHops]fwdHop) (int, error) {
	n := 0
	for _, s := range lines {
		i := 0
		for {
			i = skipOWS(s, i)
			if i == len(s) || s[i] == ',' {
				return 0, malformedElem(n, "empty element")
			}
			if n == MaxHops {
				return 0, fmt.Errorf("%w: Forwarded has more than %d elements", ErrTooManyHops, MaxHops)
			}
			var err error
			if i, err = parseElement(s, i, n, &hops[n]); err != nil {
				return 0, err
			}
			n++
			if i == len(s) {
				break
			}
			i++ // the ',' that ended the element
		}
	}
	return n, nil
}

// parseElement parses the element of s starting at i into h and returns the
// index of the ',' that ends it, or len(s).
//
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair    = token "=" value
//	value             = token / quoted-string
//
// Optional whitespace is accepted around ";" and ",", not around "=".
func parseElement(s string, i, elem int, h *fwdHop) (int, error) {
	*h = fwdHop{}
	var seen uint8
	var ext [maxParams]string
	pairs := 0
	for {
		i = skipOWS(s, i)
		if i == len(s) || s[i] == ',' {
			return i, nil
		}
		if s[i] == ';' {
			i++
			continue
		}

		start := i
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		if i == start {
			return 0, malformedElem(elem, "expected a parameter name")
		}
		name := s[start:i]
		if i == len(s) || s[i] != '=' {
			return 0, malformedElem(elem, "missing '=' after parameter name")
		}
		i++

		var val string
		esc := false
		if i < len(s) && s[i] == '"' {
			var err error
			if val, esc, i, err = parseQuoted(s, i+1, elem); err != nil {
				return 0, err
			}
		} else {
			start := i
			for i < len(s) && isTchar(s[i]) {
				i++
			}
			if i == start {
				return 0, malformedElem(elem, "missing parameter value")
			}
			val = s[start:i]
		}

		if pairs == maxParams {
			return 0, malformedElem(elem, "too many parameters")
		}
		var bit uint8
		switch {
		case strings.EqualFold(name, "for"):
			bit = paramFor
			h.forV, h.forEsc, h.hasFor = val, esc, true
		case strings.EqualFold(name, "by"):
			bit = paramBy
		case strings.EqualFold(name, "host"):
			bit = paramHost
		case strings.EqualFold(name, "proto"):
			bit = paramProto
			h.protoV, h.protoEsc, h.hasProto = val, esc, true
		default:
			for _, e := range ext[:pairs] {
				if strings.EqualFold(e, name) {
					return 0, malformedElem(elem, "repeated parameter")
				}
			}
		}
		if seen&bit != 0 {
			return 0, malformedElem(elem, "repeated parameter")
		}
		seen |= bit
		ext[pairs] = name
		pairs++

		i = skipOWS(s, i)
		if i < len(s) && s[i] != ';' && s[i] != ',' {
			return 0, malformedElem(elem, "unexpected character after parameter value")
		}
	}
}

// parseQuoted parses a quoted-string whose opening quote precedes s[i]. It
// returns the content without quotes, whether it contains escapes, and the
// index after the closing quote.
//
//	quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
//	qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
//	quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text )
func parseQuoted(s string, i, elem int) (string, bool, int, error) {
	start, esc := i, false
	for i < len(s) {
		switch c := s[i]; {
		case c == '"':
			return s[start:i], esc, i + 1, nil
		case c == '\\':
			if i+1 == len(s) {
				return "", false, 0, malformedElem(elem, "unterminated quoted-string")
			}
			if !isQuotable(s[i+1]) {
				return "", false, 0, malformedElem(elem, "invalid escape in quoted-string")
			}
			esc = true
			i += 2
		case isQuotable(c):
			i++
		default:
			return "", false, 0, malformedElem(elem, "control character in quoted-string")
		}
	}
	return "", false, 0, malformedElem(elem, "unterminated quoted-string")
}

// isQuotable reports whether c is HTAB, SP, VCHAR or obs-text: what may
// follow a backslash, and (but for '"' and '\') what qdtext may hold.
func isQuotable(c byte) bool { return c == '\t' || (c >= 0x20 && c != 0x7f) }

// unescape removes the backslashes of quoted-pairs from a quoted-string's
// content already checked by parseQuoted.
func unescape(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func skipOWS(s string, i int) int {
	for i < len(s) && isOWS(s[i]) {
		i++
	}
	return i
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// node returns the address of the for= node of hop i.
//
//	node     = nodename [ ":" node-port ]
//	nodename = IPv4address / "[" IPv6address "]" / "unknown" / obfnode
//	obfnode  = "_" 1*( ALPHA / DIGIT / "." / "_" / "-" )
func (h *fwdHop) node(i int) (netip.Addr, error) {
	if !h.hasFor {
		return netip.Addr{}, fmt.Errorf("%w: Forwarded element %d has no for= parameter", ErrUnknownClient, i)
	}
	v := h.forV
	if h.forEsc {
		v = unescape(v)
	}
	host, port, hasPort, bracketed := v, "", false, false
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return netip.Addr{}, fmt.Errorf("%w: Forwarded element %d: unclosed '[' in for=", ErrMalformed, i)
		}
		host, bracketed = v[1:end], true
		if rest := v[end+1:]; rest != "" {
			if rest[0] != ':' {
				return netip.Addr{}, fmt.Errorf("%w: Forwarded element %d: unexpected text after ']' in for=", ErrMalformed, i)
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host, port, hasPort = strings.Cut(v, ":")
	}
	if hasPort && !validPort(port) && !isObf(port) {
		return netip.Addr{}, fmt.Errorf("%w: Forwarded element %d: invalid port in for=", ErrMalformed, i)
	}
	if !bracketed {
		if strings.EqualFold(host, "unknown") {
			return netip.Addr{}, fmt.Errorf("%w: Forwarded element %d is for=unknown", ErrUnknownClient, i)
		}
		if isObf(host) {
			return netip.Addr{}, fmt.Errorf("%w: Forwarded element %d has an obfuscated for=", ErrUnknownClient, i)
		}
	}
	if strings.IndexByte(host, '%') >= 0 {
		return netip.Addr{}, fmt.Errorf("%w: Forwarded element %d: zoned address in for=", ErrMalformed, i)
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Is6() != bracketed {
		return netip.Addr{}, fmt.Errorf("%w: Forwarded element %d: for= is not an IP address (IPv6 must be quoted and bracketed)", ErrMalformed, i)
	}
	return a.Unmap(), nil
}

// isObf reports whether s is an obfuscated identifier: "_" followed by one or
// more ALPHA, DIGIT, ".", "_" or "-".
func isObf(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
