package jwtpre

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// fuzzPolicy allows a few algorithms, including "none" spellings that must
// never be accepted anyway.
var fuzzPolicy = &Policy{
	Algs: []string{"ES256", "RS256", "EdDSA", "HS256", "none", "NONE"},
	Kids: func(kid string) bool { return len(kid)%2 == 0 },
}

// sentinelCount returns how many sentinels err wraps.
func sentinelCount(err error) int {
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	return n
}

func FuzzCheck(f *testing.F) {
	for _, tc := range checkCases() {
		// The multi-kilobyte size cases are left to the table test: the
		// fuzzer spends its time minimizing their mutations.
		if len(tc.token) <= 2048 {
			f.Add(tc.token)
		}
	}
	f.Add(strings.Repeat("A", DefaultMaxSize+1))
	strict := base64.RawURLEncoding.Strict()
	f.Fuzz(func(t *testing.T, token string) {
		h, err := Check(token, fuzzPolicy)
		if err != nil {
			if n := sentinelCount(err); n != 1 {
				t.Fatalf("err %v wraps %d sentinels", err, n)
			}
			if h != (Header{}) {
				t.Fatalf("refusal returned header %+v", h)
			}
			return
		}
		if len(token) > DefaultMaxSize {
			t.Fatalf("accepted %d bytes", len(token))
		}
		segs := strings.Split(token, ".")
		if len(segs) != 3 {
			t.Fatalf("accepted %d segments", len(segs))
		}
		var hdr []byte
		for i, s := range segs {
			if s == "" {
				t.Fatalf("accepted empty segment %d", i)
			}
			b, err := strict.DecodeString(s)
			if err != nil || strings.ContainsAny(s, "\r\n") || base64.RawURLEncoding.EncodeToString(b) != s {
				t.Fatalf("accepted non-canonical segment %d %q", i, s)
			}
			if i == 0 {
				hdr = b
			}
		}
		if !slices.Contains(fuzzPolicy.Algs, h.Alg) || strings.EqualFold(h.Alg, "none") {
			t.Fatalf("accepted alg %q", h.Alg)
		}
		// The standard library must read the same header.
		if !json.Valid(hdr) {
			t.Fatalf("accepted invalid JSON %q", hdr)
		}
		var m map[string]any
		if err := json.Unmarshal(hdr, &m); err != nil {
			t.Fatalf("accepted header %q: %v", hdr, err)
		}
		if m["alg"] != h.Alg {
			t.Fatalf("alg %q, encoding/json reads %v", h.Alg, m["alg"])
		}
		if kid, _ := m["kid"].(string); kid != h.Kid {
			t.Fatalf("kid %q, encoding/json reads %q", h.Kid, kid)
		}
		for _, k := range []string{"crit", "b64", "jwk", "jku", "x5u", "x5c"} {
			if _, ok := m[k]; ok {
				t.Fatalf("accepted header with %q", k)
			}
		}
		// A struct decoded the way a case-folding decoder would must agree.
		var s struct {
			Alg  string `json:"alg"`
			Kid  string `json:"kid"`
			Crit any    `json:"crit"`
			JWK  any    `json:"jwk"`
			JKU  any    `json:"jku"`
		}
		if err := json.Unmarshal(hdr, &s); err != nil || s.Alg != h.Alg || s.Kid != h.Kid || s.Crit != nil || s.JWK != nil || s.JKU != nil {
			t.Fatalf("struct decoding of %q disagrees: %+v, %v", hdr, s, err)
		}
	})
}

// FuzzHeader fuzzes the JSON scanner directly, against encoding/json.
func FuzzHeader(f *testing.F) {
	for _, tc := range checkCases() {
		if b, err := base64.RawURLEncoding.DecodeString(strings.Split(tc.token, ".")[0]); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, hdr []byte) {
		if len(hdr) == 0 {
			return // an empty segment, refused before the header is read
		}
		tok := enc(string(hdr)) + ".e30." + fakeSig
		_, err := Check(tok, fuzzPolicy)
		if len(tok) > DefaultMaxSize {
			// The size check runs first: a header this long never gets
			// decoded.
			if err != ErrTooLarge {
				t.Fatalf("token of %d bytes: %v, want ErrTooLarge", len(tok), err)
			}
			return
		}
		if len(hdr) > MaxHeaderSize {
			if !errors.Is(err, ErrHeader) {
				t.Fatalf("header of %d bytes: %v", len(hdr), err)
			}
			return
		}
		valid := json.Valid(hdr)
		switch {
		case err == errSyntax && valid:
			t.Fatalf("valid JSON %q refused as a syntax error", hdr)
		case err == errNotObject && valid && bytes.HasPrefix(bytes.TrimLeft(hdr, " \t\r\n"), []byte("{")):
			t.Fatalf("valid object %q refused as not an object", hdr)
		case !valid && (err == nil || !errors.Is(err, ErrHeader)):
			t.Fatalf("invalid JSON %q: err = %v", hdr, err)
		}
	})
}

var authRE = regexp.MustCompile(`^(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)$`)

func FuzzFromAuthorization(f *testing.F) {
	for _, tc := range authCases() {
		f.Add(tc.v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		token, ok := FromAuthorization(v)
		m := authRE.FindStringSubmatch(v)
		if ok != (m != nil) {
			t.Fatalf("FromAuthorization(%q) ok = %v, regexp says %v", v, ok, m != nil)
		}
		if !ok {
			if token != "" {
				t.Fatalf("token %q with ok=false", token)
			}
			return
		}
		if token == "" || token != m[1] || !strings.HasSuffix(v, token) {
			t.Fatalf("FromAuthorization(%q) = %q, want %q", v, token, m[1])
		}
	})
}

var tokenRE = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

// refSubprotocols is a slow, obvious reading of the same rules.
func refSubprotocols(values []string) (token string, others []string, ok bool) {
	bearers := 0
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			e = strings.Trim(e, " \t")
			if e == "" {
				continue
			}
			if !tokenRE.MatchString(e) {
				return "", nil, false
			}
			if len(e) >= 7 && strings.EqualFold(e[:7], "bearer.") {
				if len(e) == 7 {
					return "", nil, false
				}
				bearers++
				token = e[7:]
				continue
			}
			others = append(others, e)
		}
	}
	if bearers > 1 {
		return "", nil, false
	}
	return token, others, true
}

func FuzzFromSubprotocols(f *testing.F) {
	for _, tc := range subprotoCases() {
		f.Add(strings.Join(tc.values, "\n"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		values := strings.Split(joined, "\n")
		token, others, err := FromSubprotocols(values)
		wantToken, wantOthers, ok := refSubprotocols(values)
		if (err == nil) != ok {
			t.Fatalf("FromSubprotocols(%q) err = %v, reference ok = %v", values, err, ok)
		}
		if err != nil {
			if sentinelCount(err) != 1 || token != "" || others != nil {
				t.Fatalf("refusal %v returned %q, %q", err, token, others)
			}
			return
		}
		if token != wantToken || !slices.Equal(others, wantOthers) {
			t.Fatalf("FromSubprotocols(%q) = %q, %q; reference %q, %q", values, token, others, wantToken, wantOthers)
		}
		for _, o := range others {
			if strings.HasPrefix(strings.ToLower(o), "bearer.") {
				t.Fatalf("bearer entry %q among others", o)
			}
		}
	})
}
