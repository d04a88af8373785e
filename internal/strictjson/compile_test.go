package strictjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// describe renders a schema node, e.g. {a:string,b:[number]}, struct
// members sorted by name; "*" is any and "^" a node already being printed
// (recursion). Pointers are transparent, as to the checker.
func describe(n *node, seen map[*node]bool) string {
	n = n.deref()
	if n == nil || n.kind == kAny {
		return "*"
	}
	if seen[n] {
		return "^"
	}
	switch n.kind {
	case kString:
		return "string"
	case kNumber:
		return "number"
	case kBool:
		return "bool"
	}
	seen[n] = true
	defer delete(seen, n)
	switch n.kind {
	case kArray:
		return "[" + describe(n.elem, seen) + "]"
	case kMap:
		return "map[" + describe(n.elem, seen) + "]"
	}
	var parts []string
	for _, f := range n.fields {
		parts = append(parts, f.name+":"+describe(f.node, seen))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

type (
	tagged struct {
		A        string `json:"a"`
		B        int    `json:"b,omitempty"`
		C        bool   `json:",omitempty"`
		Dash     string `json:"-"`
		DashName string `json:"-,"`
		Bad      string `json:"bad\"name"`
		Odd      string `json:"odd-name.x"`
		hidden   string
		Q        int     `json:"q,string"`
		QP       *bool   `json:"qp,string"`
		QS       []int   `json:"qs,string"` // ,string does not apply to slices
		F        float64 `json:"f"`
		U        uint8   `json:"u"`
	}
	inner struct {
		X int    `json:"x"`
		Y string `json:"y"`
	}
	deeper struct {
		X string `json:"x"`
		Z string `json:"z"`
	}
	Mid struct {
		deeper
		W int `json:"w"`
	}
	embedding struct {
		inner        // unexported embedded struct: fields promoted
		*Mid         // pointer, deeper: x hidden, z promoted
		Named inner  `json:"named"`
		Y     string `json:"y"` // shadows inner.Y
	}
	taggedWins struct {
		A1
		A2
	}
	A1 struct {
		Name string `json:"Name"`
	}
	A2 struct {
		Name string
	}
	ambiguous struct { // two untagged Name at depth 1
		A2
		B2
	}
	B2 struct {
		Name string
	}
	twiceA struct{ Common }
	twiceB struct{ Common }
	Common struct{ V int }
	twice  struct {
		twiceA
		twiceB
	}
	twiceShadowed struct {
		twiceA
		twiceB
		V string
	}
	tree struct {
		Value    int              `json:"value"`
		Children []tree           `json:"children"`
		Parent   *tree            `json:"parent"`
		Index    map[string]*tree `json:"index"`
	}
	selfEmbed struct {
		*selfEmbed
		N int
	}
	myString  string
	embedsNon struct {
		myString
		MyInt
	}
	MyInt   int
	withAny struct {
		T   time.Time        `json:"t"`
		R   json.RawMessage  `json:"r"`
		N   json.Number      `json:"n"`
		B   []byte           `json:"b"`
		Arr [2]byte          `json:"arr"`
		I   any              `json:"i"`
		S   interface{ M() } `json:"s"`
		U   custom           `json:"u"`
		P   *custom          `json:"p"`
		Txt textual          `json:"txt"`
	}
	custom  struct{ Secret string }
	textual struct{ v string }
	mapKeys struct {
		I map[int]string     `json:"i"`
		T map[textual]string `json:"t"`
	}
	recPtr *recPtr
)

func (*custom) UnmarshalJSON([]byte) error    { return nil }
func (*textual) UnmarshalText(b []byte) error { return nil }
func (textual) MarshalText() ([]byte, error)  { return nil, nil }

func TestCompile(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"string", reflect.TypeFor[string](), "string"},
		{"pointer to int", reflect.TypeFor[*int](), "number"},
		{"any", reflect.TypeFor[any](), "*"},
		{"slice of maps", reflect.TypeFor[[]map[string]bool](), "[map[bool]]"},
		{"tags", reflect.TypeFor[tagged](), "{-:string,Bad:string,C:bool,a:string,b:number,f:number,odd-name.x:string,q:string,qp:string,qs:[number],u:number}"},
		{"embedding", reflect.TypeFor[embedding](), "{named:{x:number,y:string},w:number,x:number,y:string,z:string}"},
		{"tagged wins at equal depth", reflect.TypeFor[taggedWins](), "{Name:string}"},
		{"shadowed duplicate embedding", reflect.TypeFor[twiceShadowed](), "{V:string}"},
		{"recursive", reflect.TypeFor[tree](), "{children:[^],index:map[^],parent:^,value:number}"},
		{"self embedding", reflect.TypeFor[selfEmbed](), "{N:number}"},
		{"embedded non-structs", reflect.TypeFor[embedsNon](), "{MyInt:number}"},
		{"types that decode themselves", reflect.TypeFor[withAny](), "{arr:[number],b:*,i:*,n:*,p:*,r:*,s:*,t:*,txt:*,u:*}"},
		{"map keys", reflect.TypeFor[mapKeys](), "{i:map[string],t:map[string]}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Compile(tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(s.root, map[*node]bool{}); got != tc.want {
				t.Fatalf("schema\n got %s\nwant %s", got, tc.want)
			}
			if s.root == nil || s.root.kind != kStruct {
				return
			}
			// Cross-check with encoding/json: every schema name is a field
			// it decodes, exactly (DisallowUnknownFields would refuse a
			// name it drops).
			for _, f := range s.root.fields {
				v := reflect.New(tc.typ)
				dec := json.NewDecoder(strings.NewReader(`{"` + f.name + `":null}`))
				dec.DisallowUnknownFields()
				if err := dec.Decode(v.Interface()); err != nil {
					t.Errorf("encoding/json refuses schema name %q: %v", f.name, err)
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"nil", nil, "nil type"},
		{"ambiguous", reflect.TypeFor[ambiguous](), `"Name" is ambiguous (A2.Name and B2.Name)`},
		{"embedded twice", reflect.TypeFor[twice](), `"V" is ambiguous`},
		{"chan", reflect.TypeFor[chan int](), "unsupported type"},
		{"func field", reflect.TypeFor[struct{ F func() }](), "field F: unsupported type func()"},
		{"complex", reflect.TypeFor[[]complex128](), "unsupported type"},
		{"bad map key", reflect.TypeFor[map[[2]int]string](), "unsupported map key"},
		{"recursive pointer", reflect.TypeFor[recPtr](), "recursive pointer"},
		{"embedded pointer to unexported struct", reflect.TypeFor[struct{ *inner }](), "embedded pointer to unexported struct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Compile(tc.typ)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile = %v, %v; want error containing %q", s, err, tc.want)
			}
		})
	}
	// The ambiguity is real: encoding/json silently drops the name.
	var v ambiguous
	dec := json.NewDecoder(strings.NewReader(`{"Name":"x"}`))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err == nil {
		t.Fatal("encoding/json decoded an ambiguous name; the premise changed")
	}
}

// TestSchemaMatchesEncodingJSON checks, for payloads Parse accepts, that
// encoding/json decodes them without dropping anything: re-encoding the
// decoded value and decoding both to generic values gives the same keys.
func TestSchemaMatchesEncodingJSON(t *testing.T) {
	s, err := SchemaFor[embedding]()
	if err != nil {
		t.Fatal(err)
	}
	schemas := func([]byte) *Schema { return s }
	for _, p := range []string{
		`{"x":1,"y":"a","z":"b","w":2,"named":{"x":3,"y":"c"}}`,
		`{"y":"only"}`,
		`{}`,
	} {
		var env Envelope
		if err := Parse([]byte(`{"action":"e","payload":`+p+`}`), Limits{}, schemas, &env); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var v embedding
		dec := json.NewDecoder(bytes.NewReader(env.Payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out, _ := json.Marshal(v)
		var in, back map[string]any
		json.Unmarshal(env.Payload, &in)
		json.Unmarshal(out, &back)
		for k := range in {
			if _, ok := back[k]; !ok {
				t.Errorf("%s: key %q lost by encoding/json", p, k)
			}
		}
	}
	for _, p := range []string{`{"X":1}`, `{"deeper":{}}`, `{"inner":{}}`, `{"Mid":{}}`, `{"Named":{}}`} {
		var env Envelope
		if err := Parse([]byte(`{"action":"e","payload":`+p+`}`), Limits{}, schemas, &env); err != ErrUnknownField {
			t.Errorf("%s: %v, want unknown field", p, err)
		}
	}
}

// TestSchemaFieldsInOrder: struct members keep their declaration order
// (members usually arrive in it, and the decoder looks there first), and
// a flat struct's members carry their offsets.
func TestSchemaFieldsInOrder(t *testing.T) {
	s, err := SchemaFor[tagged]()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range s.root.fields {
		names = append(names, f.name)
	}
	if got, want := strings.Join(names, " "), "a b C - Bad odd-name.x q qp qs f u"; got != want {
		t.Fatalf("fields %s, want %s", got, want)
	}
	s, err = SchemaFor[tree]()
	if err != nil {
		t.Fatal(err)
	}
	rt := reflect.TypeFor[tree]()
	for i, f := range s.root.fields {
		if sf := rt.Field(i); f.off != sf.Offset {
			t.Errorf("field %s at offset %d, want %d", f.name, f.off, sf.Offset)
		}
	}
	if s.root.op != opStruct {
		t.Errorf("tree is decoded by encoding/json")
	}
}

func TestZeroSchemaAcceptsAnything(t *testing.T) {
	schemas := func([]byte) *Schema { return &Schema{} }
	for _, p := range []string{`1`, `"s"`, `[{"A":1}]`, `{"Any":{"thing":true}}`} {
		var env Envelope
		if err := Parse([]byte(`{"action":"x","payload":`+p+`}`), Limits{}, schemas, &env); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
