package envelope

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

// Schema is the precomputed shape of the Go type that an action's payload
// is decoded into with encoding/json: for every struct level, the exact set
// of JSON member names, and the JSON kind each value must have. Build one
// with [CompileSchema] or [SchemaFor] when an action is registered; Parse
// then checks payloads against it without reflection.
//
// The zero Schema accepts any payload (still strictly validated as JSON).
// A Schema is immutable and safe for simultaneous use.
type Schema struct {
	root *node // nil accepts any JSON value
}

type kind uint8

const (
	kAny    kind = iota // any JSON value
	kStruct             // an object whose keys are exactly fields' names
	kMap                // an object with any keys, values checked against elem
	kArray              // an array whose elements are checked against elem
	kString             // a string
	kNumber             // a number
	kBool               // true or false
)

// node is one level of a compiled schema. A nil *node accepts anything. In
// addition to the kind it names, every node accepts null, as encoding/json
// does for every Go type.
type node struct {
	kind   kind
	fields []field // kStruct, sorted by name
	elem   *node   // kArray, kMap
}

type field struct {
	name string
	node *node
}

// field returns the schema of the struct member whose JSON name is exactly
// name.
func (n *node) field(name []byte) (*node, bool) {
	for i := range n.fields {
		if n.fields[i].name == string(name) {
			return n.fields[i].node, true
		}
	}
	return nil, false
}

// elemNode returns the schema of the elements of an array node, or nil
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

// SchemaFor is CompileSchema(reflect.TypeFor[T]()).
func SchemaFor[T any]() (*Schema, error) {
	return CompileSchema(reflect.TypeFor[T]())
}

// CompileSchema computes, once, the schema of the Go type t as encoding/json
// decodes it:
//
//   - a struct's members are named as encoding/json names them: the json
//     tag's name if valid, else the Go field name; fields tagged "-" and
//     unexported fields are skipped; options (omitempty, omitzero) are
//     ignored, except that a ",string" field must be a JSON string;
//   - untagged embedded structs (and pointers to structs) are flattened
//     with encoding/json's rules: the shallowest name wins, and at equal
//     depth a tagged name wins over untagged ones. Where encoding/json would
//     silently drop a name because two fields conflict, CompileSchema
//     returns an error instead;
//   - pointers are followed; slices and arrays check their elements; maps
//     accept any key and check their values; []byte accepts what
//     encoding/json accepts (a base64 string or an array);
//   - interfaces, json.RawMessage, json.Number and types that implement
//     json.Unmarshaler or encoding.TextUnmarshaler accept any JSON value,
//     their own decoding being the check;
//   - strings, booleans and numbers require a JSON string, boolean or
//     number. Any value may also be null.
//
// Recursive types are supported. CompileSchema returns an error for a nil
// type, for types encoding/json cannot decode into (channels, functions,
// complex numbers, unsafe pointers, maps with unsupported key types,
// members promoted through an embedded pointer to an unexported struct) and
// for conflicting member names.
func CompileSchema(t reflect.Type) (*Schema, error) {
	if t == nil {
		return nil, errors.New("envelope: CompileSchema: nil type")
	}
	c := compiler{memo: map[reflect.Type]*node{}, ptrs: map[reflect.Type]bool{}}
	n, err := c.compile(t)
	if err != nil {
		return nil, fmt.Errorf("envelope: schema of %v: %w", t, err)
	}
	return &Schema{root: n}, nil
}

type compiler struct {
	memo map[reflect.Type]*node // compiled (or in progress) containers
	ptrs map[reflect.Type]bool  // pointer types being followed
}

// decodesItself reports whether encoding/json hands values of type t to a
// method of t instead of decoding them itself.
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

func (c *compiler) compile(t reflect.Type) (*node, error) {
	if n, ok := c.memo[t]; ok {
		return n, nil
	}
	if decodesItself(t) || t == jsonNumberType {
		return nil, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if c.ptrs[t] {
			return nil, fmt.Errorf("recursive pointer type %v", t)
		}
		c.ptrs[t] = true
		defer delete(c.ptrs, t)
		return c.compile(t.Elem())
	case reflect.Interface:
		return nil, nil
	case reflect.String:
		return &node{kind: kString}, nil
	case reflect.Bool:
		return &node{kind: kBool}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return &node{kind: kNumber}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil, nil // base64 string or array of numbers
		}
		return c.container(t, kArray)
	case reflect.Array:
		return c.container(t, kArray)
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
		return c.container(t, kMap)
	case reflect.Struct:
		n := &node{kind: kStruct}
		c.memo[t] = n
		fields, err := c.structFields(t)
		if err != nil {
			return nil, err
		}
		n.fields = fields
		return n, nil
	}
	return nil, fmt.Errorf("unsupported type %v", t)
}

func (c *compiler) container(t reflect.Type, k kind) (*node, error) {
	n := &node{kind: k}
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
	path   string // Go field path, for error messages
}

// structFields applies encoding/json's field-selection rules to the struct
// type t: breadth-first through untagged embedded structs, each struct type
// explored at most once (at its shallowest depth), then for every name the
// dominant candidate is kept.
func (c *compiler) structFields(t reflect.Type) ([]field, error) {
	type embed struct {
		typ           reflect.Type
		path          string
		unexportedPtr bool
	}
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
				return nil, fmt.Errorf("embedded pointer to unexported struct %v (%s)", e.typ, e.path)
			}
			for i := range e.typ.NumField() {
				sf := e.typ.Field(i)
				if sf.Anonymous {
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
					switch ft.Kind() {
					case reflect.Bool, reflect.String,
						reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64:
						quoted = true
					}
				}
				cand := candidate{name: name, depth: depth, tagged: name != "", typ: sf.Type, quoted: quoted, path: path}
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
	var fields []field
	for i := 0; i < len(cands); {
		j := i + 1
		for j < len(cands) && cands[j].name == cands[i].name {
			j++
		}
		first := cands[i]
		if j-i > 1 && cands[i+1].depth == first.depth && cands[i+1].tagged == first.tagged {
			return nil, fmt.Errorf("JSON name %q is ambiguous (%s and %s); encoding/json would ignore it",
				first.name, first.path, cands[i+1].path)
		}
		var n *node
		if first.quoted {
			n = &node{kind: kString}
		} else {
			var err error
			if n, err = c.compile(first.typ); err != nil {
				return nil, fmt.Errorf("field %s: %w", first.path, err)
			}
		}
		fields = append(fields, field{name: first.name, node: n})
		i = j
	}
	return fields, nil
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
