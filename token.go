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
	"sync/atomic"
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
	// gen identifies this digest of a JWKS: each new set gets a new
	// generation, so cached verifications by an older set are ignored.
	// A static ring (WithKeySet, WithHMACKey) is generation 0.
	gen uint64
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
// signature verification with exactly one key, then the claims. A token
// verified before, under the same key ring, skips the signature check
// (see tokenCache and verify).
type verifier struct {
	static *ring     // WithKeySet or WithHMACKey
	dyn    *jwksRing // WithJWKS
	algs   []string  // allowed algorithms (config ∩ keys), nil with JWKS = any asymmetric
	pre    jwtpre.Policy

	issuer      string
	audience    []string
	skew        time.Duration
	maxLifetime time.Duration
	// allowNoIat accepts tokens without iat (WithTokensWithoutIssuedAt);
	// by default they are refused, since no revocation can be kept
	// long enough to cover them (see SECURITY.md).
	allowNoIat bool
	now        func() time.Time

	cache tokenCache
	// sigChecks counts signature verifications, cacheHits the tokens
	// accepted from the cache (for tests and benchmarks).
	sigChecks atomic.Int64
	cacheHits atomic.Int64

	// precheckErrs maps a jwtpre error message to the refusal error built
	// for it, so that a malformed token costs no error formatting.
	// jwtpre's errors are package-level values, a small fixed set;
	// precheckErrN bounds the map in case that ever changes.
	precheckErrs sync.Map // string → error
	precheckErrN atomic.Int32
}

// maxPrecheckErrs bounds verifier.precheckErrs.
const maxPrecheckErrs = 128

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

// currentRing returns the key ring in use now, without the kid lookup
// that may refetch a JWKS: for a cache hit, whose kid the ring knew.
func (v *verifier) currentRing() (*ring, error) {
	if v.static != nil {
		return v.static, nil
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
	gen  uint64 // generation of the last set digested
}

func (j *jwksRing) current() (*ring, error) {
	s := j.f.Set()
	j.mu.Lock()
	defer j.mu.Unlock()
	if s != j.set {
		j.set = s
		j.gen++
		j.ring, j.err = ringFromSet(s)
		if j.ring != nil {
			j.ring.gen = j.gen
		}
	}
	return j.ring, j.err
}

func tokenRefusal(reason, detail string) *refusal {
	return refuse(401, reason, "invalid token", ErrTokenInvalid, errors.New(detail))
}

// verify authenticates a compact JWT. The returned refusal never holds the
// token.
//
// A token that passed every check before, under the key ring in use now,
// is taken from the cache: its signature, and the claims that are a pure
// function of its bytes (iss, aud, sub, the Principal), are not checked
// again, but its time claims are, against the clock. Revocation, single
// use, bans and quotas are the Guard's, after verify, and run on every
// handshake whether the token came from the cache or not. The Principal
// returned is the caller's own copy.
func (v *verifier) verify(ctx context.Context, tok string) (*Principal, *refusal) {
	hdr, err := jwtpre.Check(tok, &v.pre)
	if err != nil {
		return nil, v.precheckRefusal(err)
	}
	now := v.now()
	d := digestToken(tok)
	if e, ok := v.cache.get(&d, now); ok {
		r, err := v.currentRing()
		if err != nil {
			return nil, refuse(503, "keys_unavailable", "service unavailable", ErrTokenInvalid, err)
		}
		if r.gen == e.gen {
			if ref := v.checkTimes(now, e.p.ExpiresAt, e.nbf, e.hasNbf, e.p.IssuedAt, e.hasIat); ref != nil {
				return nil, ref
			}
			if p, ok := clonePrincipal(e.p); ok {
				v.cacheHits.Add(1)
				return p, nil
			}
		}
		// Verified by a key set since replaced: verify it again.
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
	v.sigChecks.Add(1)
	t, err := jwt.ParseString(tok, jwt.WithKey(alg, k.raw), jwt.WithValidate(false))
	if err != nil {
		return nil, tokenRefusal("token_signature", "signature or encoding rejected")
	}
	// The clock again: a kid miss may have waited for a JWKS fetch.
	now = v.now()
	p, ref := v.claims(t, now)
	if ref != nil {
		return nil, ref
	}
	if len(tok) > maxCachedTokenLen {
		return p, nil
	}
	if _, ok := entryCost(p); !ok {
		return p, nil
	}
	if tmpl, ok := clonePrincipal(p); ok {
		e := verifiedToken{p: tmpl, gen: r.gen}
		e.nbf, e.hasNbf = t.NotBefore()
		_, e.hasIat = t.IssuedAt()
		v.cache.put(&d, e, p.ExpiresAt, now)
	}
	return p, nil
}

// precheckRefusal is tokenRefusal(precheckReason(err), err.Error()), with
// the error reused from an earlier refusal of the same kind.
func (v *verifier) precheckRefusal(err error) *refusal {
	ref := refuse(401, precheckReason(err), "invalid token", ErrTokenInvalid, nil)
	msg := err.Error()
	if e, ok := v.precheckErrs.Load(msg); ok {
		ref.err = e.(error)
		return ref
	}
	ref.err = fmt.Errorf("%w: %v", ErrTokenInvalid, msg)
	if v.precheckErrN.Add(1) <= maxPrecheckErrs {
		v.precheckErrs.Store(msg, ref.err)
	}
	return ref
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

// checkTimes checks the time claims against now: exp, nbf and iat with
// the clock skew, iat's presence (unless WithTokensWithoutIssuedAt), and
// the lifetime (from iat, or from now without one).
// A cache hit runs it again, since these are the only claims whose
// verdict changes while the token stays the same.
func (v *verifier) checkTimes(now, exp, nbf time.Time, hasNbf bool, iat time.Time, hasIat bool) *refusal {
	if !now.Before(exp.Add(v.skew)) {
		return refuse(401, "token_expired", "token expired", ErrTokenExpired, nil)
	}
	if hasNbf && now.Add(v.skew).Before(nbf) {
		return tokenRefusal("token_not_yet_valid", "nbf in the future")
	}
	if !hasIat && !v.allowNoIat {
		return tokenRefusal("token_claims", "iat missing")
	}
	if hasIat && now.Add(v.skew).Before(iat) {
		return tokenRefusal("token_claims", "iat in the future")
	}
	start := now
	if hasIat {
		start = iat
	}
	if exp.Sub(start) > v.maxLifetime {
		return tokenRefusal("token_lifetime", "lifetime longer than allowed")
	}
	return nil
}

// claims checks exp (required), nbf, iat, the lifetime, iss and aud at
// now, and builds the Principal.
func (v *verifier) claims(t jwt.Token, now time.Time) (*Principal, *refusal) {
	exp, ok := t.Expiration()
	if !ok {
		return nil, tokenRefusal("token_claims", "exp missing")
	}
	nbf, hasNbf := t.NotBefore()
	iat, hasIat := t.IssuedAt()
	if ref := v.checkTimes(now, exp, nbf, hasNbf, iat, hasIat); ref != nil {
		return nil, ref
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
