package bench

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
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
//
// wssec caches verified tokens, so a server that sees one token again
// skips its signature check: handshakes that reuse a Token measure
// reconnects. A TokenSupply gives every handshake a token of its own.
func (k *Key) Token(ttl time.Duration) (string, error) { return k.token(ttl, "") }

// token is Token with a jti when jti is not empty.
func (k *Key) token(ttl time.Duration, jti string) (string, error) {
	now := time.Now()
	b := jwt.NewBuilder().
		Subject(Subject).
		IssuedAt(now).
		Expiration(now.Add(ttl)).
		Claim("tenant", Tenant).
		Claim("scope", Scope)
	if jti != "" {
		b = b.JwtID(jti)
	}
	t, err := b.Build()
	if err != nil {
		return "", err
	}
	signed, err := jwt.Sign(t, jwt.WithKey(k.sigAlg, k.private))
	if err != nil {
		return "", err
	}
	return string(signed), nil
}

// ErrSupplyExhausted is returned by TokenSupply.Take when every token
// minted has been handed out.
var ErrSupplyExhausted = errors.New("bench: token supply exhausted (Fill more between measurements)")

// TokenSupply hands out distinct tokens of one key, each exactly once, so
// that no handshake can be served from wssec's verified-token cache: it
// measures first connections, signature check included. Tokens are minted
// by Fill, outside the timed work, and each carries its own jti. A
// TokenSupply is safe for concurrent use.
type TokenSupply struct {
	key *Key
	ttl time.Duration

	mu     sync.Mutex // guards the fields below
	tokens []string   // minted, not yet handed out
	minted int        // tokens minted so far, for the jti
	taken  int64      // tokens handed out so far
}

// NewTokenSupply returns an empty supply of tokens of k valid for ttl.
func NewTokenSupply(k *Key, ttl time.Duration) *TokenSupply {
	return &TokenSupply{key: k, ttl: ttl}
}

// Fill mints tokens until at least n are waiting, on every CPU.
func (s *TokenSupply) Fill(n int) error {
	s.mu.Lock()
	need := n - len(s.tokens)
	first := s.minted
	s.mu.Unlock()
	if need <= 0 {
		return nil
	}
	out := make([]string, need)
	workers := min(runtime.GOMAXPROCS(0), need)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < need; i += workers {
				tok, err := s.key.token(s.ttl, "fresh-"+strconv.Itoa(first+i))
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = tok
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.minted != first {
		return errors.New("bench: concurrent TokenSupply.Fill")
	}
	s.minted += need
	s.tokens = append(s.tokens, out...)
	return nil
}

// Take hands out a token no one has had.
func (s *TokenSupply) Take() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) == 0 {
		return "", ErrSupplyExhausted
	}
	tok := s.tokens[len(s.tokens)-1]
	s.tokens[len(s.tokens)-1] = ""
	s.tokens = s.tokens[:len(s.tokens)-1]
	s.taken++
	return tok, nil
}

// Taken reports how many tokens have been handed out.
func (s *TokenSupply) Taken() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.taken
}
