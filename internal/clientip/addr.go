package clientip

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseRemoteAddr parses an [net/http.Request.RemoteAddr]: "ip:port" or
// "[ipv6]:port", and also a bare address ("192.0.2.1", "2001:db8::1",
// "[2001:db8::1]"). The result is unmapped and has no zone. Anything else,
// such as the RemoteAddr of a Unix-socket listener, wraps
// [ErrInvalidRemoteAddr]. It does not allocate on success.
func ParseRemoteAddr(remoteAddr string) (netip.Addr, error) {
	a, ok := parseHostPort(remoteAddr, true)
	if !ok {
		return netip.Addr{}, fmt.Errorf("%w: %q", ErrInvalidRemoteAddr, remoteAddr)
	}
	return a, nil
}

// parseHostPort parses "ip", "ip:port", "[v6]" and "[v6]:port" (port: 1 to 5
// digits, at most 65535) and returns the unmapped, zone-less address. A
// zoned address is accepted (and its zone dropped) only if allowZone.
func parseHostPort(s string, allowZone bool) (netip.Addr, bool) {
	if !allowZone && strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, false
	}
	host, want6 := s, false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host, want6 = s[1:end], true
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' || !validPort(rest[1:]) {
				return netip.Addr{}, false
			}
		}
	case strings.Count(s, ":") == 1: // IPv4 with a port; IPv6 has at least two colons
		i := strings.IndexByte(s, ':')
		if !validPort(s[i+1:]) {
			return netip.Addr{}, false
		}
		host = s[:i]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() {
			return netip.Addr{}, false
		}
		return a, true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || (want6 && !a.Is6()) {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// validPort reports whether p is 1 to 5 decimal digits with a value of at
// most 65535.
func validPort(p string) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// LimitKey returns the key under which per-client limits (connection quotas,
// handshake rates) are counted: an IPv4 address as a /32 prefix, an IPv6
// address masked to its /64, because a single IPv6 subscriber usually
// controls a whole /64. The address is unmapped and its zone dropped first,
// so ::ffff:192.0.2.1 and 192.0.2.1 share a key.
//
// A [netip.Prefix] is comparable, usable as a map key without allocating,
// and its String form ("192.0.2.1/32", "2001:db8::/64") suits a shared
// store. An invalid address yields the zero Prefix.
func LimitKey(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
