package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// fuzzSeeds adds every table case, and a few more, to the corpus.
func fuzzSeeds(f *testing.F) {
	for _, tc := range parseCases {
		if len(tc.in) > 4096 {
			// Huge seeds make each execution and every minimisation slow
			// (the engine stalls for a minute on them); keep a short form.
			tc.in = tc.in[:64] + tc.in[len(tc.in)-64:]
		}
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{
		`{"action":"publish","payload":{"text":"x","n":1,"f":1.5,"ok":true,"tags":["a"],"meta":{"k":{"a":"b","sub":[{"a":"c"}]}},"items":[{"a":"d"}],"any":{"x":[1]},"raw":[{}],"q":"12","emb":"e"}}`,
		`{"action":"publish","payload":{"Text":"x"}}`,
		`{"action":"publish","payload":{"items":[{"A":"x"}]}}`,
		`{"action":"publish","payload":{"q":12}}`,
		`{"action":"other","payload":{}}`,
		// The error-frame contract (issue 13, finding 8).
		`{"action":"admin","id":"u1","payload":{}}`,
		`{"action":"Echo","id":"u2"}`,
		`{"action":"admin","id":"u3","payload":null}`,
		`{"action":"publish","id":"u4","admin":true}`,
		`{"action":"publish","payload":null,"id":"u5"}`,
	} {
		f.Add([]byte(s))
	}
}

// oracle decides, with encoding/json and simple independent checks, whether
// Parse with default Limits and no schemas must accept data; it returns
// nil for accept and a description of the first problem otherwise.
func oracle(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("invalid utf-8")
	}
	if !json.Valid(data) {
		return errors.New("invalid json")
	}
	if err := loneSurrogates(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type level struct {
		obj     bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []*level
	maxDepth := 0
	prev := int64(0)
	top := map[string]any{}
	var topKey string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("token: %v", err)
		}
		off := dec.InputOffset()
		raw := data[prev:off]
		prev = off
		var cur *level
		if len(stack) > 0 {
			cur = stack[len(stack)-1]
		}
		if cur != nil && cur.obj && cur.wantKey {
			if d, ok := tok.(json.Delim); !ok || d != '}' {
				k := tok.(string)
				if cur.keys[k] {
					return fmt.Errorf("duplicate key %q", k)
				}
				cur.keys[k] = true
				cur.wantKey = false
				if len(stack) == 1 {
					if bytes.IndexByte(raw, '\\') >= 0 {
						return errors.New("escaped top-level key")
					}
					switch k {
					case "action", "channel", "id", "payload":
					default:
						return fmt.Errorf("unknown top-level key %q", k)
					}
					topKey = k
				}
				continue
			}
		}
		if n, ok := tok.(json.Number); ok {
			if _, err := strconv.ParseFloat(string(n), 64); err != nil {
				return errors.New("number out of range")
			}
		}
		if len(stack) == 1 && !(tok == json.Delim('}')) {
			top[topKey] = tok
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == 0 && tok == json.Delim('[') {
				return errors.New("not an object")
			}
			stack = append(stack, &level{obj: tok == json.Delim('{'), keys: map[string]bool{}, wantKey: true})
			maxDepth = max(maxDepth, len(stack))
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			if _, ok := tok.(json.Delim); !ok {
				return errors.New("not an object")
			}
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].wantKey = true
		}
	}
	if maxDepth > DefaultMaxDepth {
		return errors.New("too deep")
	}
	a, ok := top["action"]
	if !ok {
		return errors.New("action missing")
	}
	as, ok := a.(string)
	if !ok || as == "" || len(as) > DefaultMaxActionLen || strings.Trim(as, "abcdefghijklmnopqrstuvwxyz0123456789_.:-") != "" {
		return fmt.Errorf("bad action %#v", a)
	}
	if c, ok := top["channel"]; ok {
		cs, ok := c.(string)
		if !ok || len(cs) > DefaultMaxChannelLen || strings.IndexFunc(cs, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
			return fmt.Errorf("bad channel %#v", c)
		}
	}
	if id, ok := top["id"]; ok {
		s, ok := id.(string)
		if !ok || len(s) > DefaultMaxIDLen || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return fmt.Errorf("bad id %#v", id)
		}
	}
	if p, ok := top["payload"]; ok && p == nil {
		return errors.New("null payload")
	}
	return nil
}

// loneSurrogates finds \u escapes in strings that are not well-formed
// surrogate pairs; data is valid JSON.
func loneSurrogates(data []byte) error {
	in := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !in {
			in = c == '"'
			continue
		}
		switch c {
		case '"':
			in = false
		case '\\':
			if data[i+1] != 'u' {
				i++
				continue
			}
			var r rune
			fmt.Sscanf(string(data[i+2:i+6]), "%04x", &r)
			i += 5
			if !utf16.IsSurrogate(r) {
				continue
			}
			if r >= 0xdc00 || i+6 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
				return errors.New("lone surrogate")
			}
			var r2 rune
			fmt.Sscanf(string(data[i+3:i+7]), "%04x", &r2)
			if r2 < 0xdc00 || r2 > 0xdfff {
				return errors.New("lone surrogate")
			}
			i += 6
		}
	}
	return nil
}

func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var env Envelope
		err := Parse(data, Limits{}, nil, &env)
		want := oracle(data)
		if (err == nil) != (want == nil) {
			t.Fatalf("Parse(%q) = %v, oracle: %v", data, err, want)
		}
		if !json.Valid(data) && err == nil {
			t.Fatalf("encoding/json rejects %q, Parse accepted", data)
		}
		if !utf8.Valid(data) && err != ErrInvalidUTF8 {
			t.Fatalf("Parse(%q) = %v for invalid UTF-8", data, err)
		}
		if err == ErrInvalidJSON && json.Valid(data) {
			t.Fatalf("Parse(%q) = invalid json, encoding/json accepts", data)
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T", err)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("accepted %q, json.Unmarshal: %v", data, err)
		}
		if m["action"] != string(env.Action) {
			t.Fatalf("action %q, encoding/json: %#v", env.Action, m["action"])
		}
		var msg struct {
			Action  string
			Channel *string
			ID      *string
			Payload json.RawMessage
		}
		if err := json.Unmarshal(data, &msg); err != nil {
			t.Fatal(err)
		}
		same := func(name string, got []byte, want *string) {
			if (got == nil) != (want == nil) || (want != nil && string(got) != *want) {
				t.Fatalf("%s = %q, encoding/json: %v", name, got, want)
			}
		}
		same("channel", env.Channel, msg.Channel)
		same("id", env.ID, msg.ID)
		if !bytes.Equal(env.Payload, msg.Payload) {
			t.Fatalf("payload %q, encoding/json: %q", env.Payload, msg.Payload)
		}
	})
}

type fuzzMsg struct {
	Text  string              `json:"text"`
	N     int                 `json:"n,omitempty"`
	F     *float64            `json:"f"`
	OK    bool                `json:"ok"`
	Tags  []string            `json:"tags"`
	Meta  map[string]fuzzItem `json:"meta"`
	Items []fuzzItem          `json:"items"`
	Any   any                 `json:"any"`
	Raw   json.RawMessage     `json:"raw"`
	Q     int                 `json:"q,string"`
	Skip  string              `json:"-"`
	fuzzEmbedded
}

type fuzzEmbedded struct {
	Emb string `json:"emb"`
}

type fuzzItem struct {
	A   string     `json:"a"`
	Sub []fuzzItem `json:"sub"`
}

// want describes, independently of Compile, what fuzzMsg accepts.
type want struct {
	kind   string // "any", "object", "map", "array", "string", "number", "bool"
	fields map[string]*want
	elem   *want
}

func fuzzMsgShape() *want {
	str, num, boolean, anything := &want{kind: "string"}, &want{kind: "number"}, &want{kind: "bool"}, &want{kind: "any"}
	item := &want{kind: "object", fields: map[string]*want{"a": str}}
	item.fields["sub"] = &want{kind: "array", elem: item}
	return &want{kind: "object", fields: map[string]*want{
		"text": str, "n": num, "f": num, "ok": boolean,
		"tags":  {kind: "array", elem: str},
		"meta":  {kind: "map", elem: item},
		"items": {kind: "array", elem: item},
		"any":   anything, "raw": anything, "q": str, "emb": str,
	}}
}

// fits checks a value decoded by encoding/json (UseNumber) against w.
func fits(w *want, v any) error {
	if v == nil || w.kind == "any" {
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		switch w.kind {
		case "object":
			for k, x := range v {
				f, ok := w.fields[k]
				if !ok {
					return fmt.Errorf("unknown field %q", k)
				}
				if err := fits(f, x); err != nil {
					return err
				}
			}
			return nil
		case "map":
			for _, x := range v {
				if err := fits(w.elem, x); err != nil {
					return err
				}
			}
			return nil
		}
	case []any:
		if w.kind == "array" {
			for _, x := range v {
				if err := fits(w.elem, x); err != nil {
					return err
				}
			}
			return nil
		}
	case string:
		if w.kind == "string" {
			return nil
		}
	case json.Number:
		if w.kind == "number" {
			return nil
		}
	case bool:
		if w.kind == "bool" {
			return nil
		}
	}
	return fmt.Errorf("wrong type %T for %s", v, w.kind)
}

func FuzzParseWithSchema(f *testing.F) {
	fuzzSeeds(f)
	sch, err := SchemaFor[fuzzMsg]()
	if err != nil {
		f.Fatal(err)
	}
	schemas := func(a []byte) *Schema {
		if string(a) == "publish" {
			return sch
		}
		return nil
	}
	shape := fuzzMsgShape()
	f.Fuzz(func(t *testing.T, data []byte) {
		var plain, env Envelope
		plainErr := Parse(data, Limits{}, nil, &plain)
		err := Parse(data, Limits{}, schemas, &env)
		if plainErr != nil {
			// A schema only adds refusals, and never hides invalid input
			// behind "unknown action".
			if err == nil || err == ErrUnknownAction {
				t.Fatalf("Parse(%q): %v without schemas, %v with", data, plainErr, err)
			}
			return
		}
		if string(plain.Action) != "publish" {
			if err != ErrUnknownAction {
				t.Fatalf("Parse(%q) = %v, want unknown action", data, err)
			}
			if string(env.Action) != string(plain.Action) || string(env.ID) != string(plain.ID) {
				t.Fatalf("unknown action: env not filled: %+v", env)
			}
			return
		}
		var expect error
		if plain.Payload != nil {
			dec := json.NewDecoder(bytes.NewReader(plain.Payload))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			expect = fits(shape, v)
		}
		if (err == nil) != (expect == nil) {
			t.Fatalf("Parse(%q) = %v, independent check: %v", data, err, expect)
		}
		if err != nil {
			if err != ErrUnknownField && err != ErrWrongType {
				t.Fatalf("Parse(%q) = %v, want unknown field or wrong type", data, err)
			}
			return
		}
		if env.Payload == nil {
			return
		}
		// The payload, as checked with the schema, is what a decoder of
		// the schema takes.
		if c := env.Checked(); c.by != sch || !bytes.Equal(c.Bytes(), env.Payload) {
			t.Fatalf("Parse(%q): checked payload %q by %p, want %q by %p", data, c.Bytes(), c.by, env.Payload, sch)
		}
		if plain.Checked().by != nil {
			t.Fatalf("Parse(%q) without schemas returned a checked payload", data)
		}
		// Accepted: every key is an exact field name, so encoding/json
		// with DisallowUnknownFields can only fail on values.
		var m fuzzMsg
		dec := json.NewDecoder(bytes.NewReader(env.Payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil && strings.Contains(err.Error(), "unknown field") {
			t.Fatalf("accepted %q, encoding/json: %v", env.Payload, err)
		}
		// Sanity check of the test itself.
		if reflect.TypeFor[fuzzMsg]().NumField() != 12 {
			t.Fatal("fuzzMsg changed: update fuzzMsgShape")
		}
	})
}
