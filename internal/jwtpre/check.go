package jwtpre

import "strings"

const (
	// DefaultMaxSize is the token size limit when Policy.MaxSize is zero or
	// negative.
	DefaultMaxSize = 8192
	// MaxKidLen is the longest "kid" Check accepts, in bytes.
	MaxKidLen = 256
)

// Policy says which tokens Check lets through. The zero Policy (and a nil
// *Policy) refuses every token, since no algorithm is allowed. A Policy is
// only read by Check, so one value is safe for simultaneous use as long as
// it is not modified and Kids is safe for simultaneous use.
type Policy struct {
	// MaxSize is the largest accepted token, in bytes of the whole compact
	// serialization. Zero or less means DefaultMaxSize.
	MaxSize int

	// Algs lists the accepted "alg" values, compared exactly and case
	// sensitively ("ES256", "RS256", "EdDSA", "HS256", …). "none", in any
	// letter case, is always refused, even if listed. Take this list from
	// the verification keys, never from the token.
	Algs []string

	// Kids, when not nil, reports whether kid names a known key; a token
	// whose "kid" it does not know is refused with ErrUnknownKid. It is
	// called only with a kid of 1 to MaxKidLen bytes of printable ASCII,
	// after every other header check has passed except "typ" and "b64".
	// kid is attacker input: do not log it unquoted.
	Kids func(kid string) bool

	// RequireKid refuses a token with no "kid" (ErrUnknownKid). Set it when
	// the key set holds more than one key.
	RequireKid bool
}

// Header holds what Check read from an accepted protected header. Its
// strings are ordinary Go strings that share nothing with Check's buffers;
// they need no copying.
type Header struct {
	// Alg is the "alg" value. It is the matching element of Policy.Algs.
	Alg string
	// Kid is the unescaped "kid" value, or "" when the header has none.
	Kid string
	// Typ is "JWT", "at+jwt" or "application/at+jwt" (this canonical
	// spelling, whatever the case in the token), or "" when absent.
	Typ string
}

// Check runs the structural pre-checks on a compact JWS and returns the
// header fields it read. A nil error means only that the token is worth
// verifying: its signature and claims have not been looked at.
//
// The checks run in this order, and the first failure is returned:
//
//  1. size: 1 to MaxSize bytes (ErrTooLarge, or ErrMalformed when empty);
//  2. exactly three '.'-separated segments, none empty (ErrMalformed);
//  3. each segment canonical unpadded base64url (ErrBadEncoding);
//  4. the header decodes to at most MaxHeaderSize bytes of a strict JSON
//     object (ErrHeader);
//  5. "alg" is a string, not "none" in any case (ErrAlgNone), and in
//     Policy.Algs (ErrAlgNotAllowed); missing or not a string is ErrHeader;
//  6. no "crit" (ErrCrit);
//  7. no "jwk", "jku", "x5u" or "x5c" (ErrEmbeddedKey);
//  8. "kid", when present, is 1 to MaxKidLen bytes of printable ASCII
//     (ErrHeader) and known to Policy.Kids (ErrUnknownKid); when absent
//     and Policy.RequireKid is set, ErrUnknownKid;
//  9. "typ", when present, is a string equal, ignoring case, to "JWT",
//     "at+jwt" or "application/at+jwt" (ErrHeader);
//  10. no "b64" (ErrCrit).
//
// Check allocates at most one string, Header.Kid, and only for a header
// with a well-formed kid that passed checks 1 to 7; every other refusal
// allocates nothing. The payload is not decoded.
func Check(token string, p *Policy) (Header, error) {
	var pol Policy
	if p != nil {
		pol = *p
	}
	maxSize := pol.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}

	// 1. Size, before anything else.
	if len(token) > maxSize {
		return Header{}, ErrTooLarge
	}
	if len(token) == 0 {
		return Header{}, errEmpty
	}

	// 2. Three non-empty segments.
	d1 := strings.IndexByte(token, '.')
	if d1 < 0 {
		return Header{}, errOneSegment
	}
	d2 := strings.IndexByte(token[d1+1:], '.')
	if d2 < 0 {
		return Header{}, errTwoSegments
	}
	d2 += d1 + 1
	if strings.IndexByte(token[d2+1:], '.') >= 0 {
		return Header{}, errManySegments
	}
	hseg, pseg, sseg := token[:d1], token[d1+1:d2], token[d2+1:]
	switch {
	case hseg == "":
		return Header{}, errEmptyHeader
	case pseg == "":
		return Header{}, errEmptyPayload
	case sseg == "":
		return Header{}, errEmptySignature
	}

	// 3. Canonical base64url.
	for _, seg := range [3]string{hseg, pseg, sseg} {
		if err := checkSegment(seg); err != nil {
			return Header{}, err
		}
	}

	// 4. The header, decoded on the stack and parsed strictly.
	n := decodedLen(len(hseg))
	if n > MaxHeaderSize {
		return Header{}, errHeaderTooLarge
	}
	var buf [MaxHeaderSize]byte
	decodeSegment(buf[:n], hseg)
	h := header{src: buf[:n]}
	if err := h.parse(); err != nil {
		return Header{}, err
	}

	// 5. alg.
	if !h.alg.present {
		return Header{}, errAlgMissing
	}
	if !h.alg.isString {
		return Header{}, errAlgType
	}
	alg := h.bytes(h.alg.val)
	if asciiEqualFold(alg, "none") {
		return Header{}, ErrAlgNone
	}
	var out Header
	for _, a := range pol.Algs {
		if string(alg) == a {
			out.Alg = a
			break
		}
	}
	if out.Alg == "" {
		return Header{}, ErrAlgNotAllowed
	}

	// 6. crit.
	if h.crit {
		return Header{}, ErrCrit
	}

	// 7. Keys carried or pointed to by the token.
	switch {
	case h.jwk:
		return Header{}, errJWK
	case h.jku:
		return Header{}, errJKU
	case h.x5u:
		return Header{}, errX5U
	case h.x5c:
		return Header{}, errX5C
	}

	// 8. kid: the shape first, so that Kids never sees junk.
	if h.kid.present {
		if !h.kid.isString {
			return Header{}, errKidType
		}
		kid := h.bytes(h.kid.val)
		if !kidShape(kid) {
			return Header{}, errKidShape
		}
		out.Kid = string(kid) // the only allocation
		if pol.Kids != nil && !pol.Kids(out.Kid) {
			return Header{}, ErrUnknownKid
		}
	} else if pol.RequireKid {
		return Header{}, errKidMissing
	}

	// 9. typ.
	if h.typ.present {
		if !h.typ.isString {
			return Header{}, errTypType
		}
		if out.Typ = canonicalTyp(h.bytes(h.typ.val)); out.Typ == "" {
			return Header{}, errTyp
		}
	}

	// 10. b64 (RFC 7797): an unencoded payload changes what is signed.
	if h.b64 {
		return Header{}, errB64
	}
	return out, nil
}

// kidShape reports whether kid is 1 to MaxKidLen bytes of printable ASCII
// (0x20 to 0x7e).
func kidShape(kid []byte) bool {
	if len(kid) == 0 || len(kid) > MaxKidLen {
		return false
	}
	for _, c := range kid {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// canonicalTyp returns the canonical spelling of an accepted typ, or "".
func canonicalTyp(t []byte) string {
	for _, c := range [...]string{"JWT", "at+jwt", "application/at+jwt"} {
		if asciiEqualFold(t, c) {
			return c
		}
	}
	return ""
}

// asciiEqualFold reports whether b equals s ignoring ASCII letter case.
// s must be ASCII; a non-ASCII byte in b never matches.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
