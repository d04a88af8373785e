// Package decode is a precompiled JSON decoder for the payload types of
// registered actions. It produces exactly what encoding/json.Unmarshal
// produces, for inputs that internal/envelope has already accepted with
// the type's schema, but without encoding/json's per-call reflection and
// allocations.
//
// # Precondition
//
// [Decoder.Decode] relies on envelope.Parse (called with the schema that
// envelope.CompileSchema built for the same type) having accepted the
// payload: it is one syntactically valid JSON value, valid UTF-8, without
// lone surrogates, without duplicate keys, and every object key decoded
// into a struct is exactly the JSON name of one of its fields. Decode
// re-checks only what it needs to stay safe: on any other input it never
// panics, never writes outside the value it was given, and returns an
// error or some value, but that value may then differ from encoding/json's
// (it does not replace invalid UTF-8 with U+FFFD, for instance). A key
// that matches no field is refused (encoding/json would ignore it or match
// it case-insensitively), so a disagreement with the schema fails closed.
//
// # What is compiled
//
// [Compile] handles strings, booleans, every integer and float kind,
// structs (fields selected by their json tags as encoding/json does),
// pointers and slices of those, to any depth, including recursive types.
// A part of the type that needs encoding/json's own rules — a map, an
// interface, an array, []byte (base64), json.Number, a type with an
// UnmarshalJSON or UnmarshalText method, a struct with embedded fields or
// a ",string" option — is handed to encoding/json.Unmarshal for just that
// value, which decodes it exactly as it would inside the enclosing value.
// When the type itself is such a part (or contains a named pointer type,
// whose handling by encoding/json is irregular), Compile reports
// [ErrUnsupported] and the caller should use encoding/json directly.
//
// # Safety
//
// Decode stores values through unsafe pointers, at the field offsets and
// with the kinds that Compile read from reflect; the input decides only
// which of those fields are written and with what values, never where. It
// allocates pointers' targets and grows slices with reflect, so the
// garbage collector always sees typed memory, and it bounds its recursion
// as encoding/json does (10000 levels).
//
// # Strings
//
// Decode copies every decoded string (unescaped) into the spare capacity
// of a caller-supplied arena and returns strings that point into it, so
// that strings cost no allocation. The unescaped strings of a payload
// never take more bytes than the payload, so an arena with len(payload)
// spare bytes always suffices; without room, a string is allocated as
// usual. The caller owns the arena's backing array and must never modify
// it afterwards: the strings alias it.
package decode

import (
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"unicode"
)

// ErrUnsupported is returned by Compile for a type that the compiled
// decoder does not handle as a whole; decode it with encoding/json.
var ErrUnsupported = errors.New("decode: type not supported by the compiled decoder")

// Decoder decodes JSON into values of one Go type. It is immutable and
// safe for simultaneous use.
type Decoder struct {
	typ     reflect.Type
	ptrTyp  reflect.Type // *typ
	root    *op
	strings bool // some decoded string may use the arena
}

type opKind uint8

const (
	opString opKind = iota
	opBool
	opInt     // signed integer of bits bits
	opUint    // unsigned integer (or uintptr) of bits bits
	opFloat32 // float32
	opFloat64 // float64
	opStruct  // an object whose keys name fields
	opPtr     // a pointer to elem; typ is the element type
	opSlice   // a slice of elem; typ is the slice type
	opJSON    // handed to encoding/json; typ is the value's type
)

// op decodes one JSON value into memory of one Go type.
type op struct {
	kind   opKind
	bits   uint8
	typ    reflect.Type
	elem   *op
	esize  uintptr        // opSlice: element size
	fields []field        // opStruct, in declaration order
	index  map[string]int // opStruct with many fields: name → fields index
}

// field is one decoded struct member.
type field struct {
	name string // exact JSON name
	off  uintptr
	op   *op
}

// linearFields is the number of struct fields up to which a key is looked
// up by comparing names rather than in a map.
const linearFields = 8

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonNumberType      = reflect.TypeFor[json.Number]()
)

// Compile builds, once, the decoder of t. It returns ErrUnsupported when t
// as a whole must be decoded by encoding/json (see the package
// documentation) and never any other error.
func Compile(t reflect.Type) (*Decoder, error) {
	if t == nil {
		return nil, ErrUnsupported
	}
	c := compiler{memo: map[reflect.Type]*op{}}
	root := c.compile(t)
	if c.unsupported || root.kind == opJSON {
		return nil, ErrUnsupported
	}
	return &Decoder{typ: t, ptrTyp: reflect.PointerTo(t), root: root, strings: c.strings}, nil
}

// Type returns the type the decoder decodes into.
func (d *Decoder) Type() reflect.Type { return d.typ }

// UsesArena reports whether Decode may store strings in its arena; when it
// does not, the caller need not provide one.
func (d *Decoder) UsesArena() bool { return d.strings }

type compiler struct {
	memo        map[reflect.Type]*op // struct ops, built or being built
	strings     bool                 // an opString is reachable
	unsupported bool                 // the type as a whole must go to encoding/json
}

// decodesItself reports whether encoding/json hands a value of type t to
// one of t's (or *t's) methods.
func decodesItself(t reflect.Type) bool {
	if t.Implements(jsonUnmarshalerType) || t.Implements(textUnmarshalerType) {
		return true
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		p := reflect.PointerTo(t)
		return p.Implements(jsonUnmarshalerType) || p.Implements(textUnmarshalerType)
	}
	return false
}

// opaque is the op that hands a value of type t to encoding/json.
func opaque(t reflect.Type) *op { return &op{kind: opJSON, typ: t} }

func (c *compiler) compile(t reflect.Type) *op {
	if o, ok := c.memo[t]; ok {
		return o
	}
	if t.Kind() == reflect.Pointer && t.Name() != "" {
		// encoding/json takes the address of named values before
		// following pointers; for a named pointer type that gives rules
		// this decoder does not reproduce. Leave the whole type to it.
		c.unsupported = true
		return opaque(t)
	}
	if decodesItself(t) || t == jsonNumberType {
		return opaque(t)
	}
	switch t.Kind() {
	case reflect.String:
		c.strings = true
		return &op{kind: opString}
	case reflect.Bool:
		return &op{kind: opBool}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &op{kind: opInt, bits: uint8(t.Bits())}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return &op{kind: opUint, bits: uint8(t.Bits())}
	case reflect.Float32:
		return &op{kind: opFloat32}
	case reflect.Float64:
		return &op{kind: opFloat64}
	case reflect.Pointer:
		return &op{kind: opPtr, typ: t.Elem(), elem: c.compile(t.Elem())}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return opaque(t) // base64 string, or array of numbers
		}
		o := &op{kind: opSlice, typ: t, esize: t.Elem().Size()}
		o.elem = c.compile(t.Elem())
		return o
	case reflect.Struct:
		return c.structOp(t)
	}
	// Maps, interfaces, arrays; and kinds encoding/json refuses
	// (channels, functions, complex numbers), for which it reports the
	// error itself.
	return opaque(t)
}

// structOp compiles a struct type, or hands it to encoding/json when it
// has embedded fields or a ",string" option.
func (c *compiler) structOp(t reflect.Type) *op {
	type member struct {
		name string
		idx  int
	}
	var members []member
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return opaque(t) // flattening rules: leave them to encoding/json
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if hasOption(opts, "string") {
			return opaque(t)
		}
		if !validTagName(name) {
			name = sf.Name
		}
		members = append(members, member{name, i})
	}
	// Two fields with one name: encoding/json keeps a tagged one over an
	// untagged one, or drops the name. Leave that to it too.
	seen := map[string]bool{}
	for _, m := range members {
		if seen[m.name] {
			return opaque(t)
		}
		seen[m.name] = true
	}
	o := &op{kind: opStruct}
	c.memo[t] = o // before the fields: a recursive type refers to o
	for _, m := range members {
		sf := t.Field(m.idx)
		o.fields = append(o.fields, field{name: m.name, off: sf.Offset, op: c.compile(sf.Type)})
	}
	if len(o.fields) > linearFields {
		o.index = make(map[string]int, len(o.fields))
		for i, f := range o.fields {
			o.index[f.name] = i
		}
	}
	return o
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// validTagName reports whether encoding/json uses name, from a json tag, as
// a member name (else it uses the Go field name).
func validTagName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", r):
		case unicode.IsLetter(r) || unicode.IsDigit(r):
		default:
			return false
		}
	}
	return true
}
