package wssec

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wssec/wssec/internal/oidctest"
)

// These tests run a real, certified OpenID Provider (oidc-provider under
// Node.js, see internal/oidctest) on loopback and take real
// client-credentials access tokens from it: RFC 9068 at+jwt, ES256, with
// an RSA encryption key published beside the signing key.

// idpClients are the provider's clients: svc's tokens carry the claims
// each identity provider family puts its tenant and roles in; hour gets
// the 1-hour tokens of Okta, Entra ID and Cognito.
var idpClients = []oidctest.Client{
	{ID: "svc", Secret: "svc-secret-svc-secret", Claims: map[string]any{
		"tenant":                     "acme",
		"tid":                        "3f2a9c1e-tenant",
		"roles":                      []string{"reader"},
		"realm_access":               map[string]any{"roles": []string{"orders-admin", "offline_access"}},
		"https://example.com/tenant": "acme-ns",
	}},
	{ID: "hour", Secret: "hour-secret-hour-secret", TTL: time.Hour},
}

func startIdP(t *testing.T) *oidctest.Provider {
	return oidctest.Start(t, oidctest.Options{Clients: idpClients})
}

// principalFixture starts a fixture whose handler records the Principal
// and acknowledges every message.
func principalFixture(t *testing.T, opts ...Option) (*fixture, func() *Principal) {
	var mu sync.Mutex
	var got *Principal
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		mu.Lock()
		got = c.Principal()
		mu.Unlock()
		ackServe(ctx, c)
	}, append([]Option{WithInsecureTransport()}, opts...)...)
	return f, func() *Principal {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// WithOIDC and WithAudience alone accept the provider's tokens, although
// its key set also holds an encryption key (skipped, with an event).
func TestOIDCProvider_DiscoveryAcceptsItsTokens(t *testing.T) {
	idp := startIdP(t)
	f, principal := principalFixture(t, WithOIDC(idp.Issuer()), WithAudience(idp.Audience()), WithTokenType("at+jwt"))
	tok := idp.Token(t, "svc", "orders:read")
	wantAccepted(t, f, f.try(bearer(f.origin, tok)))
	if p := principal(); p.Subject != "svc" || p.Tenant != "acme" || strings.Join(p.Scopes, " ") != "orders:read" {
		t.Fatalf("Principal subject %q tenant %q scopes %q", p.Subject, p.Tenant, p.Scopes)
	}
	if !f.events.has(EventConfigWarning, "jwks_key_skipped") {
		t.Fatal("the provider's encryption key was not reported as skipped")
	}
	// Another audience is refused, with its sentence.
	g := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.Issuer()), WithAudience("https://other.example"))
	a := g.try(bearer(g.origin, tok))
	wantRefused(t, g, a, 401, "token_audience")
	wantChallenge(t, a.header.Get("WWW-Authenticate"), "token_audience")
}

// Keycloak's realm_access.roles, Entra's tid and an Auth0-style
// namespaced claim reach the Principal, and {tenant} in channel rules
// admits exactly that tenant, over a real socket.
func TestOIDCProvider_ClaimMappingIntoChannelRules(t *testing.T) {
	idp := startIdP(t)
	rules := []Option{
		WithAction[idpSubscribe]("subscribe"),
		WithChannelRules(ChannelRule{Pattern: "tenant:{tenant}:*", Read: "orders:read"}),
	}
	t.Run("tid and realm_access.roles", func(t *testing.T) {
		f, principal := principalFixture(t, append(rules, WithOIDC(idp.Issuer()), WithAudience(idp.Audience()),
			WithClaimMapping(ClaimMapping{Tenant: "/tid", Roles: "/realm_access/roles"}))...)
		a := f.try(bearer(f.origin, idp.Token(t, "svc", "orders:read")))
		wantAccepted(t, f, a)
		p := principal()
		if p.Tenant != "3f2a9c1e-tenant" || strings.Join(p.Roles, ",") != "orders-admin,offline_access" {
			t.Fatalf("Principal tenant %q roles %q", p.Tenant, p.Roles)
		}
		if r := subscribeResult(t, a.conn, "tenant:3f2a9c1e-tenant:orders", "s1"); r != "ack" {
			t.Fatalf("own tenant: %s", r)
		}
		if r := subscribeResult(t, a.conn, "tenant:acme:orders", "s2"); r != "forbidden" {
			t.Fatalf("the unmapped tenant claim's channel: %s, want forbidden", r)
		}
	})
	t.Run("namespaced claim", func(t *testing.T) {
		f, principal := principalFixture(t, append(rules, WithOIDC(idp.Issuer()),
			WithClaimMapping(ClaimMapping{Tenant: "/https:~1~1example.com~1tenant"}))...)
		a := f.try(bearer(f.origin, idp.Token(t, "svc", "orders:read")))
		wantAccepted(t, f, a)
		if p := principal(); p.Tenant != "acme-ns" {
			t.Fatalf("tenant %q", p.Tenant)
		}
		if r := subscribeResult(t, a.conn, "tenant:acme-ns:orders", "s1"); r != "ack" {
			t.Fatalf("own tenant: %s", r)
		}
	})
}

// tamperPayload re-encodes the payload with one claim changed and keeps
// the provider's signature.
func tamperPayload(t *testing.T, tok, claim string, v any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[claim] = v
	b, _ = json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestOIDCProvider_TamperedTokens(t *testing.T) {
	idp := startIdP(t)
	tok := idp.Token(t, "svc", "orders:read")
	sig := strings.LastIndexByte(tok, '.')
	flipped := []byte(tok)
	// Change a middle character of the signature (the last one may only
	// carry padding bits).
	i := sig + 10
	if flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	cases := []struct {
		name, tok, reason string
	}{
		{"another tenant in the payload", tamperPayload(t, tok, "tid", "victim-tenant"), "token_signature"},
		{"a longer lifetime in the payload", tamperPayload(t, tok, "exp", time.Now().Add(10*time.Minute).Unix()), "token_signature"},
		{"a signature byte changed", string(flipped), "token_signature"},
		{"signature stripped", tok[:sig+1], "token_malformed"},
	}
	f := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.Issuer()), WithAudience(idp.Audience()),
		WithClaimMapping(ClaimMapping{Tenant: "/tid"}), WithHandshakeRate(1000, 1000))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := f.try(bearer(f.origin, c.tok))
			wantRefused(t, f, a, 401, c.reason)
			wantChallenge(t, a.header.Get("WWW-Authenticate"), c.reason)
			wantNoSecret(t, f, a, c.tok)
		})
	}
	wantAccepted(t, f, f.try(bearer(f.origin, tok)))
}

// The provider rotates: a new key beside the old one (both tokens pass,
// the new kid found by an immediate refetch), then the old one removed
// (its tokens refused after the next refresh).
func TestOIDCProvider_KeyRotation(t *testing.T) {
	idp := startIdP(t)
	f := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.Issuer()), WithAudience(idp.Audience()),
		WithJWKSRefresh(time.Second), WithHandshakeRate(1000, 1000), WithConnLimits(1000, 1000, 1000))
	oldTok := idp.Token(t, "svc", "")
	wantAccepted(t, f, f.try(bearer(f.origin, oldTok)))

	newKid := idp.RotateKey()
	newTok := idp.Token(t, "svc", "")
	if !strings.Contains(headerOf(t, newTok), `"kid":"`+newKid+`"`) {
		t.Fatalf("the rotated provider signed with %s, want %s", headerOf(t, newTok), newKid)
	}
	wantAccepted(t, f, f.try(bearer(f.origin, newTok)))
	wantAccepted(t, f, f.try(bearer(f.origin, oldTok)))

	idp.DropOldKeys()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := f.try(bearer(f.origin, oldTok))
		if a.status == 401 {
			wantRefused(t, f, a, 401, "token_key")
			wantChallenge(t, a.header.Get("WWW-Authenticate"), "token_key")
			break
		}
		if a.conn != nil {
			<-f.ran
		}
		if time.Now().After(deadline) {
			t.Fatal("a token of the removed key is still accepted 10 s after the removal")
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantAccepted(t, f, f.try(bearer(f.origin, newTok)))
}

func headerOf(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The provider going down: a running Guard keeps verifying with the keys
// it holds and reports the failed refreshes; it recovers when the provider
// is back. A Guard started while the provider is down answers 503 until
// the keys arrive (WithStartWithoutKeys).
func TestOIDCProvider_DownAndBack(t *testing.T) {
	idp := startIdP(t)
	tok := idp.Token(t, "svc", "")
	f := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.Issuer()), WithJWKSRefresh(time.Second), WithHandshakeRate(1000, 1000))
	idp.Stop()
	eventually(t, "a failed refresh reported", func() bool { return f.events.has(EventConfigWarning, "jwks_refresh_failed") })
	wantAccepted(t, f, f.try(bearer(f.origin, tok)))

	// Start while it is down: New fails fast without the option.
	if g, err := New(WithOIDC(idp.Issuer())); err == nil {
		g.Close()
		t.Fatal("New succeeded while the provider was down")
	}
	late := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.Issuer()), WithStartWithoutKeys(), WithHandshakeRate(1000, 1000))
	if !late.events.has(EventConfigWarning, "keys_pending") {
		t.Fatal("no keys_pending event")
	}
	a := late.try(bearer(late.origin, tok))
	wantRefused(t, late, a, 503, "keys_unavailable")
	wantRetryAfter(t, a)

	idp.Restart()
	eventually(t, "the running Guard recovered", func() bool { return f.events.has(EventConfigWarning, "keys_available") })
	deadline := time.Now().Add(40 * time.Second) // the retry backoff reaches 30 s at most
	for !late.events.has(EventConfigWarning, "keys_available") {
		if time.Now().After(deadline) {
			t.Fatal("the Guard started without keys never fetched them")
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantAccepted(t, late, late.try(bearer(late.origin, idp.Token(t, "svc", ""))))
}

// The 1-hour access token under the default 15-minute cap: 401 whose
// error_description names the maximum, so the client developer need not
// read the server's log; WithMaxTokenLifetime(time.Hour) accepts it.
func TestOIDCProvider_OneHourTokenLifetime(t *testing.T) {
	idp := startIdP(t)
	tok := idp.Token(t, "hour", "")
	f := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.Issuer()))
	a := f.try(bearer(f.origin, tok))
	wantRefused(t, f, a, 401, "token_lifetime")
	if got := a.header.Get("WWW-Authenticate"); !strings.Contains(got, `error_description="The token lifetime exceeds the maximum of 15 minutes (WithMaxTokenLifetime)."`) {
		t.Fatalf("WWW-Authenticate %q does not name the maximum", got)
	}
	g := newFixture(t, nil, WithInsecureTransport(), WithOIDC(idp.Issuer()), WithMaxTokenLifetime(time.Hour))
	wantAccepted(t, g, g.try(bearer(g.origin, tok)))
}
