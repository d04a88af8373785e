package origin

import "math"

// RFC 3492 section 5 parameters for IDNA.
const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 0x80
)

// appendPunycode appends the RFC 3492 encoding of label to dst, without the
// "xn--" prefix. Basic (ASCII) code points are copied unchanged, case
// included. label must be valid UTF-8.
func appendPunycode(dst []byte, label string) ([]byte, error) {
	var runes []rune
	var buf [64]rune
	if len(label) <= len(buf) {
		runes = buf[:0]
	}
	for _, r := range label {
		runes = append(runes, r)
	}

	basic := 0
	for _, r := range runes {
		if r < 0x80 {
			dst = append(dst, byte(r))
			basic++
		}
	}
	if basic > 0 {
		dst = append(dst, '-')
	}

	n := int64(pcInitialN)
	bias := int64(pcInitialBias)
	delta := int64(0)
	for h := basic; h < len(runes); {
		// The smallest code point not yet handled.
		m := int64(math.MaxInt64)
		for _, r := range runes {
			if c := int64(r); c >= n && c < m {
				m = c
			}
		}
		delta += (m - n) * int64(h+1)
		if delta > math.MaxInt32 {
			return dst, errPunycodeOverflow
		}
		n = m
		for _, r := range runes {
			c := int64(r)
			if c < n {
				delta++
				if delta > math.MaxInt32 {
					return dst, errPunycodeOverflow
				}
			}
			if c != n {
				continue
			}
			// Emit delta as a generalized variable-length integer.
			q := delta
			for k := int64(pcBase); ; k += pcBase {
				t := k - bias
				if t < pcTMin {
					t = pcTMin
				} else if t > pcTMax {
					t = pcTMax
				}
				if q < t {
					break
				}
				dst = append(dst, punycodeDigit(t+(q-t)%(pcBase-t)))
				q = (q - t) / (pcBase - t)
			}
			dst = append(dst, punycodeDigit(q))
			bias = punycodeAdapt(delta, int64(h+1), h == basic)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return dst, nil
}

// punycodeDigit maps 0..25 to 'a'..'z' and 26..35 to '0'..'9'.
func punycodeDigit(d int64) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

// punycodeAdapt is the bias adaptation function of RFC 3492 section 6.1.
func punycodeAdapt(delta, numPoints int64, first bool) int64 {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := int64(0)
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}
