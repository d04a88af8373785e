package main

// wsprobe (internal/probe) against the chat: on loopback in clear, with
// its own TLS, with an external issuer's JWKS, and behind the shipped
// nginx and HAProxy configurations. Every applicable check passes.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec"
	"github.com/wssec/wssec/internal/probe"
	"github.com/wssec/wssec/internal/proxytest"
)

// probeChat runs the probe and requires no failed check and a pass for
// each of passes ("group/check").
func probeChat(t *testing.T, cfg probe.Config, passes ...string) {
	t.Helper()
	cfg.MaxSockets = 40 // above the handshake burst (20) the Guard allows one address
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := probe.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	var b strings.Builder
	r.WriteTable(&b)
	t.Logf("\n%s", b.String())
	for _, f := range r.Findings {
		if f.Verdict == probe.Fail {
			t.Errorf("%s/%s failed: %s", f.Group, f.Check, f.Evidence)
		}
	}
	for _, gc := range passes {
		g, c, _ := strings.Cut(gc, "/")
		if f, ok := r.Find(g, c); !ok || f.Verdict != probe.Pass {
			t.Errorf("%s: %+v, want pass", gc, f)
		}
	}
}

var chatPasses = []string{
	"origin/foreign", "origin/null", "origin/none", "origin/lookalike-suffix", "origin/lookalike-prefix",
	"origin/userinfo", "origin/case", "origin/trailing-dot", "origin/other-port", "origin/other-scheme",
	"token/alg-none", "token/signature-stripped", "token/signature-flipped", "token/kid-injection",
	"token/jwk-embedded", "token/jku", "token/query-string", "token/expired",
	"forwarding/client-address",
	"messages/oversized", "messages/fragment-flood", "messages/invalid-utf8", "messages/control-126", "messages/message-flood",
	"lifetime/slow-reader",
}

var tlsPasses = []string{"transport/plain-ws", "transport/forwarded-proto", "transport/tls-version", "transport/tls-cbc-sha1"}

// expired signs a development token that expired an hour ago.
func expired(t *testing.T, a *app) string {
	t.Helper()
	tok, _, err := a.issuer.issue("mallory", "acme", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestWSProbe_Loopback(t *testing.T) {
	a, srv := startApp(t, config{}, nil)
	probeChat(t, probe.Config{
		URL:          wsURL(srv.URL),
		Token:        login(t, srv.URL, "alice", "acme").Token,
		MoreTokens:   loginAs(t, http.DefaultClient, srv.URL, others...),
		ExpiredToken: expired(t, a),
	}, chatPasses...)
}

// TestWSProbe_OwnTLS: with -tls-cert the chat serves the TLS
// configuration HardenServer sets (wssec.TLSProfile).
func TestWSProbe_OwnTLS(t *testing.T) {
	a, err := newApp(config{Addr: "127.0.0.1:0", TLS: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.TLS = wssec.TLSProfile()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	plain := httptest.NewServer(a.Handler()) // a proxy that is not trusted forwarding ws://
	t.Cleanup(plain.Close)

	resp, err := srv.Client().Post(srv.URL+"/login", "application/json", strings.NewReader(`{"user":"alice","tenant":"acme"}`))
	if err != nil {
		t.Fatal(err)
	}
	var s session
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	probeChat(t, probe.Config{
		URL:          wsURL(srv.URL),
		PlainURL:     wsURL(plain.URL),
		Token:        s.Token,
		MoreTokens:   loginAs(t, srv.Client(), srv.URL, others...),
		ExpiredToken: expired(t, a),
		RootCAs:      roots,
	}, append(tlsPasses, chatPasses...)...)
}

// TestWSProbe_ExternalIssuer: with -jwks-url, HS256 keyed with the
// issuer's public key is refused too.
func TestWSProbe_ExternalIssuer(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := jwk.Import(priv)
	key.Set(jwk.KeyIDKey, "k1")
	key.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	set.AddKey(pub)
	jwks, _ := json.Marshal(set)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	t.Cleanup(idp.Close)
	_, srv := startApp(t, config{JWKSURL: idp.URL + "/jwks.json", Issuer: "https://id.example", Audience: "chat"}, nil)
	sign := func(exp time.Time) string {
		tok, _ := jwt.NewBuilder().Issuer("https://id.example").Audience([]string{"chat"}).Subject("dana").
			IssuedAt(exp.Add(-5*time.Minute)).Expiration(exp).
			Claim("tenant", "acme").Claim("scope", "chat:read chat:write").Build()
		b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	probeChat(t, probe.Config{
		URL:          wsURL(srv.URL),
		Token:        sign(time.Now().Add(5 * time.Minute)),
		ExpiredToken: sign(time.Now().Add(-time.Hour)),
		JWKS:         idp.URL + "/jwks.json",
		Skip:         []string{"messages", "lifetime", "forwarding"}, // TestWSProbe_Loopback runs them
	}, "token/hs256-public-key", "token/alg-none", "token/jwk-embedded", "token/jku", "token/expired")
}

func TestWSProbe_BehindProxies(t *testing.T) {
	for _, kind := range []string{"nginx", "haproxy"} {
		t.Run(kind, func(t *testing.T) {
			a, srv := startApp(t, config{TrustedProxies: []string{"127.0.0.1/32"}}, nil)
			o := proxytest.Options{Upstream: strings.TrimPrefix(srv.URL, "http://"), IdleTimeout: 2 * time.Second}
			var px *proxytest.Proxy
			if kind == "nginx" {
				px = proxytest.StartNginx(t, "../../deploy/nginx/wssec.conf", o)
			} else {
				px = proxytest.StartHAProxy(t, "../../deploy/haproxy/wssec.cfg", o)
			}
			base := "https://" + px.TLSAddr
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsTo(px)}}
			t.Cleanup(client.CloseIdleConnections)
			toks := loginAs(t, client, base, append([]string{"alice"}, others...)...)
			probeChat(t, probe.Config{
				URL:          "wss://" + px.TLSAddr + "/ws",
				PlainURL:     "ws://" + px.PlainAddr + "/ws",
				Token:        toks[0],
				MoreTokens:   toks[1:],
				ExpiredToken: expired(t, a),
				Idle:         10 * time.Second, // the proxy closes idle sockets after 2 s
				Source:       "127.0.0.2",      // not the trusted proxy's address
				RootCAs:      px.Roots,
			}, append(append(tlsPasses, "lifetime/idle"), chatPasses...)...)
		})
	}
}

// loginAs logs users in through client and returns their tokens.
func loginAs(t *testing.T, client *http.Client, base string, users ...string) []string {
	t.Helper()
	var toks []string
	for _, u := range users {
		req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(`{"user":"`+u+`","tenant":"acme"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", base)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var s session
		json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if s.Token == "" {
			t.Fatalf("login %s at %s: %d", u, base, resp.StatusCode)
		}
		toks = append(toks, s.Token)
	}
	return toks
}

// others are users besides alice, so the per-subject limit (8 sockets)
// does not bite before the per-address ones the forwarding check is after.
var others = []string{"bob", "carol", "dave", "erin", "frank"}

// tlsTo trusts the proxy's certificate.
func tlsTo(px *proxytest.Proxy) *tls.Config { return &tls.Config{RootCAs: px.Roots} }
