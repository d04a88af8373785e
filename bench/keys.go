package bench

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Alg is a token signature algorithm the benchmarks exercise.
type Alg string

// The algorithms measured.
const (
	ES256 Alg = "ES256"
	EdDSA Alg = "EdDSA"
	HS256 Alg = "HS256"
)

// Claims every benchmark token carries: the tenant and scope the channel
// rules and the hand-rolled policy check.
const (
	Subject = "bench-user"
	Tenant  = "acme"
	Scope   = "echo:write"
	// Origin is the browser origin the protected servers allow.
	Origin = "http://app.example.test"
	// BadOrigin is an origin no server allows.
	BadOrigin = "http://evil.example.test"
)

// Key is a signing key and the matching verification material.
type Key struct {
	Alg     Alg
	sigAlg  jwa.SignatureAlgorithm
	private any     // *ecdsa.PrivateKey, ed25519.PrivateKey or []byte
	public  any     // *ecdsa.PublicKey, ed25519.PublicKey or []byte
	set     jwk.Set // public JWK set; nil for HS256
}

// NewKey generates a fresh key for alg.
func NewKey(alg Alg) (*Key, error) {
	k := &Key{Alg: alg}
	switch alg {
	case ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		k.sigAlg, k.private, k.public = jwa.ES256(), priv, &priv.PublicKey
	case EdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		k.sigAlg, k.private, k.public = jwa.EdDSA(), priv, pub
	case HS256:
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		k.sigAlg, k.private, k.public = jwa.HS256(), secret, secret
		return k, nil
	default:
		return nil, fmt.Errorf("bench: unknown algorithm %q", alg)
	}
	pk, err := jwk.Import(k.public)
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pk); err != nil {
		return nil, err
	}
	k.set = set
	return k, nil
}

// Token signs a token for Subject in Tenant with Scope, valid for ttl
// (wssec refuses lifetimes over 15 minutes by default).
func (k *Key) Token(ttl time.Duration) (string, error) {
	now := time.Now()
	t, err := jwt.NewBuilder().
		Subject(Subject).
		IssuedAt(now).
		Expiration(now.Add(ttl)).
		Claim("tenant", Tenant).
		Claim("scope", Scope).
		Build()
	if err != nil {
		return "", err
	}
	b, err := jwt.Sign(t, jwt.WithKey(k.sigAlg, k.private))
	if err != nil {
		return "", err
	}
	return string(b), nil
}
