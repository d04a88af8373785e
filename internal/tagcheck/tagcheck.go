// Package tagcheck compiles the common validator/v10 struct tags of a
// payload type into direct checks, run without reflection or allocation
// per message.
//
// It compiles a struct type only when every check reachable from it is
// one it reproduces exactly (results, order and the reported field and
// tag): the tags required, omitempty (first only), min, max, len, gt,
// gte, lt, lte, oneof and alphanum, and dive at the end of a slice's tag,
// on strings, integers, unsigned integers, floats, bools, pointers to
// those, slices, maps and nested structs. Anything else (another tag, an
// interface, an embedded struct, a tagged struct field, a
// validator.Valuer, time.Duration, a recursive type) makes Compile
// refuse the type, and the caller keeps validator/v10 for it. FuzzCompare
// holds the two to the same answers.
//
// The validator it mirrors is configured as wssec configures it:
// validator.New(validator.WithRequiredStructEnabled()) with FieldName as
// its tag name function.
package tagcheck

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/go-playground/validator/v10"
)

// FieldName is the name validator reports for a struct field: its JSON
// name, the name the client sent, or the Go name when the JSON tag names
// none.
func FieldName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

// Plan is the compiled checks of one struct type. Safe for simultaneous
// use.
type Plan struct {
	fields []field
}

// Failure is the first failed check: the field's name, as validator's
// FieldError.Field reports it, and the tag that failed.
type Failure struct {
	Field, Tag string
}

// Check runs the plan on the struct that p points to (a *T of the type
// the plan was compiled for). It reports the first failure in the order
// validator/v10 reports its errors, or ok.
func (pl *Plan) Check(p unsafe.Pointer) (f Failure, ok bool) {
	for i := range pl.fields {
		if f, ok = pl.fields[i].check(p); !ok {
			return f, false
		}
	}
	return Failure{}, true
}

type kind uint8

const (
	kString kind = iota
	kInt
	kUint
	kFloat32
	kFloat64
	kBool
	kSlice
	kMap
	kStruct
)

type opcode uint8

const (
	opRequired opcode = iota
	opMin             // also gte
	opMax             // also lte
	opLen
	opGt
	opLt
	opOneof
	opAlphanum
)

// op is one compiled tag with its parameter, parsed as validator parses
// it for the field's kind.
type op struct {
	tag   string // as written ("gte", not "min"): what a failure reports
	code  opcode
	n     int64   // string and length parameters, signed integers
	u     uint64  // unsigned integers
	f     float64 // floats
	strs  []string
	ints  []int64
	uints []uint64
}

// field is one checked struct field (or, with off 0, a dive element).
type field struct {
	off       uintptr
	name      string
	kind      kind
	size      uintptr      // of an integer
	typ       reflect.Type // of a map
	ptr       bool         // a pointer to kind
	first     string       // the first tag: what a nil pointer fails with
	omitEmpty bool         // the first tag is omitempty
	ops       []op
	sub       *Plan // kStruct: the nested struct's checks
	dive      *elem // kSlice with dive
}

// elem is what dive checks in every element of a slice.
type elem struct {
	size  uintptr
	check field // off 0; its name is set per element on failure
}

var (
	errNotCompiled = errors.New("tagcheck: not compiled")
	timeType       = reflect.TypeFor[time.Time]()
	durationType   = reflect.TypeFor[time.Duration]()
	valuerType     = reflect.TypeFor[validator.Valuer]()
)

// Compile compiles the validate tags of struct type t. It returns an
// error, naming the first thing it does not reproduce, when validator
// must check t instead.
func Compile(t reflect.Type) (*Plan, error) {
	if t.Kind() != reflect.Struct || t.ConvertibleTo(timeType) || isValuer(t) {
		return nil, fmt.Errorf("%w: %v is not a plain struct", errNotCompiled, t)
	}
	return compileStruct(t, map[reflect.Type]bool{})
}

func isValuer(t reflect.Type) bool {
	return t.Implements(valuerType) || reflect.PointerTo(t).Implements(valuerType)
}

func compileStruct(t reflect.Type, visiting map[reflect.Type]bool) (*Plan, error) {
	if visiting[t] {
		return nil, fmt.Errorf("%w: %v is recursive", errNotCompiled, t)
	}
	visiting[t] = true
	defer delete(visiting, t)
	pl := &Plan{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil, fmt.Errorf("%w: embedded field %s", errNotCompiled, sf.Name)
		}
		if !sf.IsExported() {
			continue // validator skips unexported fields
		}
		tag := sf.Tag.Get("validate")
		if tag == "-" {
			continue
		}
		name := FieldName(sf)
		if name == "" {
			name = sf.Name // validator keeps the Go name for json:"-"
		}
		f, keep, err := compileField(sf.Type, tag, name, visiting)
		if err != nil {
			return nil, fmt.Errorf("%w (field %s)", err, sf.Name)
		}
		if keep {
			f.off = sf.Offset
			pl.fields = append(pl.fields, f)
		}
	}
	return pl, nil
}

// compileField compiles the checks of a value of type t with tag. keep is
// false when validator does nothing with such a field.
func compileField(t reflect.Type, tag, name string, visiting map[reflect.Type]bool) (f field, keep bool, err error) {
	f.name = name
	if isValuer(t) {
		return f, false, fmt.Errorf("%w: %v is a validator.Valuer", errNotCompiled, t)
	}
	if tag == "" {
		return compileUntagged(t, name, visiting)
	}
	toks := strings.Split(tag, ",")
	f.first, _, _ = strings.Cut(toks[0], "=")
	if f.first == "omitempty" {
		f.omitEmpty = true
		toks = toks[1:]
	}
	// dive, last: the slice's own checks, then each element's.
	var after []string
	diving := false
	for i, tok := range toks {
		if tok == "dive" {
			diving, after, toks = true, toks[i+1:], toks[:i]
			break
		}
	}
	vt := t
	if t.Kind() == reflect.Pointer {
		vt = t.Elem()
		if isValuer(vt) {
			return f, false, fmt.Errorf("%w: %v is a validator.Valuer", errNotCompiled, vt)
		}
		f.ptr = true
	}
	if f.kind, err = kindOf(vt); err != nil {
		return f, false, err
	}
	if f.ptr && (f.kind == kSlice || f.kind == kMap || f.kind == kStruct) {
		return f, false, fmt.Errorf("%w: tagged pointer to %v", errNotCompiled, vt)
	}
	if f.kind == kStruct {
		return f, false, fmt.Errorf("%w: tagged struct field", errNotCompiled)
	}
	f.size, f.typ = vt.Size(), vt
	for _, tok := range toks {
		o, err := compileOp(tok, vt, f.kind)
		if err != nil {
			return f, false, err
		}
		if f.ptr && o.code == opRequired {
			// A pointer that is not nil has a value, whatever it points
			// to (validator's hasValue); nil fails before any op runs.
			continue
		}
		f.ops = append(f.ops, o)
	}
	if diving {
		if f.kind != kSlice || f.ptr {
			return f, false, fmt.Errorf("%w: dive on %v", errNotCompiled, t)
		}
		e, err := compileElem(vt.Elem(), after, name, visiting)
		if err != nil {
			return f, false, err
		}
		f.dive = e
	}
	return f, true, nil
}

// compileUntagged is what validator does with a field without a tag: it
// walks nested structs (and structs behind pointers) and nothing else.
func compileUntagged(t reflect.Type, name string, visiting map[reflect.Type]bool) (f field, keep bool, err error) {
	f.name = name
	switch t.Kind() {
	case reflect.Interface:
		return f, false, fmt.Errorf("%w: interface field", errNotCompiled)
	case reflect.Pointer:
		e := t.Elem()
		if isValuer(e) {
			return f, false, fmt.Errorf("%w: %v is a validator.Valuer", errNotCompiled, e)
		}
		switch {
		case e.Kind() == reflect.Pointer || e.Kind() == reflect.Interface:
			return f, false, fmt.Errorf("%w: pointer to %v", errNotCompiled, e)
		case e.Kind() != reflect.Struct || e.ConvertibleTo(timeType):
			return f, false, nil
		}
		f.ptr = true
		t = e
	case reflect.Struct:
	default:
		return f, false, nil // slices, maps and arrays are walked only with dive
	}
	if t.ConvertibleTo(timeType) {
		return f, false, nil
	}
	sub, err := compileStruct(t, visiting)
	if err != nil {
		return f, false, err
	}
	if len(sub.fields) == 0 {
		return f, false, nil
	}
	f.kind, f.sub = kStruct, sub
	return f, true, nil
}

// compileElem compiles dive's checks of a slice element of type t; nil
// when validator checks nothing in an element.
func compileElem(t reflect.Type, toks []string, name string, visiting map[reflect.Type]bool) (*elem, error) {
	var (
		f    field
		keep bool
		err  error
	)
	if len(toks) == 0 {
		f, keep, err = compileUntagged(t, name, visiting)
	} else {
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			return nil, fmt.Errorf("%w: dive into %v", errNotCompiled, t)
		}
		for _, tok := range toks {
			if tok == "dive" || tok == "keys" || tok == "endkeys" {
				return nil, fmt.Errorf("%w: nested %s", errNotCompiled, tok)
			}
		}
		f, keep, err = compileField(t, strings.Join(toks, ","), name, visiting)
	}
	if err != nil || !keep {
		return nil, err
	}
	return &elem{size: t.Size(), check: f}, nil
}

func kindOf(t reflect.Type) (kind, error) {
	if t == durationType {
		return 0, fmt.Errorf("%w: time.Duration", errNotCompiled)
	}
	switch t.Kind() {
	case reflect.String:
		return kString, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kInt, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kUint, nil
	case reflect.Float32:
		return kFloat32, nil
	case reflect.Float64:
		return kFloat64, nil
	case reflect.Bool:
		return kBool, nil
	case reflect.Slice:
		return kSlice, nil
	case reflect.Map:
		return kMap, nil
	case reflect.Struct:
		return kStruct, nil
	}
	return 0, fmt.Errorf("%w: %v", errNotCompiled, t)
}

// compileOp compiles one tag for a value of type t. A tag or parameter
// validator would read differently (an alias, an or, an escaped comma,
// a parameter it cannot parse, a tag meaningless for the kind) is an
// error: validator then runs.
func compileOp(tok string, t reflect.Type, k kind) (op, error) {
	name, param, hasParam := strings.Cut(tok, "=")
	o := op{tag: name}
	no := fmt.Errorf("%w: tag %q on %v", errNotCompiled, tok, t)
	if strings.Contains(tok, "|") || strings.Contains(param, "0x2C") || strings.Contains(param, "0x7C") {
		return o, no
	}
	switch name {
	case "required":
		if hasParam {
			return o, no
		}
		o.code = opRequired
		return o, nil
	case "alphanum":
		if hasParam || k != kString {
			return o, no
		}
		o.code = opAlphanum
		return o, nil
	case "oneof":
		if !hasParam || strings.Contains(param, "'") {
			return o, no
		}
		o.code = opOneof
		vals := splitFields(param)
		switch k {
		case kString:
			o.strs = vals
		case kInt:
			for _, s := range vals {
				// validator compares the decimal form of the value:
				// only a canonical decimal can ever match.
				if n, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(n, 10) == s {
					o.ints = append(o.ints, n)
				}
			}
		case kUint:
			for _, s := range vals {
				if n, err := strconv.ParseUint(s, 10, 64); err == nil && strconv.FormatUint(n, 10) == s {
					o.uints = append(o.uints, n)
				}
			}
		default:
			return o, no
		}
		return o, nil
	case "min", "gte":
		o.code = opMin
	case "max", "lte":
		o.code = opMax
	case "len":
		o.code = opLen
	case "gt":
		o.code = opGt
	case "lt":
		o.code = opLt
	default:
		return o, no
	}
	if !hasParam {
		return o, no
	}
	var err error
	switch k {
	case kString, kSlice, kMap:
		o.n, err = strconv.ParseInt(param, 0, 64)
	case kInt:
		o.n, err = strconv.ParseInt(param, 0, 64)
	case kUint:
		o.u, err = strconv.ParseUint(param, 0, 64)
	case kFloat32:
		o.f, err = strconv.ParseFloat(param, 32)
	case kFloat64:
		o.f, err = strconv.ParseFloat(param, 64)
	default:
		return o, no
	}
	if err != nil {
		return o, no // validator panics on it; wssec contains that panic
	}
	return o, nil
}

// splitFields splits oneof's parameter as validator does (runs of
// anything but tab, newline, form feed, carriage return and space).
func splitFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == '\t' || r == '\n' || r == '\f' || r == '\r' || r == ' '
	})
}

func (f *field) fail(tag string) (Failure, bool) { return Failure{Field: f.name, Tag: tag}, false }

// check runs f on the struct at base.
func (f *field) check(base unsafe.Pointer) (Failure, bool) {
	p := unsafe.Add(base, f.off)
	if f.ptr {
		p = *(*unsafe.Pointer)(p)
		if p == nil {
			if f.kind == kStruct || f.omitEmpty {
				return Failure{}, true
			}
			return f.fail(f.first)
		}
	} else if f.omitEmpty && !f.hasValue(p) {
		return Failure{}, true
	}
	switch f.kind {
	case kStruct:
		return f.sub.Check(p)
	case kString:
		return f.checkString(*(*string)(p))
	case kInt:
		return f.checkInt(f.loadInt(p))
	case kUint:
		return f.checkUint(f.loadUint(p))
	case kFloat32:
		return f.checkFloat(float64(*(*float32)(p)))
	case kFloat64:
		return f.checkFloat(*(*float64)(p))
	case kBool:
		for i := range f.ops { // only required compiles for a bool
			if !*(*bool)(p) {
				return f.fail(f.ops[i].tag)
			}
		}
		return Failure{}, true
	case kSlice:
		return f.checkSlice(p)
	case kMap:
		m := reflect.NewAt(f.typ, p).Elem()
		return f.checkLen(m.IsNil(), int64(m.Len()))
	}
	return Failure{}, true
}

// hasValue is validator's hasValue for a field that is not a pointer.
func (f *field) hasValue(p unsafe.Pointer) bool {
	switch f.kind {
	case kString:
		return len(*(*string)(p)) > 0
	case kInt:
		return f.loadInt(p) != 0
	case kUint:
		return f.loadUint(p) != 0
	case kFloat32:
		return *(*float32)(p) != 0
	case kFloat64:
		return *(*float64)(p) != 0
	case kBool:
		return *(*bool)(p)
	case kSlice, kMap:
		return *(*unsafe.Pointer)(p) != nil
	}
	return true
}

func (f *field) loadInt(p unsafe.Pointer) int64 {
	switch f.size {
	case 1:
		return int64(*(*int8)(p))
	case 2:
		return int64(*(*int16)(p))
	case 4:
		return int64(*(*int32)(p))
	}
	return *(*int64)(p)
}

func (f *field) loadUint(p unsafe.Pointer) uint64 {
	switch f.size {
	case 1:
		return uint64(*(*uint8)(p))
	case 2:
		return uint64(*(*uint16)(p))
	case 4:
		return uint64(*(*uint32)(p))
	}
	return *(*uint64)(p)
}

func (f *field) checkString(s string) (Failure, bool) {
	runes := int64(-1) // counted when first needed
	count := func() int64 {
		if runes < 0 {
			runes = int64(utf8.RuneCountInString(s))
		}
		return runes
	}
	for i := range f.ops {
		o := &f.ops[i]
		var ok bool
		switch o.code {
		case opRequired:
			ok = s != ""
		case opMin:
			ok = count() >= o.n
		case opMax:
			// No more bytes than the bound: no more runes either.
			ok = int64(len(s)) <= o.n || count() <= o.n
		case opLen:
			ok = count() == o.n
		case opGt:
			ok = count() > o.n
		case opLt:
			ok = count() < o.n
		case opOneof:
			for _, v := range o.strs {
				if v == s {
					ok = true
					break
				}
			}
		case opAlphanum:
			ok = isAlphanum(s)
		}
		if !ok {
			return f.fail(o.tag)
		}
	}
	return Failure{}, true
}

// isAlphanum is validator's ^[a-zA-Z0-9]+$.
func isAlphanum(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func (f *field) checkInt(v int64) (Failure, bool) {
	for i := range f.ops {
		o := &f.ops[i]
		var ok bool
		switch o.code {
		case opRequired:
			ok = v != 0
		case opMin:
			ok = v >= o.n
		case opMax:
			ok = v <= o.n
		case opLen:
			ok = v == o.n
		case opGt:
			ok = v > o.n
		case opLt:
			ok = v < o.n
		case opOneof:
			for _, n := range o.ints {
				if n == v {
					ok = true
					break
				}
			}
		}
		if !ok {
			return f.fail(o.tag)
		}
	}
	return Failure{}, true
}

func (f *field) checkUint(v uint64) (Failure, bool) {
	for i := range f.ops {
		o := &f.ops[i]
		var ok bool
		switch o.code {
		case opRequired:
			ok = v != 0
		case opMin:
			ok = v >= o.u
		case opMax:
			ok = v <= o.u
		case opLen:
			ok = v == o.u
		case opGt:
			ok = v > o.u
		case opLt:
			ok = v < o.u
		case opOneof:
			for _, n := range o.uints {
				if n == v {
					ok = true
					break
				}
			}
		}
		if !ok {
			return f.fail(o.tag)
		}
	}
	return Failure{}, true
}

func (f *field) checkFloat(v float64) (Failure, bool) {
	for i := range f.ops {
		o := &f.ops[i]
		var ok bool
		switch o.code {
		case opRequired:
			ok = v != 0 // reflect's IsZero: -0 is zero, NaN is not
		case opMin:
			ok = v >= o.f
		case opMax:
			ok = v <= o.f
		case opLen:
			ok = v == o.f
		case opGt:
			ok = v > o.f
		case opLt:
			ok = v < o.f
		}
		if !ok {
			return f.fail(o.tag)
		}
	}
	return Failure{}, true
}

// checkLen runs the ops of a slice or map.
func (f *field) checkLen(isNil bool, n int64) (Failure, bool) {
	for i := range f.ops {
		o := &f.ops[i]
		var ok bool
		switch o.code {
		case opRequired:
			ok = !isNil
		case opMin:
			ok = n >= o.n
		case opMax:
			ok = n <= o.n
		case opLen:
			ok = n == o.n
		case opGt:
			ok = n > o.n
		case opLt:
			ok = n < o.n
		}
		if !ok {
			return f.fail(o.tag)
		}
	}
	return Failure{}, true
}

func (f *field) checkSlice(p unsafe.Pointer) (Failure, bool) {
	data := *(*unsafe.Pointer)(p)
	n := *(*int)(unsafe.Add(p, unsafe.Sizeof(uintptr(0))))
	if fl, ok := f.checkLen(data == nil, int64(n)); !ok || f.dive == nil {
		return fl, ok
	}
	e := &f.dive.check
	for i := range n {
		if fl, ok := e.check(unsafe.Add(data, uintptr(i)*f.dive.size)); !ok {
			if e.kind != kStruct {
				// The element's own tag failed: validator names it
				// "field[i]".
				fl.Field = f.name + "[" + strconv.Itoa(i) + "]"
			}
			return fl, false
		}
	}
	return Failure{}, true
}
