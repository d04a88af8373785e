package main

import (
	"crypto/rand"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec"
)

// The built-in development issuer.
const (
	devIssuerName    = "wssec-chat-dev"
	devTokenLifetime = 5 * time.Minute
	devScopes        = readScope + " " + writeScope
)

// devIssuer signs short-lived HS256 tokens with a key generated at start,
// so the demo needs no identity provider. A real deployment gets tokens
// from its provider and verifies them with -jwks-url.
type devIssuer struct {
	key []byte
}

func newDevIssuer() (*devIssuer, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &devIssuer{key: key}, nil
}

// issue signs a token for user in tenant and returns it with the
// Principal it stands for (for a one-time ticket).
func (d *devIssuer) issue(user, tenant string, now time.Time) (string, *wssec.Principal, error) {
	now = now.Truncate(time.Second)
	exp := now.Add(devTokenLifetime)
	jti := rand.Text()
	t, err := jwt.NewBuilder().
		Issuer(devIssuerName).
		Subject(user).
		IssuedAt(now).
		Expiration(exp).
		JwtID(jti).
		Claim("tenant", tenant).
		Claim("scope", devScopes).
		Build()
	if err != nil {
		return "", nil, err
	}
	b, err := jwt.Sign(t, jwt.WithKey(jwa.HS256(), d.key))
	if err != nil {
		return "", nil, err
	}
	p := &wssec.Principal{
		Subject:   user,
		Tenant:    tenant,
		Scopes:    []string{readScope, writeScope},
		ExpiresAt: exp,
		IssuedAt:  now,
		ID:        jti,
	}
	return string(b), p, nil
}
