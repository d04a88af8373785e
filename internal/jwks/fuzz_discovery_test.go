package jwks

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// discoveryDocs seed FuzzParseDiscovery: the shapes of
// TestDiscovery_IssuerMustMatchExactly, for the issuer "https://idp.example.com".
var discoveryDocs = []string{
	`{"issuer":"https://idp.example.com","jwks_uri":"https://idp.example.com/keys"}`,
	`{"issuer":"https://idp.example.com/","jwks_uri":"https://idp.example.com/keys"}`,
	`{"issuer":"https://IDP.example.com","jwks_uri":"https://idp.example.com/keys"}`,
	`{"jwks_uri":"https://idp.example.com/keys"}`,
	`{"issuer":"https://idp.example.com","jwks_uri":"http://keys.example.com/k"}`,
	`{"issuer":"https://idp.example.com","jwks_uri":"https://u:p@idp.example.com/keys"}`,
	`{"issuer":"https://idp.example.com"}`,
	`{"issuer":"https://idp.example.com","jwks_uri":""}`,
	`{"issuer":1,"jwks_uri":"https://idp.example.com/keys"}`,
	`<html>`,
	`null`,
}

func FuzzParseDiscovery(f *testing.F) {
	for _, d := range discoveryDocs {
		f.Add(d)
	}
	const issuer = "https://idp.example.com"
	f.Fuzz(func(t *testing.T, body string) {
		u, err := parseDiscovery([]byte(body), issuer)
		if err != nil {
			if !errors.Is(err, ErrDiscovery) && !errors.Is(err, ErrIssuerMismatch) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			if strings.Contains(err.Error(), "u:p@") {
				t.Fatalf("error quotes the document: %v", err)
			}
			return
		}
		if ValidateURL(u) != nil {
			t.Fatalf("accepted jwks_uri %q fails ValidateURL", u)
		}
		var doc struct {
			Issuer string `json:"issuer"`
		}
		if json.Unmarshal([]byte(body), &doc) != nil || doc.Issuer != issuer {
			t.Fatalf("accepted a document whose issuer is %q", doc.Issuer)
		}
	})
}

// FuzzParseSet: whatever a key set holds, parseSet never panics, and a set
// it accepts holds only public signature keys.
func FuzzParseSet(f *testing.F) {
	f.Add(`{"keys":[{"kty":"XYZ","kid":"x"}]}`)
	f.Add(`{"keys":[{"kty":"RSA","use":"enc","alg":"RSA-OAEP","kid":"e","n":"AQAB","e":"AQAB"}]}`)
	f.Add(`{"keys":[{"kty":"OKP","crv":"X25519","kid":"x","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}]}`)
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","kid":"x","x":"AQ","y":"AQ"}]}`)
	f.Add(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`)
	f.Add(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"x","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","key_ops":["verify"]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		set, notes, err := parseSet([]byte(body))
		if err != nil {
			return
		}
		if set.Len() == 0 {
			t.Fatal("accepted an empty set")
		}
		for i := range set.Len() {
			k, _ := set.Key(i)
			if u, ok := k.KeyUsage(); ok && u != "sig" {
				t.Fatalf("kept a key with use %q", u)
			}
		}
		for _, n := range notes {
			if !strings.Contains(n, "skipped") {
				t.Fatalf("note %q", n)
			}
		}
	})
}
