package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/wssec/wssec/internal/oidctest"
)

// TestOIDCIssuer_RealProvider runs the chat as with -oidc-issuer,
// -audience and -tenant-claim /tid against a real OpenID Provider
// (oidc-provider under Node.js): the provider's client-credentials access
// tokens open sockets, Entra-style "tid" is the tenant the channel rules
// compare, a token without chat:write cannot publish, and a token for
// another tenant cannot read this one's rooms.
func TestOIDCIssuer_RealProvider(t *testing.T) {
	idp := oidctest.Start(t, oidctest.Options{
		Scopes: []string{readScope, writeScope},
		Clients: []oidctest.Client{
			{ID: "acme-bot", Secret: "acme-bot-secret-acme-bot", Claims: map[string]any{"tid": "acme"}},
			{ID: "globex-bot", Secret: "globex-bot-secret-globex", Claims: map[string]any{"tid": "globex", "tenant": "acme"}},
		},
	})
	_, srv := startApp(t, config{OIDCIssuer: idp.Issuer(), Audience: idp.Audience(), TenantClaim: "/tid"}, nil)

	resp, err := http.Post(srv.URL+"/login", "application/json", bytes.NewReader([]byte(`{"user":"a","tenant":"acme"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("login with -oidc-issuer: %d, want 404 (the development issuer is off)", resp.StatusCode)
	}

	writer := mustDial(t, srv.URL, idp.Token(t, "acme-bot", readScope+" "+writeScope))
	subscribe(t, writer, "tenant:acme:lobby")
	send(t, writer, map[string]any{"action": "publish", "channel": "tenant:acme:lobby", "id": "m1", "payload": map[string]string{"text": "hi"}})
	if f := next(t, writer, "message"); f.Payload.From != "acme-bot" || f.Payload.Text != "hi" {
		t.Fatalf("publish with chat:write: %+v", f)
	}

	reader := mustDial(t, srv.URL, idp.Token(t, "acme-bot", readScope))
	subscribe(t, reader, "tenant:acme:lobby")
	send(t, reader, map[string]any{"action": "publish", "channel": "tenant:acme:lobby", "id": "m2", "payload": map[string]string{"text": "no"}})
	if f := next(t, reader, "error"); f.Error.Code != "forbidden" || f.ID != "m2" {
		t.Fatalf("publish without chat:write: %+v, want forbidden", f)
	}

	// globex-bot's token also carries a claim named "tenant" saying acme:
	// with -tenant-claim /tid only tid counts.
	other := mustDial(t, srv.URL, idp.Token(t, "globex-bot", readScope+" "+writeScope))
	send(t, other, map[string]string{"action": "subscribe", "channel": "tenant:acme:lobby", "id": "x1"})
	if f := next(t, other, "error"); f.Error.Code != "forbidden" {
		t.Fatalf("another tenant's token reading acme's room: %+v, want forbidden", f)
	}
	subscribe(t, other, "tenant:globex:lobby")

	// A chat that expects another audience refuses the provider's tokens.
	_, strict := startApp(t, config{OIDCIssuer: idp.Issuer(), Audience: "https://other-api.example"}, nil)
	if _, resp, err := dial(strict.URL, strict.URL, idp.Token(t, "acme-bot", readScope), nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token for another audience: err=%v, want 401", err)
	}
}

// TestOIDCIssuer_ConfigErrors: -oidc-issuer without -audience (any token
// of the organisation would do) and beside -jwks-url or -issuer is refused
// before anything listens, and -tenant-claim without an external issuer too.
func TestOIDCIssuer_ConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config
		want string
	}{
		{"no audience", config{OIDCIssuer: "https://id.example"}, "-audience"},
		{"with jwks-url", config{OIDCIssuer: "https://id.example", Audience: "chat", JWKSURL: "https://id.example/jwks"}, "drop -jwks-url"},
		{"with issuer", config{OIDCIssuer: "https://id.example", Audience: "chat", Issuer: "https://id.example"}, "drop -jwks-url and -issuer"},
		{"tenant claim alone", config{TenantClaim: "/tid"}, "-tenant-claim"},
	} {
		tc.cfg.Addr, tc.cfg.Logger = "127.0.0.1:0", quietLogger()
		a, err := newApp(tc.cfg)
		if a != nil {
			a.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}
