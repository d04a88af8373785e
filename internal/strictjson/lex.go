package strictjson

// The lexer: the one place that knows what a JSON string, number, literal
// and whitespace are. Parse, Salvage and Decode all read through it.

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// skipWS returns the index of the first byte at or after i that is not JSON
// whitespace (space, tab, line feed, carriage return).
func skipWS(data []byte, i int) int {
	for i < len(data) {
		c := data[i]
		if c > ' ' || (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			return i
		}
		i++
	}
	return i
}

// SWAR constants: one in every byte, and the high bit of every byte.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// scanString scans the body of a JSON string that starts at data[i], just
// after the opening quote. It returns the index of the closing quote and
// whether the body contains an escape. It refuses raw control characters,
// malformed escapes, lone surrogates and invalid UTF-8.
func scanString(data []byte, i int) (end int, escaped bool, err *Error) {
	for {
		// Skip plain printable ASCII eight bytes at a time. A byte is
		// flagged when it is below 0x20, a quote, a backslash or
		// non-ASCII; a subtraction's borrow can only flag bytes above a
		// truly flagged one, so the lowest flag is exact.
		for i+8 <= len(data) {
			w := binary.LittleEndian.Uint64(data[i:])
			t := ((w - ones*0x20) | ((w ^ ones*'"') - ones) | ((w ^ ones*'\\') - ones) | w) & highs
			if t != 0 {
				i += bits.TrailingZeros64(t) >> 3
				break
			}
			i += 8
		}
		if i >= len(data) {
			return 0, false, ErrInvalidJSON
		}
		switch c := data[i]; {
		case c == '"':
			return i, escaped, nil
		case c == '\\':
			escaped = true
			if i, err = scanEscape(data, i); err != nil {
				return 0, false, err
			}
		case c < 0x20:
			return 0, false, ErrInvalidJSON
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, false, ErrInvalidUTF8
			}
			i += size
		default: // plain byte in the last 7 bytes of the input
			i++
		}
	}
}

// scanEscape checks the escape at data[i] (a backslash) and returns the
// index just after it. A high surrogate must be followed by an escaped low
// surrogate; a low surrogate alone is refused.
func scanEscape(data []byte, i int) (int, *Error) {
	if i+1 >= len(data) {
		return 0, ErrInvalidJSON
	}
	switch data[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, nil
	case 'u':
		r, ok := hex4(data, i+2)
		if !ok {
			return 0, ErrInvalidEscape
		}
		i += 6
		if !utf16.IsSurrogate(r) {
			return i, nil
		}
		if r >= 0xdc00 || i+1 >= len(data) || data[i] != '\\' || data[i+1] != 'u' {
			return 0, ErrInvalidEscape
		}
		r2, ok := hex4(data, i+2)
		if !ok || r2 < 0xdc00 || r2 > 0xdfff {
			return 0, ErrInvalidEscape
		}
		return i + 6, nil
	}
	return 0, ErrInvalidEscape
}

// hex4 decodes the four hex digits at data[i:i+4].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendUnescaped appends the decoded form of s, the body of a JSON string
// that scanString accepted, to dst. On any other input it does not panic,
// but what it appends is unspecified.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+j]...)
			i += j
			continue
		}
		if i+1 >= len(s) {
			return dst
		}
		switch c := s[i+1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s, i+2)
			i += 6
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(s, i+2)
				r = utf16.DecodeRune(r, r2)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		i += 2
	}
	return dst
}

// scanNumber checks the RFC 8259 number that starts at data[i] and returns
// the index just after it:
//
//	-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?
//
// It also refuses a number whose magnitude does not fit a float64 (such as
// 1e400), which encoding/json cannot decode into an interface or a float.
func scanNumber(data []byte, i int) (int, *Error) {
	start := i
	if data[i] == '-' {
		i++
	}
	if i >= len(data) {
		return 0, ErrInvalidJSON
	}
	intStart := i
	switch c := data[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i = digits(data, i+1)
	default:
		return 0, ErrInvalidJSON
	}
	// The value is below 10^mag; encoding/json can hold it for sure while
	// mag <= 308 (float64 reaches 1.79e308).
	mag := i - intStart
	if i < len(data) && data[i] == '.' {
		j := digits(data, i+1)
		if j == i+1 {
			return 0, ErrInvalidJSON
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		neg := false
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			neg = data[i] == '-'
			i++
		}
		exp := 0
		j := i
		for ; j < len(data) && '0' <= data[j] && data[j] <= '9'; j++ {
			if exp < 1<<20 {
				exp = exp*10 + int(data[j]-'0')
			}
		}
		if j == i {
			return 0, ErrInvalidJSON
		}
		i = j
		if neg {
			exp = -exp
		}
		mag += exp
	}
	if mag > 308 {
		// Rare: decide exactly. Underflow to zero is not an error.
		if _, err := strconv.ParseFloat(string(data[start:i]), 64); err != nil {
			return 0, ErrNumberRange
		}
	}
	return i, nil
}

func digits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

// scanLiteral checks that data[i:] starts with lit.
func scanLiteral(data []byte, i int, lit string) (int, *Error) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, ErrInvalidJSON
	}
	return i + len(lit), nil
}

// isValueStart reports whether c can start a JSON value.
func isValueStart(c byte) bool {
	switch c {
	case '{', '[', '"', '-', 't', 'f', 'n':
		return true
	}
	return '0' <= c && c <= '9'
}

// stringEnd returns the index of the quote that closes the string whose
// body starts at data[i], or -1 if the input ends first. A backslash
// escapes the byte after it; nothing else is checked (scanString does).
func stringEnd(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case '"':
			return i
		case '\\':
			i += 2
		default:
			i++
		}
	}
	return -1
}

// skipValue returns the index just after the JSON value that starts at
// data[i], or -1 if the input ends inside an object, an array or a
// string. It only matches brackets and finds where strings end (without
// checking what they hold), so it also gets past values that Parse
// refuses (a duplicate key, a bad number, invalid UTF-8 or a lone
// surrogate in a string), to reach members that follow them, as
// encoding/json would. A scalar other than a string ends at the first
// comma or closing bracket outside strings, or at the end of the input,
// so its end may include trailing whitespace.
func skipValue(data []byte, i int) int {
	depth := 0
	for i < len(data) {
		switch data[i] {
		case '"':
			q := stringEnd(data, i+1)
			if q < 0 {
				return -1
			}
			i = q + 1
			if depth == 0 {
				return i
			}
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			i++
			if depth == 0 {
				return i
			}
		case ',':
			if depth == 0 {
				return i
			}
			i++
		default:
			i++
		}
	}
	if depth > 0 {
		return -1
	}
	return i
}
