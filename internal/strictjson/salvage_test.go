package strictjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// refineCases are the Refine table and seeds of FuzzRefine. Only "marker"
// has a schema.
var refineCases = []struct {
	name, in string
	want     *Error
	id       string // "" with noID: no id echoed
	noID     bool
}{
	{"unknown action with an empty payload", `{"action":"admin","id":"u1","payload":{}}`, ErrUnknownAction, "u1", false},
	{"case variant of an action", `{"action":"Echo","id":"u2"}`, ErrUnknownAction, "u2", false},
	{"unknown action, null payload", `{"action":"admin","id":"u3","payload":null}`, ErrUnknownAction, "u3", false},
	{"unknown action, unknown key after id", `{"action":"admin","id":"u4","x":1}`, ErrUnknownAction, "u4", false},
	{"unknown action, unknown key first", `{"x":{"y":[1]},"action":"admin","id":"u5"}`, ErrUnknownAction, "u5", false},
	{"unknown action, bad channel", `{"action":"admin","channel":"a b","id":"u6"}`, ErrUnknownAction, "u6", false},
	{"unknown action, over-long channel", `{"action":"admin","channel":"` + strings.Repeat("c", 300) + `","id":"u7"}`, ErrUnknownAction, "u7", false},
	{"unknown action, escaped", `{"action":"\u0061dmin","id":"u8"}`, ErrUnknownAction, "u8", false},
	{"registered action, unknown key", `{"action":"marker","id":"r1","x":1}`, ErrUnknownField, "r1", false},
	{"registered action, null payload before id", `{"action":"marker","payload":null,"id":"r2"}`, ErrWrongType, "r2", false},
	{"registered action, escaped id", `{"action":"marker","id":"r\u0033","x":1}`, ErrUnknownField, "r3", false},
	{"invalid json keeps the id", `{"action":"marker","id":"j1",`, ErrInvalidJSON, "j1", false},
	{"invalid json is never unknown_action", `{"action":"admin","id":"j2",`, ErrInvalidJSON, "j2", false},
	{"id after a bad value", `{"action":"admin","payload":{"a":01},"id":"j3"}`, ErrInvalidJSON, "j3", false},
	{"trailing data", `{"action":"admin","id":"t1"} {"id":"t2"}`, ErrTrailingData, "t1", false},
	{"duplicate payload key", `{"action":"admin","id":"d1","payload":{"a":1,"a":2}}`, ErrDuplicateKey, "d1", false},
	{"duplicate id", `{"action":"admin","id":"a","id":"b"}`, ErrDuplicateKey, "", true},
	{"duplicate action", `{"action":"admin","action":"marker","id":"d2"}`, ErrDuplicateKey, "d2", false},
	{"id in the payload only", `{"action":"marker","payload":{"id":"inner"},"x":1}`, ErrUnknownField, "", true},
	{"id not a string", `{"action":"marker","id":7,"x":1}`, ErrWrongType, "", true},
	{"id with a control character", `{"action":"marker","id":"a\u0000","x":1}`, ErrInvalidID, "", true},
	{"id too long", `{"action":"marker","id":"` + strings.Repeat("i", 129) + `","x":1}`, ErrFieldTooLong, "", true},
	{"escaped id key is not an id", `{"action":"marker","\u0069d":"e1"}`, ErrUnknownField, "", true},
	{"escaped id key makes the id ambiguous", `{"action":"marker","id":"e8","\u0069d":"e9"}`, ErrUnknownField, "", true},
	{"id after a key with invalid UTF-8 is a second id", "{\"action\":\"marker\",\"id\":\"\",\"\xf1\":\"\",\"id\":\"0\"}", ErrInvalidUTF8, "", true},
	{"id after a value with a lone surrogate is a second id", `{"action":"marker","id":"a","k":"\ud800","id":"b"}`, ErrUnknownField, "", true},
	{"id after a nested string with invalid UTF-8 is a second id", "{\"action\":\"marker\",\"id\":\"a\",\"k\":[\"\xff\"],\"id\":\"b\"}", ErrInvalidUTF8, "", true},
	{"id after a string with invalid UTF-8", "{\"action\":\"marker\",\"k\":\"\xff\",\"id\":\"u9\"}", ErrInvalidUTF8, "u9", false},
	{"empty action", `{"action":"","id":"e2"}`, ErrInvalidAction, "e2", false},
	{"action with a space", `{"action":"a b","id":"e3"}`, ErrInvalidAction, "e3", false},
	{"action not a string", `{"action":5,"id":"e4"}`, ErrWrongType, "e4", false},
	{"action missing", `{"id":"e5","x":1}`, ErrUnknownField, "e5", false},
	{"too deep", `{"action":"admin","id":"e6","payload":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, ErrTooDeep, "e6", false},
	{"not an object", `[{"action":"admin","id":"e7"}]`, ErrNotObject, "", true},
}

func refineSchemas(t testing.TB) func([]byte) *Schema {
	s, err := SchemaFor[struct {
		N int `json:"n"`
	}]()
	if err != nil {
		t.Fatal(err)
	}
	return func(a []byte) *Schema {
		if string(a) == "marker" {
			return s
		}
		return nil
	}
}

// TestRefine_ErrorFrameContract: a well-formed message whose action is not
// registered is unknown_action whatever its other keys, and the client's
// id is found wherever it stands, even when the envelope is refused.
func TestRefine_ErrorFrameContract(t *testing.T) {
	schemas := refineSchemas(t)
	for _, tc := range refineCases {
		t.Run(tc.name, func(t *testing.T) {
			var env Envelope
			err := Parse([]byte(tc.in), Limits{}, schemas, &env)
			if err == nil {
				t.Fatalf("Parse accepted %s", tc.in)
			}
			got := Refine([]byte(tc.in), Limits{}, schemas, err.(*Error), &env)
			if got != tc.want {
				t.Fatalf("Refine = %v (Parse: %v), want %v", got, err, tc.want)
			}
			if tc.noID != (env.ID == nil) || string(env.ID) != tc.id {
				t.Fatalf("id %q (nil %v), want %q", env.ID, env.ID == nil, tc.id)
			}
		})
	}
}

// FuzzRefine: Refine never panics, reports unknown_action only for valid
// JSON objects, and echoes only an id that is the top-level "id" string.
func FuzzRefine(f *testing.F) {
	for _, tc := range refineCases {
		f.Add([]byte(tc.in))
	}
	fuzzSeeds(f)
	schemas := refineSchemas(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var env Envelope
		err := Parse(data, Limits{}, schemas, &env)
		if err == nil {
			return
		}
		pe := err.(*Error)
		got := Refine(data, Limits{}, schemas, pe, &env)
		if got != pe && got != ErrUnknownAction {
			t.Fatalf("Refine(%q) = %v, Parse said %v", data, got, pe)
		}
		if got == ErrUnknownAction && pe != ErrUnknownAction {
			if !json.Valid(data) || bytes.TrimSpace(data)[0] != '{' {
				t.Fatalf("Refine(%q) = unknown action for invalid JSON", data)
			}
			if env.Action == nil || schemas(env.Action) != nil {
				t.Fatalf("Refine(%q) = unknown action for action %q", data, env.Action)
			}
		}
		if env.ID != nil {
			if len(env.ID) > DefaultMaxIDLen || !validID(env.ID) {
				t.Fatalf("Refine(%q) echoes a malformed id %q", data, env.ID)
			}
			var m map[string]json.RawMessage
			if json.Unmarshal(data, &m) == nil {
				var id string
				if json.Unmarshal(m["id"], &id) != nil || id != string(env.ID) {
					t.Fatalf("Refine(%q) echoes id %q, encoding/json reads %s", data, env.ID, m["id"])
				}
			}
		}
	})
}
