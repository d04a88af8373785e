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
		// An encryption key never verifies a signature: skip it before
		// its alg (RSA-OAEP, ECDH-ES, …) is held against the set.
		if u, ok := k.KeyUsage(); ok && u != "" && u != "sig" {
			continue
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
	static *ring     // WithKeySet, WithHMACKey or WithPublicKey
	dyn    *jwksRing // WithJWKS or WithOIDC
	algs   []string  // allowed algorithms (config ∩ keys), nil with JWKS = any asymmetric
	pre    jwtpre.Policy

	mapping claimMapping // WithClaimMapping, compiled
	typ     string       // WithTokenType: the required typ, canonical; "" = any
	// lifetimeDesc is the error_description of a token_lifetime refusal,
	// naming the configured maximum.
	lifetimeDesc string

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
	// accepted from the cache. Only tests and benchmarks read them
	// (verifications, in export_test.go); counting costs one atomic add
	// beside a signature check or a cache lookup.
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

// errKeysPending is the error of a Guard started under
// WithStartWithoutKeys before its first key set arrived.
var errKeysPending = errors.New("no key set fetched yet (the identity provider has not answered since start)")

func (j *jwksRing) current() (*ring, error) {
	s := j.f.Set()
	if s == nil {
		return nil, errKeysPending
	}
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

// keysUnavailable answers a handshake that no key set can decide: fail
// closed, and ask the client to come back shortly.
func keysUnavailable(err error) *refusal {
	ref := refuse(503, "keys_unavailable", "service unavailable", ErrTokenInvalid, err)
	ref.retryAfter = 5
	return ref
}

// tokenDescriptions are the error_description sentences of 401 answers
// (RFC 6750 §3), one fixed sentence per refusal reason. They never hold
// the token or a claim value, only characters RFC 6750 allows there
// (%x20-21 / %x23-5B / %x5D-7E: no quote, no backslash), and say which
// check failed so that a client developer can tell an expired token from
// a wrong audience without the server's log. token_lifetime's sentence,
// which names the configured maximum, is the verifier's.
var tokenDescriptions = map[string]string{
	"token_expired":       "The token has expired.",
	"token_not_yet_valid": "The token is not valid yet (nbf or iat in the future).",
	"token_lifetime":      "The token lifetime exceeds the maximum accepted.",
	"token_issuer":        "The token issuer is not accepted.",
	"token_audience":      "The token audience is not accepted.",
	"token_key":           "The token signing key is unknown.",
	"token_kid":           "The token signing key is unknown.",
	"token_signature":     "The token signature is invalid.",
	"token_alg":           "The token signing algorithm is not accepted.",
	"token_malformed":     "The token is malformed.",
	"token_header":        "The token header is malformed or not accepted.",
	"token_too_large":     "The token is too large.",
	"token_type":          "The token type is not accepted (an access token is required).",
	"token_claims":        "A required token claim is missing or invalid.",
	"token_revoked":       "The token has been revoked.",
	"token_replay":        "The token was already used.",
	"ticket_invalid":      "The ticket is invalid, used or expired.",
}

// describe returns the error_description for a 401 refusal, or "" when
// its reason has none (a custom authenticator's, a missing token).
func (r *refusal) describe() string {
	if r.desc != "" {
		return r.desc
	}
	return tokenDescriptions[r.reason]
}

// lifetimeDescription names the maximum lifetime in the sentence of a
// token_lifetime refusal.
func lifetimeDescription(max time.Duration) string {
	return "The token lifetime exceeds the maximum of " + humanDuration(max) + " (WithMaxTokenLifetime)."
}

// humanDuration spells d in whole hours, minutes or seconds when it is
// one, else in Go's notation.
func humanDuration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	case d >= time.Second && d%time.Second == 0:
		return unit(int64(d/time.Second), "second")
	}
	return d.String()
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
	if v.typ != "" && canonicalTyp(hdr.Typ) != v.typ {
		return nil, tokenRefusal("token_type", "typ header not the one WithTokenType requires")
	}
	now := v.now()
	d := digestToken(tok)
	if e, ok := v.cache.get(&d, now); ok {
		r, err := v.currentRing()
		if err != nil {
			return nil, keysUnavailable(err)
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
		return nil, keysUnavailable(err)
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
		ref := tokenRefusal("token_lifetime", "lifetime longer than allowed")
		ref.desc = v.lifetimeDesc
		return ref
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
	if v.mapping.subject.set {
		var ok bool
		if sub, ok = v.mapping.subject.str(t); !ok {
			return nil, tokenRefusal("token_claims", "the claim at "+v.mapping.subject.text()+" (WithClaimMapping Subject) is missing or not a string")
		}
	}
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
	if ref := v.mapping.apply(t, p); ref != nil {
		return nil, ref
	}
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

// publicKeyRing builds the static ring of WithPublicKey: one key, its
// algorithms derived from it.
func publicKeyRing(key any) (*ring, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey:
		return nil, errors.New("a private key; pass its public half (key.Public())")
	case []byte:
		return nil, errors.New("a shared secret; use WithHMACKey")
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return nil, errors.New("nil or incomplete ECDSA key")
		}
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return nil, errors.New("nil or incomplete RSA key")
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 key of %d bytes; %d required", len(k), ed25519.PublicKeySize)
		}
	case ecdsa.PublicKey, rsa.PublicKey:
		return nil, fmt.Errorf("%T passed by value; pass a pointer", key)
	}
	algs, err := keyAlgs(key)
	if err != nil {
		return nil, err
	}
	return &ring{keys: []ringKey{{raw: key, algs: algs}}}, nil
}

// tokenOptions applies the options that shape verification beyond the
// keys: WithOIDC's issuer, WithClaimMapping, WithTokenType, and the
// lifetime sentence of 401 answers.
func (v *verifier) tokenOptions(c *config, bad func(opt, val, reason string)) {
	if c.keyOption == "WithOIDC" {
		if c.issuer != "" && c.issuer != c.oidcIssuer {
			bad("WithIssuer", fmt.Sprintf("%q", c.issuer), "differs from the issuer given to WithOIDC, which is always checked")
		}
		v.issuer = c.oidcIssuer
	}
	if c.startNoKeys && c.keyOption != "WithJWKS" && c.keyOption != "WithOIDC" {
		bad("WithStartWithoutKeys", "", "applies only to WithJWKS or WithOIDC key sets")
	}
	v.mapping = compileClaimMapping(c.claimMapping, bad)
	if c.tokenType != "" {
		switch t := canonicalTyp(c.tokenType); t {
		case "at+jwt", "jwt":
			v.typ = t
		default:
			bad("WithTokenType", fmt.Sprintf("%q", c.tokenType), `must be "at+jwt" or "JWT"`)
		}
	}
	v.lifetimeDesc = lifetimeDescription(c.maxTokenLifetime)
}

// startKeyFetch fetches the WithJWKS or WithOIDC key set for the first
// time and starts its refresh. Failing that, New fails, unless
// WithStartWithoutKeys: then handshakes are refused with 503 until keys
// arrive.
func (g *Guard) startKeyFetch(c *config) error {
	if g.ver == nil {
		return nil
	}
	var opt, target string
	switch c.keyOption {
	case "WithJWKS":
		opt, target = "WithJWKS", c.jwksURL
	case "WithOIDC":
		opt, target = "WithOIDC", c.oidcIssuer
	default:
		return nil
	}
	ctx := context.Background()
	o := jwks.Options{
		RefreshInterval: c.jwksRefresh,
		Now:             c.now,
		StartWithoutSet: c.startNoKeys,
		OnError: func(err error) {
			g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "jwks_refresh_failed", Detail: scrubURL(err.Error(), target)})
		},
		OnSkipped: func(notes []string) {
			for _, n := range notes {
				g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "jwks_key_skipped", Detail: n})
			}
		},
		OnRecovered: func() {
			g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "keys_available", Detail: opt + ": key set fetched after failures; tokens are verified again"})
		},
	}
	var f *jwks.Fetcher
	var err error
	if opt == "WithOIDC" {
		f, err = jwks.NewDiscovery(ctx, c.oidcIssuer, o)
	} else {
		f, err = jwks.New(ctx, c.jwksURL, o)
	}
	if err != nil {
		return &ConfigError{Option: opt, Value: redactURL(target), Reason: scrubURL(err.Error(), target)}
	}
	g.ver.dyn = &jwksRing{f: f}
	if err := f.InitialError(); err != nil {
		g.emit(ctx, Event{Kind: EventConfigWarning, Reason: "keys_pending", Detail: opt + " (WithStartWithoutKeys): " + scrubURL(err.Error(), target) + "; handshakes get 503 until keys arrive"})
		return nil
	}
	if _, err := g.ver.dyn.current(); err != nil {
		f.Close()
		return &ConfigError{Option: opt, Value: redactURL(target), Reason: scrubURL(err.Error(), target)}
	}
	return nil
}
