package jwtpre

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// enc base64url-encodes s without padding.
func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// fakeSig is 64 bytes, the size of an ES256 signature.
var fakeSig = enc(strings.Repeat("\x9c", 64))

const testPayload = `{"sub":"alice","iat":1700000000,"exp":1700000900}`

// tok builds a compact token with the given header JSON, a fixed payload
// and a fake signature.
func tok(header string) string {
	return enc(header) + "." + enc(testPayload) + "." + fakeSig
}

var sentinels = []error{
	ErrTooLarge, ErrMalformed, ErrBadEncoding, ErrHeader, ErrAlgNone,
	ErrAlgNotAllowed, ErrCrit, ErrEmbeddedKey, ErrUnknownKid,
	ErrSubprotocol, ErrMultipleTokens,
}

// checkSentinel fails unless err wraps want and no other sentinel.
func checkSentinel(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Fatalf("err = %v also wraps %v", err, s)
		}
	}
}

var longKid = strings.Repeat("k", MaxKidLen)

func knownKids(kid string) bool {
	return kid == "key-1" || kid == "key-2" || kid == longKid
}

var (
	testPolicy = &Policy{Algs: []string{"ES256", "RS256", "EdDSA"}, Kids: knownKids}
	es256Only  = &Policy{Algs: []string{"ES256"}}
	noneListed = &Policy{Algs: []string{"none", "None", "ES256"}}
	requireKid = &Policy{Algs: []string{"ES256"}, RequireKid: true}
	smallMax   = &Policy{Algs: []string{"ES256"}, MaxSize: 100}
)

type checkCase struct {
	name  string
	token string
	pol   *Policy
	want  error  // nil: accepted
	hdr   Header // compared when accepted
}

// nest returns a header whose "x" member nests depth levels of arrays
// below the header object.
func nest(depth int) string {
	return `{"alg":"ES256","x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
}

func manyMembers(n int) string {
	var b strings.Builder
	b.WriteString(`{"alg":"ES256"`)
	for i := range n - 1 {
		b.WriteString(`,"m`)
		b.WriteByte(byte('A' + i/26))
		b.WriteByte(byte('a' + i%26))
		b.WriteString(`":0`)
	}
	b.WriteString("}")
	return b.String()
}

// withLastChar replaces the last character of segment seg (0, 1, 2).
func withLastChar(token string, seg int, c byte) string {
	parts := strings.Split(token, ".")
	p := []byte(parts[seg])
	p[len(p)-1] = c
	parts[seg] = string(p)
	return strings.Join(parts, ".")
}

// sizedToken returns a valid ES256 token of exactly n bytes (n large
// enough), padding the payload with a JSON string.
func sizedToken(n int) string {
	h := enc(`{"alg":"ES256"}`)
	fixed := len(h) + 2 + len(fakeSig)
	pl := n - fixed
	// A payload of 4k characters decodes to 3k bytes.
	for pl%4 != 0 {
		panic("sizedToken: adjust n")
	}
	body := `{"p":"` + strings.Repeat("a", pl/4*3-8) + `"}`
	return h + "." + enc(body) + "." + fakeSig
}

func checkCases() []checkCase {
	valid := tok(`{"alg":"ES256","typ":"JWT","kid":"key-1"}`)
	// The last character of a segment of 86 characters (64 bytes) carries
	// 4 unused bits: 'g' has value 32, so its low bits are 0.
	sizeOK := sizedToken(8192 - (len(enc(`{"alg":"ES256"}`))+2+len(fakeSig))%4)
	return []checkCase{
		{name: "valid ES256", token: valid, pol: testPolicy, hdr: Header{Alg: "ES256", Kid: "key-1", Typ: "JWT"}},
		{name: "valid no kid no typ", token: tok(`{"alg":"EdDSA"}`), pol: testPolicy, hdr: Header{Alg: "EdDSA"}},
		{name: "valid typ at+jwt any case", token: tok(`{"alg":"RS256","typ":"AT+JWT"}`), pol: testPolicy, hdr: Header{Alg: "RS256", Typ: "at+jwt"}},
		{name: "valid typ application/at+jwt", token: tok(`{"typ":"application/at+jwt","alg":"ES256"}`), pol: testPolicy, hdr: Header{Alg: "ES256", Typ: "application/at+jwt"}},
		{name: "valid typ lower jwt", token: tok(`{"alg":"ES256","typ":"jwt"}`), pol: testPolicy, hdr: Header{Alg: "ES256", Typ: "JWT"}},
		{name: "valid x5t hints", token: tok(`{"alg":"ES256","x5t":"abc","x5t#S256":"def"}`), pol: testPolicy, hdr: Header{Alg: "ES256"}},
		{name: "valid whitespace and unknown members", token: tok(" {\n\t\"alg\" : \"ES256\" ,\r\n \"n\":[1,-2.5e+3,0.0,true,false,null,{\"a\":\"é\\u00e9\\ud83d\\ude00\"}] } "), pol: testPolicy, hdr: Header{Alg: "ES256"}},
		{name: "valid depth 4", token: tok(nest(3)), pol: testPolicy, hdr: Header{Alg: "ES256"}},
		{name: "valid same name in sibling objects", token: tok(`{"alg":"ES256","a":{"x":1},"b":{"x":1},"x":{"x":{"x":1}}}`), pol: testPolicy, hdr: Header{Alg: "ES256"}},
		{name: "valid escaped kid", token: tok(`{"alg":"ES256","kid":"key\u002d1"}`), pol: testPolicy, hdr: Header{Alg: "ES256", Kid: "key-1"}},
		{name: "valid kid of 256 bytes", token: tok(`{"alg":"ES256","kid":"` + strings.Repeat("k", MaxKidLen) + `"}`), pol: testPolicy, hdr: Header{Alg: "ES256", Kid: strings.Repeat("k", MaxKidLen)}},
		{name: "valid traversal kid without lookup", token: tok(`{"alg":"ES256","kid":"../../etc/passwd"}`), pol: es256Only, hdr: Header{Alg: "ES256", Kid: "../../etc/passwd"}},
		{name: "valid RequireKid with kid", token: tok(`{"alg":"ES256","kid":"a"}`), pol: requireKid, hdr: Header{Alg: "ES256", Kid: "a"}},
		{name: "valid 8192 bytes by default", token: sizeOK, pol: es256Only, hdr: Header{Alg: "ES256"}},

		// 1. size
		{name: "oversized token", token: sizeOK + "AAAA", pol: es256Only, want: ErrTooLarge},
		{name: "oversized garbage", token: strings.Repeat("!", 9000), pol: es256Only, want: ErrTooLarge},
		{name: "over custom MaxSize", token: valid, pol: smallMax, want: ErrTooLarge},
		{name: "empty", token: "", pol: testPolicy, want: ErrMalformed},

		// 2. segments
		{name: "one segment", token: enc(`{"alg":"ES256"}`), pol: testPolicy, want: ErrMalformed},
		{name: "two segments", token: enc(`{"alg":"ES256"}`) + "." + enc(testPayload), pol: testPolicy, want: ErrMalformed},
		{name: "four segments", token: valid + "." + fakeSig, pol: testPolicy, want: ErrMalformed},
		{name: "five segments JWE", token: valid + ".AAAA.AAAA", pol: testPolicy, want: ErrMalformed},
		{name: "empty signature", token: enc(`{"alg":"ES256"}`) + "." + enc(testPayload) + ".", pol: testPolicy, want: ErrMalformed},
		{name: "alg none empty signature", token: enc(`{"alg":"none"}`) + "." + enc(testPayload) + ".", pol: testPolicy, want: ErrMalformed},
		{name: "empty header", token: "." + enc(testPayload) + "." + fakeSig, pol: testPolicy, want: ErrMalformed},
		{name: "empty payload detached", token: enc(`{"alg":"ES256"}`) + ".." + fakeSig, pol: testPolicy, want: ErrMalformed},
		{name: "only dots", token: "..", pol: testPolicy, want: ErrMalformed},

		// 3. encoding
		{name: "padding in signature", token: valid + "==", pol: testPolicy, want: ErrBadEncoding},
		{name: "padding in header", token: base64.URLEncoding.EncodeToString([]byte(`{"alg":"ES256" }`)) + "." + enc(testPayload) + "." + fakeSig, pol: testPolicy, want: ErrBadEncoding},
		{name: "space inside", token: valid[:10] + " " + valid[10:], pol: testPolicy, want: ErrBadEncoding},
		{name: "trailing newline", token: valid + "\n", pol: testPolicy, want: ErrBadEncoding},
		{name: "CR inside payload", token: strings.Replace(valid, ".", ".\r", 1), pol: testPolicy, want: ErrBadEncoding},
		{name: "standard alphabet", token: valid[:len(valid)-2] + "+/", pol: testPolicy, want: ErrBadEncoding},
		{name: "non-ASCII byte", token: valid + "\xc3\xa9", pol: testPolicy, want: ErrBadEncoding},
		{name: "length 1 mod 4", token: valid + "AAA", pol: testPolicy, want: ErrBadEncoding},
		{name: "non-canonical signature last char", token: withLastChar(valid, 2, 'h'), pol: testPolicy, want: ErrBadEncoding},
		{name: "non-canonical header last char", token: withLastChar(tok(`{"alg":"ES256" }`), 0, '1'), pol: testPolicy, want: ErrBadEncoding},

		// 4. header JSON
		{name: "header too large", token: tok(`{"alg":"ES256","x":"` + strings.Repeat("a", MaxHeaderSize) + `"}`), pol: testPolicy, want: ErrHeader},
		{name: "header not JSON", token: tok(`alg=ES256`), pol: testPolicy, want: ErrHeader},
		{name: "header array", token: tok(`[{"alg":"ES256"}]`), pol: testPolicy, want: ErrHeader},
		{name: "header string", token: tok(`"ES256"`), pol: testPolicy, want: ErrHeader},
		{name: "trailing garbage", token: tok(`{"alg":"ES256"}x`), pol: testPolicy, want: ErrHeader},
		{name: "two objects", token: tok(`{"alg":"ES256"}{"alg":"none"}`), pol: testPolicy, want: ErrHeader},
		{name: "trailing comma", token: tok(`{"alg":"ES256",}`), pol: testPolicy, want: ErrHeader},
		{name: "single quotes", token: tok(`{'alg':'ES256'}`), pol: testPolicy, want: ErrHeader},
		{name: "unquoted name", token: tok(`{alg:"ES256"}`), pol: testPolicy, want: ErrHeader},
		{name: "comment", token: tok(`{"alg":"ES256"/*x*/}`), pol: testPolicy, want: ErrHeader},
		{name: "leading zero", token: tok(`{"alg":"ES256","n":01}`), pol: testPolicy, want: ErrHeader},
		{name: "bare dot number", token: tok(`{"alg":"ES256","n":1.}`), pol: testPolicy, want: ErrHeader},
		{name: "number beyond float64 (encoding/json cannot read it)", token: tok(`{"alg":"ES256","n":64e04904}`), pol: testPolicy, want: ErrHeader},
		{name: "NaN", token: tok(`{"alg":"ES256","n":NaN}`), pol: testPolicy, want: ErrHeader},
		{name: "truncated literal", token: tok(`{"alg":"ES256","n":tru}`), pol: testPolicy, want: ErrHeader},
		{name: "bad escape", token: tok(`{"alg":"ES\x256"}`), pol: testPolicy, want: ErrHeader},
		{name: "control char in string", token: tok("{\"alg\":\"ES256\",\"x\":\"a\x01\"}"), pol: testPolicy, want: ErrHeader},
		{name: "unterminated", token: tok(`{"alg":"ES256"`), pol: testPolicy, want: ErrHeader},
		{name: "duplicate alg", token: tok(`{"alg":"ES256","alg":"none"}`), pol: testPolicy, want: ErrHeader},
		{name: "duplicate alg escaped", token: tok(`{"alg":"ES256","\u0061lg":"HS256"}`), pol: testPolicy, want: ErrHeader},
		{name: "duplicate kid", token: tok(`{"alg":"ES256","kid":"key-1","kid":"../x"}`), pol: testPolicy, want: ErrHeader},
		{name: "duplicate nested member", token: tok(`{"alg":"ES256","x":{"a":1,"a":2}}`), pol: testPolicy, want: ErrHeader},
		{name: "case variant ALG", token: tok(`{"alg":"ES256","ALG":"none"}`), pol: testPolicy, want: ErrHeader},
		{name: "case variant Jwk", token: tok(`{"alg":"ES256","Jwk":{}}`), pol: testPolicy, want: ErrHeader},
		{name: "Kelvin sign kid", token: tok(`{"alg":"ES256","\u212aid":"x"}`), pol: testPolicy, want: ErrHeader},
		{name: "long s crit", token: tok("{\"alg\":\"ES256\",\"cri\u0442\":1,\"crit\u017f\":1,\"x5t#\u017f256\":1}"), pol: testPolicy, want: ErrHeader},
		{name: "invalid UTF-8 in value", token: tok("{\"alg\":\"ES256\",\"x\":\"\xff\"}"), pol: testPolicy, want: ErrHeader},
		{name: "invalid UTF-8 in name", token: tok("{\"alg\":\"ES256\",\"\xc3\x28\":1}"), pol: testPolicy, want: ErrHeader},
		{name: "overlong UTF-8", token: tok("{\"alg\":\"ES256\",\"x\":\"\xc0\xaf\"}"), pol: testPolicy, want: ErrHeader},
		{name: "UTF-8 surrogate", token: tok("{\"alg\":\"ES256\",\"x\":\"\xed\xa0\x80\"}"), pol: testPolicy, want: ErrHeader},
		{name: "lone surrogate escape", token: tok(`{"alg":"ES256","x":"\ud800"}`), pol: testPolicy, want: ErrHeader},
		{name: "lone low surrogate escape", token: tok(`{"alg":"ES256","x":"\udc00\ud800"}`), pol: testPolicy, want: ErrHeader},
		{name: "BOM", token: tok("\xef\xbb\xbf{\"alg\":\"ES256\"}"), pol: testPolicy, want: ErrHeader},
		{name: "depth 5", token: tok(nest(4)), pol: testPolicy, want: ErrHeader},
		{name: "deep nesting", token: tok(nest(400)), pol: testPolicy, want: ErrHeader},
		{name: "too many members", token: tok(manyMembers(maxNames + 1)), pol: testPolicy, want: ErrHeader},

		// 5. alg
		{name: "alg none", token: tok(`{"alg":"none"}`), pol: testPolicy, want: ErrAlgNone},
		{name: "alg None", token: tok(`{"alg":"None","typ":"JWT"}`), pol: testPolicy, want: ErrAlgNone},
		{name: "alg NONE", token: tok(`{"alg":"NONE"}`), pol: testPolicy, want: ErrAlgNone},
		{name: "alg nOnE escaped", token: tok(`{"alg":"n\u004fnE"}`), pol: testPolicy, want: ErrAlgNone},
		{name: "alg none even if listed", token: tok(`{"alg":"none"}`), pol: noneListed, want: ErrAlgNone},
		{name: "alg None even if listed", token: tok(`{"alg":"None"}`), pol: noneListed, want: ErrAlgNone},
		{name: "alg missing", token: tok(`{"typ":"JWT"}`), pol: testPolicy, want: ErrHeader},
		{name: "alg empty object", token: tok(`{}`), pol: testPolicy, want: ErrHeader},
		{name: "alg number", token: tok(`{"alg":256}`), pol: testPolicy, want: ErrHeader},
		{name: "alg null", token: tok(`{"alg":null}`), pol: testPolicy, want: ErrHeader},
		{name: "alg array", token: tok(`{"alg":["ES256"]}`), pol: testPolicy, want: ErrHeader},
		{name: "HS256 when only ES256 allowed", token: tok(`{"alg":"HS256","typ":"JWT"}`), pol: es256Only, want: ErrAlgNotAllowed},
		{name: "alg wrong case", token: tok(`{"alg":"es256"}`), pol: es256Only, want: ErrAlgNotAllowed},
		{name: "alg empty string", token: tok(`{"alg":""}`), pol: es256Only, want: ErrAlgNotAllowed},
		{name: "alg with NUL", token: tok(`{"alg":"ES256\u0000"}`), pol: es256Only, want: ErrAlgNotAllowed},
		{name: "nil policy", token: tok(`{"alg":"ES256"}`), pol: nil, want: ErrAlgNotAllowed},
		{name: "empty policy", token: tok(`{"alg":"ES256"}`), pol: &Policy{}, want: ErrAlgNotAllowed},

		// 6. crit
		{name: "crit", token: tok(`{"alg":"ES256","crit":["exp"],"exp":1}`), pol: testPolicy, want: ErrCrit},
		{name: "crit empty", token: tok(`{"alg":"ES256","crit":[]}`), pol: testPolicy, want: ErrCrit},
		{name: "crit before jwk", token: tok(`{"alg":"ES256","jwk":{},"crit":["b64"]}`), pol: testPolicy, want: ErrCrit},

		// 7. embedded keys
		{name: "jwk", token: tok(`{"alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}`), pol: testPolicy, want: ErrEmbeddedKey},
		{name: "jwk null", token: tok(`{"alg":"ES256","jwk":null}`), pol: testPolicy, want: ErrEmbeddedKey},
		{name: "jku", token: tok(`{"alg":"RS256","jku":"https://evil.example/jwks.json"}`), pol: testPolicy, want: ErrEmbeddedKey},
		{name: "x5u", token: tok(`{"alg":"RS256","x5u":"https://evil.example/cert.pem"}`), pol: testPolicy, want: ErrEmbeddedKey},
		{name: "x5c", token: tok(`{"alg":"RS256","x5c":["MIIB"]}`), pol: testPolicy, want: ErrEmbeddedKey},

		// 8. kid
		{name: "kid path traversal", token: tok(`{"alg":"ES256","kid":"../../etc/passwd"}`), pol: testPolicy, want: ErrUnknownKid},
		{name: "kid SQL", token: tok(`{"alg":"ES256","kid":"x' UNION SELECT 'key"}`), pol: testPolicy, want: ErrUnknownKid},
		{name: "kid over-long", token: tok(`{"alg":"ES256","kid":"` + strings.Repeat("k", MaxKidLen+1) + `"}`), pol: testPolicy, want: ErrHeader},
		{name: "kid empty", token: tok(`{"alg":"ES256","kid":""}`), pol: testPolicy, want: ErrHeader},
		{name: "kid newline", token: tok(`{"alg":"ES256","kid":"key-1\n"}`), pol: testPolicy, want: ErrHeader},
		{name: "kid NUL", token: tok(`{"alg":"ES256","kid":"key-1\u0000"}`), pol: es256Only, want: ErrHeader},
		{name: "kid non-ASCII", token: tok(`{"alg":"ES256","kid":"kéy"}`), pol: es256Only, want: ErrHeader},
		{name: "kid number", token: tok(`{"alg":"ES256","kid":1}`), pol: testPolicy, want: ErrHeader},
		{name: "kid required", token: tok(`{"alg":"ES256"}`), pol: requireKid, want: ErrUnknownKid},
		{name: "unknown kid before bad typ", token: tok(`{"alg":"ES256","kid":"nope","typ":"JOSE"}`), pol: testPolicy, want: ErrUnknownKid},

		// 9. typ
		{name: "typ JOSE", token: tok(`{"alg":"ES256","typ":"JOSE"}`), pol: testPolicy, want: ErrHeader},
		{name: "typ application/jwt", token: tok(`{"alg":"ES256","typ":"application/jwt"}`), pol: testPolicy, want: ErrHeader},
		{name: "typ number", token: tok(`{"alg":"ES256","typ":1}`), pol: testPolicy, want: ErrHeader},
		{name: "typ empty", token: tok(`{"alg":"ES256","typ":""}`), pol: testPolicy, want: ErrHeader},

		// 10. b64
		{name: "b64 false", token: tok(`{"alg":"ES256","b64":false}`), pol: testPolicy, want: ErrCrit},
		{name: "b64 true", token: tok(`{"alg":"ES256","b64":true,"kid":"key-1"}`), pol: testPolicy, want: ErrCrit},
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range checkCases() {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Check(tc.token, tc.pol)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if h != tc.hdr {
					t.Fatalf("header = %+v, want %+v", h, tc.hdr)
				}
				return
			}
			checkSentinel(t, err, tc.want)
			if h != (Header{}) {
				t.Errorf("refusal returned header %+v", h)
			}
			if strings.Contains(err.Error(), tc.token) && tc.token != "" {
				t.Errorf("error message contains the token")
			}
		})
	}
}

// TestCheckAllocs pins the allocation budget: nothing for a refusal before
// the kid lookup, at most one string (the kid) otherwise.
func TestCheckAllocs(t *testing.T) {
	for _, tc := range checkCases() {
		t.Run(tc.name, func(t *testing.T) {
			n := testing.AllocsPerRun(20, func() { _, _ = Check(tc.token, tc.pol) })
			// Only a header with a kid may cost the kid string.
			limit := 0.0
			if hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(tc.token, ".")[0]); err == nil &&
				strings.Contains(string(hdr), `"kid":"`) {
				limit = 1
			}
			if n > limit {
				t.Errorf("%v allocations, want <= %v", n, limit)
			}
		})
	}
}

// TestJWT_AlgNone: an unsigned token is refused in every spelling, with
// or without a signature segment, even when "none" is listed.
func TestJWT_AlgNone(t *testing.T) {
	for _, alg := range []string{"none", "None", "NONE", "nONE", `n\u006fne`} {
		h := enc(`{"alg":"` + alg + `"}`)
		for _, token := range []string{h + "." + enc(testPayload) + ".", h + "." + enc(testPayload) + "." + fakeSig} {
			for _, p := range []*Policy{testPolicy, noneListed} {
				if _, err := Check(token, p); !errors.Is(err, ErrAlgNone) && !errors.Is(err, ErrMalformed) {
					t.Errorf("alg %s, token %q: err = %v", alg, token, err)
				}
			}
		}
	}
}

// TestJWT_HS256KeyConfusion: an HS256 token "signed" with the server's RSA
// public key is refused before any key is touched when HS256 is not
// allowed.
func TestJWT_HS256KeyConfusion(t *testing.T) {
	p := &Policy{Algs: []string{"RS256"}}
	token := tok(`{"alg":"HS256","typ":"JWT","kid":"rsa-1"}`)
	if _, err := Check(token, p); !errors.Is(err, ErrAlgNotAllowed) {
		t.Fatalf("err = %v, want ErrAlgNotAllowed", err)
	}
}

// TestJWT_NonCanonicalVariants: of all spellings of the last character of
// each segment of a valid token, only canonical ones are accepted, so no
// two accepted strings decode to the same bytes.
func TestJWT_NonCanonicalVariants(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	strict := base64.RawURLEncoding.Strict()
	// Headers of 15, 16 and 17 bytes: segment lengths 0, 2 and 3 mod 4.
	for _, hdr := range []string{`{"alg":"ES256"}`, `{"alg":"ES256" }`, `{"alg":"ES256"  }`} {
		for _, tail := range []string{"", " ", "  "} {
			valid := enc(hdr) + "." + enc(testPayload+tail) + "." + enc("sig"+tail)
			if _, err := Check(valid, es256Only); err != nil {
				t.Fatalf("valid %q: %v", valid, err)
			}
			for seg := range 3 {
				accepted := 0
				for i := 0; i < len(alphabet); i++ {
					variant := withLastChar(valid, seg, alphabet[i])
					_, err := Check(variant, es256Only)
					_, decErr := strict.DecodeString(strings.Split(variant, ".")[seg])
					switch {
					case decErr != nil && !errors.Is(err, ErrBadEncoding):
						t.Errorf("segment %d variant %q: err = %v, want ErrBadEncoding", seg, variant, err)
					case decErr == nil && errors.Is(err, ErrBadEncoding):
						t.Errorf("segment %d canonical variant %q refused: %v", seg, variant, err)
					case err == nil:
						accepted++
					}
				}
				// Payload and signature are not parsed: every canonical
				// spelling is accepted, 64 >> unused bits of them.
				if seg > 0 {
					want := map[int]int{0: 64, 2: 4, 3: 16}[len(strings.Split(valid, ".")[seg])%4]
					if accepted != want {
						t.Errorf("segment %d of %q: %d variants accepted, want %d", seg, valid, accepted, want)
					}
				}
			}
		}
	}
}

func TestDecodeMatchesStdlib(t *testing.T) {
	for n := range 40 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*37 + n)
		}
		s := base64.RawURLEncoding.EncodeToString(b)
		if err := checkSegment(s); err != nil {
			t.Fatalf("checkSegment(%q): %v", s, err)
		}
		if got := decodedLen(len(s)); got != n {
			t.Fatalf("decodedLen(%d) = %d, want %d", len(s), got, n)
		}
		got := make([]byte, n)
		decodeSegment(got, s)
		if string(got) != string(b) {
			t.Fatalf("decodeSegment(%q) = %x, want %x", s, got, b)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	valid := tok(`{"alg":"ES256","typ":"JWT","kid":"key-1"}`)
	noKid := tok(`{"alg":"ES256","typ":"JWT"}`)
	for _, bc := range []struct{ name, token string }{
		{"valid-ES256-kid", valid},
		{"valid-ES256", noKid},
		{"garbage", "this is not a token at all, just some bytes from a scanner"},
		{"garbage-3-segments", "aaaa.bbbb.cc!c"},
		{"alg-none", enc(`{"alg":"none","typ":"JWT"}`) + "." + enc(testPayload) + "." + fakeSig},
		{"oversized", strings.Repeat("A", 10000)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.token)))
			for b.Loop() {
				_, _ = Check(bc.token, testPolicy)
			}
		})
	}
}

// TestOverflows agrees with strconv.ParseFloat on both sides of
// float64's largest value.
func TestOverflows(t *testing.T) {
	for _, n := range []string{
		"0", "-0", "0.0e999999", "1", "1e308", "1.7976931348623157e308", "1.7976931348623158e308",
		"1.7976931348623159e308", "1.8e308", "-1.8e308", "17976931348623157e292", "0.0018e311",
		"1e309", "1e310", "64e04904", "1e-999999", "0.000001e313", "123.456e306", "9e307",
	} {
		_, err := strconv.ParseFloat(n, 64)
		if got := overflows([]byte(n)); got != (err != nil) {
			t.Errorf("overflows(%s) = %v, strconv says %v", n, got, err)
		}
	}
}
