// Package clientip resolves the address of the client behind a chain of
// trusted reverse proxies, and the transport scheme those proxies saw, for the
// handshake guards of wssec.
//
// The rules fail closed:
//
//   - Forwarding headers (Forwarded, X-Forwarded-For, X-Forwarded-Proto,
//     X-Real-IP) are honoured only when the immediate peer is in the
//     configured trusted [Set]. From any other peer they are ignored without
//     being parsed, so a spoofed or malformed header from the open internet
//     can neither change the result nor cause an error.
//   - From a trusted peer only the one header the operator names (a
//     [Source]) is read: X-Forwarded-For with X-Forwarded-Proto by default,
//     RFC 7239 Forwarded only when chosen, or a single-address header such
//     as X-Real-IP. Every other forwarding header is ignored, because a
//     proxy passes the headers it does not write through from the client.
//   - Hops are walked from right to left (nearest proxy first), skipping hops
//     whose address is trusted; the first untrusted hop is the client. A
//     client that cannot be identified (unknown, obfuscated, missing,
//     unparseable) is an error, never a guess.
//   - Input is bounded: more than [MaxHeaderBytes] bytes of forwarding headers
//     or more than [MaxHops] hops is an error, and parsing is linear.
//
// Every address returned is unmapped (::ffff:192.0.2.1 becomes 192.0.2.1)
// and carries no IPv6 zone, and trusted-set membership is decided on the
// unmapped address, so the two spellings of an IPv4 address are the same
// client everywhere.
//
// All errors wrap one of the sentinel errors of this package, so callers can
// map them with [errors.Is]. Errors about forwarding headers name the header
// and the hop index but never echo header content, so they are safe to log.
package clientip
