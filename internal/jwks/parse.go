package jwks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// privateMembers are the JWK members that carry private key material
// (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2). "k" is the secret of an "oct" key.
var privateMembers = [...]string{"d", "p", "q", "dp", "dq", "qi", "oth"}

// parseSet turns a response body into a key set that holds only usable
// public signature keys, or returns an error wrapping one of
// ErrMalformed, ErrEmptySet, ErrPrivateKey, ErrSymmetricKey or
// ErrUnusableKey.
//
// Keys that can never verify a signature here are left out, never fatal,
// and each is described by one note: "use" other than "sig" (Keycloak
// publishes an RSA-OAEP key with "use":"enc" beside its signing keys), an
// "alg" that is not a signature algorithm accepted here, "key_ops"
// without "verify", a key type other than RSA, EC and OKP, or a curve
// other than P-256, P-384, P-521 and Ed25519. A set left with no key is
// ErrEmptySet. Private or symmetric material anywhere in the set still
// refuses the whole set: a provider that publishes secrets is
// compromised.
//
// The body is read twice: once here, member by member, so that private or
// symmetric material is refused whatever the JOSE library makes of it, and
// once by jwk.Parse. Fetches are rare and the body is capped, so the cost
// does not matter.
func parseSet(body []byte) (jwk.Set, []string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return nil, nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	rawKeys, ok := doc["keys"]
	if !ok || !bytes.HasPrefix(bytes.TrimSpace(rawKeys), []byte("[")) {
		return nil, nil, fmt.Errorf(`%w: no "keys" array`, ErrMalformed)
	}
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(rawKeys, &entries); err != nil {
		return nil, nil, fmt.Errorf(`%w: "keys" must be an array of objects`, ErrMalformed)
	}
	if len(entries) == 0 {
		return nil, nil, ErrEmptySet
	}
	var kept []map[string]json.RawMessage
	var notes []string
	for i, e := range entries {
		if e == nil {
			return nil, nil, fmt.Errorf(`%w: key %d is not an object`, ErrMalformed, i)
		}
		if err := checkMembers(e); err != nil {
			return nil, nil, fmt.Errorf("%w (key %d)", err, i)
		}
		if why := skipReason(e); why != "" {
			var kid string
			_ = json.Unmarshal(e["kid"], &kid)
			notes = append(notes, fmt.Sprintf("key %d (kid %.64q) skipped: %s", i, kid, why))
			continue
		}
		kept = append(kept, e)
	}
	if len(kept) == 0 {
		return nil, notes, fmt.Errorf("%w: no signature keys (%d skipped)", ErrEmptySet, len(notes))
	}
	if len(notes) > 0 {
		b, err := json.Marshal(map[string]any{"keys": kept})
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		body = b
	}

	// Strict parsing, whatever jwk.Configure says globally: an entry the
	// library cannot parse fails the whole set instead of being kept as an
	// unusable placeholder.
	set, err := jwk.Parse(body, jwk.WithStrictKeySetParsing(true))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if set.Len() == 0 {
		return nil, nil, ErrEmptySet
	}
	for i := range set.Len() {
		key, ok := set.Key(i)
		if !ok {
			return nil, nil, fmt.Errorf("%w: key %d missing", ErrUnusableKey, i)
		}
		if err := checkKey(key); err != nil {
			kid, _ := key.KeyID()
			return nil, nil, fmt.Errorf("%w (key %d, kid %.64q)", err, i, kid)
		}
	}
	return set, notes, nil
}

// signatureAlgs are the "alg" values a published key may carry and still
// be used: the asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037, RFC 9864).
var signatureAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}

// skipReason says why a raw JWK (already free of private and symmetric
// material) can never verify a signature here, or "" when it may.
func skipReason(e map[string]json.RawMessage) string {
	str := func(name string) (string, bool) {
		raw, ok := e[name]
		if !ok {
			return "", false
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", true // present but not a string: jwk.Parse decides
		}
		return s, true
	}
	if use, ok := str("use"); ok && use != "sig" {
		return fmt.Sprintf("use %.16q is not a signature use", use)
	}
	if alg, ok := str("alg"); ok && !slices.Contains(signatureAlgs, alg) {
		return fmt.Sprintf("alg %.32q is not an accepted signature algorithm", alg)
	}
	if raw, ok := e["key_ops"]; ok {
		var ops []string
		if json.Unmarshal(raw, &ops) == nil && !slices.Contains(ops, "verify") {
			return `key_ops without "verify"`
		}
	}
	kty, _ := str("kty")
	crv, _ := str("crv")
	switch kty {
	case "RSA":
	case "EC":
		if crv != "P-256" && crv != "P-384" && crv != "P-521" {
			return fmt.Sprintf("curve %.16q is not supported", crv)
		}
	case "OKP":
		if crv != "Ed25519" {
			return fmt.Sprintf("curve %.16q is not a signature curve supported here", crv)
		}
	default:
		return fmt.Sprintf("key type %.16q is not supported", kty)
	}
	return ""
}

// checkMembers refuses a raw JWK object that carries private or symmetric
// material. Member names are compared without regard to case, so that a
// lenient decoder further down cannot read "D" as "d".
func checkMembers(e map[string]json.RawMessage) error {
	for name, v := range e {
		n := strings.ToLower(name)
		for _, p := range privateMembers {
			if n == p {
				return ErrPrivateKey
			}
		}
		if n == "k" {
			return ErrSymmetricKey
		}
		if n == "kty" {
			var kty string
			if json.Unmarshal(v, &kty) == nil && strings.EqualFold(kty, "oct") {
				return ErrSymmetricKey
			}
		}
	}
	return nil
}

// checkKey refuses a parsed key that is symmetric, private, a placeholder
// for an unsupported entry, or whose material does not validate or cannot
// be turned into a crypto key.
func checkKey(key jwk.Key) error {
	if jwk.IsUnsupportedKey(key) {
		return fmt.Errorf("%w: unsupported key", ErrUnusableKey)
	}
	if key.KeyType() == jwa.OctetSeq() {
		return ErrSymmetricKey
	}
	ak, ok := key.(jwk.AsymmetricKey)
	if !ok {
		return fmt.Errorf("%w: key type %s is not asymmetric", ErrUnusableKey, key.KeyType())
	}
	if ak.IsPrivate() {
		return ErrPrivateKey
	}
	if err := key.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnusableKey, err)
	}
	var raw any
	if err := jwk.Export(key, &raw); err != nil {
		return fmt.Errorf("%w: %w", ErrUnusableKey, err)
	}
	return nil
}
