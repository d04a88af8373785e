package tagcheck

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-playground/validator/v10"
)

// newValidator is validator/v10 configured as wssec configures it.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(FieldName)
	return v
}

// validatorSays runs validator/v10 on ptr (a *T) and returns the first
// failure as wssec reports it, ok, or panicked.
func validatorSays(v *validator.Validate, ptr any) (f Failure, ok, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	err := v.Struct(ptr)
	if err == nil {
		return Failure{}, true, false
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) || len(ves) == 0 {
		panic(err)
	}
	return Failure{Field: ves[0].Field(), Tag: ves[0].Tag()}, false, false
}

// The types the comparison runs on: every compiled tag on every kind.
type (
	strs struct {
		Req    string  `json:"req" validate:"required"`
		Min    string  `json:"min" validate:"min=2"`
		Max    string  `json:"max" validate:"max=3"`
		Len    string  `json:"len" validate:"len=2"`
		Gt     string  `json:"gt" validate:"gt=1"`
		Gte    string  `json:"gte" validate:"gte=1"`
		Lt     string  `json:"lt" validate:"lt=4"`
		Lte    string  `json:"lte" validate:"lte=0x4"`
		Oneof  string  `json:"oneof" validate:"oneof=red green  blue"`
		Alnum  string  `json:"alnum" validate:"alphanum"`
		Opt    string  `json:"opt" validate:"omitempty,min=2,max=4"`
		PtrOpt *string `json:"ptr_opt" validate:"omitempty,max=2"`
		PtrMax *string `json:"ptr_max" validate:"max=2"`
		PtrReq *string `json:"ptr_req" validate:"required,min=1"`
		Plain  string  `json:"plain"`
		Hidden string  `json:"-" validate:"max=1"`
		Skip   string  `json:"skip" validate:"-"`
		priv   string  `validate:"required"`
	}
	nums struct {
		I8    int8     `json:"i8" validate:"min=-3,max=3"`
		I16   int16    `json:"i16" validate:"gt=-2,lt=300"`
		I32   int32    `json:"i32" validate:"oneof=1 2 -3 04"`
		I     int      `json:"i" validate:"required,len=7"`
		I64   int64    `json:"i64" validate:"omitempty,gte=10,lte=20"`
		U8    uint8    `json:"u8" validate:"max=200"`
		U16   uint16   `json:"u16" validate:"oneof=5 6"`
		U     uint     `json:"u" validate:"omitempty,gt=1,lt=9"`
		U64   uint64   `json:"u64" validate:"required"`
		F32   float32  `json:"f32" validate:"gt=0.1,lte=1.5"`
		F64   float64  `json:"f64" validate:"required,min=-1e3,max=1e3"`
		FLen  float64  `json:"flen" validate:"omitempty,len=2.5"`
		B     bool     `json:"b" validate:"required"`
		PI    *int     `json:"pi" validate:"omitempty,min=5"`
		PU    *uint32  `json:"pu" validate:"required,max=5"`
		PF    *float32 `json:"pf" validate:"lt=3"`
		PB    *bool    `json:"pb" validate:"required"`
		Named level    `json:"named" validate:"oneof=1 2"`
	}
	item struct {
		SKU string `json:"sku" validate:"required,alphanum,max=12"`
		Qty int    `json:"qty" validate:"min=1,max=99"`
	}
	inner struct {
		Name string `json:"name" validate:"required"`
	}
	colls struct {
		Items  []item            `json:"items" validate:"required,min=1,max=3,dive"`
		PItems []*item           `json:"pitems" validate:"omitempty,dive"`
		Tags   []string          `json:"tags" validate:"max=4,dive,required,max=3"`
		PTags  []*string         `json:"ptags" validate:"dive,omitempty,oneof=a b"`
		Bytes  []byte            `json:"bytes" validate:"omitempty,len=2"`
		Map    map[string]int    `json:"map" validate:"required,gt=0,lte=2"`
		OMap   map[string]bool   `json:"omap" validate:"omitempty,min=2"`
		In     inner             `json:"in"`
		PIn    *inner            `json:"pin"`
		Loose  []inner           `json:"loose"`
		Raw    json.RawMessage   `json:"raw"`
		When   time.Time         `json:"when"`
		Nested struct{ X inner } `json:"nested"`
	}
	// The tests' and the benchmark's payloads.
	publish struct {
		Text string `json:"text" validate:"required,max=200"`
	}
	order struct {
		Items []item          `json:"items" validate:"required,min=1,max=5,dive"`
		Note  *string         `json:"note,omitempty" validate:"omitempty,max=20"`
		Meta  map[string]int  `json:"meta,omitempty"`
		Raw   json.RawMessage `json:"raw,omitempty"`
	}
)

type level int

var compared = []reflect.Type{
	reflect.TypeFor[strs](), reflect.TypeFor[nums](), reflect.TypeFor[colls](),
	reflect.TypeFor[publish](), reflect.TypeFor[order](),
}

// compareCases are the table of TestCompiled_MatchesValidator and the
// seeds of FuzzCompare: a type and a JSON value of it, with the failure
// both must report ("" when it passes).
var compareCases = []struct {
	typ        reflect.Type
	json, want string
}{
	{compared[0], `{"req":"x","min":"ab","max":"abc","len":"ab","gt":"ab","gte":"a","lt":"abc","lte":"abcd","oneof":"red","alnum":"A9","ptr_max":"ab","ptr_req":"x"}`, ""},
	{compared[0], `{}`, "req/required"},
	{compared[0], `{"req":"x","min":"é"}`, "min/min"},
	{compared[0], `{"req":"x","min":"éé","max":"éééé"}`, "max/max"},
	{compared[0], `{"req":"x","min":"éé","max":"ééé","len":"ééé"}`, "len/len"},
	{compared[0], `{"req":"x","min":"ab","max":"ab","len":"ab","gt":"a"}`, "gt/gt"},
	{compared[0], `{"req":"x","min":"ab","max":"ab","len":"ab","gt":"ab","gte":"a","lt":"abcd"}`, "lt/lt"},
	{compared[0], `{"req":"x","min":"ab","max":"ab","len":"ab","gt":"ab","gte":"a","lt":"a","lte":"abcde"}`, "lte/lte"},
	{compared[0], `{"req":"x","min":"ab","max":"ab","len":"ab","gt":"ab","gte":"a","lt":"a","oneof":"Red"}`, "oneof/oneof"},
	{compared[0], `{"req":"x","min":"ab","max":"ab","len":"ab","gt":"ab","gte":"a","lt":"a","oneof":"blue","alnum":"a-b"}`, "alnum/alphanum"},
	{compared[0], `{"req":"x","min":"ab","max":"ab","len":"ab","gt":"ab","gte":"a","lt":"a","oneof":"blue","alnum":"ab","opt":"x"}`, "opt/min"},
	{compared[0], `{"req":"x","min":"ab","max":"ab","len":"ab","gt":"ab","gte":"a","lt":"a","oneof":"blue","alnum":"ab","ptr_opt":"abc"}`, "ptr_opt/max"},
	{compared[0], `{"req":"x","min":"ab","max":"ab","len":"ab","gt":"ab","gte":"a","lt":"a","oneof":"blue","alnum":"ab","ptr_max":""}`, "ptr_req/required"},
	{compared[0], `{"req":"x","min":"ab","max":"ab","len":"ab","gt":"ab","gte":"a","lt":"a","oneof":"blue","alnum":"ab","ptr_max":"","ptr_req":""}`, "ptr_req/min"},
	{compared[1], `{"i8":3,"i16":299,"i32":-3,"i":7,"u8":200,"u16":6,"u64":1,"f32":1.5,"f64":-1000,"b":true,"pu":5,"pf":2.9,"pb":false,"named":2}`, ""},
	{compared[1], `{"i8":-4}`, "i8/min"},
	{compared[1], `{"i16":300}`, "i16/lt"},
	{compared[1], `{"i32":4}`, "i32/oneof"},
	{compared[1], `{"i32":1}`, "i/required"},
	{compared[1], `{"i32":1,"i":7,"i64":9}`, "i64/gte"},
	{compared[1], `{"i32":1,"i":7,"u8":201}`, "u8/max"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u":1}`, "u/gt"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u64":1,"f32":0.1}`, "f32/gt"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u64":1,"f32":0.2,"f64":-0}`, "f64/required"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u64":1,"f32":0.2,"f64":1,"flen":2.4}`, "flen/len"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u64":1,"f32":0.2,"f64":1}`, "b/required"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u64":1,"f32":0.2,"f64":1,"b":true,"pi":4}`, "pi/min"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u64":1,"f32":0.2,"f64":1,"b":true}`, "pu/required"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u64":1,"f32":0.2,"f64":1,"b":true,"pu":6}`, "pu/max"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u64":1,"f32":0.2,"f64":1,"b":true,"pu":1}`, "pf/lt"},
	{compared[1], `{"i32":1,"i":7,"u16":5,"u64":1,"f32":0.2,"f64":1,"b":true,"pu":1,"pf":1,"pb":true,"named":3}`, "named/oneof"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"tags":["abc"],"map":{"a":1},"in":{"name":"n"},"nested":{"X":{"name":"n"}}}`, ""},
	{compared[2], `{"items":[],"map":{"a":1},"in":{"name":"n"}}`, "items/min"},
	{compared[2], `{"items":[{"sku":"A1","qty":2},{"sku":"A-1","qty":2}],"map":{"a":1},"in":{"name":"n"}}`, "sku/alphanum"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"pitems":[null,{"sku":"B","qty":0}],"map":{"a":1},"in":{"name":"n"}}`, "qty/min"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"tags":["a",""],"map":{"a":1},"in":{"name":"n"}}`, "tags[1]/required"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"tags":["a","abcd"],"map":{"a":1},"in":{"name":"n"}}`, "tags[1]/max"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"ptags":[null,"c"],"map":{"a":1},"in":{"name":"n"}}`, "ptags[1]/oneof"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"bytes":"YWJj","map":{"a":1},"in":{"name":"n"}}`, "bytes/len"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"map":{}}`, "map/gt"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"map":{"a":1},"omap":{"x":true}}`, "omap/min"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"map":{"a":1}}`, "name/required"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"map":{"a":1},"in":{"name":"n"},"pin":{}}`, "name/required"},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"map":{"a":1},"in":{"name":"n"},"loose":[{}],"nested":{"X":{"name":"n"}}}`, ""},
	{compared[2], `{"items":[{"sku":"A1","qty":2}],"map":{"a":1},"in":{"name":"n"}}`, "name/required"},
	{compared[3], `{"text":"hello, 64 byte world!"}`, ""},
	{compared[3], `{"text":""}`, "text/required"},
	{compared[3], `{"text":"` + strings.Repeat("é", 201) + `"}`, "text/max"},
	{compared[4], `{"items":[{"sku":"A1","qty":2}],"note":"hi","meta":{"a":1},"raw":[1,{"x":2}]}`, ""},
	{compared[4], `{"items":[{"sku":"A1","qty":0}]}`, "qty/min"},
	{compared[4], `{"items":[{"sku":"a","qty":1}],"note":"` + strings.Repeat("x", 21) + `"}`, "note/max"},
}

func failure(f Failure, ok bool) string {
	if ok {
		return ""
	}
	return f.Field + "/" + f.Tag
}

func TestCompiled_MatchesValidator(t *testing.T) {
	v := newValidator()
	plans := map[reflect.Type]*Plan{}
	for _, typ := range compared {
		p, err := Compile(typ)
		if err != nil {
			t.Fatalf("Compile(%v): %v", typ, err)
		}
		plans[typ] = p
	}
	for i, tc := range compareCases {
		t.Run(fmt.Sprintf("%d_%s", i, tc.typ.Name()), func(t *testing.T) {
			ptr := reflect.New(tc.typ)
			if err := json.Unmarshal([]byte(tc.json), ptr.Interface()); err != nil {
				t.Fatal(err)
			}
			got := failure(plans[tc.typ].Check(ptr.UnsafePointer()))
			vf, vok, panicked := validatorSays(v, ptr.Interface())
			if panicked {
				t.Fatal("validator panicked")
			}
			if want := failure(vf, vok); got != want || got != tc.want {
				t.Fatalf("compiled %q, validator %q, table %q", got, want, tc.want)
			}
		})
	}
}

// TestCompile_RefusesWhatItDoesNotReproduce: every type with a tag or a
// shape the compiled checks do not reproduce stays with validator.
func TestCompile_RefusesWhatItDoesNotReproduce(t *testing.T) {
	type node struct {
		Name string `json:"name" validate:"required"`
		Next *node  `json:"next"`
	}
	type embedded struct {
		inner
		X string `validate:"required"`
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[struct {
			E string `validate:"email"`
		}](),
		reflect.TypeFor[struct {
			E string `validate:"min=1|max=0"`
		}](),
		reflect.TypeFor[struct {
			E string `validate:"oneof='a b' c"`
		}](),
		reflect.TypeFor[struct {
			E string `validate:"max=0x2C"`
		}](),
		reflect.TypeFor[struct {
			E string `validate:"max=abc"`
		}](),
		reflect.TypeFor[struct {
			E string `validate:"max"`
		}](),
		reflect.TypeFor[struct {
			E string `validate:"max=3,omitempty"`
		}](),
		reflect.TypeFor[struct {
			E any `json:"e"`
		}](),
		reflect.TypeFor[struct {
			D time.Duration `validate:"max=1s"`
		}](),
		reflect.TypeFor[struct {
			In inner `validate:"required"`
		}](),
		reflect.TypeFor[struct {
			M map[string]string `validate:"dive,max=2"`
		}](),
		reflect.TypeFor[struct {
			S [][]string `validate:"dive,dive,max=2"`
		}](),
		reflect.TypeFor[struct {
			F float64 `validate:"oneof=1 2"`
		}](),
		reflect.TypeFor[struct {
			B bool `validate:"min=1"`
		}](),
		reflect.TypeFor[struct {
			N int `validate:"alphanum"`
		}](),
		reflect.TypeFor[struct {
			P **string `validate:"required"`
		}](),
		reflect.TypeFor[struct {
			A [2]int `validate:"required"`
		}](),
		reflect.TypeFor[struct {
			T time.Time `validate:"required"`
		}](),
		reflect.TypeFor[node](),
		reflect.TypeFor[embedded](),
	} {
		if _, err := Compile(typ); err == nil {
			t.Errorf("Compile(%v) compiled it; validator must check it", typ)
		}
	}
}

// fill sets v from data (as long as it lasts): every value a field can
// hold, NaN, -0, invalid UTF-8 and nil pointers included.
func fill(v reflect.Value, data *[]byte) {
	next := func(n int) []byte {
		b := make([]byte, n)
		k := copy(b, *data)
		*data = (*data)[k:]
		return b
	}
	switch v.Kind() {
	case reflect.String:
		n := int(next(1)[0] % 12)
		v.SetString(string(next(n)))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b := next(1)[0]
		if b&0x80 != 0 { // a small value, near the bounds under test
			v.SetInt(int64(int8(b<<1)) / 8)
		} else {
			v.SetInt(int64(binary.LittleEndian.Uint64(next(8))))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b := next(1)[0]
		if b&0x80 != 0 {
			v.SetUint(uint64(b & 0x1f))
		} else {
			v.SetUint(binary.LittleEndian.Uint64(next(8)))
		}
	case reflect.Float32, reflect.Float64:
		switch b := next(1)[0]; b % 4 {
		case 0:
			v.SetFloat(float64(int8(b)) / 16)
		case 1:
			v.SetFloat(math.Copysign(0, -1))
		default:
			v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(next(8))))
		}
	case reflect.Bool:
		v.SetBool(next(1)[0]&1 == 1)
	case reflect.Pointer:
		if next(1)[0]&1 == 1 {
			p := reflect.New(v.Type().Elem())
			fill(p.Elem(), data)
			v.Set(p)
		}
	case reflect.Slice:
		b := next(1)[0]
		if b&0x80 == 0 {
			n := int(b % 6)
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := range n {
				fill(s.Index(i), data)
			}
			v.Set(s)
		}
	case reflect.Map:
		b := next(1)[0]
		if b&0x80 == 0 {
			m := reflect.MakeMap(v.Type())
			for range int(b % 4) {
				k := reflect.New(v.Type().Key()).Elem()
				e := reflect.New(v.Type().Elem()).Elem()
				fill(k, data)
				fill(e, data)
				m.SetMapIndex(k, e)
			}
			v.Set(m)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), data)
			}
		}
	}
}

// FuzzCompare holds the compiled checks to validator/v10's answers: the
// same first failure (field and tag) or the same pass, on values decoded
// from JSON (the table's seeds) or filled from raw bytes.
func FuzzCompare(f *testing.F) {
	v := newValidator()
	var plans []*Plan
	for _, typ := range compared {
		p, err := Compile(typ)
		if err != nil {
			f.Fatalf("Compile(%v): %v", typ, err)
		}
		plans = append(plans, p)
	}
	for _, tc := range compareCases {
		for i, typ := range compared {
			if typ == tc.typ {
				f.Add(uint8(i), []byte(tc.json))
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		i := int(which) % len(compared)
		ptr := reflect.New(compared[i])
		if json.Unmarshal(data, ptr.Interface()) != nil {
			ptr = reflect.New(compared[i])
			fill(ptr.Elem(), &data)
		}
		vf, vok, panicked := validatorSays(v, ptr.Interface())
		if panicked {
			t.Fatalf("validator panicked on %#v", ptr.Elem().Interface())
		}
		got, want := failure(plans[i].Check(ptr.UnsafePointer())), failure(vf, vok)
		if got != want {
			t.Fatalf("compiled %q, validator %q, on %#v", got, want, ptr.Elem().Interface())
		}
	})
}
