package jwks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// privateMembers are the JWK members that carry private key material
// (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2). "k" is the secret of an "oct" key.
var privateMembers = [...]string{"d", "p", "q", "dp", "dq", "qi", "oth"}

// parseSet turns a response body into a key set that holds only usable
// public keys, or returns an error wrapping one of ErrMalformed,
// ErrEmptySet, ErrPrivateKey, ErrSymmetricKey or ErrUnusableKey.
//
// The body is read twice: once here, member by member, so that private or
// symmetric material is refused whatever the JOSE library makes of it, and
// once by jwk.Parse. Fetches are rare and the body is capped, so the cost
// does not matter.
func parseSet(body []byte) (jwk.Set, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	rawKeys, ok := doc["keys"]
	if !ok || !bytes.HasPrefix(bytes.TrimSpace(rawKeys), []byte("[")) {
		return nil, fmt.Errorf(`%w: no "keys" array`, ErrMalformed)
	}
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(rawKeys, &entries); err != nil {
		return nil, fmt.Errorf(`%w: "keys" must be an array of objects`, ErrMalformed)
	}
	if len(entries) == 0 {
		return nil, ErrEmptySet
	}
	for i, e := range entries {
		if e == nil {
			return nil, fmt.Errorf(`%w: key %d is not an object`, ErrMalformed, i)
		}
		if err := checkMembers(e); err != nil {
			return nil, fmt.Errorf("%w (key %d)", err, i)
		}
	}

	// Strict parsing, whatever jwk.Configure says globally: an entry the
	// library cannot parse fails the whole set instead of being kept as an
	// unusable placeholder.
	set, err := jwk.Parse(body, jwk.WithStrictKeySetParsing(true))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if set.Len() == 0 {
		return nil, ErrEmptySet
	}
	for i := range set.Len() {
		key, ok := set.Key(i)
		if !ok {
			return nil, fmt.Errorf("%w: key %d missing", ErrUnusableKey, i)
		}
		if err := checkKey(key); err != nil {
			kid, _ := key.KeyID()
			return nil, fmt.Errorf("%w (key %d, kid %.64q)", err, i, kid)
		}
	}
	return set, nil
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
