package jwtpre

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

const (
	// MaxHeaderSize is the largest decoded protected header Check parses.
	MaxHeaderSize = 1024
	// MaxDepth is the deepest nesting of objects and arrays in a header;
	// the header object itself is depth 1.
	MaxDepth = 4
	// maxNames bounds the member names live at once (those of the objects
	// being parsed), which bounds the duplicate search.
	maxNames = 64
)

// The header parameters Check looks at.
const (
	paramOther uint8 = iota
	paramAlg
	paramKid
	paramTyp
	paramCrit
	paramB64
	paramJWK
	paramJKU
	paramX5U
	paramX5C
)

// registered lists header parameter names (RFC 7515 §4.1, RFC 7797) that a
// case-folding decoder could confuse with a variant spelling.
var registered = [...]string{
	"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256",
	"typ", "cty", "crit", "b64",
}

// span locates an unescaped string in header.out.
type span struct{ off, n uint16 }

// member is a top-level header parameter of interest: whether it is
// present, whether its value is a string, and where the unescaped string is.
type member struct {
	present, isString bool
	val               span
}

// header is the strict JSON scanner and its result. It lives on the stack
// of Check; nothing in it escapes.
type header struct {
	src []byte
	pos int

	// out holds unescaped member names and the values of alg, kid and typ.
	// An unescaped string is never longer than its JSON spelling, so out
	// never overflows while len(src) <= MaxHeaderSize.
	out  [MaxHeaderSize]byte
	nout int

	// names are the member names of the objects being parsed, innermost
	// last; each object owns names[start:nnames] while it is parsed.
	names  [maxNames]span
	nnames int

	alg, kid, typ                 member
	crit, b64, jwk, jku, x5u, x5c bool
}

func (h *header) bytes(s span) []byte { return h.out[s.off : s.off+s.n] }

// parse scans h.src as exactly one JSON object, with optional surrounding
// whitespace, and records the parameters Check looks at. h.src is set by
// the caller (assigning it here would make the compiler move the caller's
// stack buffer to the heap).
func (h *header) parse() error {
	h.skipWS()
	if h.pos >= len(h.src) || h.src[h.pos] != '{' {
		return errNotObject
	}
	if err := h.object(1, true); err != nil {
		return err
	}
	h.skipWS()
	if h.pos != len(h.src) {
		return errSyntax
	}
	return nil
}

func (h *header) skipWS() {
	for h.pos < len(h.src) {
		switch h.src[h.pos] {
		case ' ', '\t', '\n', '\r':
			h.pos++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end of the input (0 is never
// valid JSON outside a string, so it always leads to a syntax error).
func (h *header) peek() byte {
	if h.pos < len(h.src) {
		return h.src[h.pos]
	}
	return 0
}

func (h *header) value(depth int) error {
	switch c := h.peek(); {
	case c == '{':
		return h.object(depth+1, false)
	case c == '[':
		return h.array(depth + 1)
	case c == '"':
		_, err := h.str(false)
		return err
	case c == 't':
		return h.literal("true")
	case c == 'f':
		return h.literal("false")
	case c == 'n':
		return h.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return h.number()
	}
	return errSyntax
}

// object parses an object at h.pos, which holds '{'.
func (h *header) object(depth int, top bool) error {
	if depth > MaxDepth {
		return errDepth
	}
	h.pos++
	h.skipWS()
	if h.peek() == '}' {
		h.pos++
		return nil
	}
	start := h.nnames
	for {
		if h.peek() != '"' {
			return errSyntax
		}
		name, err := h.str(true)
		if err != nil {
			return err
		}
		nb := h.bytes(name)
		for _, prev := range h.names[start:h.nnames] {
			if bytes.Equal(h.bytes(prev), nb) {
				return errDuplicate
			}
		}
		if h.nnames == maxNames {
			return errMembers
		}
		h.names[h.nnames] = name
		h.nnames++

		h.skipWS()
		if h.peek() != ':' {
			return errSyntax
		}
		h.pos++
		h.skipWS()

		if top {
			err = h.param(nb, depth)
		} else {
			err = h.value(depth)
		}
		if err != nil {
			return err
		}

		h.skipWS()
		switch h.peek() {
		case ',':
			h.pos++
			h.skipWS()
		case '}':
			h.pos++
			h.nnames = start
			return nil
		default:
			return errSyntax
		}
	}
}

// param parses the value of the top-level member called name.
func (h *header) param(name []byte, depth int) error {
	var m *member
	switch paramOf(name) {
	case paramAlg:
		m = &h.alg
	case paramKid:
		m = &h.kid
	case paramTyp:
		m = &h.typ
	case paramCrit:
		h.crit = true
	case paramB64:
		h.b64 = true
	case paramJWK:
		h.jwk = true
	case paramJKU:
		h.jku = true
	case paramX5U:
		h.x5u = true
	case paramX5C:
		h.x5c = true
	default:
		if foldsToRegistered(name) {
			return errFolded
		}
	}
	if m == nil {
		return h.value(depth)
	}
	m.present = true
	if h.peek() != '"' {
		return h.value(depth)
	}
	m.isString = true
	var err error
	m.val, err = h.str(true)
	return err
}

func paramOf(name []byte) uint8 {
	switch string(name) {
	case "alg":
		return paramAlg
	case "kid":
		return paramKid
	case "typ":
		return paramTyp
	case "crit":
		return paramCrit
	case "b64":
		return paramB64
	case "jwk":
		return paramJWK
	case "jku":
		return paramJKU
	case "x5u":
		return paramX5U
	case "x5c":
		return paramX5C
	}
	return paramOther
}

// foldsToRegistered reports whether name equals a registered parameter
// name under Unicode simple case folding (what encoding/json uses to match
// struct fields: "ALG", "Kid", and "\u212Aid" with a Kelvin sign all fold
// to a registered name). Exact spellings never reach this function.
func foldsToRegistered(name []byte) bool {
	// A registered name has at most 8 characters and a character that
	// folds to ASCII is at most 3 bytes long.
	if len(name) > 3*8 {
		return false
	}
	for _, r := range registered {
		if string(name) == r {
			return false // x5t and x5t#S256, which Check ignores
		}
		if bytes.EqualFold(name, []byte(r)) {
			return true
		}
	}
	return false
}

func (h *header) array(depth int) error {
	if depth > MaxDepth {
		return errDepth
	}
	h.pos++
	h.skipWS()
	if h.peek() == ']' {
		h.pos++
		return nil
	}
	for {
		if err := h.value(depth); err != nil {
			return err
		}
		h.skipWS()
		switch h.peek() {
		case ',':
			h.pos++
			h.skipWS()
		case ']':
			h.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

func (h *header) literal(word string) error {
	if len(h.src)-h.pos < len(word) || string(h.src[h.pos:h.pos+len(word)]) != word {
		return errSyntax
	}
	h.pos += len(word)
	return nil
}

// number parses -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (h *header) number() error {
	start := h.pos
	if err := h.numberSyntax(); err != nil {
		return err
	}
	// A number beyond float64's range is valid JSON grammar that
	// encoding/json (and so jwx) cannot read: refuse it here as well.
	if overflows(h.src[start:h.pos]) {
		return errNumberRange
	}
	return nil
}

// overflows reports whether num, a number of valid JSON grammar, is beyond
// float64's range. It decides by the decimal magnitude, without
// allocating, and asks strconv only at the boundary.
func overflows(num []byte) bool {
	i := 0
	if i < len(num) && num[i] == '-' {
		i++
	}
	// The value lies in [10^(m-1), 10^m) for m = mag + exp.
	mag, zero := 0, true
	for ; i < len(num) && num[i] >= '0' && num[i] <= '9'; i++ {
		if zero && num[i] == '0' {
			continue
		}
		zero = false
		mag++
	}
	if i < len(num) && num[i] == '.' {
		for i++; i < len(num) && num[i] >= '0' && num[i] <= '9'; i++ {
			if zero {
				if num[i] != '0' {
					zero = false
				} else {
					mag--
				}
			}
		}
	}
	if zero {
		return false
	}
	exp := 0
	if i < len(num) && (num[i] == 'e' || num[i] == 'E') {
		i++
		neg := i < len(num) && num[i] == '-'
		if i < len(num) && (num[i] == '+' || num[i] == '-') {
			i++
		}
		for ; i < len(num); i++ {
			if exp < 1_000_000 {
				exp = exp*10 + int(num[i]-'0')
			}
		}
		if neg {
			exp = -exp
		}
	}
	switch m := mag + exp; {
	case m <= 308: // below 10^308 < MaxFloat64
		return false
	case m >= 310: // at least 10^309 > MaxFloat64
		return true
	}
	_, err := strconv.ParseFloat(string(num), 64)
	return err != nil
}

func (h *header) numberSyntax() error {
	if h.peek() == '-' {
		h.pos++
	}
	switch c := h.peek(); {
	case c == '0':
		h.pos++
	case c >= '1' && c <= '9':
		h.digits()
	default:
		return errSyntax
	}
	if h.peek() == '.' {
		h.pos++
		if h.digits() == 0 {
			return errSyntax
		}
	}
	if c := h.peek(); c == 'e' || c == 'E' {
		h.pos++
		if c := h.peek(); c == '+' || c == '-' {
			h.pos++
		}
		if h.digits() == 0 {
			return errSyntax
		}
	}
	return nil
}

func (h *header) digits() int {
	n := 0
	for c := h.peek(); c >= '0' && c <= '9'; c = h.peek() {
		h.pos++
		n++
	}
	return n
}

// str parses a string at h.pos, which holds '"'. With keep, the unescaped
// string is appended to h.out and its span returned.
func (h *header) str(keep bool) (span, error) {
	h.pos++
	start := h.nout
	for {
		if h.pos >= len(h.src) {
			return span{}, errSyntax
		}
		c := h.src[h.pos]
		switch {
		case c == '"':
			h.pos++
			return span{off: uint16(start), n: uint16(h.nout - start)}, nil
		case c == '\\':
			r, err := h.escape()
			if err != nil {
				return span{}, err
			}
			if keep {
				h.nout += utf8.EncodeRune(h.out[h.nout:], r)
			}
		case c < 0x20:
			return span{}, errSyntax
		case c < utf8.RuneSelf:
			h.pos++
			if keep {
				h.out[h.nout] = c
				h.nout++
			}
		default:
			r, size := utf8.DecodeRune(h.src[h.pos:])
			if r == utf8.RuneError && size == 1 {
				return span{}, errUTF8
			}
			if keep {
				h.nout += copy(h.out[h.nout:], h.src[h.pos:h.pos+size])
			}
			h.pos += size
		}
	}
}

// escape parses an escape sequence at h.pos, which holds '\\', and
// returns the character it stands for. Surrogates must come in pairs.
func (h *header) escape() (rune, error) {
	if h.pos+1 >= len(h.src) {
		return 0, errSyntax
	}
	c := h.src[h.pos+1]
	h.pos += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
	default:
		return 0, errSyntax
	}
	r, ok := h.hex4()
	if !ok {
		return 0, errSyntax
	}
	switch {
	case r >= 0xdc00 && r <= 0xdfff:
		return 0, errSurrogate
	case r >= 0xd800 && r <= 0xdbff:
		if h.pos+1 >= len(h.src) || h.src[h.pos] != '\\' || h.src[h.pos+1] != 'u' {
			return 0, errSurrogate
		}
		h.pos += 2
		lo, ok := h.hex4()
		if !ok {
			return 0, errSyntax
		}
		if lo < 0xdc00 || lo > 0xdfff {
			return 0, errSurrogate
		}
		return 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00), nil
	}
	return r, nil
}

func (h *header) hex4() (rune, bool) {
	if len(h.src)-h.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range h.src[h.pos : h.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	h.pos += 4
	return r, true
}
