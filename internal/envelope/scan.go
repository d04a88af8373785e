package envelope

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
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
// already checked by scanString, to dst.
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

// span locates a decoded object key: in the input when it has no escapes,
// else in the scratch buffer.
// Offsets fit in 32 bits: Parse refuses inputs of MaxInput bytes or more.
type span struct {
	off, n  uint32
	scratch bool
}

func mkSpan(off, end int, scratch bool) span {
	return span{off: uint32(off), n: uint32(end - off), scratch: scratch}
}

func (s span) bytes(data, scratch []byte) []byte {
	off, end := int(s.off), int(s.off)+int(s.n)
	if s.scratch {
		return scratch[off:end:end]
	}
	return data[off:end:end]
}

// frame is one open object or array of the explicit parse stack.
type frame struct {
	sch     *node  // the container's schema; nil accepts anything
	keyBase uint32 // index in keys of the object's first key
	obj     bool
}

// linearDupKeys is the number of keys per object checked for duplicates
// pairwise as they arrive; larger objects are sorted once when they close,
// so that a message with thousands of keys costs O(n log n), not O(n²).
const linearDupKeys = 16

// Inline capacities of the parse stacks; deeper or wider messages spill to
// the heap.
const (
	inlineFrames = DefaultMaxDepth
	inlineKeys   = 32
)

const (
	stValue = iota // a value is expected at i
	stKey          // an object key is expected at i (whitespace skipped)
	stAfter        // a value ended just before i
)

// scanValue validates the JSON value that starts at or after data[i] (after
// whitespace), enforcing duplicate keys, the depth limit and the schema sch
// (nil: anything). depth is the depth of the value's container. It returns
// the index just after the value and scratch, to which escaped keys were
// appended. It does not recurse.
func scanValue(data []byte, i int, sch *node, depth, maxDepth int, scratch []byte) (int, []byte, *Error) {
	var frameBuf [inlineFrames]frame
	frames := frameBuf[:0]
	var keyBuf [inlineKeys]span
	keys := keyBuf[:0]
	cur := sch
	st := stValue
	var err *Error
	for {
		switch st {
		case stValue:
			i = skipWS(data, i)
			if i >= len(data) {
				return 0, scratch, ErrInvalidJSON
			}
			k := kAny
			if cur != nil {
				k = cur.kind
			}
			st = stAfter
			switch c := data[i]; c {
			case '{':
				if k != kAny && k != kStruct && k != kMap {
					return 0, scratch, ErrWrongType
				}
				if depth++; depth > maxDepth {
					return 0, scratch, ErrTooDeep
				}
				if i = skipWS(data, i+1); i < len(data) && data[i] == '}' {
					i++
					depth--
					continue
				}
				frames = append(frames, frame{sch: cur, keyBase: uint32(len(keys)), obj: true})
				st = stKey
			case '[':
				if k != kAny && k != kArray {
					return 0, scratch, ErrWrongType
				}
				if depth++; depth > maxDepth {
					return 0, scratch, ErrTooDeep
				}
				if i = skipWS(data, i+1); i < len(data) && data[i] == ']' {
					i++
					depth--
					continue
				}
				frames = append(frames, frame{sch: cur})
				cur = cur.elemNode()
				st = stValue
			case '"':
				if k != kAny && k != kString {
					return 0, scratch, ErrWrongType
				}
				if i, _, err = scanString(data, i+1); err != nil {
					return 0, scratch, err
				}
				i++
			case 't', 'f':
				if k != kAny && k != kBool {
					return 0, scratch, ErrWrongType
				}
				lit := "true"
				if c == 'f' {
					lit = "false"
				}
				if i, err = scanLiteral(data, i, lit); err != nil {
					return 0, scratch, err
				}
			case 'n': // null decodes into anything
				if i, err = scanLiteral(data, i, "null"); err != nil {
					return 0, scratch, err
				}
			default:
				if c != '-' && (c < '0' || c > '9') {
					return 0, scratch, ErrInvalidJSON
				}
				if k != kAny && k != kNumber {
					return 0, scratch, ErrWrongType
				}
				if i, err = scanNumber(data, i); err != nil {
					return 0, scratch, err
				}
			}

		case stKey:
			if i >= len(data) || data[i] != '"' {
				return 0, scratch, ErrInvalidJSON
			}
			q, esc, err := scanString(data, i+1)
			if err != nil {
				return 0, scratch, err
			}
			s := mkSpan(i+1, q, false)
			if esc {
				off := len(scratch)
				scratch = appendUnescaped(scratch, data[i+1:q])
				s = mkSpan(off, len(scratch), true)
			}
			name := s.bytes(data, scratch)
			f := &frames[len(frames)-1]
			if len(keys)-int(f.keyBase) < linearDupKeys {
				for _, o := range keys[f.keyBase:] {
					if bytes.Equal(o.bytes(data, scratch), name) {
						return 0, scratch, ErrDuplicateKey
					}
				}
			}
			keys = append(keys, s)
			cur = nil
			if f.sch != nil {
				switch f.sch.kind {
				case kStruct:
					var ok bool
					if cur, ok = f.sch.field(name); !ok {
						return 0, scratch, ErrUnknownField
					}
				case kMap:
					cur = f.sch.elem
				}
			}
			if i = skipWS(data, q+1); i >= len(data) || data[i] != ':' {
				return 0, scratch, ErrInvalidJSON
			}
			i++
			st = stValue

		case stAfter:
			if len(frames) == 0 {
				return i, scratch, nil
			}
			if i = skipWS(data, i); i >= len(data) {
				return 0, scratch, ErrInvalidJSON
			}
			f := &frames[len(frames)-1]
			switch c := data[i]; {
			case c == ',' && f.obj:
				i = skipWS(data, i+1)
				st = stKey
			case c == ',':
				i++
				cur = f.sch.elemNode()
				st = stValue
			case c == '}' && f.obj:
				if len(keys)-int(f.keyBase) > linearDupKeys && hasDuplicate(data, scratch, keys[f.keyBase:]) {
					return 0, scratch, ErrDuplicateKey
				}
				keys = keys[:f.keyBase]
				frames = frames[:len(frames)-1]
				depth--
				i++
			case c == ']' && !f.obj:
				frames = frames[:len(frames)-1]
				depth--
				i++
			default:
				return 0, scratch, ErrInvalidJSON
			}
		}
	}
}

// hasDuplicate reports whether keys holds two equal keys. It reorders keys.
func hasDuplicate(data, scratch []byte, keys []span) bool {
	slices.SortFunc(keys, func(a, b span) int {
		return bytes.Compare(a.bytes(data, scratch), b.bytes(data, scratch))
	})
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(keys[i-1].bytes(data, scratch), keys[i].bytes(data, scratch)) {
			return true
		}
	}
	return false
}
