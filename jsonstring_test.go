package wssec

import (
	"encoding/json"
	"testing"
)

// FuzzAppendJSONString: the error frames' string encoder writes exactly
// what encoding/json writes for every string, valid UTF-8 or not.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\s`, "<script>&</script>", "\x00\x01\x1f\x7f", "\b\f\n\r\t",
		"é漢字🙂", "\u2028\u2029", "\xff\xfe", "a\xc3", "\xed\xa0\x80", "channel required"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("string %q: got %s, want %s", s, got, want)
		}
		if got := appendJSONString(nil, []byte(s)); string(got) != string(want) {
			t.Fatalf("bytes %q: got %s, want %s", s, got, want)
		}
	})
}

// TestErrorFrame_SameAsMarshal: the hand-built error and pong frames are
// byte for byte what json.Marshal of the documented shape gives.
func TestErrorFrame_SameAsMarshal(t *testing.T) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	type frame struct {
		Action string `json:"action"`
		ID     string `json:"id,omitempty"`
		Error  body   `json:"error"`
	}
	for _, tc := range []struct{ id, code, msg string }{
		{"", "forbidden", "forbidden"},
		{"r1", "invalid_message", `payload.text: "<b>" & more`},
		{"\u2028", "rate_limited", "rate limit exceeded\n"},
	} {
		want, _ := json.Marshal(frame{Action: "error", ID: tc.id, Error: body{tc.code, tc.msg}})
		if got := errorFrame([]byte(tc.id), tc.code, tc.msg); string(got) != string(want) {
			t.Errorf("errorFrame: got %s, want %s", got, want)
		}
		type pong struct {
			Action string `json:"action"`
			ID     string `json:"id,omitempty"`
		}
		want, _ = json.Marshal(pong{Action: "pong", ID: tc.id})
		if got := pongFrame([]byte(tc.id)); string(got) != string(want) {
			t.Errorf("pongFrame: got %s, want %s", got, want)
		}
	}
}
