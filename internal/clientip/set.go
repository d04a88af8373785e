package clientip

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// indexThreshold is the number of prefixes of one family above which a Set
// stops scanning linearly and looks up one map entry per distinct prefix
// length instead.
const indexThreshold = 16

// Set is an immutable set of IP prefixes, typically the trusted proxies.
// It is safe for simultaneous use by multiple goroutines. A nil *Set and the
// zero Set contain nothing.
//
// Membership is decided on the unmapped, zone-less address: 192.0.2.1 and
// ::ffff:192.0.2.1 are the same member. An IPv4-mapped IPv6 prefix of at
// least 96 bits (::ffff:10.0.0.0/104) is stored as the IPv4 prefix it spells
// (10.0.0.0/8); a shorter IPv6 prefix, such as ::/0, matches native IPv6
// addresses only and never an IPv4 peer.
type Set struct {
	v4, v6     []netip.Prefix // masked, sorted, none covered by another
	idx4, idx6 *lengthIndex   // nil for small families
}

// lengthIndex answers membership for large families with one map lookup per
// distinct prefix length.
type lengthIndex struct {
	lens []int // distinct prefix lengths, longest first
	m    map[netip.Prefix]struct{}
}

// ParseSet builds a Set from CIDR prefixes ("10.0.0.0/8", "2001:db8::/32")
// and bare addresses ("127.0.0.1", "::1"). Surrounding spaces are ignored.
// Host bits are masked off ("10.1.2.3/8" is 10.0.0.0/8), IPv4-mapped IPv6
// entries are unmapped, duplicates and prefixes covered by another entry are
// dropped. Zoned addresses and empty entries are refused.
//
// An error names every bad entry (joined with [errors.Join]), each wrapping
// [ErrInvalidCIDR]. A nil or empty list yields an empty Set.
func ParseSet(cidrs []string) (*Set, error) {
	var errs []error
	var v4, v6 []netip.Prefix
	for i, entry := range cidrs {
		p, err := parseEntry(entry)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: entry %d %q: %s", ErrInvalidCIDR, i, entry, err))
			continue
		}
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s := &Set{v4: minimize(v4), v6: minimize(v6)}
	s.idx4 = buildIndex(s.v4)
	s.idx6 = buildIndex(s.v6)
	return s, nil
}

// parseEntry parses one trusted-proxy entry into a canonical prefix. The
// returned error text explains the problem; the caller adds the entry.
func parseEntry(entry string) (netip.Prefix, error) {
	e := strings.TrimSpace(entry)
	if e == "" {
		return netip.Prefix{}, errors.New("empty entry")
	}
	if strings.IndexByte(e, '%') >= 0 {
		return netip.Prefix{}, errors.New("zoned addresses are not allowed")
	}
	var p netip.Prefix
	if strings.IndexByte(e, '/') >= 0 {
		var err error
		p, err = netip.ParsePrefix(e)
		if err != nil {
			return netip.Prefix{}, errors.New("not a CIDR prefix")
		}
	} else {
		a, err := netip.ParseAddr(e)
		if err != nil {
			return netip.Prefix{}, errors.New("not an IP address or CIDR prefix")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	p, err := a.Prefix(bits)
	if err != nil { // unreachable: bits was validated by netip
		return netip.Prefix{}, errors.New("invalid prefix length")
	}
	return p, nil
}

// minimize sorts ps and removes duplicates and prefixes covered by another.
// Prefixes are either nested or disjoint, so after sorting by (address,
// length) every prefix covered by some other one directly follows the last
// prefix kept, which covers it.
func minimize(ps []netip.Prefix) []netip.Prefix {
	if len(ps) == 0 {
		return nil
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Bits(), b.Bits())
	})
	out := ps[:1]
	for _, p := range ps[1:] {
		last := out[len(out)-1]
		if last.Bits() <= p.Bits() && last.Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return slices.Clip(out)
}

func buildIndex(ps []netip.Prefix) *lengthIndex {
	if len(ps) <= indexThreshold {
		return nil
	}
	idx := &lengthIndex{m: make(map[netip.Prefix]struct{}, len(ps))}
	for _, p := range ps {
		idx.m[p] = struct{}{}
		if !slices.Contains(idx.lens, p.Bits()) {
			idx.lens = append(idx.lens, p.Bits())
		}
	}
	slices.SortFunc(idx.lens, func(a, b int) int { return cmp.Compare(b, a) })
	return idx
}

// Contains reports whether a, unmapped and without its zone, lies in one of
// the prefixes of s. It does not allocate. A nil Set and an invalid address
// contain nothing.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	list, idx := s.v6, s.idx6
	if a.Is4() {
		list, idx = s.v4, s.idx4
	}
	if idx != nil {
		for _, l := range idx.lens {
			p, _ := a.Prefix(l)
			if _, ok := idx.m[p]; ok {
				return true
			}
		}
		return false
	}
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Len returns the number of prefixes in s after canonicalization.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.v4) + len(s.v6)
}

// Prefixes returns a copy of the canonical prefixes of s, IPv4 first, each
// family sorted by address.
func (s *Set) Prefixes() []netip.Prefix {
	if s == nil {
		return nil
	}
	return slices.Concat(s.v4, s.v6)
}

// String returns the canonical prefixes of s separated by commas, for logs.
func (s *Set) String() string {
	var b strings.Builder
	for i, p := range s.Prefixes() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.String())
	}
	return b.String()
}
