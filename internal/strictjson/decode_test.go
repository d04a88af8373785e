package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// Types the tests and the fuzz target decode, with encoding/json as the
// oracle.
type (
	decString string
	flat      struct {
		S        string    `json:"s"`
		B        bool      `json:"b"`
		I        int       `json:"i"`
		I8       int8      `json:"i8"`
		I16      int16     // untagged: its Go name
		I32      int32     `json:"i32,omitempty"`
		I64      int64     `json:"i64"`
		U        uint      `json:"u"`
		U8       uint8     `json:"u8"`
		U16      uint16    `json:"u16"`
		U32      uint32    `json:"u32"`
		U64      uint64    `json:"u64"`
		UP       uintptr   `json:"up"`
		F32      float32   `json:"f32"`
		F64      float64   `json:"f64"`
		Named    decString `json:"named"`
		BadTag   string    `json:"x\\y"` // invalid tag name: the Go name is used
		Dash     string    `json:"-"`
		DashName string    `json:"-,"` // named "-"
		Sym      string    `json:"a-b.c"`
		Uni      string    `json:"ünï"`
		hidden   string
	}
	small struct {
		A string `json:"a"`
		N int    `json:"n"`
	}
	nested struct {
		P    *flat     `json:"p"`
		PS   *string   `json:"ps"`
		PPI  **int     `json:"ppi"`
		L    []string  `json:"l"`
		LS   []small   `json:"ls"`
		LP   []*int    `json:"lp"`
		LL   [][]int   `json:"ll"`
		In   small     `json:"in"`
		Self *nested   `json:"self"`
		Kids []nested  `json:"kids"`
		F    []float32 `json:"f"`
	}
	// wide has more fields than linearFields: keys go through a map.
	wide struct {
		A, B, C, D, E, F, G, H, I, J string
		K                            int `json:"k"`
	}
	quoted struct {
		N int  `json:"n,string"`
		B bool `json:"b,string"`
	}
	embedded struct {
		small
		Z string `json:"z"`
	}
	upper        string
	opaqueFields struct {
		M   map[string]int  `json:"m"`
		A   any             `json:"a"`
		R   json.RawMessage `json:"r"`
		N   json.Number     `json:"n"`
		T   time.Time       `json:"t"`
		PT  *time.Time      `json:"pt"`
		Arr [2]int          `json:"arr"`
		By  []byte          `json:"by"`
		Q   quoted          `json:"q"`
		E   embedded        `json:"e"`
		U   upper           `json:"u"`
		PU  *upper          `json:"pu"`
		LU  []upper         `json:"lu"`
		S   string          `json:"s"`
	}
	namedPtr  *small
	withNamed struct {
		P namedPtr `json:"p"`
	}
)

// UnmarshalJSON upper-cases a JSON string; it keeps no reference to b.
func (u *upper) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*u = upper(strings.ToUpper(s))
	return nil
}

// subjects are the types of the equivalence tests, with seeds.
var subjects = []struct {
	typ   reflect.Type
	seeds []string
}{
	{reflect.TypeFor[flat](), []string{
		`{}`,
		`{"s":"hello","b":true,"i":-42,"i8":-128,"I16":32767,"i32":-2147483648,"i64":9223372036854775807,"u":1,"u8":255,"u16":65535,"u32":4294967295,"u64":18446744073709551615,"up":7,"f32":1.5,"f64":-2.5e-3,"named":"n","BadTag":"t","-":"d","a-b.c":"sym","ünï":"u"}`,
		`{"s":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00 é €"}`,
		`{"s":"\u0000"}`,
		`{"s":null,"b":null,"i":null,"f64":null}`,
		`{"i8":128}`, `{"i8":-129}`, `{"u8":256}`, `{"u":-1}`, `{"u":-0}`, `{"i":-0}`,
		`{"i":1e2}`, `{"i":1.0}`, `{"i":9223372036854775808}`, `{"i64":-9223372036854775808}`,
		`{"i64":-9223372036854775809}`, `{"u64":18446744073709551616}`,
		`{"f32":3.4028235e38}`, `{"f32":3.5e38}`, `{"f32":1e-50}`, `{"f64":1e308}`, `{"f64":-0}`,
		`{"f64":4.9e-324}`, `{"f64":1e-400}`, `{"f32":123456789012345678901234567890}`,
		`{"i":0.5e1}`, `{"u16":000}`, `{"i":"1"}`, `{"s":1}`, `{"b":"true"}`, `{"s":[]}`,
		` { "s" : "x" , "b" : false } `, `{"Dash":"x"}`, `{"hidden":"x"}`, `{"S":"x"}`,
		`{"x\\y":"t"}`, `{"s":"a","s":"b"}`, `null`, `[]`, `"x"`,
	}},
	{reflect.TypeFor[nested](), []string{
		`{"p":{"s":"x","i":1},"ps":"s","ppi":3,"l":["a","b"],"ls":[{"a":"x","n":1},{"n":2}],"lp":[1,null,3],"ll":[[1],[],null,[2,3]],"in":{"a":"in"},"self":{"l":[]},"kids":[{"kids":[{"ps":null}]}],"f":[1.5,3.5e38]}`,
		`{"p":null,"ps":null,"ppi":null,"l":null,"ls":null,"lp":null,"ll":null,"self":null,"kids":null}`,
		`{"l":[]}`, `{"l":[null,"a"]}`, `{"ls":[null]}`, `{"ls":[{}]}`, `{"in":null}`,
		`{"l":[1]}`, `{"ls":[[]]}`, `{"ppi":1.5}`, `{"f":[1e39]}`,
		`{"kids":[{"kids":[{"kids":[{"kids":[{"l":["deep"]}]}]}]}]}`,
		`{"l":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`,
	}},
	{reflect.TypeFor[wide](), []string{
		`{"A":"a","B":"b","C":"c","D":"d","E":"e","F":"f","G":"g","H":"h","I":"i","J":"j","k":1}`,
		`{"k":1,"J":"j","A":"a"}`, `{"K":1}`, `{"a":"x"}`,
	}},
	{reflect.TypeFor[opaqueFields](), []string{
		`{"m":{"a":1,"b":null},"a":{"x":[1,"y",null,true]},"r":[1, {"x" : 2}],"n":12.5e3,"t":"2024-01-02T03:04:05Z","pt":"2024-01-02T03:04:05+02:00","arr":[1,2,3],"by":"aGVsbG8=","q":{"n":"12","b":"true"},"e":{"a":"x","n":2,"z":"z"},"u":"up","pu":"pu","lu":["a",null],"s":"s"}`,
		`{"m":null,"a":null,"r":null,"n":null,"t":null,"pt":null,"arr":null,"by":null,"q":null,"e":null,"u":null,"pu":null,"lu":null}`,
		`{"n":"12"}`, `{"n":"x"}`, `{"t":"yesterday"}`, `{"by":"!!"}`, `{"by":[1,2]}`, `{"q":{"n":12}}`,
		`{"arr":[1]}`, `{"u":1}`, `{"m":{"a":"1"}}`, `{"e":{"A":"x"}}`, `{"r":{}}`,
	}},
	{reflect.TypeFor[[]small](), []string{`[]`, `[{"a":"x"},null,{"n":-1}]`, `null`, `{}`, `[1]`}},
	{reflect.TypeFor[*small](), []string{`{"a":"x"}`, `null`, `{}`}},
	{reflect.TypeFor[[]*[]string](), []string{`[["a"],null,[]]`}},
	// A scalar that encoding/json decodes, at the end of the payload.
	{reflect.TypeFor[*json.Number](), []string{`12`, ` -1.5e3 `, `"12"`, `null`, `true`, `[]`}},
	{reflect.TypeFor[[]json.Number](), []string{`[1, 2.5 ,-0]`, `["1"]`, `[null]`, `[{}]`}},
}

// accepted wraps p in a message of its own and returns the payload that
// Parse accepts with sch, or false.
func accepted(sch *Schema, p []byte) (Checked, bool) {
	msg := append(append([]byte(`{"action":"a","payload":`), p...), '}')
	var env Envelope
	if err := Parse(msg, Limits{}, func([]byte) *Schema { return sch }, &env); err != nil {
		return Checked{}, false
	}
	return env.Checked(), true
}

// equivalent wraps p in a message and, if Parse accepts it with sch,
// decodes the accepted payload with encoding/json and with sch's compiled
// decoder, with and without an arena, and reports any difference. It
// reports whether it compared.
func equivalent(t testing.TB, sch *Schema, p []byte) bool {
	t.Helper()
	first, ok := accepted(sch, p)
	if !ok {
		return false
	}
	payload := bytes.Clone(first.Bytes())
	d := sch.Decoder()
	typ := d.Type()
	want := reflect.New(typ)
	errJ := json.Unmarshal(payload, want.Interface())
	for _, withArena := range []bool{false, true} {
		// The decoder's input is a private copy, overwritten afterwards:
		// no decoded value may alias it.
		in, _ := accepted(sch, p)
		var arena []byte
		if withArena {
			arena = make([]byte, 3, 3+len(in.Bytes())) // a used prefix, then room
		}
		got := reflect.New(typ)
		errF := d.Decode(in, got, arena)
		if (errJ == nil) != (errF == nil) {
			t.Fatalf("%v %q (arena %v): encoding/json error %v, decoder error %v", typ, payload, withArena, errJ, errF)
		}
		if errJ != nil {
			continue
		}
		for i := range in.Bytes() {
			in.Bytes()[i] = 'X'
		}
		if !reflect.DeepEqual(want.Interface(), got.Interface()) {
			t.Fatalf("%v %q (arena %v):\nencoding/json %s\ndecoder       %s", typ, payload, withArena, dump(want), dump(got))
		}
		if withArena && !bytes.Equal(arena[:3], make([]byte, 3)) {
			t.Fatalf("%v %q: the used part of the arena was overwritten", typ, payload)
		}
	}
	return true
}

func dump(v reflect.Value) string {
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Sprintf("%#v", v.Elem().Interface())
	}
	return string(b)
}

func TestDecode_MatchesEncodingJSON(t *testing.T) {
	checked, total := 0, 0
	defer func() {
		t.Logf("%d of %d seeds accepted by Parse and compared", checked, total)
		if checked < total/2 {
			t.Errorf("only %d of %d seeds compared", checked, total)
		}
	}()
	for _, s := range subjects {
		sch, err := Compile(s.typ)
		if err != nil {
			t.Fatalf("Compile(%v): %v", s.typ, err)
		}
		if sch.Decoder() == nil {
			t.Fatalf("Compile(%v): no decoder", s.typ)
		}
		for _, seed := range s.seeds {
			t.Run(fmt.Sprintf("%v/%s", s.typ, seed), func(t *testing.T) {
				// Every seed, even one Parse refuses (then nothing is
				// compared), and the payload Parse accepted.
				total++
				if equivalent(t, sch, []byte(seed)) {
					checked++
				}
			})
		}
	}
}

// TestDecode_Refusals: values encoding/json refuses are refused, with the
// decoder's own error (not a panic, not a partial success), even those
// that Parse would have refused before.
func TestDecode_Refusals(t *testing.T) {
	sch, err := Compile(reflect.TypeFor[flat]())
	if err != nil {
		t.Fatal(err)
	}
	d := sch.Decoder()
	for in, want := range map[string]error{
		`{"i8":128}`:      ErrRange,
		`{"u":-1}`:        ErrRange,
		`{"i":1.5}`:       ErrRange,
		`{"i":1e2}`:       ErrRange,
		`{"f32":1e39}`:    ErrRange,
		`{"s":1}`:         ErrType,
		`{"b":"x"}`:       ErrType,
		`{"nope":1}`:      ErrType, // a key the schema would have refused
		`{"S":"x"}`:       ErrType, // no case-insensitive match
		`{"s":"x"`:        ErrSyntax,
		`{"s":"x"}}`:      ErrSyntax,
		`{"i":01}`:        ErrSyntax,
		`{"s":"\x"}`:      ErrSyntax,
		`{"s":"\u12"}`:    ErrSyntax,
		`{"b":tru}`:       ErrType,
		`{"s":nul}`:       ErrSyntax,
		`{"s" "x"}`:       ErrSyntax,
		`{"s":"x" "b":1}`: ErrSyntax,
	} {
		if err := d.decode([]byte(in), reflect.New(reflect.TypeFor[flat]()), nil); err != want {
			t.Errorf("%s: %v, want %v", in, err, want)
		}
	}
	p, ok := accepted(sch, []byte(`{}`))
	if !ok {
		t.Fatal("{} refused")
	}
	if err := d.Decode(p, reflect.ValueOf(&small{}), nil); err != ErrTarget {
		t.Errorf("wrong destination type: %v", err)
	}
	if err := d.Decode(p, reflect.ValueOf((*flat)(nil)), nil); err != ErrTarget {
		t.Errorf("nil destination: %v", err)
	}
	if err := d.Decode(p, reflect.Value{}, nil); err != ErrTarget {
		t.Errorf("no destination: %v", err)
	}
}

// TestDecode_OnlyChecked: the decoder takes only a payload that Parse
// accepted with the decoder's own schema: not one checked with another
// schema of the same type, with none, or no payload at all.
func TestDecode_OnlyChecked(t *testing.T) {
	sch, err := SchemaFor[small]()
	if err != nil {
		t.Fatal(err)
	}
	other, err := SchemaFor[small]()
	if err != nil {
		t.Fatal(err)
	}
	dst := reflect.New(reflect.TypeFor[small]())
	if p, ok := accepted(sch, []byte(`{"a":"x"}`)); !ok || sch.Decoder().Decode(p, dst, nil) != nil {
		t.Fatal("a checked payload was refused")
	}
	if p, _ := accepted(other, []byte(`{"a":"x"}`)); sch.Decoder().Decode(p, dst, nil) != ErrUnchecked {
		t.Error("decoded a payload checked with another schema")
	}
	var env Envelope
	if err := Parse([]byte(`{"action":"a","payload":{"a":"x"}}`), Limits{}, nil, &env); err != nil {
		t.Fatal(err)
	}
	if sch.Decoder().Decode(env.Checked(), dst, nil) != ErrUnchecked || env.Payload == nil {
		t.Error("decoded a payload checked with no schema")
	}
	unknown := func([]byte) *Schema { return nil }
	if err := Parse([]byte(`{"action":"a","payload":{"a":"x"}}`), Limits{}, unknown, &env); err != ErrUnknownAction {
		t.Fatal(err)
	}
	if sch.Decoder().Decode(env.Checked(), dst, nil) != ErrUnchecked {
		t.Error("decoded the payload of an unknown action")
	}
	if sch.Decoder().Decode(Checked{}, dst, nil) != ErrUnchecked {
		t.Error("decoded no payload")
	}
	if err := Parse([]byte(`{"action":"a","payload":{"a":"x"}} x`), Limits{}, func([]byte) *Schema { return sch }, &env); err == nil ||
		env.Checked().Bytes() != nil || env.Checked().by != nil {
		t.Errorf("a refused message left a checked payload (%v)", err)
	}
}

// TestCompile_Unsupported: types the decoder leaves to encoding/json as a
// whole have a schema but no decoder (a nil type is an error of Compile).
func TestCompile_Unsupported(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[map[string]int](),
		reflect.TypeFor[any](),
		reflect.TypeFor[json.RawMessage](),
		reflect.TypeFor[time.Time](),
		reflect.TypeFor[[]byte](),
		reflect.TypeFor[[3]int](),
		reflect.TypeFor[quoted](),
		reflect.TypeFor[embedded](),
		reflect.TypeFor[upper](),
		reflect.TypeFor[namedPtr](),
		reflect.TypeFor[withNamed](),
		reflect.TypeFor[[]withNamed](),
	} {
		if s, err := Compile(typ); err != nil || s.Decoder() != nil {
			t.Errorf("Compile(%v): %v, want a schema without a decoder", typ, err)
		}
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[string](), reflect.TypeFor[[]string](), reflect.TypeFor[*small](),
		reflect.TypeFor[opaqueFields](), reflect.TypeFor[struct{}](),
	} {
		if s, err := Compile(typ); err != nil || s.Decoder() == nil {
			t.Errorf("Compile(%v): %v, want a decoder", typ, err)
		}
	}
}

// TestDecode_Arena: with room in the arena, a payload of plain fields and
// strings (escaped or not) decodes without allocating, every string
// points into the arena's spare capacity, and the arena is filled in
// order without reallocation.
func TestDecode_Arena(t *testing.T) {
	sch, err := Compile(reflect.TypeFor[flat]())
	if err != nil {
		t.Fatal(err)
	}
	d := sch.Decoder()
	if !d.UsesArena() {
		t.Fatal("a type with strings does not use the arena")
	}
	in, ok := accepted(sch, []byte(`{"s":"hello \u00e9\n","b":true,"i":-42,"u64":18446744073709551615,"f64":2.5,"named":"n","a-b.c":"x"}`))
	if !ok {
		t.Fatal("refused")
	}
	arena := make([]byte, 0, len(in.Bytes()))
	var v flat
	dst := reflect.ValueOf(&v)
	allocs := testing.AllocsPerRun(100, func() {
		v = flat{}
		if err := d.Decode(in, dst, arena); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Decode with an arena", allocs)
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(arena)))
	for _, s := range []string{v.S, string(v.Named), v.Sym} {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		if p < lo || p+uintptr(len(s)) > lo+uintptr(cap(arena)) {
			t.Errorf("string %q is not in the arena", s)
		}
	}
	if v.S != "hello é\n" || v.I != -42 || v.U64 != 1<<64-1 || !v.B || v.F64 != 2.5 {
		t.Errorf("decoded %+v", v)
	}
	n, err := Compile(reflect.TypeFor[struct{ N, M int }]())
	if err != nil || n.Decoder().UsesArena() {
		t.Errorf("a type without strings: UsesArena %v, %v", n.Decoder().UsesArena(), err)
	}
	m, err := Compile(reflect.TypeFor[struct{ M map[string]string }]())
	if err != nil || m.Decoder().UsesArena() {
		t.Errorf("strings only inside a part encoding/json decodes: UsesArena %v, %v", m.Decoder().UsesArena(), err)
	}
}

// TestDecode_ArenaTooSmall: a string that does not fit has its own
// buffer; earlier strings stay intact.
func TestDecode_ArenaTooSmall(t *testing.T) {
	sch, err := Compile(reflect.TypeFor[small]())
	if err != nil {
		t.Fatal(err)
	}
	in, ok := accepted(sch, []byte(`{"a":"0123456789"}`))
	if !ok {
		t.Fatal("refused")
	}
	var s small
	if err := sch.Decoder().Decode(in, reflect.ValueOf(&s), make([]byte, 0, 4)); err != nil || s.A != "0123456789" {
		t.Fatalf("%+v %v", s, err)
	}
}

// FuzzDecode checks, for several types, that on every payload that Parse
// accepts with the type's schema the compiled decoder and encoding/json
// agree on acceptance and on the decoded value, and that on any input at
// all, checked or not, the decoder does not panic.
func FuzzDecode(f *testing.F) {
	var schemas []*Schema
	for i, s := range subjects {
		sch, err := Compile(s.typ)
		if err != nil {
			f.Fatal(err)
		}
		schemas = append(schemas, sch)
		for _, seed := range s.seeds {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		sch := schemas[int(which)%len(schemas)]
		// Anything: no panic, whatever the result.
		d := sch.Decoder()
		_ = d.decode(data, reflect.New(d.Type()), make([]byte, 0, len(data)))
		equivalent(t, sch, data)
	})
}
