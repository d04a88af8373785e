package jsonptr

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

// parseCases are shared by TestParse and FuzzParse's seed corpus.
var parseCases = []struct {
	in     string
	tokens []string
	err    error
}{
	{"", nil, nil},
	{"/", []string{""}, nil},
	{"/sub", []string{"sub"}, nil},
	{"/realm_access/roles", []string{"realm_access", "roles"}, nil},
	{"/https:~1~1example.com~1tenant", []string{"https://example.com/tenant"}, nil},
	{"/a~0b", []string{"a~b"}, nil},
	{"/~01", []string{"~1"}, nil},
	{"/~10", []string{"/0"}, nil},
	{"/a//b", []string{"a", "", "b"}, nil},
	{"/cognito:groups", []string{"cognito:groups"}, nil},
	{"/m~n", nil, ErrEscape},
	{"/a~", nil, ErrEscape},
	{"/~2", nil, ErrEscape},
	{"sub", nil, ErrSyntax},
	{"#/sub", nil, ErrSyntax},
	{"/\xff", nil, ErrUTF8},
	{"/" + string(make([]byte, MaxLen)), nil, ErrTooLong},
	{"/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a", nil, ErrTooLong},
}

func TestParse(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.in, func(t *testing.T) {
			p, err := Parse(c.in)
			if !errors.Is(err, c.err) {
				t.Fatalf("Parse(%q) error %v, want %v", c.in, err, c.err)
			}
			if err != nil {
				return
			}
			if !slices.Equal(p.Tokens(), c.tokens) {
				t.Fatalf("Parse(%q) tokens %q, want %q", c.in, p.Tokens(), c.tokens)
			}
			if p.String() != c.in {
				t.Fatalf("String() %q, want %q", p.String(), c.in)
			}
		})
	}
}

// doc is the RFC 6901 §5 example document, with a few claim shapes.
const doc = `{
	"foo": ["bar", "baz"],
	"": 0,
	"a/b": 1,
	"c%d": 2,
	"e^f": 3,
	"g|h": 4,
	"i\\j": 5,
	"k\"l": 6,
	" ": 7,
	"m~n": 8,
	"realm_access": {"roles": ["admin", "user"]},
	"https://example.com/tenant": "acme"
}`

func TestResolve_RFC6901Examples(t *testing.T) {
	var d any
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ptr  string
		want string // JSON of the value; "" means not found
	}{
		{"/foo", `["bar","baz"]`},
		{"/foo/0", `"bar"`},
		{"/foo/1", `"baz"`},
		{"/foo/2", ``},
		{"/foo/-", ``},
		{"/foo/01", ``},
		{"/foo/+1", ``},
		{"/foo/99999999999", ``},
		{"/", `0`},
		{"/a~1b", `1`},
		{"/c%d", `2`},
		{"/e^f", `3`},
		{"/g|h", `4`},
		{"/i\\j", `5`},
		{"/k\"l", `6`},
		{"/ ", `7`},
		{"/m~0n", `8`},
		{"/realm_access/roles", `["admin","user"]`},
		{"/realm_access/roles/1", `"user"`},
		{"/https:~1~1example.com~1tenant", `"acme"`},
		{"/missing", ``},
		{"/foo/0/deeper", ``},
		{"/realm_access/roles/0/x", ``},
	}
	for _, c := range cases {
		p, err := Parse(c.ptr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.ptr, err)
		}
		v, ok := p.Resolve(d)
		if c.want == "" {
			if ok {
				t.Errorf("%q resolved to %v, want nothing", c.ptr, v)
			}
			continue
		}
		if !ok {
			t.Errorf("%q resolved to nothing, want %s", c.ptr, c.want)
			continue
		}
		got, _ := json.Marshal(v)
		if string(got) != c.want {
			t.Errorf("%q = %s, want %s", c.ptr, got, c.want)
		}
	}
	if v, ok := (Pointer{}).Resolve(d); !ok || v == nil {
		t.Error("the root pointer must resolve to the document")
	}
}

func TestResolve_AllocatesNothing(t *testing.T) {
	var d any
	_ = json.Unmarshal([]byte(doc), &d)
	p, _ := Parse("/realm_access/roles/1")
	if n := testing.AllocsPerRun(100, func() { p.Resolve(d) }); n != 0 {
		t.Fatalf("Resolve allocated %v times", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.in)
	}
	var d any
	_ = json.Unmarshal([]byte(doc), &d)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("String() %q, want %q", p.String(), s)
		}
		if len(p.Tokens()) > MaxTokens {
			t.Fatalf("%d tokens", len(p.Tokens()))
		}
		// Escaping the tokens again gives back the input.
		back := ""
		for _, tok := range p.Tokens() {
			back += "/" + escape(tok)
		}
		if back != s {
			t.Fatalf("re-escaped %q, want %q", back, s)
		}
		p.Resolve(d) // must not panic
	})
}

func escape(s string) string {
	out := ""
	for _, r := range s {
		switch r {
		case '~':
			out += "~0"
		case '/':
			out += "~1"
		default:
			out += string(r)
		}
	}
	return out
}
