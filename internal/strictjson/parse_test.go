package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Payload types registered in the tests.
type publishPayload struct {
	Text  string   `json:"text"`
	Tags  []string `json:"tags,omitempty"`
	Meta  *meta    `json:"meta,omitempty"`
	Count int      `json:"count"`
}

type meta struct {
	Lang  string          `json:"lang"`
	Extra map[string]item `json:"extra"`
}

type item struct {
	OK bool `json:"ok"`
}

// testSchemas is the registry used by the table tests: publish, ping (no
// payload shape), any (anything), str (a string), list ([]item).
func testSchemas(t testing.TB) func([]byte) *Schema {
	t.Helper()
	must := func(s *Schema, err error) *Schema {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	publish := must(SchemaFor[publishPayload]())
	anyS := must(SchemaFor[any]())
	str := must(SchemaFor[string]())
	list := must(SchemaFor[[]item]())
	ping := &Schema{}
	return func(action []byte) *Schema {
		switch string(action) {
		case "publish":
			return publish
		case "ping":
			return ping
		case "any", "a-z0-9_.:-":
			return anyS
		case "str":
			return str
		case "list":
			return list
		}
		return nil
	}
}

const absent = "<absent>"

type parseCase struct {
	name    string
	in      string
	lim     Limits
	noReg   bool // parse with a nil schemas function
	want    error
	action  string // checked when want is nil or ErrUnknownAction
	channel string // absent: nil
	id      string
	payload string
}

func ok(name, in, action, channel, id, payload string) parseCase {
	return parseCase{name: name, in: in, action: action, channel: channel, id: id, payload: payload}
}

func bad(name, in string, want error) parseCase {
	return parseCase{name: name, in: in, want: want}
}

const typical = `{"action":"publish","channel":"tenant:acme:room1","id":"42","payload":{"text":"hello"}}`

func deep(n int) string { // n nested arrays around 1
	return strings.Repeat("[", n) + "1" + strings.Repeat("]", n)
}

func manyKeys(n int, dup bool) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	if dup {
		b.WriteString(`,"k3":0`)
	}
	b.WriteString("}")
	return b.String()
}

var parseCases = []parseCase{
	// Accepted.
	ok("typical", typical, "publish", "tenant:acme:room1", "42", `{"text":"hello"}`),
	ok("action only", `{"action":"ping"}`, "ping", absent, absent, absent),
	ok("whitespace", " \t\r\n{ \"action\" : \"ping\" ,\n\"id\":\"1\" } \n\t\r", "ping", absent, "1", absent),
	ok("payload before action", `{"payload":{"text":"x","count":2},"action":"publish"}`, "publish", absent, absent, `{"text":"x","count":2}`),
	ok("escapes in payload", `{"action":"publish","payload":{"text":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"}}`,
		"publish", absent, absent, `{"text":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"}`),
	ok("raw unicode", `{"action":"publish","id":"héllo 世界 😀","payload":{"text":"héllo 世界 😀"}}`,
		"publish", absent, "héllo 世界 😀", `{"text":"héllo 世界 😀"}`),
	ok("escaped action", `{"action":"\u0070ing"}`, "ping", absent, absent, absent),
	ok("escaped channel and id", `{"action":"ping","channel":"a\/b\u003a","id":"x\"y\u00e9\ud83d\ude00"}`,
		"ping", "a/b:", `x"yé😀`, absent),
	ok("empty channel and id", `{"action":"ping","channel":"","id":""}`, "ping", "", "", absent),
	ok("nested within depth", `{"action":"any","payload":{"a":[1,{"b":[true,false,null,{}]},[]],"c":{"d":{"e":"f"}}}}`,
		"any", absent, absent, `{"a":[1,{"b":[true,false,null,{}]},[]],"c":{"d":{"e":"f"}}}`),
	ok("numbers", `{"action":"any","payload":[-0.5e+10,0,-0,1E5,1.0e-3,123456789,2e0,0.25E-1]}`,
		"any", absent, absent, `[-0.5e+10,0,-0,1E5,1.0e-3,123456789,2e0,0.25E-1]`),
	ok("empty payload object", `{"action":"publish","payload":{}}`, "publish", absent, absent, `{}`),
	ok("payload array", `{"action":"list","payload":[{"ok":true},{"ok":null},{}]}`, "list", absent, absent, `[{"ok":true},{"ok":null},{}]`),
	ok("empty payload array", `{"action":"list","payload":[]}`, "list", absent, absent, `[]`),
	ok("payload string", `{"action":"str","payload":"hi"}`, "str", absent, absent, `"hi"`),
	ok("payload scalars for any", `{"action":"any","payload":  -12.5  }`, "any", absent, absent, `-12.5`),
	ok("null values in payload", `{"action":"publish","payload":{"text":null,"tags":null,"meta":null,"count":null}}`,
		"publish", absent, absent, `{"text":null,"tags":null,"meta":null,"count":null}`),
	ok("full schema", `{"action":"publish","payload":{"text":"t","tags":["a","b"],"meta":{"lang":"en","extra":{"X":{"ok":false},"y":{}}},"count":3}}`,
		"publish", absent, absent, `{"text":"t","tags":["a","b"],"meta":{"lang":"en","extra":{"X":{"ok":false},"y":{}}},"count":3}`),
	ok("all action characters", `{"action":"a-z0-9_.:-"}`, "a-z0-9_.:-", absent, absent, absent),
	ok("many keys", `{"action":"any","payload":`+manyKeys(200, false)+`}`, "any", absent, absent, manyKeys(200, false)),
	ok("same key in sibling objects", `{"action":"any","payload":[{"a":1},{"a":2},{"a":{"a":3}}]}`, "any", absent, absent, `[{"a":1},{"a":2},{"a":{"a":3}}]`),
	ok("ping with any payload", `{"action":"ping","payload":{"Whatever":[1]}}`, "ping", absent, absent, `{"Whatever":[1]}`),
	ok("id with symbols", `{"action":"ping","id":"req #1 (retry) ✓"}`, "ping", absent, "req #1 (retry) ✓", absent),
	{name: "depth exactly max", in: `{"action":"any","payload":{"a":[1]}}`, lim: Limits{MaxDepth: 3}, action: "any", channel: absent, id: absent, payload: `{"a":[1]}`},
	{name: "default depth 32", in: `{"action":"any","payload":` + deep(31) + `}`, action: "any", channel: absent, id: absent, payload: deep(31)},
	{name: "no registry", in: `{"action":"anything","payload":{"X":1}}`, noReg: true, action: "anything", channel: absent, id: absent, payload: `{"X":1}`},
	{name: "unknown action", in: `{"action":"nope","id":"7","payload":{"a":1}}`, want: ErrUnknownAction, action: "nope", channel: absent, id: "7", payload: `{"a":1}`},

	// Syntax.
	bad("empty", ``, ErrInvalidJSON),
	bad("only whitespace", " \n\t", ErrInvalidJSON),
	bad("array", `[{"action":"ping"}]`, ErrNotObject),
	bad("string", `"action"`, ErrNotObject),
	bad("null", `null`, ErrNotObject),
	bad("number", `1`, ErrNotObject),
	bad("garbage", `action`, ErrInvalidJSON),
	bad("bom", "\ufeff{\"action\":\"ping\"}", ErrInvalidJSON),
	bad("unclosed", `{"action":"ping"`, ErrInvalidJSON),
	bad("unclosed payload", `{"action":"ping","payload":{"a":[1,2}}`, ErrInvalidJSON),
	bad("single quotes", `{'action':'ping'}`, ErrInvalidJSON),
	bad("single quoted value", `{"action":"any","payload":'x'}`, ErrInvalidJSON),
	bad("line comment", "{\"action\":\"ping\" // c\n}", ErrInvalidJSON),
	bad("block comment", `{"action":"any","payload":/*c*/1}`, ErrInvalidJSON),
	bad("NaN", `{"action":"any","payload":NaN}`, ErrInvalidJSON),
	bad("Infinity", `{"action":"any","payload":[Infinity]}`, ErrInvalidJSON),
	bad("-Infinity", `{"action":"any","payload":[-Infinity]}`, ErrInvalidJSON),
	bad("leading zero", `{"action":"any","payload":01}`, ErrInvalidJSON),
	bad("negative leading zero", `{"action":"any","payload":[-01]}`, ErrInvalidJSON),
	bad("plus sign", `{"action":"any","payload":+1}`, ErrInvalidJSON),
	bad("bare minus", `{"action":"any","payload":-}`, ErrInvalidJSON),
	bad("trailing dot", `{"action":"any","payload":1.}`, ErrInvalidJSON),
	bad("leading dot", `{"action":"any","payload":.5}`, ErrInvalidJSON),
	bad("empty exponent", `{"action":"any","payload":1e}`, ErrInvalidJSON),
	bad("signed empty exponent", `{"action":"any","payload":1e+}`, ErrInvalidJSON),
	bad("hex number", `{"action":"any","payload":0x10}`, ErrInvalidJSON),
	bad("trailing comma object", `{"action":"any","payload":{"a":1,}}`, ErrInvalidJSON),
	bad("trailing comma array", `{"action":"any","payload":[1,]}`, ErrInvalidJSON),
	bad("trailing comma envelope", `{"action":"ping",}`, ErrInvalidJSON),
	bad("leading comma array", `{"action":"any","payload":[,1]}`, ErrInvalidJSON),
	bad("missing colon", `{"action" "ping"}`, ErrInvalidJSON),
	bad("missing colon payload", `{"action":"any","payload":{"a" 1}}`, ErrInvalidJSON),
	bad("missing comma", `{"action":"ping" "id":"1"}`, ErrInvalidJSON),
	bad("missing comma array", `{"action":"any","payload":[1 2]}`, ErrInvalidJSON),
	bad("unquoted key", `{"action":"any","payload":{a:1}}`, ErrInvalidJSON),
	bad("unterminated string", `{"action":"any","payload":"abc}`, ErrInvalidJSON),
	bad("raw tab in string", "{\"action\":\"any\",\"payload\":\"a\tb\"}", ErrInvalidJSON),
	bad("raw newline in string", "{\"action\":\"any\",\"payload\":\"a\nb\"}", ErrInvalidJSON),
	bad("raw NUL in key", "{\"action\":\"any\",\"payload\":{\"a\x00\":1}}", ErrInvalidJSON),
	bad("True", `{"action":"any","payload":True}`, ErrInvalidJSON),
	bad("truncated literal", `{"action":"any","payload":nul}`, ErrWrongType),
	bad("truncated literal in payload", `{"action":"any","payload":[nul]}`, ErrInvalidJSON),
	bad("literal suffix", `{"action":"any","payload":[truex]}`, ErrInvalidJSON),
	bad("value after value", `{"action":"any","payload":"a""b"}`, ErrInvalidJSON),
	bad("invalid action value", `{"action":ping}`, ErrInvalidJSON),

	// Numbers encoding/json cannot hold.
	bad("number overflow", `{"action":"any","payload":[1e700]}`, ErrNumberRange),
	bad("negative number overflow", `{"action":"any","payload":-1e309}`, ErrNumberRange),
	bad("just above float64 max", `{"action":"any","payload":1.7976931348623159e308}`, ErrNumberRange),
	bad("long mantissa overflow", `{"action":"any","payload":1`+strings.Repeat("0", 309)+`}`, ErrNumberRange),
	bad("fraction with huge exponent", `{"action":"any","payload":0.1e310}`, ErrNumberRange),
	bad("saturated exponent", `{"action":"any","payload":1e99999999999999999999999}`, ErrNumberRange),
	ok("float64 max", `{"action":"any","payload":1.7976931348623157e308}`, "any", absent, absent, `1.7976931348623157e308`),
	ok("long mantissa, small exponent", `{"action":"any","payload":17976931348623158e292}`, "any", absent, absent, `17976931348623158e292`),
	ok("tiny exponent underflows to zero", `{"action":"any","payload":[1e-400,0.0000e99999]}`, "any", absent, absent, `[1e-400,0.0000e99999]`),
	ok("huge negative exponent", `{"action":"any","payload":1e-99999999999999999999999}`, "any", absent, absent, `1e-99999999999999999999999`),

	// Escapes.
	bad("unknown escape", `{"action":"any","payload":"\x41"}`, ErrInvalidEscape),
	bad("escaped quote apostrophe", `{"action":"any","payload":"\'"}`, ErrInvalidEscape),
	bad("capital U escape", `{"action":"any","payload":"\U0041"}`, ErrInvalidEscape),
	bad("short unicode escape", `{"action":"any","payload":"\u12"}`, ErrInvalidEscape),
	bad("non-hex unicode escape", `{"action":"any","payload":"\uZZZZ"}`, ErrInvalidEscape),
	bad("lone high surrogate", `{"action":"any","payload":"\ud83d"}`, ErrInvalidEscape),
	bad("lone high surrogate at end of key", `{"action":"any","payload":{"\ud83d":1}}`, ErrInvalidEscape),
	bad("lone low surrogate", `{"action":"any","payload":"\ude00"}`, ErrInvalidEscape),
	bad("high then non-low", `{"action":"any","payload":"\ud83d\u0041"}`, ErrInvalidEscape),
	bad("high then high", `{"action":"any","payload":"\ud83d\ud83d"}`, ErrInvalidEscape),
	bad("high then raw char", `{"action":"any","payload":"\ud83dx"}`, ErrInvalidEscape),
	bad("swapped surrogates", `{"action":"any","payload":"\ude00\ud83d"}`, ErrInvalidEscape),
	bad("lone surrogate in id", `{"action":"ping","id":"\udfff"}`, ErrInvalidEscape),

	// UTF-8: always reported as such.
	bad("invalid utf-8 in payload string", "{\"action\":\"any\",\"payload\":\"\xff\"}", ErrInvalidUTF8),
	bad("invalid utf-8 in key", "{\"action\":\"any\",\"payload\":{\"\xc3\":1}}", ErrInvalidUTF8),
	bad("invalid utf-8 in id", "{\"action\":\"ping\",\"id\":\"a\xe2\x82\"}", ErrInvalidUTF8),
	bad("overlong encoding", "{\"action\":\"any\",\"payload\":\"\xc0\xaf\"}", ErrInvalidUTF8),
	bad("utf-8 encoded surrogate", "{\"action\":\"any\",\"payload\":\"\xed\xa0\x80\"}", ErrInvalidUTF8),
	bad("beyond U+10FFFF", "{\"action\":\"any\",\"payload\":\"\xf4\x90\x80\x80\"}", ErrInvalidUTF8),
	bad("invalid utf-8 outside strings", "{\"action\":\"ping\"\xff}", ErrInvalidUTF8),
	bad("invalid utf-8 in trailing data", "{\"action\":\"ping\"} \xff", ErrInvalidUTF8),
	bad("invalid utf-8 after syntax error", "[\xff", ErrInvalidUTF8),
	bad("invalid utf-8 after unknown field", "{\"x\":1,\"\xff\":2}", ErrInvalidUTF8),
	bad("invalid utf-8 with unknown action", "{\"action\":\"nope\",\"payload\":\"\xfe\"}", ErrInvalidUTF8),
	bad("lone continuation byte", "\x80", ErrInvalidUTF8),

	// Trailing data.
	bad("trailing word", `{"action":"ping"} x`, ErrTrailingData),
	bad("second object", `{"action":"ping"}{"action":"ping"}`, ErrTrailingData),
	bad("trailing NUL", "{\"action\":\"ping\"}\x00", ErrTrailingData),
	bad("trailing brace", `{"action":"ping"}}`, ErrTrailingData),

	// Envelope keys.
	bad("unknown top-level key", `{"action":"ping","extra":1}`, ErrUnknownField),
	bad("ACTION", `{"ACTION":"ping"}`, ErrUnknownField),
	bad("Action", `{"action":"ping","Action":"admin"}`, ErrUnknownField),
	bad("Payload", `{"action":"ping","Payload":{}}`, ErrUnknownField),
	bad("escaped key", `{"\u0061ction":"ping"}`, ErrUnknownField),
	bad("escaped slash key", `{"action":"ping","\/id":"1"}`, ErrUnknownField),
	bad("empty key", `{"action":"ping","":1}`, ErrUnknownField),
	bad("key with nul escape", `{"action\u0000":"ping"}`, ErrUnknownField),
	bad("duplicate action", `{"action":"ping","action":"admin"}`, ErrDuplicateKey),
	bad("duplicate payload", `{"action":"any","payload":1,"payload":2}`, ErrDuplicateKey),
	bad("duplicate id", `{"id":"1","action":"ping","id":"2"}`, ErrDuplicateKey),
	bad("missing action", `{}`, ErrActionMissing),
	bad("missing action with fields", `{"channel":"c","id":"1","payload":{}}`, ErrActionMissing),

	// Envelope values.
	bad("empty action", `{"action":""}`, ErrInvalidAction),
	bad("upper-case action", `{"action":"Publish"}`, ErrInvalidAction),
	bad("action with space", `{"action":"pub lish"}`, ErrInvalidAction),
	bad("action with slash", `{"action":"pub/lish"}`, ErrInvalidAction),
	bad("non-ASCII action", `{"action":"publiš"}`, ErrInvalidAction),
	bad("escaped newline in action", `{"action":"ping\n"}`, ErrInvalidAction),
	bad("action too long", `{"action":"`+strings.Repeat("a", 65)+`"}`, ErrFieldTooLong),
	bad("channel too long", `{"action":"ping","channel":"`+strings.Repeat("c", 257)+`"}`, ErrFieldTooLong),
	bad("id too long", `{"action":"ping","id":"`+strings.Repeat("i", 129)+`"}`, ErrFieldTooLong),
	bad("escaped id too long", `{"action":"ping","id":"`+strings.Repeat(`\u00e9`, 65)+`"}`, ErrFieldTooLong),
	{name: "custom action limit", in: `{"action":"publish"}`, lim: Limits{MaxActionLen: 6}, want: ErrFieldTooLong},
	{name: "custom id limit", in: `{"action":"ping","id":"abc"}`, lim: Limits{MaxIDLen: 2}, want: ErrFieldTooLong},
	bad("channel with space", `{"action":"ping","channel":"room 1"}`, ErrInvalidChannel),
	bad("channel with escaped newline", `{"action":"ping","channel":"room\n1"}`, ErrInvalidChannel),
	bad("non-ASCII channel", `{"action":"ping","channel":"ché"}`, ErrInvalidChannel),
	bad("channel with DEL", `{"action":"ping","channel":"a\u007f"}`, ErrInvalidChannel),
	bad("id with NUL", `{"action":"ping","id":"a\u0000"}`, ErrInvalidID),
	bad("id with newline", `{"action":"ping","id":"a\nb"}`, ErrInvalidID),
	bad("id with DEL", `{"action":"ping","id":"\u007f"}`, ErrInvalidID),
	bad("id with C1 control", `{"action":"ping","id":"\u0085"}`, ErrInvalidID),
	bad("id with bidi override", `{"action":"ping","id":"abc\u202edcba"}`, ErrInvalidID),
	bad("id with raw bidi override", "{\"action\":\"ping\",\"id\":\"abc\u202edcba\"}", ErrInvalidID),
	bad("id with zero-width space", `{"action":"ping","id":"a\u200bb"}`, ErrInvalidID),
	bad("id with private use", `{"action":"ping","id":"\ue000"}`, ErrInvalidID),
	bad("numeric action", `{"action":1}`, ErrWrongType),
	bad("null action", `{"action":null}`, ErrWrongType),
	bad("object action", `{"action":{"x":1}}`, ErrWrongType),
	bad("null channel", `{"action":"ping","channel":null}`, ErrWrongType),
	bad("array channel", `{"action":"ping","channel":["a"]}`, ErrWrongType),
	bad("numeric id", `{"action":"ping","id":42}`, ErrWrongType),
	bad("null id", `{"action":"ping","id":null}`, ErrWrongType),
	bad("bool id", `{"action":"ping","id":true}`, ErrWrongType),
	bad("null payload", `{"action":"ping","payload":null}`, ErrWrongType),

	// Depth.
	{name: "too deep", in: `{"action":"any","payload":{"a":[[1]]}}`, lim: Limits{MaxDepth: 3}, want: ErrTooDeep},
	{name: "too deep empty", in: `{"action":"any","payload":{"a":[{}]}}`, lim: Limits{MaxDepth: 3}, want: ErrTooDeep},
	{name: "depth 1 forbids containers", in: `{"action":"any","payload":[]}`, lim: Limits{MaxDepth: 1}, want: ErrTooDeep},
	bad("default depth exceeded", `{"action":"any","payload":`+deep(32)+`}`, ErrTooDeep),
	bad("very deep", `{"action":"any","payload":`+deep(100000)+`}`, ErrTooDeep),
	{name: "deep before action", in: `{"payload":` + deep(40) + `,"action":"any"}`, noReg: true, want: ErrTooDeep},

	// Duplicates at any depth.
	bad("duplicate payload key", `{"action":"publish","payload":{"text":"a","text":"b"}}`, ErrDuplicateKey),
	bad("duplicate nested key", `{"action":"any","payload":[{"a":{"b":1,"c":2,"b":3}}]}`, ErrDuplicateKey),
	bad("duplicate via escape", `{"action":"any","payload":{"a":1,"\u0061":2}}`, ErrDuplicateKey),
	bad("duplicate via two escapes", `{"action":"any","payload":{"\u00e9":1,"\u00E9":2}}`, ErrDuplicateKey),
	bad("duplicate escaped and raw unicode", `{"action":"any","payload":{"é":1,"\u00e9":2}}`, ErrDuplicateKey),
	bad("duplicate in large object", `{"action":"any","payload":`+manyKeys(100, true)+`}`, ErrDuplicateKey),
	bad("duplicate in map schema", `{"action":"publish","payload":{"meta":{"extra":{"k":{},"k":{}}}}}`, ErrDuplicateKey),
	{name: "duplicate without registry", in: `{"action":"x","payload":{"a":1,"a":1}}`, noReg: true, want: ErrDuplicateKey},

	// Schema: exact names.
	bad("case variant key", `{"action":"publish","payload":{"Text":"x"}}`, ErrUnknownField),
	bad("upper-case key", `{"action":"publish","payload":{"TEXT":"x"}}`, ErrUnknownField),
	bad("exact and case variant", `{"action":"publish","payload":{"text":"a","Text":"b"}}`, ErrUnknownField),
	bad("unknown payload key", `{"action":"publish","payload":{"text":"a","admin":true}}`, ErrUnknownField),
	bad("unknown nested key", `{"action":"publish","payload":{"meta":{"Lang":"en"}}}`, ErrUnknownField),
	bad("unknown key in map value", `{"action":"publish","payload":{"meta":{"extra":{"k":{"OK":true}}}}}`, ErrUnknownField),
	bad("unknown key in slice element", `{"action":"list","payload":[{"ok":true},{"ok":false,"x":1}]}`, ErrUnknownField),
	bad("unknown key with payload first", `{"payload":{"Text":"x"},"action":"publish"}`, ErrUnknownField),
	bad("escaped key decoding to other name", `{"action":"publish","payload":{"te\u0078t2":"x"}}`, ErrUnknownField),
	bad("key with kelvin sign", `{"action":"list","payload":[{"o\u212a":true}]}`, ErrUnknownField),

	// Schema: kinds.
	bad("array for struct", `{"action":"publish","payload":[]}`, ErrWrongType),
	bad("string for struct", `{"action":"publish","payload":"x"}`, ErrWrongType),
	bad("number for string", `{"action":"publish","payload":{"text":1}}`, ErrWrongType),
	bad("string for number", `{"action":"publish","payload":{"count":"1"}}`, ErrWrongType),
	bad("object for slice", `{"action":"publish","payload":{"tags":{"a":"b"}}}`, ErrWrongType),
	bad("number in string slice", `{"action":"publish","payload":{"tags":["a",1]}}`, ErrWrongType),
	bad("array for pointer to struct", `{"action":"publish","payload":{"meta":[]}}`, ErrWrongType),
	bad("array for map", `{"action":"publish","payload":{"meta":{"extra":[]}}}`, ErrWrongType),
	bad("string for bool", `{"action":"list","payload":[{"ok":"true"}]}`, ErrWrongType),
	bad("object for string payload", `{"action":"str","payload":{}}`, ErrWrongType),
	bad("wrong type with payload first", `{"payload":[],"action":"publish"}`, ErrWrongType),

	// Unknown action is reported only for otherwise valid messages.
	bad("unknown action then syntax error", `{"action":"nope","payload":[1,]}`, ErrInvalidJSON),
	bad("unknown action then duplicate", `{"action":"nope","payload":{"a":1,"a":2}}`, ErrDuplicateKey),
	bad("unknown action then trailing", `{"action":"nope"} 1`, ErrTrailingData),
	bad("unknown action then unknown field", `{"action":"nope","x":1}`, ErrUnknownField),
}

func TestParse(t *testing.T) {
	reg := testSchemas(t)
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			schemas := reg
			if tc.noReg {
				schemas = nil
			}
			var env Envelope
			err := Parse([]byte(tc.in), tc.lim, schemas, &env)
			if err != tc.want {
				t.Fatalf("Parse(%.80q) = %v, want %v", tc.in, err, tc.want)
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Code == "" || e.Reason == "" {
					t.Fatalf("error %#v is not a complete *Error", err)
				}
				if err != ErrUnknownAction {
					if env.Action != nil || env.Channel != nil || env.ID != nil || env.Payload != nil {
						t.Fatalf("env not reset after error: %+v", env)
					}
					return
				}
			}
			check := func(field string, got []byte, want string) {
				t.Helper()
				if want == absent {
					if got != nil {
						t.Errorf("%s = %q, want absent (nil)", field, got)
					}
					return
				}
				if got == nil || string(got) != want {
					t.Errorf("%s = %q (nil: %t), want %q", field, got, got == nil, want)
				}
			}
			check("Action", env.Action, tc.action)
			check("Channel", env.Channel, tc.channel)
			check("ID", env.ID, tc.id)
			check("Payload", env.Payload, tc.payload)
		})
	}
}

// TestParseAcceptedIsValidJSON cross-checks every accepted table case with
// encoding/json.
func TestParseAcceptedIsValidJSON(t *testing.T) {
	reg := testSchemas(t)
	for _, tc := range parseCases {
		var env Envelope
		err := Parse([]byte(tc.in), tc.lim, reg, &env)
		if (err == nil || err == ErrUnknownAction) && !json.Valid([]byte(tc.in)) {
			t.Errorf("%s: accepted but encoding/json says invalid", tc.name)
		}
		if !json.Valid([]byte(tc.in)) && (err == nil || err == ErrUnknownAction) {
			t.Errorf("%s: encoding/json rejects but Parse accepted", tc.name)
		}
	}
}

// TestEncodingJSONLeniency shows inputs that encoding/json alone accepts
// (silently picking a value) and Parse refuses.
func TestEncodingJSONLeniency(t *testing.T) {
	reg := testSchemas(t)
	for _, tc := range []struct {
		payload  string
		wantText string // what encoding/json makes of it
		want     error
	}{
		{`{"text":"a","Text":"b"}`, "b", ErrUnknownField},
		{`{"TEXT":"x"}`, "x", ErrUnknownField},
		{`{"tExT":"x"}`, "x", ErrUnknownField},
		{`{"text":"a","text":"b"}`, "b", ErrDuplicateKey},
		{`{"text":"a","\u0074ext":"b"}`, "b", ErrDuplicateKey},
		{`{"text":"a","admin":true}`, "a", ErrUnknownField},
	} {
		var p publishPayload
		if err := json.Unmarshal([]byte(tc.payload), &p); err != nil || p.Text != tc.wantText {
			t.Fatalf("encoding/json on %s: %v, Text=%q; the premise of this test changed", tc.payload, err, p.Text)
		}
		var env Envelope
		msg := `{"action":"publish","payload":` + tc.payload + `}`
		if err := Parse([]byte(msg), Limits{}, reg, &env); err != tc.want {
			t.Errorf("Parse(%s) = %v, want %v", msg, err, tc.want)
		}
	}

	// What Parse accepts decodes to exactly one meaning.
	var env Envelope
	if err := Parse([]byte(typical), Limits{}, reg, &env); err != nil {
		t.Fatal(err)
	}
	var p publishPayload
	dec := json.NewDecoder(strings.NewReader(string(env.Payload)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Text != "hello" {
		t.Fatalf("decode accepted payload: %v, %+v", err, p)
	}
}

func TestParseNilSchemasAcceptsAnyAction(t *testing.T) {
	var env Envelope
	if err := Parse([]byte(`{"action":"whatever","payload":{"Text":1}}`), Limits{}, nil, &env); err != nil {
		t.Fatal(err)
	}
	if string(env.Action) != "whatever" {
		t.Fatalf("Action = %q", env.Action)
	}
}

func TestParseCallsSchemasOnce(t *testing.T) {
	calls := 0
	var got string
	schemas := func(a []byte) *Schema { calls++; got = string(a); return &Schema{} }
	var env Envelope
	if err := Parse([]byte(`{"payload":{"a":1},"action":"\u0070ing","id":"1"}`), Limits{}, schemas, &env); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || got != "ping" {
		t.Fatalf("schemas called %d times with %q", calls, got)
	}
}

func TestParseReusesEnvelope(t *testing.T) {
	reg := testSchemas(t)
	var env Envelope
	if err := Parse([]byte(`{"action":"ping","channel":"a\/b","id":"\u00e9"}`), Limits{}, reg, &env); err != nil {
		t.Fatal(err)
	}
	if string(env.Channel) != "a/b" || string(env.ID) != "é" {
		t.Fatalf("got %q %q", env.Channel, env.ID)
	}
	if err := Parse([]byte(`{"action":"ping"}`), Limits{}, reg, &env); err != nil {
		t.Fatal(err)
	}
	if env.Channel != nil || env.ID != nil || env.Payload != nil {
		t.Fatalf("stale fields: %+v", env)
	}
	if err := Parse([]byte(`{"action":"ping","id":"x"} x`), Limits{}, reg, &env); err != ErrTrailingData {
		t.Fatal(err)
	}
	if env.Action != nil {
		t.Fatalf("stale action after error: %q", env.Action)
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []*Error{ErrInvalidJSON, ErrInvalidUTF8, ErrInvalidEscape, ErrTrailingData, ErrNotObject,
		ErrUnknownField, ErrDuplicateKey, ErrTooDeep, ErrActionMissing, ErrInvalidAction,
		ErrInvalidChannel, ErrInvalidID, ErrFieldTooLong, ErrWrongType, ErrTooLarge, ErrNumberRange, ErrUnknownAction}
	seen := map[string]bool{}
	for _, e := range all {
		if seen[e.Reason] {
			t.Errorf("reason %q used twice", e.Reason)
		}
		seen[e.Reason] = true
		want := CodeInvalidMessage
		if e == ErrUnknownAction {
			want = CodeUnknownAction
		}
		if e.Code != want {
			t.Errorf("%q: code %q, want %q", e.Reason, e.Code, want)
		}
		if e.Error() != "strictjson: "+e.Reason {
			t.Errorf("Error() = %q", e.Error())
		}
		if !errors.Is(fmt.Errorf("wrap: %w", e), e) {
			t.Errorf("errors.Is fails through wrapping for %q", e.Reason)
		}
	}
}

func TestParseAllocs(t *testing.T) {
	reg := testSchemas(t)
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"typical", typical},
		{"escaped strings", `{"action":"publish","channel":"a\/b","id":"\u00e9","payload":{"text":"a\nb","meta":{"lang":"\u00e9"}}}`},
		{"escaped payload keys", `{"action":"any","payload":{"\u00e9":1,"b\n":{"\u0063":2}}}`},
		{"deep and wide", `{"action":"any","payload":` + manyKeys(30, false) + `,"id":"` + strings.Repeat("x", 100) + `"}`},
		{"nested", `{"action":"any","payload":` + deep(31) + `}`},
		{"refused", `{"action":"publish","payload":{"Text":"x"}}`},
		{"unknown action", `{"action":"nope","payload":{"Text":"x"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			var env Envelope
			Parse(data, Limits{}, reg, &env) // warm the scratch buffer
			allocs := testing.AllocsPerRun(100, func() {
				Parse(data, Limits{}, reg, &env)
			})
			if allocs != 0 {
				t.Fatalf("%v allocs per Parse, want 0", allocs)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	reg := testSchemas(b)
	data := []byte(typical)
	var env Envelope
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Parse(data, Limits{}, reg, &env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseNoSchema(b *testing.B) {
	data := []byte(typical)
	var env Envelope
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Parse(data, Limits{}, nil, &env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLarge(b *testing.B) {
	reg := testSchemas(b)
	var sb strings.Builder
	sb.WriteString(`{"action":"any","channel":"tenant:acme:room1","id":"42","payload":{"items":[`)
	for i := range 200 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"id":%d,"name":"item \u00e9 %d","tags":["a","b"],"price":-12.5e3,"ok":true}`, i, i)
	}
	sb.WriteString(`]}}`)
	data := []byte(sb.String())
	var env Envelope
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Parse(data, Limits{}, reg, &env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodingJSONValid is the cost of encoding/json's check alone on
// the typical message, for comparison.
func BenchmarkEncodingJSONValid(b *testing.B) {
	data := []byte(typical)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if !json.Valid(data) {
			b.Fatal("invalid")
		}
	}
}
