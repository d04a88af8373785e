package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Errors of Decode. Their text is fixed and never echoes input.
var (
	// ErrSyntax: the input is not the JSON the precondition promises.
	ErrSyntax = errors.New("decode: malformed input")
	// ErrType: a JSON value of the wrong kind for its Go type, or a key
	// that names no field.
	ErrType = errors.New("decode: value does not fit the type")
	// ErrRange: a number that does not fit its Go type, or that an
	// integer type cannot hold (a fraction, an exponent).
	ErrRange = errors.New("decode: number does not fit the type")
	// ErrDepth: nesting deeper than encoding/json accepts.
	ErrDepth = errors.New("decode: nesting too deep")
	// ErrTarget: Decode was given a destination of the wrong type.
	ErrTarget = errors.New("decode: destination of the wrong type")
)

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// Decode decodes data, one JSON value that envelope.Parse accepted with the
// schema of the decoder's type (see the package documentation), into the
// zero value that dst, a non-nil pointer to the decoder's type, points to.
// Decoded strings are stored in arena's spare capacity (arena[len:cap]),
// whose backing array the caller must never modify afterwards; a nil
// arena allocates every string. An error from encoding/json, for a part
// of the type handed to it, is returned as is.
//
// As encoding/json does, Decode may have stored part of the value when it
// returns an error; the caller should discard it.
func (d *Decoder) Decode(data []byte, dst reflect.Value, arena []byte) error {
	if !dst.IsValid() || dst.Type() != d.ptrTyp || dst.IsNil() {
		return ErrTarget
	}
	s := state{data: data, arena: arena}
	i, err := s.value(d.root, 0, dst.UnsafePointer(), 0)
	if err != nil {
		return err
	}
	if skipWS(data, i) != len(data) {
		return ErrSyntax
	}
	return nil
}

// state is one call of Decode.
type state struct {
	data  []byte
	arena []byte
}

// sliceHeader is the layout of every slice; its pointer field makes
// stores through it use the garbage collector's write barrier.
type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value decodes the JSON value at or after data[i] into p, memory of the
// op's Go type, and returns the index just after it.
func (s *state) value(o *op, i int, p unsafe.Pointer, depth int) (int, error) {
	data := s.data
	i = skipWS(data, i)
	if i >= len(data) {
		return 0, ErrSyntax
	}
	c := data[i]
	if c == 'n' {
		// null: zero for pointers, slices (and, in encoding/json, maps and
		// interfaces); no change for everything else.
		if len(data)-i < 4 || string(data[i:i+4]) != "null" {
			return 0, ErrSyntax
		}
		switch o.kind {
		case opPtr:
			*(*unsafe.Pointer)(p) = nil
		case opSlice:
			*(*sliceHeader)(p) = sliceHeader{}
		case opJSON:
			return i + 4, s.opaque(o, data[i:i+4], p)
		}
		return i + 4, nil
	}
	switch o.kind {
	case opString:
		if c != '"' {
			return 0, ErrType
		}
		str, j, err := s.str(i + 1)
		if err != nil {
			return 0, err
		}
		*(*string)(p) = str
		return j, nil

	case opBool:
		switch {
		case c == 't' && len(data)-i >= 4 && string(data[i:i+4]) == "true":
			*(*bool)(p) = true
			return i + 4, nil
		case c == 'f' && len(data)-i >= 5 && string(data[i:i+5]) == "false":
			*(*bool)(p) = false
			return i + 5, nil
		}
		return 0, ErrType

	case opInt, opUint, opFloat32, opFloat64:
		if c != '-' && (c < '0' || c > '9') {
			return 0, ErrType
		}
		j := numberEnd(data, i)
		return j, storeNumber(o, data[i:j], p)

	case opPtr:
		q := reflect.New(o.typ).UnsafePointer()
		*(*unsafe.Pointer)(p) = q
		return s.value(o.elem, i, q, depth)

	case opSlice:
		if c != '[' {
			return 0, ErrType
		}
		if depth++; depth > maxDepth {
			return 0, ErrDepth
		}
		return s.slice(o, i+1, p, depth)

	case opStruct:
		if c != '{' {
			return 0, ErrType
		}
		if depth++; depth > maxDepth {
			return 0, ErrDepth
		}
		return s.object(o, i+1, p, depth)

	case opJSON:
		j, err := skipValue(data, i)
		if err != nil {
			return 0, err
		}
		return j, s.opaque(o, data[i:j], p)
	}
	return 0, ErrType
}

// opaque hands one value to encoding/json, which decodes it as it would
// inside the enclosing value.
func (s *state) opaque(o *op, v []byte, p unsafe.Pointer) error {
	return json.Unmarshal(v, reflect.NewAt(o.typ, p).Interface())
}

// slice decodes the elements of an array whose '[' is at data[i-1].
func (s *state) slice(o *op, i int, p unsafe.Pointer, depth int) (int, error) {
	data := s.data
	h := (*sliceHeader)(p)
	*h = sliceHeader{} // decode into fresh, zeroed elements
	i = skipWS(data, i)
	if i < len(data) && data[i] == ']' {
		// encoding/json makes an empty, non-nil slice.
		reflect.NewAt(o.typ, p).Elem().Set(reflect.MakeSlice(o.typ, 0, 0))
		return i + 1, nil
	}
	v := reflect.NewAt(o.typ, p).Elem()
	for {
		if h.len == h.cap {
			v.Grow(1) // zeroes the new capacity
		}
		n := h.len
		h.len++
		var err error
		if i, err = s.value(o.elem, i, unsafe.Add(h.data, uintptr(n)*o.esize), depth); err != nil {
			return 0, err
		}
		if i = skipWS(data, i); i >= len(data) {
			return 0, ErrSyntax
		}
		switch data[i] {
		case ',':
			i++
		case ']':
			return i + 1, nil
		default:
			return 0, ErrSyntax
		}
	}
}

// object decodes the members of an object whose '{' is at data[i-1] into
// the struct at p.
func (s *state) object(o *op, i int, p unsafe.Pointer, depth int) (int, error) {
	data := s.data
	i = skipWS(data, i)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	next := 0 // members usually arrive in declaration order
	var keyBuf [64]byte
	for {
		if i >= len(data) || data[i] != '"' {
			return 0, ErrSyntax
		}
		end, esc := stringEnd(data, i+1)
		if end < 0 {
			return 0, ErrSyntax
		}
		key := data[i+1 : end]
		if esc {
			var ok bool
			if key, ok = unescape(keyBuf[:0], key); !ok {
				return 0, ErrSyntax
			}
		}
		f := o.lookup(key, next)
		if f < 0 {
			return 0, ErrType
		}
		next = f + 1
		if i = skipWS(data, end+1); i >= len(data) || data[i] != ':' {
			return 0, ErrSyntax
		}
		fd := &o.fields[f]
		var err error
		if i, err = s.value(fd.op, i+1, unsafe.Add(p, fd.off), depth); err != nil {
			return 0, err
		}
		if i = skipWS(data, i); i >= len(data) {
			return 0, ErrSyntax
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, ErrSyntax
		}
	}
}

// lookup returns the index of the field named exactly key, or -1; next is
// the likeliest index.
func (o *op) lookup(key []byte, next int) int {
	if next < len(o.fields) && o.fields[next].name == string(key) {
		return next
	}
	if o.index != nil {
		if f, ok := o.index[string(key)]; ok {
			return f
		}
		return -1
	}
	for f := range o.fields {
		if o.fields[f].name == string(key) {
			return f
		}
	}
	return -1
}

// stringEnd returns the index of the quote that closes the string whose
// body starts at data[i], and whether the body has escapes; -1 if it is
// not closed.
func stringEnd(data []byte, i int) (int, bool) {
	q := bytes.IndexByte(data[i:], '"')
	if q < 0 {
		return -1, false
	}
	if bytes.IndexByte(data[i:i+q], '\\') < 0 {
		return i + q, false // the common case: no escapes
	}
	for j := i; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++ // the escaped byte cannot close the string
		case '"':
			return j, true
		}
	}
	return -1, false
}

// str decodes the string whose body starts at data[i] and returns it and
// the index after its closing quote. The string is stored in the arena
// when it fits, else in a buffer of its own.
func (s *state) str(i int) (string, int, error) {
	end, esc := stringEnd(s.data, i)
	if end < 0 {
		return "", 0, ErrSyntax
	}
	body := s.data[i:end]
	if len(body) == 0 {
		return "", end + 1, nil
	}
	// Unescaping never lengthens a string: len(body) bytes suffice.
	buf, start := s.arena, len(s.arena)
	inArena := cap(buf)-start >= len(body)
	if !inArena {
		buf, start = make([]byte, 0, len(body)), 0
	}
	if esc {
		var ok bool
		if buf, ok = unescape(buf, body); !ok {
			return "", 0, ErrSyntax
		}
	} else {
		buf = append(buf, body...)
	}
	if inArena {
		s.arena = buf // same backing array: appends within its capacity
	}
	n := len(buf) - start
	if n == 0 {
		return "", end + 1, nil
	}
	return unsafe.String(&buf[start], n), end + 1, nil
}

// unescape appends the decoded body of a JSON string to dst. It reports
// false for a malformed escape. Unpaired surrogates become U+FFFD, as in
// encoding/json (envelope.Parse refuses them).
func unescape(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); {
		j := bytes.IndexByte(s[i:], '\\')
		if j < 0 {
			return append(dst, s[i:]...), true
		}
		dst = append(dst, s[i:i+j]...)
		i += j
		if i+1 >= len(s) {
			return dst, false
		}
		switch c := s[i+1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
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
			r, ok := hex4(s, i+2)
			if !ok {
				return dst, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok := hex4(s, i+2)
				if ok && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		i += 2
	}
	return dst, true
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
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

// numberEnd returns the index just after the number token at data[i].
func numberEnd(data []byte, i int) int {
	for i < len(data) {
		switch c := data[i]; {
		case '0' <= c && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// validNumber reports whether b is an RFC 8259 number.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

// storeNumber parses the number b as encoding/json does for the op's type
// (strconv with the type's bit size, then a range check) and stores it.
func storeNumber(o *op, b []byte, p unsafe.Pointer) error {
	if !validNumber(b) {
		return ErrSyntax
	}
	// The bytes outlive the call; strconv copies them into any error.
	s := unsafe.String(unsafe.SliceData(b), len(b))
	switch o.kind {
	case opInt:
		n, ok := smallInt(b)
		if !ok {
			var err error
			if n, err = strconv.ParseInt(s, 10, 64); err != nil {
				return ErrRange
			}
		}
		if o.bits < 64 && (n < -1<<(o.bits-1) || n > 1<<(o.bits-1)-1) {
			return ErrRange
		}
		switch o.bits {
		case 8:
			*(*int8)(p) = int8(n)
		case 16:
			*(*int16)(p) = int16(n)
		case 32:
			*(*int32)(p) = int32(n)
		default:
			*(*int64)(p) = n
		}
	case opUint:
		var u uint64
		if n, ok := smallInt(b); ok && n >= 0 && b[0] != '-' {
			u = uint64(n)
		} else {
			var err error
			if u, err = strconv.ParseUint(s, 10, 64); err != nil {
				return ErrRange
			}
		}
		if o.bits < 64 && u > 1<<o.bits-1 {
			return ErrRange
		}
		switch o.bits {
		case 8:
			*(*uint8)(p) = uint8(u)
		case 16:
			*(*uint16)(p) = uint16(u)
		case 32:
			*(*uint32)(p) = uint32(u)
		default:
			*(*uint64)(p) = u
		}
	case opFloat32:
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return ErrRange
		}
		if a := math.Abs(f); math.MaxFloat32 < a && a <= math.MaxFloat64 {
			return ErrRange // reflect.Value.OverflowFloat, as in encoding/json
		}
		*(*float32)(p) = float32(f)
	case opFloat64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return ErrRange
		}
		*(*float64)(p) = f
	default:
		return ErrType
	}
	return nil
}

// smallInt parses b when it is an optional minus and 1 to 18 digits (no
// fraction or exponent), the common case, without strconv.
func smallInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// skipValue returns the index just after the JSON value at data[i]
// (whitespace skipped). It checks only what it needs to find the end.
func skipValue(data []byte, i int) (int, error) {
	depth := 0
	for {
		i = skipWS(data, i)
		if i >= len(data) {
			return 0, ErrSyntax
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			depth++
			i++
			continue
		case c == '}' || c == ']':
			if depth == 0 {
				return 0, ErrSyntax
			}
			depth--
			i++
		case c == '"':
			end, _ := stringEnd(data, i+1)
			if end < 0 {
				return 0, ErrSyntax
			}
			i = end + 1
		case c == ',' || c == ':':
			if depth == 0 {
				return 0, ErrSyntax
			}
			i++
			continue
		default:
			j := i
			for j < len(data) && (data[j] >= 'a' && data[j] <= 'z' || data[j] >= '0' && data[j] <= '9' ||
				data[j] == '-' || data[j] == '+' || data[j] == '.' || data[j] == 'E') {
				j++
			}
			if j == i {
				return 0, ErrSyntax
			}
			i = j
		}
		if depth == 0 {
			return i, nil
		}
	}
}
