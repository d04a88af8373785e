// Package jsonptr parses JSON Pointers (RFC 6901) and resolves them
// against decoded JSON values (map[string]any, []any and scalars, as
// encoding/json produces them).
//
// A Pointer is parsed once, at configuration time, and resolved on every
// token afterwards: Resolve allocates nothing and never panics, whatever
// the value it walks.
package jsonptr

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLen bounds the text of a pointer, in bytes, and MaxTokens the number
// of reference tokens in it: a claim mapping is a short path.
const (
	MaxLen    = 512
	MaxTokens = 32
)

// Errors returned by Parse. Each message names the fault, never the input.
var (
	ErrSyntax  = errors.New("jsonptr: a non-empty pointer must start with '/'")
	ErrEscape  = errors.New("jsonptr: '~' must be followed by '0' or '1'")
	ErrTooLong = errors.New("jsonptr: pointer too long")
	ErrUTF8    = errors.New("jsonptr: pointer is not valid UTF-8")
)

// Pointer is a parsed JSON Pointer: its reference tokens, unescaped. The
// zero Pointer ("") refers to the whole document.
type Pointer struct {
	text   string
	tokens []string
}

// Parse parses s as an RFC 6901 JSON Pointer in its JSON string
// representation (§5), e.g. "/realm_access/roles" or
// "/https:~1~1example.com~1tenant" for the member "https://example.com/tenant".
// "~1" stands for '/', "~0" for '~'; any other '~' sequence is an error.
func Parse(s string) (Pointer, error) {
	if len(s) > MaxLen {
		return Pointer{}, ErrTooLong
	}
	if !utf8.ValidString(s) {
		return Pointer{}, ErrUTF8
	}
	if s == "" {
		return Pointer{}, nil
	}
	if s[0] != '/' {
		return Pointer{}, ErrSyntax
	}
	var toks []string
	rest := s[1:]
	for {
		if len(toks) == MaxTokens {
			return Pointer{}, ErrTooLong
		}
		tok, next, more := strings.Cut(rest, "/")
		u, err := unescape(tok)
		if err != nil {
			return Pointer{}, err
		}
		toks = append(toks, u)
		if !more {
			break
		}
		rest = next
	}
	return Pointer{text: s, tokens: toks}, nil
}

func unescape(tok string) (string, error) {
	i := strings.IndexByte(tok, '~')
	if i < 0 {
		return tok, nil
	}
	var b strings.Builder
	b.Grow(len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '~' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(tok) {
			return "", ErrEscape
		}
		switch tok[i+1] {
		case '0':
			b.WriteByte('~')
		case '1':
			b.WriteByte('/')
		default:
			return "", ErrEscape
		}
		i++
	}
	return b.String(), nil
}

// String returns the pointer as it was parsed.
func (p Pointer) String() string { return p.text }

// IsRoot reports whether p is the empty pointer, which refers to the
// whole document.
func (p Pointer) IsRoot() bool { return len(p.tokens) == 0 }

// Tokens returns the unescaped reference tokens. The slice is shared:
// callers must not modify it.
func (p Pointer) Tokens() []string { return p.tokens }

// Resolve returns the value p refers to in doc and whether it exists. A
// member of an object is looked up by its exact name; an element of an
// array by a token of decimal digits without leading zeros ("0", "12"),
// in range; "-" and every other token refer to nothing in an array.
// Walking into a scalar refers to nothing. Resolve never panics and does
// not allocate.
func (p Pointer) Resolve(doc any) (any, bool) {
	return ResolveFrom(doc, p.tokens)
}

// ResolveFrom resolves the reference tokens toks in doc, as Resolve does.
func ResolveFrom(doc any, toks []string) (any, bool) {
	cur := doc
	for _, t := range toks {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[t]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, ok := index(t, len(v))
			if !ok {
				return nil, false
			}
			cur = v[i]
		case []string:
			i, ok := index(t, len(v))
			if !ok {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// index parses an array index token (RFC 6901 §4: digits, no leading
// zero) below n.
func index(t string, n int) (int, bool) {
	if t == "" || len(t) > 10 || (len(t) > 1 && t[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(t)
	if err != nil || i >= n {
		return 0, false
	}
	return i, true
}
