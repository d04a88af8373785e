package wssec

import (
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec/internal/jsonptr"
)

// ClaimMapping says where in a token's claims the Principal's fields are
// found, for identity providers that do not use the claim names wssec
// reads by default. Each field is a JSON Pointer (RFC 6901) into the
// claims set: "/tid", "/realm_access/roles", "/cognito:groups", or
// "/https:~1~1example.com~1tenant" for the claim named
// "https://example.com/tenant" ("~1" stands for '/', "~0" for '~').
//
// An empty field keeps the default: Subject "/sub", Tenant "/tenant",
// Scopes "/scope" (a space-separated string) or else "/scp", Roles
// "/roles". A pointer that does not parse, or the empty document pointer
// itself, is a configuration error.
//
// A mapped claim that is present with the wrong type refuses the token
// (401, reason token_claims; the log names the pointer, never the value):
// Subject and Tenant must be strings, Scopes a space-separated string or
// an array of strings, Roles an array of strings or a space-separated
// string. A mapped claim that is absent leaves the field empty, except
// Subject, which every token must carry.
type ClaimMapping struct {
	Subject string
	Tenant  string
	Scopes  string
	Roles   string
}

// claimPtr is one compiled pointer of a ClaimMapping.
type claimPtr struct {
	set  bool
	name string   // the first reference token: the claim's name
	rest []string // the tokens below it
	ptr  jsonptr.Pointer
}

func (c *claimPtr) text() string { return fmt.Sprintf("%q", c.ptr.String()) }

// lookup resolves the pointer in the token's claims.
func (c *claimPtr) lookup(t jwt.Token) (any, bool) {
	if !t.Has(c.name) {
		return nil, false
	}
	var top any
	if err := t.Get(c.name, &top); err != nil {
		return nil, false
	}
	return jsonptr.ResolveFrom(top, c.rest)
}

// str resolves a pointer that must name a string.
func (c *claimPtr) str(t jwt.Token) (string, bool) {
	v, ok := c.lookup(t)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// claimMapping is a compiled ClaimMapping; the zero value maps nothing.
type claimMapping struct {
	subject, tenant, scopes, roles claimPtr
}

// compileClaimMapping parses the pointers of m, reporting each bad one.
func compileClaimMapping(m ClaimMapping, bad func(opt, val, reason string)) claimMapping {
	var out claimMapping
	for _, f := range []struct {
		field string
		src   string
		dst   *claimPtr
	}{
		{"Subject", m.Subject, &out.subject},
		{"Tenant", m.Tenant, &out.tenant},
		{"Scopes", m.Scopes, &out.scopes},
		{"Roles", m.Roles, &out.roles},
	} {
		if f.src == "" {
			continue
		}
		p, err := jsonptr.Parse(f.src)
		if err != nil {
			bad("WithClaimMapping "+f.field, fmt.Sprintf("%q", f.src), err.Error()+` (a JSON Pointer looks like "/realm_access/roles")`)
			continue
		}
		toks := p.Tokens()
		if len(toks) == 0 {
			bad("WithClaimMapping "+f.field, `""`, "the empty pointer names the whole claims set, not a claim")
			continue
		}
		*f.dst = claimPtr{set: true, name: toks[0], rest: toks[1:], ptr: p}
	}
	return out
}

// apply overrides p's Tenant, Scopes and Roles with the mapped claims (the
// Subject is mapped before p is built). A mapped claim of the wrong type
// is a refusal.
func (m *claimMapping) apply(t jwt.Token, p *Principal) *refusal {
	wrong := func(field string, c *claimPtr, want string) *refusal {
		return tokenRefusal("token_claims", "the claim at "+c.text()+" (WithClaimMapping "+field+") is not "+want)
	}
	if m.tenant.set {
		p.Tenant = ""
		if v, ok := m.tenant.lookup(t); ok {
			s, ok := v.(string)
			if !ok {
				return wrong("Tenant", &m.tenant, "a string")
			}
			p.Tenant = s
		}
	}
	if m.scopes.set {
		p.Scopes = nil
		if v, ok := m.scopes.lookup(t); ok {
			l, ok := strictStringList(v)
			if !ok {
				return wrong("Scopes", &m.scopes, "a space-separated string or an array of strings")
			}
			p.Scopes = l
		}
	}
	if m.roles.set {
		p.Roles = nil
		if v, ok := m.roles.lookup(t); ok {
			l, ok := strictStringList(v)
			if !ok {
				return wrong("Roles", &m.roles, "an array of strings or a space-separated string")
			}
			p.Roles = l
		}
	}
	return nil
}

// strictStringList reads a space-separated string or an array whose
// elements are all strings.
func strictStringList(v any) ([]string, bool) {
	switch l := v.(type) {
	case string:
		return strings.Fields(l), true
	case []string:
		return append([]string(nil), l...), true
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// canonicalTyp folds the media-type spelling of a JWT "typ" (RFC 7515
// §4.1.9: "application/" may be omitted; compared without regard to case)
// so that "application/at+jwt" and "AT+JWT" both read "at+jwt".
func canonicalTyp(typ string) string {
	typ = strings.ToLower(typ)
	return strings.TrimPrefix(typ, "application/")
}
