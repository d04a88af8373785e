package jwtpre

import (
	"slices"
	"testing"
)

type authCase struct {
	name  string
	v     string
	token string // "" means ok=false
}

func authCases() []authCase {
	jwt := tok(`{"alg":"ES256"}`)
	return []authCase{
		{"jwt", "Bearer " + jwt, jwt},
		{"lower scheme", "bearer abc", "abc"},
		{"upper scheme", "BEARER abc", "abc"},
		{"several spaces", "Bearer    abc", "abc"},
		{"token68 chars", "Bearer aZ09-._~+/==", "aZ09-._~+/=="},
		{"empty", "", ""},
		{"scheme only", "Bearer", ""},
		{"scheme and space", "Bearer ", ""},
		{"scheme and spaces", "Bearer   ", ""},
		{"no space", "Bearerabc", ""},
		{"tab separator", "Bearer\tabc", ""},
		{"basic scheme", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", ""},
		{"leading space", " Bearer abc", ""},
		{"trailing space", "Bearer abc ", ""},
		{"two tokens", "Bearer abc def", ""},
		{"comma", "Bearer abc,def", ""},
		{"only padding", "Bearer ==", ""},
		{"padding inside", "Bearer ab=c", ""},
		{"quote", `Bearer "abc"`, ""},
		{"newline", "Bearer abc\n", ""},
		{"NUL", "Bearer abc\x00", ""},
		{"non-ASCII", "Bearer abé", ""},
		{"Bearers scheme", "Bearers abc", ""},
	}
}

func TestFromAuthorization(t *testing.T) {
	for _, tc := range authCases() {
		t.Run(tc.name, func(t *testing.T) {
			token, ok := FromAuthorization(tc.v)
			if ok != (tc.token != "") || token != tc.token {
				t.Fatalf("FromAuthorization(%q) = %q, %v; want %q", tc.v, token, ok, tc.token)
			}
		})
	}
}

type subprotoCase struct {
	name   string
	values []string
	token  string
	others []string
	err    error
}

func subprotoCases() []subprotoCase {
	jwt := tok(`{"alg":"ES256"}`)
	return []subprotoCase{
		{name: "browser pair", values: []string{"wssec.v1, bearer." + jwt}, token: jwt, others: []string{"wssec.v1"}},
		{name: "bearer first", values: []string{"bearer." + jwt + ",wssec.v1"}, token: jwt, others: []string{"wssec.v1"}},
		{name: "several lines", values: []string{"chat", "bearer.abc", "wssec.v1, wssec.v2"}, token: "abc", others: []string{"chat", "wssec.v1", "wssec.v2"}},
		{name: "no bearer", values: []string{"wssec.v1"}, others: []string{"wssec.v1"}},
		{name: "nothing", values: nil},
		{name: "empty value", values: []string{""}},
		{name: "empty elements", values: []string{" , ,wssec.v1,, bearer.t ,"}, token: "t", others: []string{"wssec.v1"}},
		{name: "tabs", values: []string{"\twssec.v1\t,\tbearer.t"}, token: "t", others: []string{"wssec.v1"}},
		{name: "prefix any case", values: []string{"Bearer.t", "wssec.v1"}, token: "t", others: []string{"wssec.v1"}},
		{name: "bearer without dot is a protocol", values: []string{"bearer"}, others: []string{"bearer"}},
		{name: "two bearer entries", values: []string{"bearer.a, bearer.b"}, err: ErrMultipleTokens},
		{name: "two bearer lines", values: []string{"bearer.a", "BEARER.b"}, err: ErrMultipleTokens},
		{name: "same token twice", values: []string{"bearer.a, bearer.a"}, err: ErrMultipleTokens},
		{name: "empty bearer", values: []string{"wssec.v1, bearer."}, err: ErrSubprotocol},
		{name: "space inside entry", values: []string{"wssec v1"}, err: ErrSubprotocol},
		{name: "slash", values: []string{"bearer.a/b"}, err: ErrSubprotocol},
		{name: "quoted", values: []string{`"wssec.v1"`}, err: ErrSubprotocol},
		{name: "semicolon", values: []string{"wssec.v1;q=1"}, err: ErrSubprotocol},
		{name: "non-ASCII", values: []string{"wssec.v1, bearer.é"}, err: ErrSubprotocol},
		{name: "newline", values: []string{"wssec.v1\n, bearer.a"}, err: ErrSubprotocol},
	}
}

func TestFromSubprotocols(t *testing.T) {
	for _, tc := range subprotoCases() {
		t.Run(tc.name, func(t *testing.T) {
			token, others, err := FromSubprotocols(tc.values)
			if tc.err != nil {
				checkSentinel(t, err, tc.err)
				if token != "" || others != nil {
					t.Errorf("refusal returned %q, %q", token, others)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromSubprotocols(%q): %v", tc.values, err)
			}
			if token != tc.token || !slices.Equal(others, tc.others) {
				t.Fatalf("FromSubprotocols(%q) = %q, %q; want %q, %q", tc.values, token, others, tc.token, tc.others)
			}
		})
	}
}
