package wssec_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec"
)

// exampleIdP is a stand-in OpenID Provider for the examples: a discovery
// document and a JWKS with one ES256 key. up switches it on and off.
type exampleIdP struct {
	srv  *httptest.Server
	key  *ecdsa.PrivateKey
	up   atomic.Bool
	jwks []byte
}

func newExampleIdP() *exampleIdP {
	p := &exampleIdP{}
	p.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := jwk.Import(&p.key.PublicKey)
	_ = pub.Set(jwk.KeyIDKey, "sig-2026")
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	p.jwks, _ = json.Marshal(map[string]any{"keys": []any{pub}})
	p.up.Store(true)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks"})
		case "/jwks":
			_, _ = w.Write(p.jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	return p
}

// token signs an RFC 9068 access token (typ at+jwt) with extra claims.
func (p *exampleIdP) token(extra map[string]any) string {
	now := time.Now()
	b := jwt.NewBuilder().Issuer(p.srv.URL).Subject("alice").Audience([]string{"orders-api"}).
		IssuedAt(now).Expiration(now.Add(5 * time.Minute))
	for k, v := range extra {
		b = b.Claim(k, v)
	}
	t, _ := b.Build()
	priv, _ := jwk.Import(p.key)
	_ = priv.Set(jwk.KeyIDKey, "sig-2026")
	h := jws.NewHeaders()
	_ = h.Set(jws.TypeKey, "at+jwt")
	s, _ := jwt.Sign(t, jwt.WithKey(jwa.ES256(), priv, jws.WithProtectedHeaders(h)))
	return string(s)
}

func ExampleWithOIDC() {
	idp := newExampleIdP()
	defer idp.srv.Close()

	// The issuer URL your provider documents; discovery finds the keys.
	g, err := wssec.New(
		wssec.WithOIDC(idp.srv.URL),
		wssec.WithAudience("orders-api"),
		wssec.WithTokenType("at+jwt"), // access tokens only, never ID tokens
		wssec.WithInsecureTransport(),
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	url, origin, stop := serve(g)
	defer stop()

	status, c := dial(url, headers(origin, idp.token(nil)))
	if c != nil {
		c.Close()
	}
	fmt.Println("access token:", status)
	// Output:
	// access token: 101
}

func ExampleWithClaimMapping() {
	idp := newExampleIdP()
	defer idp.srv.Close()

	g, err := wssec.New(
		wssec.WithOIDC(idp.srv.URL),
		// Keycloak's realm roles and an Entra-style tenant id.
		wssec.WithClaimMapping(wssec.ClaimMapping{Tenant: "/tid", Roles: "/realm_access/roles"}),
		wssec.WithInsecureTransport(),
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	got := make(chan *wssec.Principal, 1)
	srv := httptest.NewServer(g.Handler(func(ctx context.Context, c *wssec.Conn) { got <- c.Principal() }))
	defer srv.Close()
	defer g.Close()

	tok := idp.token(map[string]any{"tid": "acme", "realm_access": map[string]any{"roles": []string{"admin"}}})
	status, c := dial("ws"+strings.TrimPrefix(srv.URL, "http"), headers(srv.URL, tok))
	if c != nil {
		defer c.Close()
	}
	p := <-got
	fmt.Println(status, p.Subject, p.Tenant, p.Roles)
	// Output:
	// 101 alice acme [admin]
}

func ExampleWithPublicKey() {
	// A PEM public key, as an identity provider hands it out.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	block, _ := pem.Decode(pemBytes)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		fmt.Println(err)
		return
	}
	// ES256 only: the algorithm comes from the key, never from the token.
	g, err := wssec.New(wssec.WithPublicKey(pub), wssec.WithInsecureTransport(), quietLogger())
	if err != nil {
		fmt.Println(err)
		return
	}
	url, origin, stop := serve(g)
	defer stop()

	now := time.Now()
	t, _ := jwt.NewBuilder().Subject("alice").IssuedAt(now).Expiration(now.Add(5 * time.Minute)).Build()
	signed, _ := jwt.Sign(t, jwt.WithKey(jwa.ES256(), key))
	status, c := dial(url, headers(origin, string(signed)))
	if c != nil {
		c.Close()
	}
	fmt.Println("ES256 token:", status)

	// An HMAC token keyed with the public key itself: refused before any
	// cryptography.
	hs, _ := jwt.Sign(t, jwt.WithKey(jwa.HS256(), pemBytes))
	status, _ = dial(url, headers(origin, string(hs)))
	fmt.Println("HS256 with the public key as secret:", status)

	// A private key, or an RSA key under 2048 bits, is a configuration error.
	_, err = wssec.New(wssec.WithPublicKey(key))
	fmt.Println("private key refused:", errors.Is(err, wssec.ErrConfig))
	// Output:
	// ES256 token: 101
	// HS256 with the public key as secret: 401
	// private key refused: true
}

func ExampleWithStartWithoutKeys() {
	idp := newExampleIdP()
	defer idp.srv.Close()
	idp.up.Store(false) // the provider is down while this instance starts

	_, err := wssec.New(wssec.WithOIDC(idp.srv.URL), wssec.WithInsecureTransport(), quietLogger())
	fmt.Println("without the option, New fails:", errors.Is(err, wssec.ErrConfig))

	g, err := wssec.New(
		wssec.WithOIDC(idp.srv.URL),
		wssec.WithStartWithoutKeys(),
		wssec.WithInsecureTransport(),
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	url, origin, stop := serve(g)
	defer stop()

	tok := idp.token(nil)
	status, _ := dial(url, headers(origin, tok))
	fmt.Println("while the provider is down:", status) // fail closed

	idp.up.Store(true)
	// The Guard retries in the background (1 s, doubling up to 30 s).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var c *websocket.Conn
		status, c = dial(url, headers(origin, tok))
		if c != nil {
			c.Close()
		}
		if status == http.StatusSwitchingProtocols {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("once keys arrived:", status)
	// Output:
	// without the option, New fails: true
	// while the provider is down: 503
	// once keys arrived: 101
}
