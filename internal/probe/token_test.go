package probe

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A token with header {"alg":"HS256","typ":"JWT"} and claims {"sub":"a"}.
const sampleJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"

var jwtCases = []struct {
	name string
	tok  string
	ok   bool
}{
	{"valid", sampleJWT, true},
	{"no signature", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", true},
	{"two segments", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0", false},
	{"four segments", sampleJWT + ".x", false},
	{"header not JSON", "bm90anNvbg.eyJzdWIiOiJhIn0.", false},
	{"header an array", "WzFd.eyJzdWIiOiJhIn0.", false},
	{"header null", "bnVsbA.eyJzdWIiOiJhIn0.", false},
	{"header trailing data", "eyJhbGciOiJub25lIn19.eyJzdWIiOiJhIn0.", false},
	{"bad base64", "e$.eyJzdWIiOiJhIn0.", false},
	{"empty payload", "eyJhbGciOiJub25lIn0..", false},
	{"opaque", "abc", false},
}

func TestParseJWT(t *testing.T) {
	for _, tc := range jwtCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseJWT(tc.tok)
			if (err == nil) != tc.ok {
				t.Fatalf("parseJWT(%q): %v", tc.tok, err)
			}
			if err != nil && !errors.Is(err, errNotJWT) {
				t.Fatalf("error %v is not errNotJWT", err)
			}
		})
	}
}

// TestForgeries: every forged token keeps the real claims, and each
// attack's header says what it claims to.
func TestForgeries(t *testing.T) {
	j, err := parseJWT(sampleJWT)
	if err != nil {
		t.Fatal(err)
	}
	key, err := newProbeKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "crv": "P-256", "kid": "k1",
		"x": b64.EncodeToString(pub.X.FillBytes(make([]byte, 32))), "y": b64.EncodeToString(pub.Y.FillBytes(make([]byte, 32))),
	}}})
	forms, err := publicKeyForms(jwks)
	if err != nil || len(forms) != 3 {
		t.Fatalf("publicKeyForms: %d forms, %v", len(forms), err)
	}
	seen := map[string]int{}
	for _, f := range forgeries(j, key, "http://127.0.0.1:1/jwks.json", forms) {
		seen[f.check]++
		parts := strings.Split(f.token, ".")
		if len(parts) != 3 || parts[1] != j.payload {
			t.Fatalf("%s (%s): the claims changed: %q", f.check, f.what, f.token)
		}
		if f.token == sampleJWT {
			t.Fatalf("%s: the real token is not a forgery", f.check)
		}
		fj, err := parseJWT(f.token)
		if err != nil {
			t.Fatalf("%s: %v", f.check, err)
		}
		alg, _ := fj.header["alg"].(string)
		switch f.check {
		case "alg-none":
			if !strings.EqualFold(alg, "none") {
				t.Errorf("alg-none with alg %q", alg)
			}
		case "jwk-embedded":
			if fj.header["jwk"] == nil || alg != "ES256" {
				t.Errorf("jwk-embedded header %v", fj.header)
			}
		case "jku":
			if fj.header["jku"] != "http://127.0.0.1:1/jwks.json" {
				t.Errorf("jku header %v", fj.header)
			}
		case "hs256-public-key":
			if alg != "HS256" || fj.header["kid"] != "k1" {
				t.Errorf("hs256-public-key header %v", fj.header)
			}
		}
	}
	for check, n := range map[string]int{"alg-none": 5, "signature-stripped": 1, "signature-flipped": 1, "kid-injection": 2, "jwk-embedded": 1, "jku": 1, "hs256-public-key": 3} {
		if seen[check] != n {
			t.Errorf("%s: %d forgeries, want %d", check, seen[check], n)
		}
	}
}

var jwksSeeds = []string{
	`{"keys":[{"kty":"RSA","kid":"r","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}`,
	`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
	`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
	`{"keys":[{"kty":"RSA","n":"","e":"AQAB"}]}`,
	`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`,
	`{}`,
	`[]`,
}

func TestPublicKeyForms(t *testing.T) {
	for i, want := range []int{3, 3, 0, 0, 0, 0, -1} {
		forms, err := publicKeyForms([]byte(jwksSeeds[i]))
		if want < 0 {
			if err == nil {
				t.Errorf("seed %d: no error", i)
			}
			continue
		}
		if err != nil || len(forms) != want {
			t.Errorf("seed %d: %d forms, %v; want %d", i, len(forms), err, want)
		}
	}
}

func FuzzParseJWT(f *testing.F) {
	for _, tc := range jwtCases {
		f.Add(tc.tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		j, err := parseJWT(tok)
		if err != nil {
			return
		}
		// Forging from anything that parses keeps the claims.
		for _, fg := range forgeries(j, nil, "", nil) {
			if _, err := parseJWT(fg.token); err != nil {
				t.Fatalf("%s from %q: %v", fg.check, tok, err)
			}
		}
	})
}

func FuzzPublicKeyForms(f *testing.F) {
	for _, s := range jwksSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		forms, err := publicKeyForms(data)
		if err == nil && len(forms) > 12 {
			t.Fatalf("%d forms: more than 4 keys read", len(forms))
		}
	})
}
