package wssec

// The attack suite ("Prove it under attack"). Every test here is named after
// the attack it replays and asserts the exact refusal reason or close code of
// the guard that must stop it, so that removing that guard fails the test even
// where a later layer would also have refused (the reason would change).
//
// Every load loop is bounded in count and in time, and talks to loopback only.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/time/rate"
)

// ---------------------------------------------------------------------------
// JWT attacks.
//
// Each forged token is tried twice against a fresh Guard: at the handshake,
// where it must get 401 (WWW-Authenticate, the exact reason observed and
// logged, the token echoed nowhere), and in band on a live socket, as
// {"action":"auth","payload":{"token":…}}, where it must get an error frame
// with code "forbidden", leave the principal untouched, and be reported with
// the same reason.

// atkJWT is one token to try.
type atkJWT struct {
	name   string
	token  string
	reason string // the refusal reason; "" when the token must be accepted
	detail string // a substring of the event's Detail that pins the guard; optional
	// hsDetail, when set, replaces detail at the handshake: a token that an
	// Authorization header cannot even carry is refused there by the
	// header's syntax, and reaches the token checks only in band.
	hsDetail string
}

// atkRunJWT tries each token against a fresh Guard built from opts (after
// WithInsecureTransport and a handshake rate no test reaches). good is a
// valid token of the same subject and tenant, for the live socket.
func atkRunJWT(t *testing.T, opts []Option, good string, attacks []atkJWT) {
	t.Helper()
	for _, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			f := newFixture(t, nil, append([]Option{WithInsecureTransport(), WithHandshakeRate(1000, 1000)}, opts...)...)
			atkTryJWT(t, f, good, at)
		})
	}
}

// atkTryJWT runs one token at f's handshake, then in band on a socket
// opened with good.
func atkTryJWT(t *testing.T, f *fixture, good string, at atkJWT) {
	t.Helper()
	a := f.try(bearer(f.origin, at.token))
	if at.reason == "" {
		wantAccepted(t, f, a)
	} else {
		wantRefused(t, f, a, http.StatusUnauthorized, at.reason)
		wantChallenge(t, a.header.Get("WWW-Authenticate"), at.reason)
		detail := at.detail
		if at.hsDetail != "" {
			detail = at.hsDetail
		}
		if detail != "" {
			if ev, _ := f.events.last(EventHandshakeRefused); !strings.Contains(ev.Detail, detail) {
				t.Fatalf("refusal detail %q; want it to name %q", ev.Detail, detail)
			}
		}
		wantNoSecret(t, f, a, at.token)
	}

	// In band, on a live socket.
	live := f.try(bearer(f.origin, good))
	c := wantAccepted(t, f, live)
	before := c.Principal()
	atkSendAuth(t, live.conn, "reauth-1", at.token)
	m := atkReadID(t, live.conn, "reauth-1")
	if at.reason == "" {
		if m["action"] != "auth" {
			t.Fatalf("in-band auth with an acceptable token answered %v", m)
		}
		return
	}
	e, _ := m["error"].(map[string]any)
	if m["action"] != "error" || e["code"] != "forbidden" {
		t.Fatalf("in-band auth answered %v; want an error frame with code forbidden", m)
	}
	if c.Principal() != before {
		t.Fatalf("a refused in-band auth replaced the principal")
	}
	eventually(t, "the in-band refusal event", func() bool {
		ev, ok := f.events.last(EventMessageRefused)
		return ok && ev.Action == actionAuth && ev.Reason == at.reason
	})
	if at.detail != "" {
		if ev, _ := f.events.last(EventMessageRefused); !strings.Contains(ev.Detail, at.detail) {
			t.Fatalf("in-band refusal detail %q; want it to name %q", ev.Detail, at.detail)
		}
	}
	wantNoSecret(t, f, attempt{}, at.token)
}

// atkSendAuth sends the built-in auth action with tok.
func atkSendAuth(t *testing.T, ws *websocket.Conn, id, tok string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"action": "auth", "id": id, "payload": map[string]string{"token": tok}})
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("write auth: %v", err)
	}
}

// atkReadID reads frames until the one that answers id, skipping others
// (a token_expiring warning, say). Bounded in frames and in time.
func atkReadID(t *testing.T, ws *websocket.Conn, id string) map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 16 {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for the answer to %q: %v", id, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("server frame %s: %v", b, err)
		}
		if m["id"] == id {
			return m
		}
	}
	t.Fatalf("no answer to %q", id)
	return nil
}

// atkES256 signs a JWS input with ES256 (r||s, 32 bytes each).
func atkES256(priv *ecdsa.PrivateKey) func(string) []byte {
	return func(input string) []byte {
		h := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// atkFixed returns the same signature bytes whatever the input.
func atkFixed(sig []byte) func(string) []byte { return func(string) []byte { return sig } }

// atkHeader is a JOSE header: alg, typ JWT, and extra members.
func atkHeader(alg string, extra map[string]any) map[string]any {
	h := map[string]any{"alg": alg, "typ": "JWT"}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// atkClaims are goodClaims (sub alice, iat now, exp in 5 min) with edits; a
// nil value deletes the claim.
func atkClaims(edit map[string]any) map[string]any {
	c := goodClaims()
	for k, v := range edit {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// atkECSet is an EC P-256 key pair published with kid "k1", and the raw
// private key.
func atkECSet(t *testing.T) (raw *ecdsa.PrivateKey, priv, pub jwk.Key) {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = jwkPair(t, raw, &raw.PublicKey, "k1")
	return raw, priv, pub
}

// TestJWTAttack_AlgNone: "none" in any letter case never authenticates. A
// signed variant is stopped by the alg check itself; an unsigned one by the
// empty-signature check before it.
func TestJWTAttack_AlgNone(t *testing.T) {
	var attacks []atkJWT
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		attacks = append(attacks,
			atkJWT{alg + " with a signature", handJWT(t, atkHeader(alg, nil), goodClaims(), hs256(testKey)), "token_alg", `alg "none" refused`, ""},
			atkJWT{alg + " with an empty signature", handJWT(t, atkHeader(alg, nil), goodClaims(), nil), "token_malformed", "empty signature segment", ""},
		)
	}
	atkRunJWT(t, []Option{WithHMACKey(testKey)}, mint(t, claims{}), attacks)
}

// TestJWTAttack_EmptySignature: a token of an allowed algorithm with its
// signature stripped.
func TestJWTAttack_EmptySignature(t *testing.T) {
	good := mint(t, claims{})
	stripped := good[:strings.LastIndexByte(good, '.')+1]
	atkRunJWT(t, []Option{WithHMACKey(testKey)}, good, []atkJWT{
		{"HS256 with the signature removed", stripped, "token_malformed", "empty signature segment", ""},
		{"HS256 with the signature and its dot removed", strings.TrimSuffix(stripped, "."), "token_malformed", "two segments", ""},
	})
}

// TestJWTAttack_KeyConfusion is the algorithm-confusion attack: HS256
// "signed" with the server's public key, which an attacker can read, as the
// HMAC secret — in every encoding a careless verifier might feed to HMAC.
func TestJWTAttack_KeyConfusion(t *testing.T) {
	t.Run("RSA", func(t *testing.T) {
		rsaRaw, _, rsaPub := newRSAKey(t, "")
		spki, err := x509.MarshalPKIXPublicKey(&rsaRaw.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pkcs1 := x509.MarshalPKCS1PublicKey(&rsaRaw.PublicKey)
		jwkJSON, err := json.Marshal(rsaPub)
		if err != nil {
			t.Fatal(err)
		}
		secrets := map[string][]byte{
			"PEM (PKIX)":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
			"DER (PKIX)":   spki,
			"PEM (PKCS1)":  pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
			"DER (PKCS1)":  pkcs1,
			"JWK JSON":     jwkJSON,
			"modulus only": rsaRaw.PublicKey.N.Bytes(),
		}
		var attacks []atkJWT
		for name, secret := range secrets {
			attacks = append(attacks, atkJWT{"HS256 keyed with the RSA public key " + name,
				handJWT(t, atkHeader("HS256", nil), goodClaims(), hs256(secret)), "token_alg", "alg not allowed", ""})
		}
		attacks = append(attacks, atkJWT{"control: RS256 signed with the private key", mintWith(t, jwa.RS256(), rsaRaw, claims{}), "", "", ""})
		atkRunJWT(t, []Option{WithKeySet(keySet(t, rsaPub))}, mintWith(t, jwa.RS256(), rsaRaw, claims{}), attacks)
	})
	t.Run("EC", func(t *testing.T) {
		ecRaw, ecPriv, ecPub := atkECSet(t)
		spki, err := x509.MarshalPKIXPublicKey(&ecRaw.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		ecdhPub, err := ecRaw.PublicKey.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		secrets := map[string][]byte{
			"PEM (PKIX)":         pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
			"DER (PKIX)":         spki,
			"uncompressed point": ecdhPub.Bytes(),
			"x coordinate":       ecRaw.PublicKey.X.Bytes(),
		}
		var attacks []atkJWT
		for name, secret := range secrets {
			attacks = append(attacks, atkJWT{"HS256 keyed with the EC public key " + name,
				handJWT(t, atkHeader("HS256", map[string]any{"kid": "k1"}), goodClaims(), hs256(secret)), "token_alg", "alg not allowed", ""})
		}
		atkRunJWT(t, []Option{WithKeySet(keySet(t, ecPub))}, mintWith(t, jwa.ES256(), ecPriv, claims{}), attacks)
	})
}

// TestJWTAttack_EmbeddedKey: a token that carries its own key (jwk, x5c) and
// is validly signed by it. The verifier must never use it.
func TestJWTAttack_EmbeddedKey(t *testing.T) {
	_, srvPriv, srvPub := atkECSet(t)
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerJWK, err := jwk.Import(&attacker.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_ = attackerJWK.Set(jwk.KeyIDKey, "k1")
	cert := atkSelfSigned(t, attacker)
	attacks := []atkJWT{
		{"jwk header with the attacker's EC key", handJWT(t, atkHeader("ES256", map[string]any{"kid": "k1", "jwk": attackerJWK}), goodClaims(), atkES256(attacker)), "token_header", "embedded or remote key", ""},
		{"jwk header without kid", handJWT(t, atkHeader("ES256", map[string]any{"jwk": attackerJWK}), goodClaims(), atkES256(attacker)), "token_header", "embedded or remote key", ""},
		{"x5c header with the attacker's certificate", handJWT(t, atkHeader("ES256", map[string]any{"kid": "k1", "x5c": []string{base64.StdEncoding.EncodeToString(cert)}}), goodClaims(), atkES256(attacker)), "token_header", "embedded or remote key", ""},
	}
	atkRunJWT(t, []Option{WithKeySet(keySet(t, srvPub))}, mintWith(t, jwa.ES256(), srvPriv, claims{}), attacks)

	// HMAC: an embedded oct key holding the attacker's secret.
	evil := []byte("attacker-secret-attacker-secret!")
	atkRunJWT(t, []Option{WithHMACKey(testKey)}, mint(t, claims{}), []atkJWT{
		{"jwk header with the attacker's HMAC secret", handJWT(t, atkHeader("HS256", map[string]any{"jwk": map[string]any{"kty": "oct", "k": b64(evil)}}), goodClaims(), hs256(evil)), "token_header", "embedded or remote key", ""},
	})
}

// atkSelfSigned returns a self-signed certificate (DER) for key.
func atkSelfSigned(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "attacker"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestJWTAttack_RemoteKeyURL: jku and x5u point at an attacker's server that
// serves the attacker's key. The token is refused and the server never hears
// from wssec — not at the handshake, not in band, with a static key set or
// with a JWKS of its own.
func TestJWTAttack_RemoteKeyURL(t *testing.T) {
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerJWK, err := jwk.Import(&attacker.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_ = attackerJWK.Set(jwk.KeyIDKey, "k1")
	_ = attackerJWK.Set(jwk.AlgorithmKey, jwa.ES256())
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: atkSelfSigned(t, attacker)})
	var hits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.HasSuffix(r.URL.Path, ".pem") {
			w.Write(certPEM)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{attackerJWK}})
	}))
	t.Cleanup(evil.Close)
	tokens := func() []atkJWT {
		return []atkJWT{
			{"jku to the attacker's JWKS", handJWT(t, atkHeader("ES256", map[string]any{"kid": "k1", "jku": evil.URL + "/jwks.json"}), goodClaims(), atkES256(attacker)), "token_header", "embedded or remote key", ""},
			{"x5u to the attacker's certificate", handJWT(t, atkHeader("ES256", map[string]any{"kid": "k1", "x5u": evil.URL + "/cert.pem"}), goodClaims(), atkES256(attacker)), "token_header", "embedded or remote key", ""},
		}
	}
	t.Run("static key set", func(t *testing.T) {
		_, srvPriv, srvPub := atkECSet(t)
		atkRunJWT(t, []Option{WithKeySet(keySet(t, srvPub))}, mintWith(t, jwa.ES256(), srvPriv, claims{}), tokens())
	})
	t.Run("JWKS", func(t *testing.T) {
		js := newJWKSServer(t)
		k1 := js.addKey(t, "k1")
		for _, at := range tokens() {
			t.Run(at.name, func(t *testing.T) {
				f := newFixture(t, nil, WithInsecureTransport(), WithJWKS(js.srv.URL))
				atkTryJWT(t, f, mintES(t, k1, "k1", claims{}), at)
			})
		}
	})
	if n := hits.Load(); n != 0 {
		t.Fatalf("the attacker's key server received %d requests; want none", n)
	}
}

// TestJWTAttack_KidInjection: kid values built to reach a file, a query or
// a log line, or to cost memory. A key set with kids looks kids up in the
// set only (token_kid); a lone key without kid never matches a token that
// names one (token_key); a malformed or huge kid is refused by shape.
func TestJWTAttack_KidInjection(t *testing.T) {
	octKey, err := jwk.Import(testKey)
	if err != nil {
		t.Fatal(err)
	}
	_ = octKey.Set(jwk.KeyIDKey, "hmac-1")
	withKid := []Option{WithKeySet(keySet(t, octKey))}
	goodKid := handJWT(t, atkHeader("HS256", map[string]any{"kid": "hmac-1"}), goodClaims(), hs256(testKey))
	empty := hs256(nil)                         // the content of /dev/null as the HMAC key
	sqlKey := hs256([]byte("AAAAAAAAAAAAAAAA")) // what the injected query would return
	kid := func(k string, sign func(string) []byte) string {
		return handJWT(t, atkHeader("HS256", map[string]any{"kid": k}), goodClaims(), sign)
	}
	long := strings.Repeat("k", 10000)
	atkRunJWT(t, withKid, goodKid, []atkJWT{
		{"control: the known kid", goodKid, "", "", ""},
		{"path traversal to /dev/null", kid("../../../../../../../dev/null", empty), "token_kid", "unknown kid", ""},
		{"absolute path", kid("/proc/self/environ", empty), "token_kid", "unknown kid", ""},
		{"SQL injection", kid("x' UNION SELECT 'AAAAAAAAAAAAAAAA' -- ", sqlKey), "token_kid", "unknown kid", ""},
		{"log injection with a newline", kid("hmac-1\n{\"event\":\"forged\"}", hs256(testKey)), "token_header", "kid", ""},
		{"NUL byte", kid("hmac-1\x00", hs256(testKey)), "token_header", "kid", ""},
		{"300-character kid", kid(strings.Repeat("k", 300), hs256(testKey)), "token_header", "kid", ""},
		{"10 000-character kid", kid(long, hs256(testKey)), "token_too_large", "", ""},
	})
	t.Run("10 000-character kid under a raised size cap", func(t *testing.T) {
		atkRunJWT(t, append(withKid, WithMaxTokenSize(64<<10)), goodKid, []atkJWT{
			{"refused by the header size cap", kid(long, hs256(testKey)), "token_header", "header too large", ""},
		})
	})
	t.Run("lone key without kid", func(t *testing.T) {
		atkRunJWT(t, []Option{WithHMACKey(testKey)}, mint(t, claims{}), []atkJWT{
			{"path traversal to /dev/null", kid("../../../../../../../dev/null", empty), "token_key", "", ""},
			{"SQL injection signed with the real key", kid("x' OR '1'='1", hs256(testKey)), "token_key", "", ""},
		})
	})
}

// TestJWTAttack_CritUnknownExtension: crit names an extension the verifier
// does not implement, so the token must be refused (RFC 7515 §4.1.11).
func TestJWTAttack_CritUnknownExtension(t *testing.T) {
	atkRunJWT(t, []Option{WithHMACKey(testKey)}, mint(t, claims{}), []atkJWT{
		{"crit with an unknown extension", handJWT(t, atkHeader("HS256", map[string]any{"crit": []string{"x-wssec-unknown"}, "x-wssec-unknown": true}), goodClaims(), hs256(testKey)), "token_header", "critical header", ""},
		{"crit naming a registered claim", handJWT(t, atkHeader("HS256", map[string]any{"crit": []string{"exp"}}), goodClaims(), hs256(testKey)), "token_header", "critical header", ""},
		{"b64 false (unencoded payload)", handJWT(t, atkHeader("HS256", map[string]any{"b64": false}), goodClaims(), hs256(testKey)), "token_header", "critical header", ""},
	})
}

// TestJWTAttack_ClaimEdges: exp, nbf and iat around the clock skew, exactly,
// on a frozen clock; and missing or wrong claims.
func TestJWTAttack_ClaimEdges(t *testing.T) {
	t0 := time.Now().Truncate(time.Second) // JWT times are whole seconds
	clk := &fakeClock{t: t0}
	skew := DefaultClockSkew
	opts := []Option{WithHMACKey(testKey), WithClock(clk.now)}
	good := mint(t, claims{iat: t0, exp: t0.Add(5 * time.Minute)})
	at := func(iat, exp, nbf time.Time) string {
		return mint(t, claims{iat: iat, exp: exp, nbf: nbf})
	}
	var none time.Time
	atkRunJWT(t, opts, good, []atkJWT{
		{"exp missing", mint(t, claims{iat: t0, noExp: true}), "token_claims", "exp missing", ""},
		{"now exactly exp+skew", at(t0.Add(-10*time.Minute), t0.Add(-skew), none), "token_expired", "", ""},
		{"now one second past exp+skew", at(t0.Add(-10*time.Minute), t0.Add(-skew-time.Second), none), "token_expired", "", ""},
		{"now exp+skew-1s is accepted", at(t0.Add(-10*time.Minute), t0.Add(-skew+time.Second), none), "", "", ""},
		{"nbf beyond the skew", at(t0, t0.Add(5*time.Minute), t0.Add(skew+time.Second)), "token_not_yet_valid", "", ""},
		{"nbf exactly at the skew is accepted", at(t0, t0.Add(5*time.Minute), t0.Add(skew)), "", "", ""},
		{"iat beyond the skew", at(t0.Add(skew+time.Second), t0.Add(5*time.Minute), none), "token_claims", "iat in the future", ""},
		{"lifetime over the maximum", at(t0, t0.Add(DefaultMaxTokenLifetime+time.Second), none), "token_lifetime", "", ""},
		{"sub missing", handJWT(t, atkHeader("HS256", nil), map[string]any{"iat": t0.Unix(), "exp": t0.Add(time.Minute).Unix()}, hs256(testKey)), "token_claims", "sub", ""},
		// jwx reads a numeric string as a NumericDate: lenient, but the
		// value is still enforced.
		{"exp as a numeric string in the past", handJWT(t, atkHeader("HS256", nil), map[string]any{"sub": "alice", "iat": t0.Add(-10 * time.Minute).Unix(), "exp": fmt.Sprint(t0.Add(-time.Hour).Unix())}, hs256(testKey)), "token_expired", "", ""},
		{"exp not a date", handJWT(t, atkHeader("HS256", nil), atkClaims(map[string]any{"exp": "never"}), hs256(testKey)), "token_signature", "", ""},
		{"exp of 1e300", handJWT(t, atkHeader("HS256", nil), atkClaims(map[string]any{"exp": 1e300}), hs256(testKey)), "token_signature", "", ""},
		{"sub not a string", handJWT(t, atkHeader("HS256", nil), atkClaims(map[string]any{"sub": []string{"alice"}}), hs256(testKey)), "token_signature", "", ""},
	})
	t.Run("issuer and audience", func(t *testing.T) {
		atkRunJWT(t, append(opts, WithIssuer("https://auth.example.com"), WithAudience("wssec-api")),
			mint(t, claims{iat: t0, exp: t0.Add(time.Minute), iss: "https://auth.example.com", aud: []string{"wssec-api"}}),
			[]atkJWT{
				{"wrong issuer", mint(t, claims{iat: t0, exp: t0.Add(time.Minute), iss: "https://auth.example.com.evil", aud: []string{"wssec-api"}}), "token_issuer", "", ""},
				{"issuer missing", mint(t, claims{iat: t0, exp: t0.Add(time.Minute), aud: []string{"wssec-api"}}), "token_issuer", "", ""},
				{"wrong audience", mint(t, claims{iat: t0, exp: t0.Add(time.Minute), iss: "https://auth.example.com", aud: []string{"other-api"}}), "token_audience", "", ""},
				{"audience missing", mint(t, claims{iat: t0, exp: t0.Add(time.Minute), iss: "https://auth.example.com"}), "token_audience", "", ""},
			})
	})
}

// TestJWTAttack_Oversized: a token over the size cap is refused before it
// is decoded.
func TestJWTAttack_Oversized(t *testing.T) {
	big := atkClaims(map[string]any{"pad": strings.Repeat("A", DefaultMaxTokenSize)})
	atkRunJWT(t, []Option{WithHMACKey(testKey)}, mint(t, claims{}), []atkJWT{
		{"validly signed token over 8 KiB", handJWT(t, atkHeader("HS256", nil), big, hs256(testKey)), "token_too_large", "", ""},
	})
	t.Run("under a lowered cap", func(t *testing.T) {
		good := mint(t, claims{})
		over := mint(t, claims{extra: map[string]any{"p": "x"}})
		atkRunJWT(t, []Option{WithHMACKey(testKey), WithMaxTokenSize(len(good))}, good, []atkJWT{
			{"control: a token at the cap", mint(t, claims{}), "", "", ""},
			{fmt.Sprintf("%d bytes over the cap", len(over)-len(good)), over, "token_too_large", "", ""},
		})
	})
}

// atkB64 is the base64url alphabet, by value.
const atkB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// TestJWTAttack_NonCanonicalBase64: variants of a valid token that a lenient
// base64url decoder reads as the very same bytes — the unused low bits of
// each segment's last character set, or padding added. Each is refused by
// the canonical-encoding check (a lenient verifier would accept the
// signature variants, whose signing input is unchanged).
func TestJWTAttack_NonCanonicalBase64(t *testing.T) {
	// Pad the header and claims so that every segment has unused bits.
	var hdr, cl map[string]any
	for n := 0; hdr == nil; n++ {
		h := atkHeader("HS256", map[string]any{"pad": strings.Repeat("a", n)})
		if b, _ := json.Marshal(h); len(b)%3 != 0 {
			hdr = h
		}
	}
	for n := 0; cl == nil; n++ {
		c := atkClaims(map[string]any{"pad": strings.Repeat("a", n)})
		if b, _ := json.Marshal(c); len(b)%3 != 0 {
			cl = c
		}
	}
	good := handJWT(t, hdr, cl, hs256(testKey))
	segs := strings.Split(good, ".")
	attacks := []atkJWT{{"control: the canonical token", good, "", "", ""}}
	for i, name := range []string{"header", "payload", "signature"} {
		seg := segs[i]
		if len(seg)%4 == 0 {
			t.Fatalf("%s segment has no unused bits", name)
		}
		want, _ := base64.RawURLEncoding.DecodeString(seg)
		j := strings.IndexByte(atkB64, seg[len(seg)-1])
		flipped := seg[:len(seg)-1] + string(atkB64[j^1])
		padded := seg + strings.Repeat("=", 4-len(seg)%4)
		// The variants decode to the same bytes for a lenient decoder.
		if got, err := base64.RawURLEncoding.DecodeString(flipped); err != nil || string(got) != string(want) {
			t.Fatalf("flipped %s does not decode to the same bytes", name)
		}
		if got, err := base64.URLEncoding.DecodeString(padded); err != nil || string(got) != string(want) {
			t.Fatalf("padded %s does not decode to the same bytes", name)
		}
		variant := func(s string) string {
			v := append([]string(nil), segs...)
			v[i] = s
			return strings.Join(v, ".")
		}
		// Padding inside the token, and whitespace anywhere, do not fit
		// the Authorization header's token68 syntax: the header parser
		// refuses them first, and in band the encoding check does.
		notBearer := "not a Bearer token"
		padDetail := notBearer
		if i == 2 {
			padDetail = "" // trailing padding is token68: the encoding check sees it
		}
		attacks = append(attacks,
			atkJWT{name: name + ": unused low bits set", token: variant(flipped), reason: "token_malformed", detail: "non-canonical"},
			atkJWT{name: name + ": padding added", token: variant(padded), reason: "token_malformed", detail: "padding", hsDetail: padDetail},
			atkJWT{name: name + ": standard alphabet", token: variant(strings.NewReplacer("-", "+", "_", "/").Replace(seg) + "+"), reason: "token_malformed", detail: "bad base64url"},
			atkJWT{name: name + ": whitespace inserted", token: variant(seg[:4] + " " + seg[4:]), reason: "token_malformed", detail: "whitespace", hsDetail: notBearer},
		)
	}
	atkRunJWT(t, []Option{WithHMACKey(testKey)}, mint(t, claims{}), attacks)
}

// TestJWTAttack_PsychicSignature is CVE-2022-21449 and its relatives: an
// ES256 signature whose r and s are 0 or the group order n (out of range),
// which a broken verifier accepts for any message and key.
func TestJWTAttack_PsychicSignature(t *testing.T) {
	srvRaw, srvPriv, srvPub := atkECSet(t)
	n := elliptic.P256().Params().N
	nm1 := new(big.Int).Sub(n, big.NewInt(1))
	sig := func(r, s *big.Int) []byte {
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
	zero, one := big.NewInt(0), big.NewInt(1)
	hdr := atkHeader("ES256", map[string]any{"kid": "k1"})
	forged := func(r, s *big.Int) string { return handJWT(t, hdr, goodClaims(), atkFixed(sig(r, s))) }
	atkRunJWT(t, []Option{WithKeySet(keySet(t, srvPub))}, mintWith(t, jwa.ES256(), srvPriv, claims{}), []atkJWT{
		{"control: the same token signed with the key", handJWT(t, hdr, goodClaims(), atkES256(srvRaw)), "", "", ""},
		{"r = s = 0 (64 zero bytes)", forged(zero, zero), "token_signature", "signature", ""},
		{"r = 0, s = 1", forged(zero, one), "token_signature", "signature", ""},
		{"r = 1, s = 0", forged(one, zero), "token_signature", "signature", ""},
		{"r = s = n", forged(n, n), "token_signature", "signature", ""},
		{"r = n, s = n-1", forged(n, nm1), "token_signature", "signature", ""},
		{"r = s = n-1", forged(nm1, nm1), "token_signature", "signature", ""},
		{"33-byte signature", handJWT(t, hdr, goodClaims(), atkFixed(make([]byte, 33))), "token_signature", "signature", ""},
		{"DER-encoded signature", handJWT(t, hdr, goodClaims(), func(in string) []byte {
			h := sha256.Sum256([]byte(in))
			der, err := ecdsa.SignASN1(rand.Reader, srvRaw, h[:])
			if err != nil {
				t.Fatal(err)
			}
			return der
		}), "token_signature", "signature", ""},
	})
}

// TestJWTAttack_RemovedJWKSKey: a key removed from the JWKS stops verifying
// as soon as the set is refreshed, at the handshake and in band.
func TestJWTAttack_RemovedJWKSKey(t *testing.T) {
	js := newJWKSServer(t)
	k1 := js.addKey(t, "k1")
	k2 := js.addKey(t, "k2")
	f := newFixture(t, nil, WithInsecureTransport(), WithJWKS(js.srv.URL))
	old := mintES(t, k1, "k1", claims{})
	wantAccepted(t, f, f.try(bearer(f.origin, old)))

	js.removeKey("k1")
	if err := f.g.ver.dyn.f.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	atkTryJWT(t, f, mintES(t, k2, "k2", claims{}), atkJWT{name: "token of the removed key", token: old, reason: "token_key"})
}

// ---------------------------------------------------------------------------
// Protocol abuse over a raw TCP connection: the handshake and every frame
// written by hand, the server's close frame read from the socket.

// atkRaw is the client end of a raw WebSocket connection.
type atkRaw struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	conn *Conn // the server's end
}

// atkRawDial performs the opening handshake by hand with a valid token and
// returns once the server's handler runs.
func atkRawDial(t *testing.T, f *fixture) *atkRaw {
	t.Helper()
	addr := f.srv.Listener.Addr().String()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET /ws HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Origin: " + f.origin + "\r\n" +
		"Authorization: Bearer " + mint(t, claims{}) + "\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("handshake response: %v", err)
	}
	resp.Body.Close()
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(h[:]) {
		t.Fatalf("handshake: %d, accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	r := &atkRaw{t: t, c: c, br: br}
	select {
	case r.conn = <-f.ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not run")
	}
	return r
}

// WebSocket opcodes and header bits (RFC 6455 §5.2).
const (
	atkOpCont   = 0x0
	atkOpText   = 0x1
	atkOpBinary = 0x2
	atkOpClose  = 0x8
	atkOpPing   = 0x9
	atkOpPong   = 0xA
	atkRSV1     = 0x40
	atkRSV2     = 0x20
	atkRSV3     = 0x10
)

// atkFrame encodes one frame. bits holds RSV bits to set; masked frames use
// a fixed non-zero key.
func atkFrame(fin bool, bits, op byte, payload []byte, masked bool) []byte {
	b := atkFrameHeader(fin, bits, op, uint64(len(payload)), masked)
	if !masked {
		return append(b, payload...)
	}
	key := b[len(b)-4:]
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// atkFrameHeader encodes a frame header announcing length payload bytes,
// with the mask key when masked.
func atkFrameHeader(fin bool, bits, op byte, length uint64, masked bool) []byte {
	b0 := bits | op
	if fin {
		b0 |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	b := []byte{b0}
	switch {
	case length <= 125:
		b = append(b, m|byte(length))
	case length <= 0xffff:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(length))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, length)
	}
	if masked {
		b = append(b, 0x5a, 0xc3, 0x17, 0x9e)
	}
	return b
}

// write sends raw bytes; a write error is returned, not fatal: the server
// may hang up mid-attack, which is the defence working.
func (r *atkRaw) write(b []byte) error {
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := r.c.Write(b)
	return err
}

// next reads one server frame. Server frames are never masked, and none of
// the ones these tests provoke exceeds 64 KiB.
func (r *atkRaw) next() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		r.t.Fatalf("the server sent a masked frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(r.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(r.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	if n > 64<<10 {
		r.t.Fatalf("server frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}

// closeCode reads until the server's close frame and returns its code
// (1005 when it carries none). It fails the test if the connection ends
// without one, or after 5 s.
func (r *atkRaw) closeCode() int {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 100000 {
		op, p, err := r.next()
		if err != nil {
			r.t.Fatalf("connection ended without a close frame: %v", err)
		}
		if op == atkOpClose {
			if len(p) < 2 {
				return websocket.CloseNoStatusReceived
			}
			return int(binary.BigEndian.Uint16(p))
		}
	}
	r.t.Fatal("no close frame")
	return 0
}

// text reads until the next text frame and returns it.
func (r *atkRaw) text() string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 100 {
		op, p, err := r.next()
		if err != nil {
			r.t.Fatalf("reading a text frame: %v", err)
		}
		switch op {
		case atkOpText:
			return string(p)
		case atkOpClose:
			r.t.Fatalf("got close %v, want a text frame", p)
		}
	}
	r.t.Fatal("no text frame")
	return ""
}

// atkRawFixture is a fixture for raw-socket tests.
func atkRawFixture(t *testing.T, opts ...Option) *fixture {
	return newFixture(t, nil, append([]Option{WithInsecureTransport(), WithHMACKey(testKey)}, opts...)...)
}

// atkWantClosed asserts the close code the client read, and that the
// server tore the connection down and reported the same code.
func atkWantClosed(t *testing.T, f *fixture, r *atkRaw, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("server closed with %d; want %d", got, want)
	}
	// Answer the close and hang up, as a client does, so the server does
	// not wait out its close grace period for a reply.
	r.write(atkFrame(true, 0, atkOpClose, binary.BigEndian.AppendUint16(nil, uint16(want)), true))
	r.c.Close()
	waitGone(t, r.conn)
	var ce *CloseError
	if err := r.conn.closedErr(); !errors.As(err, &ce) || ce.Code != want {
		t.Fatalf("server side close %v; want %d", err, want)
	}
	eventually(t, "conn_closed event", func() bool {
		ev, ok := f.events.last(EventConnClosed)
		return ok && ev.CloseCode == want
	})
}

// atkProtocolCase is one malformed frame sequence and the close it earns.
type atkProtocolCase struct {
	name   string
	frames [][]byte
	code   int
}

func atkRunProtocol(t *testing.T, cases []atkProtocolCase, opts ...Option) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := atkRawFixture(t, opts...)
			r := atkRawDial(t, f)
			// A valid message first: the connection works until the attack.
			r.write(atkFrame(true, 0, atkOpText, []byte(`{"action":"ping","id":"before"}`), true))
			if got := r.text(); got != `{"action":"pong","id":"before"}` {
				t.Fatalf("answer %s", got)
			}
			for _, fr := range tc.frames {
				if err := r.write(fr); err != nil {
					break
				}
			}
			atkWantClosed(t, f, r, r.closeCode(), tc.code)
		})
	}
}

// TestProtocolAttack_FragmentFlood: 200 000 small continuation frames, 3 MiB
// in all against a 4 KiB cap, end in 1009 as soon as the cap is passed,
// with the memory they cost bounded by the cap (a server that buffered the
// message before checking its size would allocate the 3 MiB); a fragmented
// message within the cap is served.
func TestProtocolAttack_FragmentFlood(t *testing.T) {
	const limit = 4096
	f := atkRawFixture(t, WithMaxMessageSize(limit))
	r := atkRawDial(t, f)

	// Within the cap: one byte a frame.
	msg := []byte(`{"action":"ping","id":"fragmented"}`)
	var within []byte
	for i, c := range msg {
		op := byte(atkOpCont)
		if i == 0 {
			op = atkOpText
		}
		within = append(within, atkFrame(i == len(msg)-1, 0, op, []byte{c}, true)...)
	}
	if err := r.write(within); err != nil {
		t.Fatal(err)
	}
	if got := r.text(); got != `{"action":"pong","id":"fragmented"}` {
		t.Fatalf("fragmented message answered %s", got)
	}

	// Over the cap: "{" and then 199 999 frames of 16 bytes of whitespace.
	const frames = 200_000
	pad := []byte("                ")
	flood := atkFrame(false, 0, atkOpText, []byte("{"), true)
	for i := 1; i < frames; i++ {
		flood = append(flood, atkFrame(i == frames-1, 0, atkOpCont, pad, true)...)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	go r.write(flood) // the server hangs up mid-flood: the write may fail
	code := r.closeCode()
	atkWantClosed(t, f, r, code, CloseTooBig)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("fragment flood: %d bytes allocated, heap delta %d bytes", alloc, heap)
	// Generous against noise, far below what buffering the message
	// (3 MiB) or allocating per frame (200 000 frames) would cost.
	if alloc > 512<<10 || heap > 256<<10 {
		t.Errorf("fragment flood cost %d bytes allocated, %d retained; want under 512 KiB and 256 KiB", alloc, heap)
	}
	if !f.events.has(EventMessageRefused, "message_too_big") {
		t.Fatal("no message_too_big event")
	}
}

// TestProtocolAttack_OversizedControlFrame: a control frame over 125 bytes
// (RFC 6455 §5.5) fails the connection with 1002.
func TestProtocolAttack_OversizedControlFrame(t *testing.T) {
	p := make([]byte, 126)
	atkRunProtocol(t, []atkProtocolCase{
		{"ping of 126 bytes", [][]byte{atkFrame(true, 0, atkOpPing, p, true)}, websocket.CloseProtocolError},
		{"pong of 126 bytes", [][]byte{atkFrame(true, 0, atkOpPong, p, true)}, websocket.CloseProtocolError},
		{"close of 126 bytes", [][]byte{atkFrame(true, 0, atkOpClose, append([]byte{0x03, 0xe8}, p[2:]...), true)}, websocket.CloseProtocolError},
		{"fragmented ping", [][]byte{atkFrame(false, 0, atkOpPing, []byte("x"), true)}, websocket.CloseProtocolError},
	})
}

// TestProtocolAttack_UnmaskedFrame: a client frame without a mask (RFC 6455
// §5.1) fails the connection with 1002.
func TestProtocolAttack_UnmaskedFrame(t *testing.T) {
	atkRunProtocol(t, []atkProtocolCase{
		{"unmasked text frame", [][]byte{atkFrame(true, 0, atkOpText, []byte(`{"action":"ping"}`), false)}, websocket.CloseProtocolError},
		{"unmasked ping", [][]byte{atkFrame(true, 0, atkOpPing, nil, false)}, websocket.CloseProtocolError},
	})
}

// TestProtocolAttack_ReservedBits: RSV bits that no negotiated extension
// defines, and reserved opcodes, fail the connection with 1002.
func TestProtocolAttack_ReservedBits(t *testing.T) {
	msg := []byte(`{"action":"ping"}`)
	atkRunProtocol(t, []atkProtocolCase{
		{"RSV1 without compression", [][]byte{atkFrame(true, atkRSV1, atkOpText, msg, true)}, websocket.CloseProtocolError},
		{"RSV2", [][]byte{atkFrame(true, atkRSV2, atkOpText, msg, true)}, websocket.CloseProtocolError},
		{"RSV3", [][]byte{atkFrame(true, atkRSV3, atkOpText, msg, true)}, websocket.CloseProtocolError},
		{"RSV2 on a ping", [][]byte{atkFrame(true, atkRSV2, atkOpPing, nil, true)}, websocket.CloseProtocolError},
		{"reserved data opcode 0x3", [][]byte{atkFrame(true, 0, 0x3, msg, true)}, websocket.CloseProtocolError},
		{"reserved control opcode 0xB", [][]byte{atkFrame(true, 0, 0xB, nil, true)}, websocket.CloseProtocolError},
	})
}

// TestProtocolAttack_InvalidUTF8: a text message that is not UTF-8 fails the
// connection with 1007 (RFC 6455 §8.1), also when the bad sequence spans
// fragments; a valid character split across fragments is fine.
func TestProtocolAttack_InvalidUTF8(t *testing.T) {
	text := func(s string) [][]byte { return [][]byte{atkFrame(true, 0, atkOpText, []byte(s), true)} }
	atkRunProtocol(t, []atkProtocolCase{
		{"0xff", text("{\"action\":\"ping\",\"id\":\"\xff\"}"), CloseInvalidData},
		{"overlong slash", text("{\"action\":\"ping\",\"id\":\"\xc0\xaf\"}"), CloseInvalidData},
		{"UTF-16 surrogate", text("{\"action\":\"ping\",\"id\":\"\xed\xa0\x80\"}"), CloseInvalidData},
		{"truncated sequence", text("{\"action\":\"ping\",\"id\":\"\xe2\x82\"}"), CloseInvalidData},
		{"code point over U+10FFFF", text("{\"action\":\"ping\",\"id\":\"\xf4\x90\x80\x80\"}"), CloseInvalidData},
		{"bad sequence across fragments", [][]byte{
			atkFrame(false, 0, atkOpText, []byte("{\"action\":\"ping\",\"id\":\"\xe2"), true),
			atkFrame(true, 0, atkOpCont, []byte("\x28\xa1\"}"), true),
		}, CloseInvalidData},
		{"invalid UTF-8 in a close reason", [][]byte{atkFrame(true, 0, atkOpClose, []byte("\x03\xe8\xff"), true)}, websocket.CloseProtocolError},
	})
	t.Run("while over the message rate", func(t *testing.T) {
		// The rate is checked before the envelope (which checks UTF-8), so
		// a text frame that arrives over the rate is answered rate_limited
		// and the connection stays up, instead of failing with 1007 as
		// RFC 6455 §8.1 and the design's "Answers on the wire" require.
		frozen := time.Now()
		f := atkRawFixture(t, WithMessageRate(1, 1), WithClock(func() time.Time { return frozen }))
		r := atkRawDial(t, f)
		r.write(atkFrame(true, 0, atkOpText, []byte(`{"action":"ping","id":"burst"}`), true)) // takes the only token
		if got := r.text(); got != `{"action":"pong","id":"burst"}` {
			t.Fatalf("answer %s", got)
		}
		r.write(atkFrame(true, 0, atkOpText, []byte("{\"action\":\"ping\",\"id\":\"\xff\"}"), true))
		_ = r.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		op, p, err := r.next()
		if err != nil || op != atkOpClose || len(p) < 2 || binary.BigEndian.Uint16(p) != CloseInvalidData {
			t.Fatalf("got opcode %d %q (%v); want close 1007", op, p, err)
		}
	})
	t.Run("valid character split across fragments", func(t *testing.T) {
		f := atkRawFixture(t)
		r := atkRawDial(t, f)
		msg := []byte(`{"action":"ping","id":"é"}`)
		cut := strings.Index(string(msg), "é") + 1 // between the two bytes of é
		r.write(append(atkFrame(false, 0, atkOpText, msg[:cut], true), atkFrame(true, 0, atkOpCont, msg[cut:], true)...))
		if got := r.text(); got != `{"action":"pong","id":"é"}` {
			t.Fatalf("answer %s", got)
		}
	})
}

// TestProtocolAttack_InvalidCloseCode: a close frame with a code that may
// not be sent (RFC 6455 §7.4) fails the connection with 1002.
func TestProtocolAttack_InvalidCloseCode(t *testing.T) {
	var cases []atkProtocolCase
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
		cases = append(cases, atkProtocolCase{fmt.Sprint("code ", code),
			[][]byte{atkFrame(true, 0, atkOpClose, binary.BigEndian.AppendUint16(nil, code), true)}, websocket.CloseProtocolError})
	}
	atkRunProtocol(t, cases)
}

// TestProtocolAttack_InterleavedDataFrames: a new data message before the
// fragmented one ends, or a continuation with nothing to continue, fails
// the connection with 1002.
func TestProtocolAttack_InterleavedDataFrames(t *testing.T) {
	start := atkFrame(false, 0, atkOpText, []byte(`{"action":`), true)
	atkRunProtocol(t, []atkProtocolCase{
		{"text inside a fragmented text", [][]byte{start, atkFrame(true, 0, atkOpText, []byte(`{"action":"ping"}`), true)}, websocket.CloseProtocolError},
		{"binary inside a fragmented text", [][]byte{start, atkFrame(true, 0, atkOpBinary, []byte(`x`), true)}, websocket.CloseProtocolError},
		{"continuation without a start", [][]byte{atkFrame(true, 0, atkOpCont, []byte(`"ping"}`), true)}, websocket.CloseProtocolError},
	})
	t.Run("a ping between fragments is allowed", func(t *testing.T) {
		f := atkRawFixture(t)
		r := atkRawDial(t, f)
		r.write(start)
		r.write(atkFrame(true, 0, atkOpPing, []byte("hi"), true))
		r.write(atkFrame(true, 0, atkOpCont, []byte(`"ping","id":"x"}`), true))
		if got := r.text(); got != `{"action":"pong","id":"x"}` {
			t.Fatalf("answer %s", got)
		}
	})
}

// TestProtocolAttack_HugeLengthHeader: a frame header that announces 2^63-1
// bytes (or 2^63, the forbidden most significant bit) ends in 1009 at once,
// and the server allocates nothing sized by it.
func TestProtocolAttack_HugeLengthHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   byte
		fin  bool
		n    uint64
	}{
		{"text of 2^63-1 bytes", atkOpText, true, 1<<63 - 1},
		{"text of 2^63 bytes", atkOpText, true, 1 << 63},
		{"binary of 2^64-1 bytes", atkOpBinary, true, 1<<64 - 1},
		{"first fragment of 2^62 bytes", atkOpText, false, 1 << 62},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := atkRawFixture(t)
			r := atkRawDial(t, f)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&before)
			r.write(append(atkFrameHeader(tc.fin, 0, tc.op, tc.n, true), []byte("{\"action\":")...))
			atkWantClosed(t, f, r, r.closeCode(), CloseTooBig)
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes allocated while refusing a %d-byte frame", alloc, tc.n)
			if alloc > 1<<20 {
				t.Errorf("%d bytes allocated; want under 1 MiB", alloc)
			}
			if !f.events.has(EventMessageRefused, "message_too_big") {
				t.Fatal("no message_too_big event")
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Resource attacks.

// TestResourceAttack_PingFlood: a peer that sends pings as fast as it can is
// answered within the message rate only, and closed with 1013 once it has
// been over the rate as many times as the denial limit.
func TestResourceAttack_PingFlood(t *testing.T) {
	f := atkRawFixture(t) // defaults: 20 messages/s, burst 40, denial limit 5
	r := atkRawDial(t, f)
	ping := atkFrame(true, 0, atkOpPing, []byte("ping"), true)
	const maxPings = 20000
	stop := make(chan struct{})
	var sent atomic.Int64
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		batch := make([]byte, 0, 100*len(ping))
		for range 100 {
			batch = append(batch, ping...)
		}
		for sent.Load() < maxPings {
			select {
			case <-stop:
				return
			default:
			}
			if r.write(batch) != nil {
				return
			}
			sent.Add(100)
		}
	}()
	start := time.Now()
	pongs := 0
	code := 0
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for code == 0 {
		op, p, err := r.next()
		if err != nil {
			t.Fatalf("after %d pings and %d pongs the connection ended without a close frame: %v", sent.Load(), pongs, err)
		}
		switch op {
		case atkOpPong:
			pongs++
		case atkOpClose:
			code = int(binary.BigEndian.Uint16(p))
		}
	}
	close(stop)
	<-wrote
	elapsed := time.Since(start)
	t.Logf("%d pings sent, %d answered in %v before close %d", sent.Load(), pongs, elapsed, code)
	atkWantClosed(t, f, r, code, CloseTryAgainLater)
	if limit := DefaultMessageBurst + int(float64(DefaultMessageRate)*elapsed.Seconds()) + 2; pongs > limit {
		t.Fatalf("%d pongs in %v; want at most %d (the message rate)", pongs, elapsed, limit)
	}
	if !closedWith(f.events, CloseTryAgainLater, "ping flood") || !f.events.has(EventMessageRefused, "ping_flood") {
		t.Fatalf("the ping flood was not reported (conn_closed 1013 and message_refused ping_flood): %v", f.events.all())
	}
}

// TestResourceAttack_Slowloris: behind HardenServer, a client that dribbles
// its request headers a byte every 100 ms is cut off by ReadHeaderTimeout
// before the headers complete, while a normal client still connects; a
// client that sends more header bytes than MaxHeaderBytes gets 431.
func TestResourceAttack_Slowloris(t *testing.T) {
	// HardenServer sets both limits on a bare server and keeps a caller's.
	if s := HardenServer(&http.Server{}); s.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.MaxHeaderBytes != DefaultMaxHeaderBytes || s.IdleTimeout != DefaultServerIdleTimeout {
		t.Fatalf("HardenServer on a bare server: %v, %d, %v", s.ReadHeaderTimeout, s.MaxHeaderBytes, s.IdleTimeout)
	}
	const timeout = 300 * time.Millisecond
	g, err := New(WithInsecureTransport(), WithHMACKey(testKey), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv := HardenServer(&http.Server{ReadHeaderTimeout: timeout, Handler: g.Handler(func(ctx context.Context, c *Conn) {
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				return
			}
		}
	})})
	if srv.ReadHeaderTimeout != timeout {
		t.Fatalf("HardenServer replaced the caller's ReadHeaderTimeout: %v", srv.ReadHeaderTimeout)
	}
	// The server's goroutine for a connection it cut off lingers (net/http
	// waits 500 ms for the client to read the 408): wait for each to end,
	// so the leak check sees none.
	var conns sync.WaitGroup
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			conns.Add(1)
		case http.StateHijacked, http.StateClosed:
			conns.Done()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		g.Close()
		srv.Close()
		<-served
		conns.Wait()
	})
	addr := ln.Addr().String()
	origin := "http://" + addr
	request := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: " + origin + "\r\n" +
		"Authorization: Bearer " + mint(t, claims{}) + "\r\n\r\n"

	const attackers = 8
	type outcome struct {
		sent    int
		elapsed time.Duration
		got     string
	}
	results := make(chan outcome, attackers)
	for range attackers {
		go func() {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				results <- outcome{got: err.Error()}
				return
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			cut := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(c) // returns when the server closes
				cut <- b
			}()
			start := time.Now()
			sent := 0
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for sent < len(request) {
				select {
				case b := <-cut:
					results <- outcome{sent, time.Since(start), string(b)}
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte{request[sent]}); err != nil {
					b := <-cut
					results <- outcome{sent, time.Since(start), string(b)}
					return
				}
				sent++
			}
			results <- outcome{sent, time.Since(start), "headers completed"}
		}()
	}

	// Meanwhile a normal client connects and is served.
	time.Sleep(150 * time.Millisecond)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+addr+"/ws", bearer(origin, mint(t, claims{sub: "bob"})))
	if err != nil {
		t.Fatalf("a normal client could not connect during the attack: %v", err)
	}
	resp.Body.Close()
	ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"ping","id":"ok"}`))
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"action":"pong","id":"ok"}` {
		t.Fatalf("normal client: %s %v", msg, err)
	}
	ws.Close()

	for range attackers {
		o := <-results
		t.Logf("slowloris client cut off after %d of %d header bytes, %v", o.sent, len(request), o.elapsed)
		if o.sent >= len(request) || o.elapsed > 3*time.Second {
			t.Fatalf("the dribbling client was not cut off: %d of %d bytes sent in %v (%q)", o.sent, len(request), o.elapsed, o.got)
		}
		if o.got != "" && !strings.HasPrefix(o.got, "HTTP/1.1 408") && !strings.HasPrefix(o.got, "HTTP/1.1 400") {
			t.Fatalf("the dribbling client read %q", o.got)
		}
	}

	t.Run("headers over MaxHeaderBytes", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: "+addr+"\r\nX-Pad: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("64 KiB of headers: %d; want 431", resp.StatusCode)
		}
	})
}

// TestResourceAttack_ConnectionFloodPerIP: one client (behind a trusted
// proxy, so one loopback peer can stand for two clients) floods connections;
// past its quota every attempt gets 429 with Retry-After and holds no slot,
// while another client still connects.
func TestResourceAttack_ConnectionFloodPerIP(t *testing.T) {
	const quota, flood = 4, 50
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithTrustedProxies("127.0.0.1/32"),
		WithConnLimits(quota, 100, 1000), WithHandshakeRate(1000, 1000))
	attacker := func(i int) http.Header {
		h := bearer(f.origin, mint(t, claims{sub: fmt.Sprint("bot", i)}))
		h.Set("X-Forwarded-For", "203.0.113.66")
		return h
	}
	for i := range quota {
		wantAccepted(t, f, f.try(attacker(i)))
	}
	for i := quota; i < quota+flood; i++ {
		a := f.try(attacker(i))
		wantRefused(t, f, a, http.StatusTooManyRequests, "quota_ip")
		wantRetryAfter(t, a)
	}
	wantCountsNow(t, f.g, 1, quota, quota)
	victim := bearer(f.origin, mint(t, claims{sub: "victim"}))
	victim.Set("X-Forwarded-For", "198.51.100.7")
	c := wantAccepted(t, f, f.try(victim))
	if c.RemoteIP() != "198.51.100.7" {
		t.Fatalf("victim RemoteIP %q", c.RemoteIP())
	}
	wantCountsNow(t, f.g, 2, quota+1, quota+1)
}

// atkCounter is an Observer that counts events by reason without keeping
// them, so a long attack costs it no memory.
type atkCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *atkCounter) Observe(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[string(e.Kind)+"/"+e.Reason]++
}

func (c *atkCounter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// TestResourceAttack_InvalidTokenFlood: 10 000 handshakes with invalid tokens
// (plain HTTP requests carrying the upgrade headers, over keep-alive
// connections) are each answered 401 and leave the live heap and the
// goroutine count at their baseline.
//
// The heap is measured with runtime.ReadMemStats after two GCs (the second
// frees what sync.Pools kept through the first), once after a warm-up of
// 200 handshakes (so lazily built state — the limiter table entry, jwx and
// validator caches, HTTP buffers — exists in both readings), and once after
// the flood and after the client's connections are closed. The tolerance is
// 256 KiB: live state that grew by as little as 27 bytes per refused
// handshake would exceed it, while the readings of a process at rest differ
// by a few KiB to a few tens of KiB (runtime and test bookkeeping).
func TestResourceAttack_InvalidTokenFlood(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	const workers = 4
	cnt := &atkCounter{n: map[string]int{}}
	g, err := New(WithInsecureTransport(), WithHMACKey(testKey), WithHandshakeRate(1e6, 1<<20),
		WithLogger(slog.New(slog.DiscardHandler)), WithObserver(cnt))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler(func(context.Context, *Conn) { t.Error("a handler ran for an invalid token") }))
	t.Cleanup(func() {
		g.Close()
		srv.Close()
	})
	now := time.Now()
	bad := []string{
		"x.y.z",
		handJWT(t, atkHeader("HS256", nil), goodClaims(), hs256([]byte("not-the-key-not-the-key-not-the-"))),
		handJWT(t, atkHeader("none", nil), goodClaims(), hs256(testKey)),
		mint(t, claims{iat: now.Add(-10 * time.Minute), exp: now.Add(-5 * time.Minute)}),
		handJWT(t, atkHeader("HS256", map[string]any{"jku": "https://attacker.example/jwks"}), goodClaims(), hs256(testKey)),
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var failures atomic.Int64
	var firstFailure atomic.Value
	flood := func(total int) {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < total && failures.Load() == 0; i += workers {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ws", nil)
					req.Header = http.Header{
						"Connection":            {"Upgrade"},
						"Upgrade":               {"websocket"},
						"Sec-Websocket-Version": {"13"},
						"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
						"Origin":                {srv.URL},
						"Authorization":         {"Bearer " + bad[i%len(bad)]},
					}
					resp, err := client.Do(req)
					if err != nil {
						failures.Add(1)
						firstFailure.CompareAndSwap(nil, err.Error())
						continue
					}
					if resp.StatusCode != http.StatusUnauthorized {
						// An upgraded (101) body never ends: stop the flood
						// here rather than wait for it.
						failures.Add(1)
						firstFailure.CompareAndSwap(nil, resp.Status)
						resp.Body.Close()
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
	}
	settle := func() (heap uint64, goroutines int) {
		client.CloseIdleConnections()
		// The server's connection goroutines end once they see the close.
		var last int
		deadline := time.Now().Add(5 * time.Second)
		for {
			last = runtime.NumGoroutine()
			time.Sleep(20 * time.Millisecond)
			if runtime.NumGoroutine() == last || time.Now().After(deadline) {
				break
			}
		}
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, runtime.NumGoroutine()
	}

	flood(200) // warm-up
	baseHeap, baseG := settle()
	start := time.Now()
	flood(n)
	elapsed := time.Since(start)
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests not answered 401 (first: %v)", f, n+200, firstFailure.Load())
	}
	var heap uint64
	var gs int
	deadline := time.Now().Add(5 * time.Second)
	for {
		heap, gs = settle()
		if gs <= baseG || time.Now().After(deadline) {
			break
		}
	}
	delta := int64(heap) - int64(baseHeap)
	t.Logf("%d invalid-token handshakes in %v (%.0f/s); heap %d -> %d (%+d bytes); goroutines %d -> %d",
		n, elapsed, float64(n)/elapsed.Seconds(), baseHeap, heap, delta, baseG, gs)
	if gs > baseG {
		t.Errorf("goroutines %d after the flood; baseline %d", gs, baseG)
	}
	if delta > 256<<10 {
		t.Errorf("live heap grew by %d bytes over %d refused handshakes; tolerance 256 KiB", delta, n)
	}
	refused := 0
	for _, r := range []string{"token_malformed", "token_signature", "token_alg", "token_expired", "token_header"} {
		refused += cnt.get(string(EventHandshakeRefused) + "/" + r)
	}
	if refused != n+200 {
		t.Fatalf("%d refusals observed; want %d", refused, n+200)
	}
	if _, _, total := g.lim.counts(); total != 0 {
		t.Fatalf("%d connection slots held after the flood", total)
	}
}

// TestResourceAttack_MessageFlood is the message-rate guard seen
// from an attacker's side over a real socket with a real clock: a client
// that writes as fast as it can is closed with 1013 after a bounded number
// of messages reached the application.
func TestResourceAttack_MessageFlood(t *testing.T) {
	h := newConnHarness(t, WithMessageRate(rate.Limit(20), 10), WithDenialLimit(5))
	c := h.dialClient(t, "", false)
	const maxMsgs = 5000
	go func() {
		for i := range maxMsgs {
			_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if c.ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"action":"marker","id":"%d","payload":{"n":1}}`, i))) != nil {
				return
			}
		}
	}()
	start := time.Now()
	code := 0
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for code == 0 {
		_, _, err := c.ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			code = ce.Code
		} else if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	elapsed := time.Since(start)
	if code != CloseTryAgainLater {
		t.Fatalf("close %d; want 1013", code)
	}
	h.waitEnded(t)
	got := len(h.gotIDs())
	t.Logf("%d messages reached the application in %v before close 1013", got, elapsed)
	if limit := 10 + int(20*elapsed.Seconds()) + 1; got > limit {
		t.Fatalf("%d messages reached the application in %v; the rate allows %d", got, elapsed, limit)
	}
}
