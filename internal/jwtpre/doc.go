// Package jwtpre runs cheap structural checks on a compact JWS (a JWT)
// before any cryptography, so that garbage and tokens shaped like known
// attacks are refused without calling the JOSE library.
//
// [Check] looks at the size, the three base64url segments and the protected
// header, and nothing else: it decodes the header into a buffer on the
// stack, parses it with a small strict JSON scanner and refuses
//
//   - tokens longer than [Policy.MaxSize] (checked before anything else);
//   - anything but exactly three non-empty '.'-separated segments (an empty
//     signature is the "alg":"none" or stripped-signature attack);
//   - segments outside the base64url alphabet, with padding or whitespace,
//     of impossible length, or in a non-canonical spelling (unused low bits
//     of the last character set), so that two different strings never
//     decode to the same bytes;
//   - headers that are not a strict JSON object: duplicate member names
//     (RFC 7515 §4), invalid UTF-8, lone surrogates, nesting deeper than 4,
//     a decoded size over 1 KiB, or a member name that differs only in case
//     (or Unicode folding) from a registered header parameter;
//   - "alg" missing, not a string, "none" in any letter case, or not in
//     [Policy.Algs];
//   - "crit" and "b64" (no extension is understood);
//   - embedded or remote keys: "jwk", "jku", "x5u", "x5c";
//   - a "kid" that is not 1 to 256 bytes of printable ASCII, or that
//     [Policy.Kids] does not know;
//   - a "typ" other than "JWT", "at+jwt" or "application/at+jwt".
//
// The payload is not decoded: it is only checked for its encoding and
// counted in the size. Passing Check proves nothing about the token's
// authenticity; the signature and the claims are verified afterwards by
// the JOSE library. Check only makes sure that no such work is spent on a
// token that could never pass, and that the library never sees a header
// that two parsers could read differently.
//
// [FromAuthorization] and [FromSubprotocols] extract a token from an
// "Authorization: Bearer" header or from a "bearer.<token>" entry in
// Sec-WebSocket-Protocol. They are pure functions with no I/O.
//
// Every refusal wraps exactly one of the exported sentinel errors, so
// errors.Is works on all of them; the messages never contain the token.
//
// # Security considerations
//
// Check runs on untrusted input before authentication. The token size is
// capped first, the work is linear in the size (the duplicate-name search
// is bounded by a cap of 64 live member names), the header is decoded on
// the stack, and at most one string is allocated: the kid, once the checks
// before the kid lookup have passed. Garbage costs no allocation.
//
// Check is a filter, not a verifier. A token it accepts must still be
// verified with the algorithm taken from the server's key, never from the
// token's header.
package jwtpre
