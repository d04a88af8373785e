package wssec

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// wantChallenge asserts a 401's WWW-Authenticate: the RFC 6750 §3
// invalid_token challenge with the fixed sentence of reason, in the
// characters RFC 6750 allows in error_description.
func wantChallenge(t *testing.T, got, reason string) {
	t.Helper()
	want := `Bearer error="invalid_token"`
	desc := tokenDescriptions[reason]
	if reason == "token_lifetime" {
		if !strings.HasPrefix(got, want+`, error_description="The token lifetime exceeds the maximum of `) {
			t.Fatalf("WWW-Authenticate %q; want the lifetime sentence", got)
		}
		desc = strings.TrimSuffix(strings.TrimPrefix(got, want+`, error_description="`), `"`)
	} else if desc != "" {
		want += `, error_description="` + desc + `"`
		if got != want {
			t.Fatalf("WWW-Authenticate %q; want %q", got, want)
		}
	} else if got != want {
		t.Fatalf("WWW-Authenticate %q; want %q", got, want)
	}
	for _, c := range []byte(desc) {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			t.Fatalf("error_description %q holds %q, outside RFC 6750's set", desc, c)
		}
	}
}

func TestTokenDescriptions_RFC6750Charset(t *testing.T) {
	all := []string{lifetimeDescription(DefaultMaxTokenLifetime), lifetimeDescription(90 * time.Second), lifetimeDescription(1500 * time.Millisecond)}
	for _, d := range tokenDescriptions {
		all = append(all, d)
	}
	for _, d := range all {
		if d == "" || len(d) > 100 {
			t.Errorf("description %q: want one short sentence", d)
		}
		for _, c := range []byte(d) {
			if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				t.Errorf("description %q holds %q", d, c)
			}
		}
	}
	for d, want := range map[time.Duration]string{15 * time.Minute: "15 minutes", time.Hour: "1 hour", 90 * time.Second: "90 seconds", 1500 * time.Millisecond: "1.5s"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// The usual 1-hour access token of Okta, Entra ID or Cognito under the
// default 15-minute cap: before, the client saw only error="invalid_token"
// and the reason was in the server's log alone.
func TestTokenLifetime_ErrorDescriptionNamesMaximum(t *testing.T) {
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
	tok := mint(t, claims{exp: time.Now().Add(time.Hour)})
	a := f.try(bearer(f.origin, tok))
	wantRefused(t, f, a, 401, "token_lifetime")
	const want = `Bearer error="invalid_token", error_description="The token lifetime exceeds the maximum of 15 minutes (WithMaxTokenLifetime)."`
	if got := a.header.Get("WWW-Authenticate"); got != want {
		t.Fatalf("WWW-Authenticate %q\nwant %q", got, want)
	}
	wantNoSecret(t, f, a, tok)
}

func TestTokenRevoked_ErrorDescription(t *testing.T) {
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
	if err := f.g.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	a := f.try(bearer(f.origin, mint(t, claims{iat: time.Now().Add(-time.Minute)})))
	wantRefused(t, f, a, 401, "token_revoked")
	wantChallenge(t, a.header.Get("WWW-Authenticate"), "token_revoked")
}

// mintTyp signs c with key (a jwk private key with its kid) and the given
// typ header ("" for none).
func mintTyp(t testing.TB, alg jwa.SignatureAlgorithm, key any, typ string, c map[string]any) string {
	t.Helper()
	b := jwt.NewBuilder()
	for k, v := range c {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	if typ != "" {
		_ = h.Set(jws.TypeKey, typ)
	}
	s, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

func stdClaims(extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"sub": "alice", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// An ID token from the same issuer, signed by the same key, must not pass
// as an access token once WithTokenType("at+jwt") is set.
func TestTokenType_IDTokenRefusedAsAccessToken(t *testing.T) {
	priv, pub := newECKey(t, "k1")
	opts := []Option{WithInsecureTransport(), WithKeySet(keySet(t, pub)), WithTokenType("at+jwt")}
	cases := []struct {
		typ    string
		status int
	}{
		{"at+jwt", 101},
		{"application/at+jwt", 101},
		{"AT+JWT", 101},
		{"JWT", 401},
		{"", 401},
	}
	for _, c := range cases {
		t.Run("typ "+c.typ, func(t *testing.T) {
			f := newFixture(t, nil, opts...)
			a := f.try(bearer(f.origin, mintTyp(t, jwa.ES256(), priv, c.typ, stdClaims(nil))))
			if c.status == 101 {
				wantAccepted(t, f, a)
				return
			}
			wantRefused(t, f, a, 401, "token_type")
			wantChallenge(t, a.header.Get("WWW-Authenticate"), "token_type")
		})
	}
	if _, err := New(WithHMACKey(testKey), WithTokenType("id+jwt")); err == nil {
		t.Fatal(`WithTokenType("id+jwt") accepted`)
	}
}

// ---------------------------------------------------------------------------
// WithPublicKey.

func TestWithPublicKey(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name string
		pub  any
		alg  jwa.SignatureAlgorithm
		priv any
	}{
		{"P-256", &p256.PublicKey, jwa.ES256(), p256},
		{"P-384", &p384.PublicKey, jwa.ES384(), p384},
		{"P-521", &p521.PublicKey, jwa.ES512(), p521},
		{"Ed25519", edPub, jwa.EdDSA(), edPriv},
		{"RSA RS256", &rsaKey.PublicKey, jwa.RS256(), rsaKey},
		{"RSA PS384", &rsaKey.PublicKey, jwa.PS384(), rsaKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil, WithInsecureTransport(), WithPublicKey(c.pub))
			wantAccepted(t, f, f.try(bearer(f.origin, mintWith(t, c.alg, c.priv, claims{}))))
			// Pinned to the key: an HMAC token keyed with anything fails
			// before any cryptography.
			a := f.try(bearer(f.origin, mint(t, claims{})))
			wantRefused(t, f, a, 401, "token_alg")
		})
	}
	// ES256 is pinned to P-256: a P-384 signature over ES384 is refused.
	f := newFixture(t, nil, WithInsecureTransport(), WithPublicKey(&p256.PublicKey))
	wantRefused(t, f, f.try(bearer(f.origin, mintWith(t, jwa.ES384(), p384, claims{}))), 401, "token_alg")
}

func TestWithPublicKey_ConfigErrors(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	cases := map[string]any{
		"nil":                 nil,
		"RSA 1024":            &small.PublicKey,
		"P-224":               &p224.PublicKey,
		"ECDSA private key":   p256,
		"Ed25519 private key": edPriv,
		"HMAC secret":         testKey,
		"ECDSA by value":      p256.PublicKey,
		"typed nil":           (*ecdsa.PublicKey)(nil),
		"short Ed25519":       ed25519.PublicKey(make([]byte, 16)),
		"a string":            "-----BEGIN PUBLIC KEY-----",
	}
	for name, k := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := New(WithPublicKey(k))
			if err == nil {
				g.Close()
				t.Fatal("New accepted the key")
			}
			var ce *ConfigError
			if !asConfigError(err, &ce) || ce.Option != "WithPublicKey" {
				t.Fatalf("error %v; want a WithPublicKey ConfigError", err)
			}
		})
	}
}

func asConfigError(err error, target **ConfigError) bool {
	type unwrapper interface{ Unwrap() []error }
	if ce, ok := err.(*ConfigError); ok {
		*target = ce
		return true
	}
	if u, ok := err.(unwrapper); ok {
		for _, e := range u.Unwrap() {
			if asConfigError(e, target) {
				return true
			}
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// WithClaimMapping.

type idpSubscribe struct{}

// ackServe acknowledges every message ReadMessage returns, so the client
// can tell an admitted message from a refused one (an error frame).
func ackServe(ctx context.Context, c *Conn) {
	for {
		m, err := c.ReadMessage(ctx)
		if err != nil {
			return
		}
		_ = c.Send(ctx, map[string]string{"action": "ack", "id": m.ID})
	}
}

// subscribeResult sends a subscribe to channel and returns "ack" or the
// error code.
func subscribeResult(t *testing.T, ws *websocket.Conn, channel, id string) string {
	t.Helper()
	sendJSON(t, ws, map[string]string{"action": "subscribe", "channel": channel, "id": id})
	m := readFrame(t, ws)
	if m["action"] == "ack" {
		return "ack"
	}
	e, _ := m["error"].(map[string]any)
	return fmt.Sprint(e["code"])
}

func TestClaimMapping_TenantAndRolesIntoPrincipalAndChannelRules(t *testing.T) {
	var mu sync.Mutex
	var got *Principal
	serve := func(ctx context.Context, c *Conn) {
		mu.Lock()
		got = c.Principal()
		mu.Unlock()
		ackServe(ctx, c)
	}
	f := newFixture(t, serve,
		WithInsecureTransport(), WithHMACKey(testKey),
		WithClaimMapping(ClaimMapping{Tenant: "/tid", Roles: "/realm_access/roles", Scopes: "/https:~1~1example.com~1perms"}),
		WithAction[idpSubscribe]("subscribe"),
		WithChannelRules(ChannelRule{Pattern: "tenant:{tenant}:*", Read: "orders:read"}),
	)
	tok := mint(t, claims{tenant: "not-this-one", extra: map[string]any{
		"tid":                       "acme",
		"realm_access":              map[string]any{"roles": []string{"admin", "user"}},
		"https://example.com/perms": []string{"orders:read"},
	}})
	a := f.try(bearer(f.origin, tok))
	wantAccepted(t, f, a)
	mu.Lock()
	p := got
	mu.Unlock()
	if p.Tenant != "acme" || strings.Join(p.Roles, ",") != "admin,user" || strings.Join(p.Scopes, ",") != "orders:read" {
		t.Fatalf("Principal tenant %q roles %q scopes %q", p.Tenant, p.Roles, p.Scopes)
	}
	if r := subscribeResult(t, a.conn, "tenant:acme:orders", "s1"); r != "ack" {
		t.Fatalf("own tenant's channel: %s", r)
	}
	if r := subscribeResult(t, a.conn, "tenant:not-this-one:orders", "s2"); r != "forbidden" {
		t.Fatalf("the unmapped tenant claim's channel: %s, want forbidden", r)
	}
}

// A mapped claim of the wrong type is a refusal with a reason that names
// the pointer, never a panic and never the value.
func TestClaimMapping_WrongTypeRefused(t *testing.T) {
	cases := []struct {
		name  string
		m     ClaimMapping
		extra map[string]any
	}{
		{"tenant a number", ClaimMapping{Tenant: "/tid"}, map[string]any{"tid": 42}},
		{"tenant an object", ClaimMapping{Tenant: "/tid"}, map[string]any{"tid": map[string]any{"x": "secret-value"}}},
		{"roles of numbers", ClaimMapping{Roles: "/realm_access/roles"}, map[string]any{"realm_access": map[string]any{"roles": []any{"a", 1}}}},
		{"roles an object", ClaimMapping{Roles: "/realm_access"}, map[string]any{"realm_access": map[string]any{"roles": []any{"a"}}}},
		{"scopes a bool", ClaimMapping{Scopes: "/scp"}, map[string]any{"scp": true}},
		{"subject a number", ClaimMapping{Subject: "/oid"}, map[string]any{"oid": 7}},
		{"subject missing", ClaimMapping{Subject: "/oid"}, nil},
		{"walk through a string", ClaimMapping{Tenant: "/tid/x"}, map[string]any{"tid": "secret-value"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithClaimMapping(c.m))
			tok := mint(t, claims{extra: c.extra})
			a := f.try(bearer(f.origin, tok))
			if c.name == "walk through a string" {
				// Absent (the pointer leads nowhere): an empty tenant.
				wantAccepted(t, f, a)
				return
			}
			wantRefused(t, f, a, 401, "token_claims")
			ev, _ := f.events.last(EventHandshakeRefused)
			if !strings.Contains(ev.Detail, "WithClaimMapping") || strings.Contains(ev.Detail, "secret-value") {
				t.Fatalf("detail %q: want the pointer named, no value", ev.Detail)
			}
			wantNoSecret(t, f, a, tok)
		})
	}
}

func TestClaimMapping_SubjectAndScopeString(t *testing.T) {
	var mu sync.Mutex
	var got *Principal
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		mu.Lock()
		got = c.Principal()
		mu.Unlock()
	}, WithInsecureTransport(), WithHMACKey(testKey), WithClaimMapping(ClaimMapping{Subject: "/oid", Scopes: "/permissions"}))
	wantAccepted(t, f, f.try(bearer(f.origin, mint(t, claims{extra: map[string]any{"oid": "u-1", "permissions": "a b"}}))))
	mu.Lock()
	defer mu.Unlock()
	if got.Subject != "u-1" || strings.Join(got.Scopes, ",") != "a,b" {
		t.Fatalf("subject %q scopes %q", got.Subject, got.Scopes)
	}
}

func TestClaimMapping_BadPointerIsConfigError(t *testing.T) {
	for _, p := range []string{"tid", "/a~2", "#/tid"} {
		if g, err := New(WithHMACKey(testKey), WithClaimMapping(ClaimMapping{Tenant: p})); err == nil {
			g.Close()
			t.Errorf("pointer %q accepted", p)
		}
	}
	if g, err := New(WithHMACKey(testKey), WithClaimMapping(ClaimMapping{Roles: "/"})); err != nil {
		t.Errorf(`pointer "/" (the claim named "") refused: %v`, err)
	} else {
		g.Close()
	}
}

// ---------------------------------------------------------------------------
// WithOIDC, WithJWKS robustness, WithStartWithoutKeys (with an in-process
// provider; internal/oidctest runs a real one).

// fakeIdP serves a discovery document and a JWKS that a test can change
// or take down.
type fakeIdP struct {
	*httptest.Server
	mu     sync.Mutex
	issuer string // "" means the server's URL
	keys   []jwk.Key
	extra  []string // raw JWK objects appended to the set
	down   bool
}

func newFakeIdP(t *testing.T, keys ...jwk.Key) *fakeIdP {
	p := &fakeIdP{keys: keys}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *fakeIdP) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		iss := p.issuer
		if iss == "" {
			iss = p.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": p.URL + "/jwks"})
	case "/jwks":
		var parts []string
		for _, k := range p.keys {
			b, _ := json.Marshal(k)
			parts = append(parts, string(b))
		}
		parts = append(parts, p.extra...)
		_, _ = w.Write([]byte(`{"keys":[` + strings.Join(parts, ",") + `]}`))
	default:
		http.NotFound(w, r)
	}
}

func (p *fakeIdP) set(fn func(p *fakeIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

func TestOIDC_DiscoveryAcceptsItsTokens(t *testing.T) {
	priv, pub := newECKey(t, "k1")
	idp := newFakeIdP(t, pub)
	f := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.URL), WithAudience("api"))
	good := mintWith(t, jwa.ES256(), priv, claims{iss: idp.URL, aud: []string{"api"}})
	wantAccepted(t, f, f.try(bearer(f.origin, good)))
	// iss is always checked with WithOIDC.
	for name, iss := range map[string]string{"other issuer": "https://other.example", "no issuer": "", "trailing slash": idp.URL + "/"} {
		t.Run(name, func(t *testing.T) {
			a := f.try(bearer(f.origin, mintWith(t, jwa.ES256(), priv, claims{iss: iss, aud: []string{"api"}})))
			wantRefused(t, f, a, 401, "token_issuer")
			wantChallenge(t, a.header.Get("WWW-Authenticate"), "token_issuer")
		})
	}
}

// Entra ID signs every tenant's tokens with the same keys: only iss tells
// them apart. WithJWKS without WithIssuer accepts the other tenant (as
// documented); WithOIDC refuses it.
func TestOIDC_SharedKeyOtherTenantRefused(t *testing.T) {
	priv, pub := newECKey(t, "k1")
	idp := newFakeIdP(t, pub)
	other := mintWith(t, jwa.ES256(), priv, claims{iss: "https://login.example.com/other-tenant/v2.0"})
	loose := newFixture(t, nil, WithInsecureTransport(), WithJWKS(idp.URL+"/jwks"))
	wantAccepted(t, loose, loose.try(bearer(loose.origin, other)))
	strict := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.URL))
	wantRefused(t, strict, strict.try(bearer(strict.origin, other)), 401, "token_issuer")
}

func TestOIDC_ConfigErrors(t *testing.T) {
	_, pub := newECKey(t, "k1")
	idp := newFakeIdP(t, pub)
	cases := map[string][]Option{
		"issuer mismatch in the document": {WithOIDC(idp.URL + "/realms/x")},
		"plain http off loopback":         {WithOIDC("http://idp.example.com")},
		"query in the issuer":             {WithOIDC(idp.URL + "?tenant=x")},
		"empty issuer":                    {WithOIDC("")},
		"WithIssuer disagrees":            {WithOIDC(idp.URL), WithIssuer("https://other.example")},
		"start-without-keys with HMAC":    {WithHMACKey(testKey), WithStartWithoutKeys()},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := New(opts...)
			if err == nil {
				g.Close()
				t.Fatal("New succeeded")
			}
		})
	}
	idp.set(func(p *fakeIdP) { p.issuer = p.URL + "/" })
	if g, err := New(WithOIDC(idp.URL)); err == nil {
		g.Close()
		t.Fatal("a document naming the issuer with a trailing slash was accepted")
	}
}

// Keycloak publishes an RSA-OAEP key with "use":"enc" beside its signing
// keys. Before, New failed on it (or, after a rotation, every handshake
// got 503); now the key is skipped with an event.
func TestJWKS_EncryptionKeyBesideSigningKey(t *testing.T) {
	priv, pub := newECKey(t, "sig1")
	_, _, encPub := newRSAKey(t, "enc1")
	_ = encPub.Set(jwk.KeyUsageKey, "enc")
	_ = encPub.Set(jwk.AlgorithmKey, jwa.RSA_OAEP())
	idp := newFakeIdP(t, pub, encPub)
	f := newFixture(t, nil, WithInsecureTransport(), WithJWKS(idp.URL+"/jwks"))
	wantAccepted(t, f, f.try(bearer(f.origin, mintWith(t, jwa.ES256(), priv, claims{iss: idp.URL}))))
	if !f.events.has(EventConfigWarning, "jwks_key_skipped") {
		t.Fatal("no jwks_key_skipped event")
	}
	// An encryption alg without "use" is skipped too.
	_, _, encNoUse := newRSAKey(t, "enc2")
	_ = encNoUse.Set(jwk.AlgorithmKey, jwa.RSA_OAEP_256())
	idp.set(func(p *fakeIdP) { p.keys = []jwk.Key{pub, encNoUse} })
	g, err := New(WithInsecureTransport(), WithJWKS(idp.URL+"/jwks"))
	if err != nil {
		t.Fatalf("New with an RSA-OAEP-256 key in the set: %v", err)
	}
	g.Close()
}

// A key the provider added just before this instance started: before,
// a token under it got 401 token_key for up to 10 s after New.
func TestJWKS_NewKidRightAfterStart(t *testing.T) {
	_, pub1 := newECKey(t, "k1")
	priv2, pub2 := newECKey(t, "k2")
	idp := newFakeIdP(t, pub1)
	f := newFixture(t, nil, WithInsecureTransport(), WithJWKS(idp.URL+"/jwks"))
	idp.set(func(p *fakeIdP) { p.keys = []jwk.Key{pub1, pub2} })
	wantAccepted(t, f, f.try(bearer(f.origin, mintWith(t, jwa.ES256(), priv2, claims{}))))
}

// A new instance starting while its identity provider is down: with
// WithStartWithoutKeys it starts, refuses with 503 (fail closed) until the
// keys arrive, and says so in events; without it New fails fast.
func TestStartWithoutKeys_IdPDownAtStart(t *testing.T) {
	priv, pub := newECKey(t, "k1")
	idp := newFakeIdP(t, pub)
	idp.set(func(p *fakeIdP) { p.down = true })
	if g, err := New(WithInsecureTransport(), WithOIDC(idp.URL)); err == nil {
		g.Close()
		t.Fatal("New succeeded without WithStartWithoutKeys while the provider was down")
	}
	f := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.URL), WithStartWithoutKeys())
	if !f.events.has(EventConfigWarning, "keys_pending") {
		t.Fatal("no keys_pending event at New")
	}
	tok := mintWith(t, jwa.ES256(), priv, claims{iss: idp.URL})
	a := f.try(bearer(f.origin, tok))
	wantRefused(t, f, a, 503, "keys_unavailable")
	wantRetryAfter(t, a)
	idp.set(func(p *fakeIdP) { p.down = false })
	eventually(t, "keys fetched after the provider came back", func() bool {
		return f.events.has(EventConfigWarning, "keys_available")
	})
	wantAccepted(t, f, f.try(bearer(f.origin, tok)))
}

// A jwks_uri found by discovery may carry a secret in its query, as a
// configured JWKS URL may: no error, event or log line may repeat it.
func TestRedaction_DiscoveredJWKSQueryNeverLogged(t *testing.T) {
	const secret = "sk_live_disc0"
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connection refused: a *url.Error from net/http
	var issuer string
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": deadURL + "/jwks?api_key=" + secret})
			return
		}
		// A redirect to another host, with the secret in its query.
		http.Redirect(w, r, "http://localhost:1/x?api_key="+secret, http.StatusFound)
	}))
	t.Cleanup(idp.Close)
	issuer = idp.URL
	_, err := New(WithOIDC(issuer), WithInsecureTransport())
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("New: %v", err)
	}
	logs, events := &logBuffer{}, &recorder{}
	g, err := New(WithOIDC(issuer), WithStartWithoutKeys(), WithInsecureTransport(), WithJWKSRefresh(time.Second),
		WithLogger(slog.New(slog.NewJSONHandler(logs, nil))), WithObserver(events))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	eventually(t, "a jwks_refresh_failed event", func() bool { return events.has(EventConfigWarning, "jwks_refresh_failed") })
	for _, e := range events.all() {
		if strings.Contains(e.Detail, secret) {
			t.Fatalf("event %s carries the secret: %s", e.Reason, e.Detail)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("the log carries the secret: %s", logs.String())
	}
	// A redirected discovery document: the same.
	issuer2 := idp.URL + "/other"
	if _, err := New(WithOIDC(issuer2)); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("New with a redirected document: %v", err)
	}
}
