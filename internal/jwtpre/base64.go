package jwtpre

// b64val returns the 6-bit value of a base64url character, or 0xff.
func b64val(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return 0xff
}

// checkSegment reports whether s is canonical unpadded base64url: only the
// alphabet [A-Za-z0-9_-], a length that is not 1 mod 4, and zero unused low
// bits in the last character. A canonical string is the only encoding of
// its bytes.
func checkSegment(s string) error {
	for i := 0; i < len(s); i++ {
		if b64val(s[i]) == 0xff {
			return badChar(s[i])
		}
	}
	var mask byte
	switch len(s) % 4 {
	case 1:
		return errLength
	case 2: // 12 bits carry 8
		mask = 0x0f
	case 3: // 18 bits carry 16
		mask = 0x03
	default:
		return nil
	}
	if b64val(s[len(s)-1])&mask != 0 {
		return errNonCanonical
	}
	return nil
}

// badChar names the kind of a character outside the alphabet.
func badChar(c byte) error {
	switch c {
	case '=':
		return errPadding
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return errWhitespace
	}
	return errAlphabet
}

// decodedLen is the number of bytes a canonical segment of n characters
// decodes to.
func decodedLen(n int) int {
	d := n / 4 * 3
	switch n % 4 {
	case 2:
		d++
	case 3:
		d += 2
	}
	return d
}

// decodeSegment decodes a segment that checkSegment accepted into dst,
// which must hold decodedLen(len(s)) bytes.
func decodeSegment(dst []byte, s string) {
	j := 0
	i := 0
	for ; i+4 <= len(s); i += 4 {
		v := uint32(b64val(s[i]))<<18 | uint32(b64val(s[i+1]))<<12 |
			uint32(b64val(s[i+2]))<<6 | uint32(b64val(s[i+3]))
		dst[j] = byte(v >> 16)
		dst[j+1] = byte(v >> 8)
		dst[j+2] = byte(v)
		j += 3
	}
	switch len(s) - i {
	case 2:
		v := uint32(b64val(s[i]))<<18 | uint32(b64val(s[i+1]))<<12
		dst[j] = byte(v >> 16)
	case 3:
		v := uint32(b64val(s[i]))<<18 | uint32(b64val(s[i+1]))<<12 |
			uint32(b64val(s[i+2]))<<6
		dst[j] = byte(v >> 16)
		dst[j+1] = byte(v >> 8)
	}
}
