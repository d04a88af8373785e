package wssec

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

func wantVerifications(t *testing.T, g *Guard, sig, hits int64) {
	t.Helper()
	if s, h := verifications(g); s != sig || h != hits {
		t.Fatalf("signature checks %d, cache hits %d; want %d, %d", s, h, sig, hits)
	}
}

// TestTokenCache_ReconnectSkipsSignatureCheck: a second handshake with the
// same token is accepted without a signature check, with the same
// Principal, in a copy of its own.
func TestTokenCache_ReconnectSkipsSignatureCheck(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport())
	tok := mint(t, claims{jti: "t1", tenant: "acme", scope: "a b", extra: map[string]any{"roles": []string{"r"}, "meta": map[string]any{"k": []any{"v"}}}})

	var got []*Principal
	for i := 0; i < 2; i++ {
		if _, st, err := f.dial(f.headers(tok)); err != nil {
			t.Fatalf("handshake %d: %d %v", i, st, err)
		}
		select {
		case c := <-f.ran:
			got = append(got, c.Principal())
		case <-time.After(5 * time.Second):
			t.Fatal("the handler did not run")
		}
	}
	wantVerifications(t, f.g, 1, 1)
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Fatalf("principal from the cache differs:\n%+v\n%+v", got[0], got[1])
	}
	if got[0] == got[1] {
		t.Fatal("two sockets share one Principal")
	}
}

// TestTokenCache_PrincipalIsACopy: whatever a caller does to the Principal
// it got, the next handshake with the token gets the original.
func TestTokenCache_PrincipalIsACopy(t *testing.T) {
	g, err := New(WithHMACKey(testKey), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	tok := mint(t, claims{tenant: "acme", scope: "read write", extra: map[string]any{
		"roles": []string{"user"}, "meta": map[string]any{"list": []any{"x", map[string]any{"y": 1.0}}}}})
	first, ref := g.ver.verify(ctx, tok)
	if ref != nil {
		t.Fatal(ref)
	}
	want, _ := clonePrincipal(first)
	// Spoil the miss's Principal, then a hit's, in every reference field.
	spoil := func(p *Principal) {
		p.Subject, p.Tenant = "mallory", "evil"
		p.Scopes[0] = "admin"
		p.Roles[0] = "admin"
		p.Claims["tenant"] = "evil"
		meta := p.Claims["meta"].(map[string]any)
		meta["list"].([]any)[0] = "spoiled"
		meta["list"].([]any)[1].(map[string]any)["y"] = 2.0
		meta["added"] = true
	}
	spoil(first)
	hit, ref := g.ver.verify(ctx, tok)
	if ref != nil {
		t.Fatal(ref)
	}
	wantVerifications(t, g, 1, 1)
	if !reflect.DeepEqual(hit, want) {
		t.Fatalf("the cache kept the caller's changes:\n got %+v\nwant %+v", hit, want)
	}
	spoil(hit)
	again, _ := g.ver.verify(ctx, tok)
	wantVerifications(t, g, 1, 2)
	if !reflect.DeepEqual(again, want) {
		t.Fatalf("a hit's changes reached the cache:\n got %+v\nwant %+v", again, want)
	}
}

// TestTokenCache_ExpiredCachedTokenRefused: a cached token is refused once
// it expires, and a cache hit checks the time claims against the clock.
func TestTokenCache_ExpiredCachedTokenRefused(t *testing.T) {
	clk := newFakeClock()
	// A handshake bucket of 1 000 s, so that setting the clock back does
	// not trip the rate limit.
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now),
		WithHandshakeRate(1, 1000))
	now := clk.now().Truncate(time.Second)
	tok := mint(t, claims{iat: now, nbf: now, exp: now.Add(time.Minute)})
	for i := 0; i < 2; i++ {
		if _, st, err := f.dial(f.headers(tok)); err != nil {
			t.Fatalf("handshake %d: %d %v", i, st, err)
		}
	}
	wantVerifications(t, f.g, 1, 1)

	// The clock set back beyond the skew: nbf is in the future. The entry
	// is live, so this refusal is the cache hit's own time check.
	clk.advance(-DefaultClockSkew - 2*time.Second)
	if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
		t.Fatalf("cached token before its nbf: status %d, want 401", st)
	}
	if !f.events.has(EventHandshakeRefused, "token_not_yet_valid") {
		t.Fatalf("refusal reasons %v, want token_not_yet_valid", f.events.reasons(EventHandshakeRefused))
	}
	wantVerifications(t, f.g, 1, 1)

	// Past exp and the skew: refused, whether the entry is still there or not.
	clk.advance(DefaultClockSkew + 2*time.Second + time.Minute + DefaultClockSkew)
	if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
		t.Fatalf("expired cached token: status %d, want 401", st)
	}
	if !f.events.has(EventHandshakeRefused, "token_expired") {
		t.Fatalf("refusal reasons %v, want token_expired", f.events.reasons(EventHandshakeRefused))
	}
	if _, hits := verifications(f.g); hits != 1 {
		t.Fatalf("an expired token was a cache hit (%d hits)", hits)
	}
}

// TestTokenCache_EntryLivesNoLongerThanExp: between exp and exp+skew the
// token is still valid, but no longer cached: it is verified again.
func TestTokenCache_EntryLivesNoLongerThanExp(t *testing.T) {
	clk := newFakeClock()
	g, err := New(WithHMACKey(testKey), quiet(), WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	now := clk.now().Truncate(time.Second)
	tok := mint(t, claims{iat: now, exp: now.Add(time.Minute)})
	for i := 0; i < 2; i++ {
		if _, ref := g.ver.verify(context.Background(), tok); ref != nil {
			t.Fatal(ref)
		}
	}
	wantVerifications(t, g, 1, 1)
	clk.advance(now.Add(time.Minute).Sub(clk.now())) // exactly exp
	if _, ref := g.ver.verify(context.Background(), tok); ref != nil {
		t.Fatalf("within the skew after exp: %v", ref)
	}
	wantVerifications(t, g, 2, 1)
}

// TestTokenCache_RevocationAndSingleUseStillApply: a token from the cache
// still goes through revocation and the replay cache.
func TestTokenCache_RevocationAndSingleUseStillApply(t *testing.T) {
	t.Run("single use", func(t *testing.T) {
		f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithSingleUseTokens(0))
		tok := mint(t, claims{jti: "once"})
		if _, st, err := f.dial(f.headers(tok)); err != nil {
			t.Fatalf("first use: %d %v", st, err)
		}
		if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
			t.Fatalf("second use: status %d, want 401", st)
		}
		if !f.events.has(EventHandshakeRefused, "token_replay") {
			t.Fatalf("refusal reasons %v, want token_replay", f.events.reasons(EventHandshakeRefused))
		}
		wantVerifications(t, f.g, 1, 1) // the replay was a cache hit, and still refused
	})
	t.Run("revoked subject", func(t *testing.T) {
		clk := newFakeClock()
		f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithClock(clk.now))
		now := clk.now().Truncate(time.Second)
		tok := mint(t, claims{iat: now, exp: now.Add(5 * time.Minute)})
		if _, st, err := f.dial(f.headers(tok)); err != nil {
			t.Fatalf("before revocation: %d %v", st, err)
		}
		clk.advance(time.Second)
		if err := f.g.Revoke(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
		if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
			t.Fatalf("revoked subject: status %d, want 401", st)
		}
		if !f.events.has(EventHandshakeRefused, "token_revoked") {
			t.Fatalf("refusal reasons %v, want token_revoked", f.events.reasons(EventHandshakeRefused))
		}
		wantVerifications(t, f.g, 1, 1)
	})
	t.Run("revoked token id", func(t *testing.T) {
		f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport())
		tok := mint(t, claims{jti: "j1"})
		if _, st, err := f.dial(f.headers(tok)); err != nil {
			t.Fatalf("before revocation: %d %v", st, err)
		}
		if err := f.g.RevokeToken(context.Background(), "j1", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
			t.Fatalf("revoked token: status %d, want 401", st)
		}
		wantVerifications(t, f.g, 1, 1)
	})
}

// TestTokenCache_KeyRemovedFromJWKS: a token cached while its key was
// published is refused once a refresh removes the key; a change to the set
// that keeps the key costs one signature check, not a refusal.
func TestTokenCache_KeyRemovedFromJWKS(t *testing.T) {
	js := newJWKSServer(t)
	k1 := js.addKey(t, "k1")
	f := newFixture(t, nil, WithInsecureTransport(), WithJWKS(js.srv.URL))
	ctx := context.Background()
	tok := mintES(t, k1, "k1", claims{})
	for i := 0; i < 2; i++ {
		if _, st, err := f.dial(f.headers(tok)); err != nil {
			t.Fatalf("handshake %d: %d %v", i, st, err)
		}
	}
	wantVerifications(t, f.g, 1, 1)

	// A new key published: the set changed, k1 is still in it.
	k2 := js.addKey(t, "k2")
	if err := f.g.ver.dyn.f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, st, err := f.dial(f.headers(tok)); err != nil {
		t.Fatalf("after an unrelated rotation: %d %v", st, err)
	}
	wantVerifications(t, f.g, 2, 1)
	if _, st, err := f.dial(f.headers(tok)); err != nil {
		t.Fatalf("cached again: %d %v", st, err)
	}
	wantVerifications(t, f.g, 2, 2)

	// k1 removed: its cached token is refused.
	js.removeKey("k1")
	if err := f.g.ver.dyn.f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := f.dial(f.headers(tok)); st != http.StatusUnauthorized {
		t.Fatalf("cached token of a removed key: status %d, want 401", st)
	}
	if !f.events.has(EventHandshakeRefused, "token_key") {
		t.Fatalf("refusal reasons %v, want token_key", f.events.reasons(EventHandshakeRefused))
	}
	if _, hits := verifications(f.g); hits != 2 {
		t.Fatalf("a token of a removed key was a cache hit (%d hits)", hits)
	}
	if _, st, err := f.dial(f.headers(mintES(t, k2, "k2", claims{}))); err != nil {
		t.Fatalf("token of the remaining key: %d %v", st, err)
	}
}

// TestTokenCache_PrefixDoesNotHit: tokens that share the cached token's
// header and payload, or most of it, are verified on their own and
// refused.
func TestTokenCache_PrefixDoesNotHit(t *testing.T) {
	g, err := New(WithHMACKey(testKey), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	c := claims{iat: now, exp: now.Add(5 * time.Minute)}
	tok := mint(t, c)
	if _, ref := g.ver.verify(ctx, tok); ref != nil {
		t.Fatal(ref)
	}
	other := mintWith(t, jwa.HS256(), []byte("another key, 32 bytes long......"), c)
	head := tok[:strings.LastIndexByte(tok, '.')+1]
	if !strings.HasPrefix(other, head) {
		t.Fatal("the forged token does not share the header and payload")
	}
	sig := tok[len(head):]
	flip := map[byte]byte{'A': 'B'}[sig[0]]
	if flip == 0 {
		flip = 'A'
	}
	for name, bad := range map[string]string{
		"signature of another key":        other,
		"signature with one byte flipped": head + string(flip) + sig[1:],
		"signature truncated":             tok[:len(tok)-4],
		"signature of the empty string":   head,
		"token with a suffix":             tok + "AAAA",
	} {
		if _, ref := g.ver.verify(ctx, bad); ref == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, hits := verifications(g); hits != 0 {
		t.Fatalf("%d cache hits for tokens that differ from the cached one", hits)
	}
	if _, ref := g.ver.verify(ctx, tok); ref != nil {
		t.Fatal(ref)
	}
	if _, hits := verifications(g); hits != 1 {
		t.Fatalf("the cached token: %d hits, want 1", hits)
	}
}

// TestTokenCache_Bounded: a full cache leaves new tokens uncached (they
// are verified every time) and keeps the ones it holds.
func TestTokenCache_Bounded(t *testing.T) {
	g, err := New(WithHMACKey(testKey), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.ver.cache.size = 3
	ctx := context.Background()
	var toks []string
	for i := 0; i < 5; i++ {
		toks = append(toks, mint(t, claims{jti: string(rune('a' + i))}))
	}
	for round := 0; round < 2; round++ {
		for _, tok := range toks {
			if _, ref := g.ver.verify(ctx, tok); ref != nil {
				t.Fatal(ref)
			}
		}
	}
	if n := g.ver.cache.entries(); n > 3 {
		t.Fatalf("cache holds %d entries, capacity 3", n)
	}
	wantVerifications(t, g, 5+2, 3)
}

// TestTokenCache_DefaultCapacity: the cache is on and bounded by default.
func TestTokenCache_DefaultCapacity(t *testing.T) {
	g, err := New(WithHMACKey(testKey), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, ref := g.ver.verify(context.Background(), mint(t, claims{})); ref != nil {
		t.Fatal(ref)
	}
	if c := g.ver.cache.c.Load(); c == nil || c.Cap() != tokenCacheSize {
		t.Fatalf("default cache: %v, want capacity %d", c, tokenCacheSize)
	}
}

// TestTokenCache_UncopyableClaimsNotCached: a token whose claims nest too
// deep to copy cheaply is accepted, but verified every time.
func TestTokenCache_UncopyableClaimsNotCached(t *testing.T) {
	g, err := New(WithHMACKey(testKey), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var deep any = "leaf"
	for i := 0; i <= maxCachedClaimDepth+1; i++ {
		deep = []any{deep}
	}
	tok := mint(t, claims{extra: map[string]any{"deep": deep}})
	for i := 0; i < 2; i++ {
		if _, ref := g.ver.verify(context.Background(), tok); ref != nil {
			t.Fatal(ref)
		}
	}
	wantVerifications(t, g, 2, 0)
}

// TestTokenCache_LargeTokensNotCached: a token over maxCachedTokenLen, or
// whose claims would take more than maxCachedEntryCost, is accepted and
// verified every time; a token like the benchmarks' is cached.
func TestTokenCache_LargeTokensNotCached(t *testing.T) {
	many := map[string]any{}
	for i := 0; i < 64; i++ {
		many["claim"+strconv.Itoa(i)] = []any{"a", "b"}
	}
	for _, tc := range []struct {
		name   string
		extra  map[string]any
		cached bool
	}{
		{"typical", map[string]any{"roles": []any{"user", "admin"}}, true},
		{"long", map[string]any{"pad": strings.Repeat("x", maxCachedTokenLen)}, false},
		{"many claims", many, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(WithHMACKey(testKey), quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			tok := mint(t, claims{tenant: "acme", scope: "read write", jti: "j", extra: tc.extra})
			for i := 0; i < 2; i++ {
				if _, ref := g.ver.verify(context.Background(), tok); ref != nil {
					t.Fatal(ref)
				}
			}
			if tc.cached {
				wantVerifications(t, g, 1, 1)
			} else {
				wantVerifications(t, g, 2, 0)
			}
		})
	}
}

// TestClonePrincipal_CoversEveryField fails when Principal gains a field
// of a reference type: clonePrincipal must then copy it too.
func TestClonePrincipal_CoversEveryField(t *testing.T) {
	copied := map[string]bool{"Scopes": true, "Roles": true, "Claims": true}
	typ := reflect.TypeFor[Principal]()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		switch f.Type.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.Array, reflect.Struct:
			if f.Type == reflect.TypeFor[time.Time]() {
				continue
			}
			if !copied[f.Name] {
				t.Errorf("Principal.%s (%s) is not copied by clonePrincipal", f.Name, f.Type)
			}
		}
	}
}

func TestCloneClaim(t *testing.T) {
	type opaque struct{ p *int }
	for name, v := range map[string]any{
		"struct":        opaque{},
		"pointer":       new(int),
		"[]int":         []int{1},
		"map of struct": map[string]opaque{},
	} {
		if _, ok := cloneClaim(v, 0); ok {
			t.Errorf("%s: copied, want refused", name)
		}
	}
	in := map[string]any{"a": []any{1.0, "s", true, nil, []string{"x"}}}
	out, ok := cloneClaim(in, 0)
	if !ok || !reflect.DeepEqual(in, out) {
		t.Fatalf("cloneClaim = %v, %v", out, ok)
	}
}

// TestTokenCache_StaticKeySetES256: the cache works with an asymmetric
// static key set too (generation 0).
func TestTokenCache_StaticKeySetES256(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := esKeySet(t, priv)
	g, err := New(WithKeySet(set), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tok := mintWith(t, jwa.ES256(), priv, claims{})
	for i := 0; i < 3; i++ {
		if _, ref := g.ver.verify(context.Background(), tok); ref != nil {
			t.Fatal(ref)
		}
	}
	wantVerifications(t, g, 1, 2)
}

// esKeySet is the public JWK set of priv.
func esKeySet(t testing.TB, priv *ecdsa.PrivateKey) jwk.Set {
	t.Helper()
	pub, err := jwk.Import(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	return set
}
