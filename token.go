package wssec

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec/internal/jwks"
	"github.com/wssec/wssec/internal/jwtpre"
)

// ringKey is one verification key with the algorithms it may verify.
type ringKey struct {
	kid  string
	raw  any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte
	algs []string
}

// ring is an immutable, pre-digested key set.
type ring struct {
	keys      []ringKey
	symmetric bool
}

// keyAlgs returns the algorithms a raw key can verify, strongest hash last.
func keyAlgs(raw any) ([]string, error) {
	switch k := raw.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 required", k.N.BitLen())
		}
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}, nil
		case elliptic.P384():
			return []string{"ES384"}, nil
		case elliptic.P521():
			return []string{"ES512"}, nil
		}
		return nil, errors.New("unsupported elliptic curve")
	case ed25519.PublicKey:
		return []string{"EdDSA", "Ed25519"}, nil
	case []byte:
		var algs []string
		if len(k) >= 32 {
			algs = append(algs, "HS256")
		}
		if len(k) >= 48 {
			algs = append(algs, "HS384")
		}
		if len(k) >= 64 {
			algs = append(algs, "HS512")
		}
		if algs == nil {
			return nil, fmt.Errorf("HMAC key of %d bytes; at least 32 required", len(k))
		}
		return algs, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", raw)
}

// ringFromSet digests a JWK set. Private keys, mixed symmetric and
// asymmetric keys, and keys of unsupported types are refused.
func ringFromSet(set jwk.Set) (*ring, error) {
	if set == nil || set.Len() == 0 {
		return nil, errors.New("empty key set")
	}
	r := &ring{}
	var sym, asym bool
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		var raw any
		if k.KeyType() == jwa.OctetSeq() {
			var b []byte
			if err := jwk.Export(k, &b); err != nil {
				return nil, fmt.Errorf("key %q: %v", kid, err)
			}
			raw = b
			sym = true
		} else {
			if priv, err := jwk.IsPrivateKey(k); err == nil && priv {
				return nil, fmt.Errorf("key %q is a private key; a verification set holds public keys only", kid)
			}
			if err := jwk.Export(k, &raw); err != nil {
				return nil, fmt.Errorf("key %q: %v", kid, err)
			}
			asym = true
		}
		algs, err := keyAlgs(raw)
		if err != nil {
			return nil, fmt.Errorf("key %q: %v", kid, err)
		}
		if a, ok := k.Algorithm(); ok && a.String() != "" {
			if !slices.Contains(algs, a.String()) {
				return nil, fmt.Errorf("key %q: alg %q does not fit its key type", kid, a.String())
			}
			algs = []string{a.String()}
		}
		if u, ok := k.KeyUsage(); ok && u != "" && u != "sig" {
			continue // an encryption key never verifies a signature
		}
		r.keys = append(r.keys, ringKey{kid: kid, raw: raw, algs: algs})
	}
	if sym && asym {
		return nil, errors.New("the set mixes symmetric (HMAC) and asymmetric keys; an attacker could sign with a public key as an HMAC secret")
	}
	if len(r.keys) == 0 {
		return nil, errors.New("no signature keys in the set")
	}
	r.symmetric = sym
	return r, nil
}

// find returns the key for kid that may verify alg.
func (r *ring) find(kid, alg string) (*ringKey, bool) {
	if kid == "" {
		if len(r.keys) != 1 {
			return nil, false
		}
		k := &r.keys[0]
		return k, slices.Contains(k.algs, alg)
	}
	for i := range r.keys {
		k := &r.keys[i]
		if k.kid == kid {
			return k, slices.Contains(k.algs, alg)
		}
	}
	return nil, false
}

func (r *ring) hasKid(kid string) bool {
	for i := range r.keys {
		if r.keys[i].kid == kid {
			return true
		}
	}
	return false
}

func (r *ring) allAlgs() []string {
	var out []string
	for _, k := range r.keys {
		for _, a := range k.algs {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// verifier checks tokens: cheap structural checks first, then one
// signature verification with exactly one key, then the claims.
type verifier struct {
	static *ring     // WithKeySet or WithHMACKey
	dyn    *jwksRing // WithJWKS
	algs   []string  // allowed algorithms (config ∩ keys), nil with JWKS = any asymmetric
	pre    jwtpre.Policy

	issuer      string
	audience    []string
	skew        time.Duration
	maxLifetime time.Duration
	now         func() time.Time
}

// jwksAlgs are the algorithms accepted from a JWKS when WithAlgorithms is
// not set: asymmetric only, since a published set never holds secrets.
var jwksAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// ringFor returns the key ring to verify with; with a JWKS it is derived
// from the current set (digested once per set).
func (v *verifier) ringFor(ctx context.Context, kid string) (*ring, error) {
	if v.static != nil {
		return v.static, nil
	}
	if kid != "" {
		v.dyn.f.LookupKid(ctx, kid) // refetches at most once, rate limited
	}
	return v.dyn.current()
}

// jwksRing digests each set the fetcher publishes once.
type jwksRing struct {
	f *jwks.Fetcher

	mu   sync.Mutex // guards the fields below
	set  jwk.Set
	ring *ring
	err  error
}

func (j *jwksRing) current() (*ring, error) {
	s := j.f.Set()
	j.mu.Lock()
	defer j.mu.Unlock()
	if s != j.set {
		j.set = s
		j.ring, j.err = ringFromSet(s)
	}
	return j.ring, j.err
}

func tokenRefusal(reason, detail string) *refusal {
	return refuse(401, reason, "invalid token", ErrTokenInvalid, errors.New(detail))
}

// verify authenticates a compact JWT. The returned refusal never holds the
// token.
func (v *verifier) verify(ctx context.Context, tok string) (*Principal, *refusal) {
	hdr, err := jwtpre.Check(tok, &v.pre)
	if err != nil {
		return nil, tokenRefusal(precheckReason(err), err.Error())
	}
	r, err := v.ringFor(ctx, hdr.Kid)
	if err != nil {
		return nil, refuse(503, "keys_unavailable", "service unavailable", ErrTokenInvalid, err)
	}
	k, ok := r.find(hdr.Kid, hdr.Alg)
	if !ok {
		return nil, tokenRefusal("token_key", "no key for this kid and alg")
	}
	alg, ok := jwa.LookupSignatureAlgorithm(hdr.Alg)
	if !ok {
		return nil, tokenRefusal("token_alg", "unsupported alg")
	}
	t, err := jwt.ParseString(tok, jwt.WithKey(alg, k.raw), jwt.WithValidate(false))
	if err != nil {
		return nil, tokenRefusal("token_signature", "signature or encoding rejected")
	}
	return v.claims(t)
}

func precheckReason(err error) string {
	switch {
	case errors.Is(err, jwtpre.ErrTooLarge):
		return "token_too_large"
	case errors.Is(err, jwtpre.ErrAlgNone), errors.Is(err, jwtpre.ErrAlgNotAllowed):
		return "token_alg"
	case errors.Is(err, jwtpre.ErrUnknownKid):
		return "token_kid"
	case errors.Is(err, jwtpre.ErrCrit), errors.Is(err, jwtpre.ErrEmbeddedKey), errors.Is(err, jwtpre.ErrHeader):
		return "token_header"
	}
	return "token_malformed"
}

// maxSubjectLen bounds the subject, which keys quotas and logs.
const maxSubjectLen = 256

// claims checks exp (required), nbf, iat, the lifetime, iss and aud, and
// builds the Principal.
func (v *verifier) claims(t jwt.Token) (*Principal, *refusal) {
	now := v.now()
	exp, ok := t.Expiration()
	if !ok {
		return nil, tokenRefusal("token_claims", "exp missing")
	}
	if !now.Before(exp.Add(v.skew)) {
		return nil, refuse(401, "token_expired", "token expired", ErrTokenExpired, nil)
	}
	if nbf, ok := t.NotBefore(); ok && now.Add(v.skew).Before(nbf) {
		return nil, tokenRefusal("token_not_yet_valid", "nbf in the future")
	}
	iat, hasIat := t.IssuedAt()
	if hasIat && now.Add(v.skew).Before(iat) {
		return nil, tokenRefusal("token_claims", "iat in the future")
	}
	start := now
	if hasIat {
		start = iat
	}
	if exp.Sub(start) > v.maxLifetime {
		return nil, tokenRefusal("token_lifetime", "lifetime longer than allowed")
	}
	if v.issuer != "" {
		if iss, _ := t.Issuer(); iss != v.issuer {
			return nil, tokenRefusal("token_issuer", "issuer not accepted")
		}
	}
	if len(v.audience) > 0 {
		auds, _ := t.Audience()
		if len(intersect(auds, v.audience)) == 0 {
			return nil, tokenRefusal("token_audience", "audience not accepted")
		}
	}
	sub, _ := t.Subject()
	if sub == "" || len(sub) > maxSubjectLen {
		return nil, tokenRefusal("token_claims", "sub missing or too long")
	}
	p := &Principal{Subject: sub, ExpiresAt: exp}
	if hasIat {
		p.IssuedAt = iat
	}
	p.ID, _ = t.JwtID()
	p.Claims = make(map[string]any)
	for _, name := range t.Keys() {
		switch name {
		case "sub", "exp", "iat", "nbf", "iss", "aud", "jti":
			continue
		}
		var val any
		if err := t.Get(name, &val); err == nil {
			p.Claims[name] = val
		}
	}
	if s, ok := p.Claims["tenant"].(string); ok {
		p.Tenant = s
	}
	switch s := p.Claims["scope"].(type) {
	case string:
		p.Scopes = strings.Fields(s)
	}
	if p.Scopes == nil {
		p.Scopes = stringList(p.Claims["scp"])
	}
	p.Roles = stringList(p.Claims["roles"])
	return p, nil
}

func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		return strings.Fields(l)
	}
	return nil
}
