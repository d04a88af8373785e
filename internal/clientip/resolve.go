package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Bounds on the forwarding headers of one request.
const (
	// MaxHeaderBytes caps the forwarding headers considered for one request:
	// the lengths of every line of the headers the Source reads, plus one
	// byte per line. More is [ErrHeaderTooLarge].
	MaxHeaderBytes = 8 << 10

	// MaxHops caps the number of hops (Forwarded elements, or non-empty
	// X-Forwarded-For entries). More is [ErrTooManyHops].
	MaxHops = 64
)

// Canonical proto values reported in Result.Proto.
const (
	ProtoHTTP  = "http"
	ProtoHTTPS = "https"
	ProtoWS    = "ws"
	ProtoWSS   = "wss"
)

// Result is the outcome of [Resolve].
type Result struct {
	// Client is the address of the client: the peer itself, or the
	// right-most untrusted hop of the chain that trusted proxies reported.
	// It is unmapped and has no zone.
	Client netip.Addr

	// Proto is the scheme a trusted proxy says the client used, lowercased:
	// "http", "https", "ws" or "wss". It is "" when the peer is not trusted
	// or no trusted proxy asserted one; the caller then relies on the
	// connection itself (http.Request.TLS).
	Proto string

	// ViaProxy reports that the immediate peer is a trusted proxy.
	ViaProxy bool
}

// SecureProto reports whether Proto asserts an encrypted transport ("https"
// or "wss").
func (r Result) SecureProto() bool {
	return r.Proto == ProtoHTTPS || r.Proto == ProtoWSS
}

// ResolveRequest is [ParseRemoteAddr] of r.RemoteAddr followed by [Resolve]
// with r.Header.
func ResolveRequest(r *http.Request, trusted *Set, src Source) (Result, error) {
	remote, err := ParseRemoteAddr(r.RemoteAddr)
	if err != nil {
		return Result{}, err
	}
	return Resolve(remote, r.Header, trusted, src)
}

// Resolve determines the client behind the immediate peer remote, given the
// request headers h, the trusted proxies, and the one header src those
// proxies write.
//
// If remote is not in trusted (a nil or empty Set trusts nobody) the result
// is remote itself with an empty Proto, and h is not read at all: spoofed or
// malformed forwarding headers from an untrusted peer have no effect and
// cause no error. This path does not allocate.
//
// If remote is trusted, only the headers of src are read; every other
// forwarding header is ignored, whatever it holds, because a proxy passes
// the headers it does not write through from the client untouched:
//
//   - [XForwardedFor]: X-Forwarded-For and X-Forwarded-Proto.
//   - [Forwarded]: the RFC 7239 Forwarded header alone.
//   - A single-address header (X-Real-IP, CF-Connecting-IP, …): that header
//     and X-Forwarded-Proto.
//
// Several lines of one header form one list, in order. Hops are walked
// from right to left and trusted hops skipped; the first untrusted hop is
// the client, and if every hop is trusted the left-most one is. Without
// any hop the client is remote.
//
// Forwarded is parsed strictly: elements separated by ",", pairs by ";",
// name=token or name="quoted-string", names case-insensitive, no repeated
// parameter in an element, no empty element; a for= node is an IPv4 address
// or a quoted, bracketed IPv6 address, either with an optional port. A syntax
// error anywhere is [ErrMalformed]. If the client hop is "unknown",
// obfuscated ("_hidden") or has no for= parameter the error is
// [ErrUnknownClient]; if its address cannot be parsed, [ErrMalformed]. The
// proto= of the client's element, if any, gives Proto.
//
// X-Forwarded-For entries are IP addresses, optionally with a port, an IPv6
// address bare or in brackets; empty entries are skipped, and only the
// entries that are walked must parse. X-Forwarded-Proto gives Proto: its only
// entry, else the entry at the client's index when it has as many entries as
// X-Forwarded-For, else its right-most entry.
//
// A single-address header must be one line holding one IP address,
// optionally with a port; with it, Proto is the right-most X-Forwarded-Proto
// entry.
//
// A proto other than http, https, ws or wss (any case) is
// [ErrInvalidProto]. Bounds are [MaxHeaderBytes] and [MaxHops]. On error the
// Result is the zero value; an invalid remote is [ErrInvalidRemoteAddr].
func Resolve(remote netip.Addr, h http.Header, trusted *Set, src Source) (Result, error) {
	if !remote.IsValid() {
		return Result{}, ErrInvalidRemoteAddr
	}
	remote = remote.Unmap().WithZone("")
	if !trusted.Contains(remote) {
		return Result{Client: remote}, nil
	}
	res := Result{Client: remote, ViaProxy: true}
	switch src.kind {
	case kindForwarded:
		if fwd := h["Forwarded"]; len(fwd) > 0 {
			return resolveForwarded(res, fwd, trusted)
		}
		return res, nil
	case kindSingle:
		return resolveSingle(res, src.name, h[src.name], h["X-Forwarded-Proto"])
	}
	return resolveXFF(res, h["X-Forwarded-For"], h["X-Forwarded-Proto"], trusted)
}

// checkSize enforces MaxHeaderBytes over the given header lines, stopping as
// soon as the bound is passed.
func checkSize(groups ...[]string) error {
	total := 0
	for _, lines := range groups {
		for _, l := range lines {
			total += len(l) + 1
			if total > MaxHeaderBytes {
				return fmt.Errorf("%w: more than %d bytes", ErrHeaderTooLarge, MaxHeaderBytes)
			}
		}
	}
	return nil
}

// isOWS reports whether c is optional whitespace (SP or HTAB).
func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWS removes leading and trailing SP and HTAB.
func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// countItems counts the non-empty entries of a comma list spread over lines.
func countItems(lines []string) int {
	n := 0
	for _, l := range lines {
		for {
			item, rest, more := strings.Cut(l, ",")
			if trimOWS(item) != "" {
				n++
			}
			if !more {
				break
			}
			l = rest
		}
	}
	return n
}

// nthItem returns the non-empty entry with index k (from the left) of a
// comma list spread over lines, or "" if there is none.
func nthItem(lines []string, k int) string {
	for _, l := range lines {
		for {
			item, rest, more := strings.Cut(l, ",")
			if item = trimOWS(item); item != "" {
				if k == 0 {
					return item
				}
				k--
			}
			if !more {
				break
			}
			l = rest
		}
	}
	return ""
}

func resolveXFF(res Result, xff, xfp []string, trusted *Set) (Result, error) {
	if err := checkSize(xff, xfp); err != nil {
		return Result{}, err
	}
	n := countItems(xff)
	if n > MaxHops {
		return Result{}, fmt.Errorf("%w: X-Forwarded-For has more than %d entries", ErrTooManyHops, MaxHops)
	}

	// Walk from the right; idx is the index (from the left) of the entry.
	chosen, idx := -1, n
walk:
	for li := len(xff) - 1; li >= 0; li-- {
		line := xff[li]
		for {
			var item string
			more := false
			if i := strings.LastIndexByte(line, ','); i >= 0 {
				item, line, more = line[i+1:], line[:i], true
			} else {
				item = line
			}
			if item = trimOWS(item); item != "" {
				idx--
				a, ok := parseHostPort(item, false)
				if !ok {
					return Result{}, fmt.Errorf("%w: X-Forwarded-For entry %d is not an IP address", ErrMalformed, idx)
				}
				res.Client, chosen = a, idx
				if !trusted.Contains(a) {
					break walk
				}
			}
			if !more {
				break
			}
		}
	}

	np := countItems(xfp)
	if np == 0 {
		return res, nil
	}
	var raw string
	switch {
	case np == 1:
		raw = nthItem(xfp, 0)
	case np == n && chosen >= 0:
		raw = nthItem(xfp, chosen)
	default:
		raw = nthItem(xfp, np-1)
	}
	p, ok := canonicalProto(raw)
	if !ok {
		return Result{}, fmt.Errorf("%w: X-Forwarded-Proto", ErrInvalidProto)
	}
	res.Proto = p
	return res, nil
}

// canonicalProto maps a proto value, in any case, to its lowercase constant.
func canonicalProto(v string) (string, bool) {
	for _, p := range [...]string{ProtoHTTPS, ProtoHTTP, ProtoWSS, ProtoWS} {
		if strings.EqualFold(v, p) {
			return p, true
		}
	}
	return "", false
}
