package strictjson

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode"
)

// Schema is one Go type compiled, once, for both things the read path does
// with a payload of that type: [Parse] checks the payload against the
// type's key schema (for every struct level, the exact set of JSON member
// names, and the JSON kind each value must have), and the type's [Decoder]
// reads a payload that passed that check into a value of the type. Build
// one with [Compile] or [SchemaFor] when an action is registered; Parse
// then checks payloads against it without reflection.
//
// The zero Schema accepts any payload (still strictly validated as JSON)
// and has no Decoder. A Schema is immutable and safe for simultaneous use.
type Schema struct {
	root *node    // nil accepts any JSON value
	dec  *Decoder // nil: the type needs encoding/json's own rules
}

// Decoder returns the compiled decoder of the schema's type, or nil when
// the type as a whole must be decoded by encoding/json (see the package
// documentation). A nil Schema has no decoder.
func (s *Schema) Decoder() *Decoder {
	if s == nil {
		return nil
	}
	return s.dec
}

// kind is the JSON kind that the checker accepts for a node (besides
// null, which decodes into anything).
type kind uint8

const (
	kAny    kind = iota // any JSON value
	kStruct             // an object whose keys are exactly fields' names
	kMap                // an object with any keys, values checked against elem
	kArray              // an array whose elements are checked against elem
	kString             // a string
	kNumber             // a number
	kBool               // true or false
	kPtr                // a pointer: the checker reads through it to elem
)

// opKind is how the decoder stores a value of a node's type.
type opKind uint8

const (
	opJSON    opKind = iota // handed to encoding/json
	opString                // a string
	opBool                  // a bool
	opInt                   // a signed integer of bits bits
	opUint                  // an unsigned integer (or uintptr) of bits bits
	opFloat32               // a float32
	opFloat64               // a float64
	opStruct                // a struct whose fields are stored at their offsets
	opPtr                   // a pointer to elem
	opSlice                 // a slice of elem
)

// node is one Go type of a compiled Schema, read two ways: by the checker
// through kind, fields and elem, and by the decoder through op, fields and
// elem. A pointer type has a node of its own (kind kPtr, op opPtr) that
// the checker reads through. A nil *node accepts anything and decodes
// nothing.
type node struct {
	kind  kind
	op    opKind
	bits  uint8        // opInt, opUint
	typ   reflect.Type // the Go type
	elem  *node        // kArray, kMap, kPtr
	esize uintptr      // opSlice: the element size
	// fields are a kStruct's members, in declaration order, members
	// promoted from embedded structs where they are embedded. Their
	// offsets are meaningful only when op is opStruct (no embedding).
	fields []field
	index  map[string]int // many fields: name → index in fields
}

// field is one member of a struct node.
type field struct {
	name string  // the exact JSON name
	off  uintptr // the field's offset in the struct
	node *node
}

// linearFields is the number of struct fields up to which a key is looked
// up by comparing names rather than in a map.
const linearFields = 8

// lookup returns the index of the field named exactly key, or -1; next is
// the likeliest index (members usually arrive in declaration order).
func (n *node) lookup(key []byte, next int) int {
	if next < len(n.fields) && n.fields[next].name == string(key) {
		return next
	}
	if n.index != nil {
		if f, ok := n.index[string(key)]; ok {
			return f
		}
		return -1
	}
	for f := range n.fields {
		if n.fields[f].name == string(key) {
			return f
		}
	}
	return -1
}

// deref returns the node that n points to through any number of pointers:
// JSON does not see pointers.
func (n *node) deref() *node {
	for n != nil && n.kind == kPtr {
		n = n.elem
	}
	return n
}

// elemNode returns the node of the elements of an array node, or nil
// (anything) for a nil or non-array node.
func (n *node) elemNode() *node {
	if n == nil || n.kind != kArray {
		return nil
	}
	return n.elem
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonNumberType      = reflect.TypeFor[json.Number]()
)

// SchemaFor is Compile(reflect.TypeFor[T]()).
func SchemaFor[T any]() (*Schema, error) {
	return Compile(reflect.TypeFor[T]())
}

// Compile computes, once, the schema and the decoder of the Go type t as
// encoding/json decodes it:
//
//   - a struct's members are named as encoding/json names them: the json
//     tag's name if valid, else the Go field name; fields tagged "-" and
//     unexported fields are skipped; options (omitempty, omitzero) are
//     ignored, except that a ",string" field must be a JSON string;
//   - untagged embedded structs (and pointers to structs) are flattened
//     with encoding/json's rules: the shallowest name wins, and at equal
//     depth a tagged name wins over untagged ones. Where encoding/json would
//     silently drop a name because two fields conflict, Compile returns an
//     error instead;
//   - pointers are followed; slices and arrays check their elements; maps
//     accept any key and check their values; []byte accepts what
//     encoding/json accepts (a base64 string or an array);
//   - interfaces, json.RawMessage, json.Number and types that implement
//     json.Unmarshaler or encoding.TextUnmarshaler accept any JSON value,
//     their own decoding being the check;
//   - strings, booleans and numbers require a JSON string, boolean or
//     number. Any value may also be null.
//
// Recursive types are supported. Compile returns an error for a nil type,
// for types encoding/json cannot decode into (channels, functions, complex
// numbers, unsafe pointers, maps with unsupported key types, members
// promoted through an embedded pointer to an unexported struct) and for
// conflicting member names.
func Compile(t reflect.Type) (*Schema, error) {
	if t == nil {
		return nil, errors.New("strictjson: Compile: nil type")
	}
	c := compiler{memo: map[reflect.Type]*node{}, ptrs: map[reflect.Type]bool{}}
	root, err := c.compile(t)
	if err != nil {
		return nil, fmt.Errorf("strictjson: schema of %v: %w", t, err)
	}
	s := &Schema{root: root}
	if ok, arena := decodable(root); ok {
		s.dec = &Decoder{schema: s, ptrTyp: reflect.PointerTo(t), arena: arena}
	}
	return s, nil
}

type compiler struct {
	memo map[reflect.Type]*node // compiled (or in progress) containers
	ptrs map[reflect.Type]bool  // pointer types being followed
}

// decodesItself reports whether encoding/json hands values of type t to a
// method of t (or *t) instead of decoding them itself.
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

// opaque is the node of a type that accepts any JSON value and is decoded
// by encoding/json.
func opaque(t reflect.Type) *node { return &node{kind: kAny, op: opJSON, typ: t} }

func (c *compiler) compile(t reflect.Type) (*node, error) {
	if n, ok := c.memo[t]; ok {
		return n, nil
	}
	if decodesItself(t) || t == jsonNumberType {
		return opaque(t), nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if c.ptrs[t] {
			return nil, fmt.Errorf("recursive pointer type %v", t)
		}
		c.ptrs[t] = true
		defer delete(c.ptrs, t)
		elem, err := c.compile(t.Elem())
		if err != nil {
			return nil, err
		}
		return &node{kind: kPtr, op: opPtr, typ: t, elem: elem}, nil
	case reflect.Interface:
		return opaque(t), nil
	case reflect.String:
		return &node{kind: kString, op: opString, typ: t}, nil
	case reflect.Bool:
		return &node{kind: kBool, op: opBool, typ: t}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &node{kind: kNumber, op: opInt, bits: uint8(t.Bits()), typ: t}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return &node{kind: kNumber, op: opUint, bits: uint8(t.Bits()), typ: t}, nil
	case reflect.Float32:
		return &node{kind: kNumber, op: opFloat32, typ: t}, nil
	case reflect.Float64:
		return &node{kind: kNumber, op: opFloat64, typ: t}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return opaque(t), nil // base64 string or array of numbers
		}
		return c.container(t, kArray, opSlice)
	case reflect.Array:
		return c.container(t, kArray, opJSON)
	case reflect.Map:
		switch t.Key().Kind() {
		case reflect.String,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !reflect.PointerTo(t.Key()).Implements(textUnmarshalerType) {
				return nil, fmt.Errorf("unsupported map key type %v", t.Key())
			}
		}
		return c.container(t, kMap, opJSON)
	case reflect.Struct:
		n := &node{kind: kStruct, op: opStruct, typ: t}
		c.memo[t] = n // before the fields: a recursive type refers to n
		fields, flat, err := c.structFields(t)
		if err != nil {
			return nil, err
		}
		n.fields = fields
		if !flat {
			n.op = opJSON // embedding, ",string", a hidden name: encoding/json's rules
		}
		if len(fields) > linearFields {
			n.index = make(map[string]int, len(fields))
			for i, f := range fields {
				n.index[f.name] = i
			}
		}
		return n, nil
	}
	return nil, fmt.Errorf("unsupported type %v", t)
}

func (c *compiler) container(t reflect.Type, k kind, op opKind) (*node, error) {
	n := &node{kind: k, op: op, typ: t, esize: t.Elem().Size()}
	c.memo[t] = n
	elem, err := c.compile(t.Elem())
	if err != nil {
		return nil, err
	}
	n.elem = elem
	return n, nil
}

// candidate is a JSON member name found while walking a struct and its
// embedded structs.
type candidate struct {
	name   string
	depth  int // embedding depth, 0 for the struct's own fields
	tagged bool
	typ    reflect.Type
	quoted bool
	path   string  // Go field path, for error messages
	off    uintptr // offset, at depth 0
	seq    int     // order of discovery: declaration order, level by level
}

// structFields applies encoding/json's field-selection rules to the struct
// type t: breadth-first through untagged embedded structs, each struct type
// explored at most once (at its shallowest depth), then for every name the
// dominant candidate is kept. It also reports whether t is flat: no
// embedded field, no ",string" option and no name given twice, so that
// every member is stored at its own offset and the decoder can handle it.
func (c *compiler) structFields(t reflect.Type) ([]field, bool, error) {
	type embed struct {
		typ           reflect.Type
		path          string
		unexportedPtr bool
	}
	flat := true
	var cands []candidate
	visited := map[reflect.Type]bool{}
	next := []embed{{typ: t}}
	for depth := 0; len(next) > 0; depth++ {
		current := next
		next = nil
		// How many times each type is queued at this depth: a type embedded
		// twice at one depth yields every one of its names twice, which
		// then conflict, as in encoding/json.
		count := map[reflect.Type]int{}
		for _, e := range current {
			count[e.typ]++
		}
		for _, e := range current {
			if visited[e.typ] {
				continue
			}
			visited[e.typ] = true
			if e.unexportedPtr {
				// encoding/json cannot allocate it, and fails on any
				// member promoted through it.
				return nil, false, fmt.Errorf("embedded pointer to unexported struct %v (%s)", e.typ, e.path)
			}
			for i := range e.typ.NumField() {
				sf := e.typ.Field(i)
				if sf.Anonymous {
					flat = false
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validTagName(name) {
					name = ""
				}
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				path := sf.Name
				if e.path != "" {
					path = e.path + "." + sf.Name
				}
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					next = append(next, embed{typ: ft, path: path,
						unexportedPtr: sf.Type.Kind() == reflect.Pointer && !sf.IsExported()})
					continue
				}
				quoted := false
				if hasOption(opts, "string") {
					flat = false
					switch ft.Kind() {
					case reflect.Bool, reflect.String,
						reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64:
						quoted = true
					}
				}
				cand := candidate{name: name, depth: depth, tagged: name != "", typ: sf.Type, quoted: quoted,
					path: path, off: sf.Offset, seq: len(cands)}
				if cand.name == "" {
					cand.name = sf.Name
				}
				cands = append(cands, cand)
				if count[e.typ] > 1 {
					cands = append(cands, cand) // the same name from the other copy
				}
			}
		}
	}

	// Group by name; within a name, shallowest first, then tagged first.
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if a.name != b.name {
			return strings.Compare(a.name, b.name)
		}
		if a.depth != b.depth {
			return a.depth - b.depth
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return 0
	})
	var chosen []candidate
	for i := 0; i < len(cands); {
		j := i + 1
		for j < len(cands) && cands[j].name == cands[i].name {
			j++
		}
		first := cands[i]
		if j-i > 1 {
			if cands[i+1].depth == first.depth && cands[i+1].tagged == first.tagged {
				return nil, false, fmt.Errorf("JSON name %q is ambiguous (%s and %s); encoding/json would ignore it",
					first.name, first.path, cands[i+1].path)
			}
			flat = false // a tagged name hides an untagged one
		}
		chosen = append(chosen, first)
		i = j
	}
	slices.SortFunc(chosen, func(a, b candidate) int { return a.seq - b.seq })
	fields := make([]field, 0, len(chosen))
	for _, cand := range chosen {
		var n *node
		if cand.quoted {
			n = &node{kind: kString, op: opJSON, typ: cand.typ}
		} else {
			var err error
			if n, err = c.compile(cand.typ); err != nil {
				return nil, false, fmt.Errorf("field %s: %w", cand.path, err)
			}
		}
		fields = append(fields, field{name: cand.name, off: cand.off, node: n})
	}
	return fields, flat, nil
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

// validTagName reports whether encoding/json accepts name as a JSON member
// name given in a struct tag.
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

// decodable reports whether the decoder handles the type of root as a
// whole, and whether it may store strings in an arena. It walks what the
// decoder walks: pointers, slices and flat structs, down to the values it
// stores or hands to encoding/json (opJSON). The root must not be handed
// over, nor may the decoder meet a named pointer type: encoding/json takes
// the address of named values before following pointers, which gives such
// types rules this decoder does not reproduce.
func decodable(root *node) (ok, arena bool) {
	if root == nil || root.op == opJSON {
		return false, false
	}
	seen := map[*node]bool{}
	var walk func(n *node) bool
	walk = func(n *node) bool {
		if seen[n] {
			return true
		}
		seen[n] = true
		switch n.op {
		case opString:
			arena = true
		case opPtr:
			return n.typ.Name() == "" && walk(n.elem)
		case opSlice:
			return walk(n.elem)
		case opStruct:
			for _, f := range n.fields {
				if !walk(f.node) {
					return false
				}
			}
		}
		return true
	}
	return walk(root), arena
}
