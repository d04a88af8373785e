package strictjson

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"unsafe"
)

// Decoder decodes a payload that Parse checked with its Schema into a
// value of the schema's Go type. It is immutable and safe for simultaneous
// use. Get it from [Schema.Decoder].
type Decoder struct {
	schema *Schema
	ptrTyp reflect.Type // *T, the destination's type
	arena  bool         // some decoded string may use the arena
}

// Type returns the type the decoder decodes into.
func (d *Decoder) Type() reflect.Type { return d.schema.root.typ }

// UsesArena reports whether Decode may store strings in its arena; when it
// does not, the caller need not provide one.
func (d *Decoder) UsesArena() bool { return d.arena }

// Checked is a payload that [Parse] accepted with a [Schema]: one JSON
// value, valid UTF-8, without lone surrogates or duplicate keys, whose
// every object key decoded into a struct is exactly the JSON name of one
// of its fields. Only Parse makes one (see [Envelope.Checked]), and a
// [Decoder] accepts nothing else, so nothing reaches the decoder that the
// schema did not accept. The zero Checked is no payload.
//
// A Checked is a view of the input passed to Parse, valid while that input
// is unchanged.
type Checked struct {
	data []byte
	by   *Schema // the schema it passed; nil: none
}

// Bytes returns the payload's JSON text, a sub-slice of Parse's input (nil
// for the zero Checked). The caller must not modify it.
func (c Checked) Bytes() []byte { return c.data }

// decodeMaxDepth is encoding/json's nesting limit.
const decodeMaxDepth = 10000

// Decode decodes p, a payload that Parse checked with the decoder's own
// Schema, into the zero value that dst, a non-nil pointer to the decoder's
// type, points to. A payload checked with another schema, or with none, is
// refused with [ErrUnchecked]. Decoded strings are stored in arena's spare
// capacity (arena[len:cap]), whose backing array the caller must never
// modify afterwards; a nil arena allocates every string. An error from
// encoding/json, for a part of the type handed to it, is returned as is.
//
// As encoding/json does, Decode may have stored part of the value when it
// returns an error; the caller should discard it.
func (d *Decoder) Decode(p Checked, dst reflect.Value, arena []byte) error {
	if p.by != d.schema || p.by == nil {
		return ErrUnchecked
	}
	return d.decode(p.data, dst, arena)
}

// decode is Decode without the check that data is a Checked payload. It
// holds to its safety on any input: it never panics and never writes
// outside the value.
func (d *Decoder) decode(data []byte, dst reflect.Value, arena []byte) error {
	if !dst.IsValid() || dst.Type() != d.ptrTyp || dst.IsNil() {
		return ErrTarget
	}
	s := state{data: data, arena: arena}
	i, err := s.value(d.schema.root, 0, dst.UnsafePointer(), 0)
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

// value decodes the JSON value at or after data[i] into p, memory of the
// node's Go type, and returns the index just after it.
func (s *state) value(o *node, i int, p unsafe.Pointer, depth int) (int, error) {
	data := s.data
	i = skipWS(data, i)
	if i >= len(data) {
		return 0, ErrSyntax
	}
	c := data[i]
	if c == 'n' {
		// null: zero for pointers, slices (and, in encoding/json, maps and
		// interfaces); no change for everything else.
		j, err := scanLiteral(data, i, "null")
		if err != nil {
			return 0, ErrSyntax
		}
		switch o.op {
		case opPtr:
			*(*unsafe.Pointer)(p) = nil
		case opSlice:
			*(*sliceHeader)(p) = sliceHeader{}
		case opJSON:
			return j, s.opaque(o, data[i:j], p)
		}
		return j, nil
	}
	switch o.op {
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
		lit, v := "false", false
		if c == 't' {
			lit, v = "true", true
		}
		j, err := scanLiteral(data, i, lit)
		if err != nil {
			return 0, ErrType
		}
		*(*bool)(p) = v
		return j, nil

	case opInt, opUint, opFloat32, opFloat64:
		if c != '-' && (c < '0' || c > '9') {
			return 0, ErrType
		}
		j, err := scanNumber(data, i)
		switch {
		case err == ErrNumberRange:
			return 0, ErrRange
		case err != nil:
			return 0, ErrSyntax
		}
		return j, storeNumber(o, data[i:j], p)

	case opPtr:
		q := reflect.New(o.elem.typ).UnsafePointer()
		*(*unsafe.Pointer)(p) = q
		return s.value(o.elem, i, q, depth)

	case opSlice:
		if c != '[' {
			return 0, ErrType
		}
		if depth++; depth > decodeMaxDepth {
			return 0, ErrDepth
		}
		return s.slice(o, i+1, p, depth)

	case opStruct:
		if c != '{' {
			return 0, ErrType
		}
		if depth++; depth > decodeMaxDepth {
			return 0, ErrDepth
		}
		return s.object(o, i+1, p, depth)

	case opJSON:
		j := skipValue(data, i)
		if j < 0 {
			return 0, ErrSyntax
		}
		return j, s.opaque(o, data[i:j], p)
	}
	return 0, ErrType
}

// opaque hands one value to encoding/json, which decodes it as it would
// inside the enclosing value.
func (s *state) opaque(o *node, v []byte, p unsafe.Pointer) error {
	return json.Unmarshal(v, reflect.NewAt(o.typ, p).Interface())
}

// slice decodes the elements of an array whose '[' is at data[i-1].
func (s *state) slice(o *node, i int, p unsafe.Pointer, depth int) (int, error) {
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
func (s *state) object(o *node, i int, p unsafe.Pointer, depth int) (int, error) {
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
		end, esc, serr := scanString(data, i+1)
		if serr != nil {
			return 0, ErrSyntax
		}
		key := data[i+1 : end]
		if esc {
			key = appendUnescaped(keyBuf[:0], key)
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
		if i, err = s.value(fd.node, i+1, unsafe.Add(p, fd.off), depth); err != nil {
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

// str decodes the string whose body starts at data[i] and returns it and
// the index after its closing quote. The string is stored in the arena
// when it fits, else in a buffer of its own.
func (s *state) str(i int) (string, int, error) {
	end, esc, err := scanString(s.data, i)
	if err != nil {
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
		buf = appendUnescaped(buf, body)
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

// storeNumber parses the number b, which scanNumber accepted, as
// encoding/json does for the node's type (strconv with the type's bit
// size, then a range check) and stores it.
func storeNumber(o *node, b []byte, p unsafe.Pointer) error {
	// The bytes outlive the call; strconv copies them into any error.
	s := unsafe.String(unsafe.SliceData(b), len(b))
	switch o.op {
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
