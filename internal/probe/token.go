package probe

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

var b64 = base64.RawURLEncoding

// jwtParts is a compact JWS split into its three segments, with the
// header decoded.
type jwtParts struct {
	header  map[string]any
	payload string // still encoded
	sig     []byte
}

// Token parsing errors.
var (
	errNotJWT       = errors.New("not a compact JWS (three dot-separated base64url segments)")
	errTokenTooLong = errors.New("token over 64 KiB")
)

// parseJWT splits a compact JWS. It decodes only the header (a JSON
// object) and the signature; the payload is kept as sent, so forged tokens
// carry the very claims of the real one.
func parseJWT(tok string) (jwtParts, error) {
	if len(tok) > 64<<10 {
		return jwtParts{}, errTokenTooLong
	}
	h, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return jwtParts{}, errNotJWT
	}
	pl, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") || pl == "" {
		return jwtParts{}, errNotJWT
	}
	if _, err := b64.DecodeString(pl); err != nil {
		return jwtParts{}, fmt.Errorf("%w: payload: %v", errNotJWT, err)
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return jwtParts{}, fmt.Errorf("%w: header: %v", errNotJWT, err)
	}
	var hdr map[string]any
	d := json.NewDecoder(bytes.NewReader(hb))
	d.UseNumber()
	if err := d.Decode(&hdr); err != nil || hdr == nil {
		return jwtParts{}, fmt.Errorf("%w: header is not a JSON object", errNotJWT)
	}
	if _, err := d.Token(); err != io.EOF {
		return jwtParts{}, fmt.Errorf("%w: header has trailing data", errNotJWT)
	}
	sb, err := b64.DecodeString(sig)
	if err != nil {
		return jwtParts{}, fmt.Errorf("%w: signature: %v", errNotJWT, err)
	}
	return jwtParts{header: hdr, payload: pl, sig: sb}, nil
}

// with returns a copy of the header with changes applied (a nil value
// deletes the key).
func (j jwtParts) with(changes map[string]any) map[string]any {
	h := make(map[string]any, len(j.header)+len(changes))
	for k, v := range j.header {
		h[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return h
}

// signingInput encodes a header and joins it with the payload.
func signingInput(header map[string]any, payload string) string {
	hb, _ := json.Marshal(header)
	return b64.EncodeToString(hb) + "." + payload
}

func hs256(input string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + b64.EncodeToString(m.Sum(nil))
}

// forgery is one token the endpoint must refuse.
type forgery struct {
	check string
	what  string // for evidence
	token string
}

// probeKey is the probe's own signing key for the embedded-key attacks.
type probeKey struct {
	alg  string
	sign func(input string) (string, error)
	jwk  map[string]any
}

func newProbeKey(origAlg string) (*probeKey, error) {
	if strings.HasPrefix(origAlg, "ES") {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		pub, err := k.PublicKey.ECDH()
		if err != nil {
			return nil, err
		}
		raw := pub.Bytes() // 0x04 || X || Y
		return &probeKey{
			alg: "ES256",
			jwk: map[string]any{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(raw[1:33]), "y": b64.EncodeToString(raw[33:]), "kid": "wsprobe", "alg": "ES256", "use": "sig"},
			sign: func(input string) (string, error) {
				sum := sha256.Sum256([]byte(input))
				r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
				if err != nil {
					return "", err
				}
				sig := make([]byte, 64)
				r.FillBytes(sig[:32])
				s.FillBytes(sig[32:])
				return input + "." + b64.EncodeToString(sig), nil
			},
		}, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &probeKey{
		alg: "RS256",
		jwk: map[string]any{"kty": "RSA", "n": b64.EncodeToString(k.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()), "kid": "wsprobe", "alg": "RS256", "use": "sig"},
		sign: func(input string) (string, error) {
			sum := sha256.Sum256([]byte(input))
			sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
			if err != nil {
				return "", err
			}
			return input + "." + b64.EncodeToString(sig), nil
		},
	}, nil
}

// forgeries derives the attacks from a real token. jku is the URL of the
// probe's own JWKS; pubKeys are the endpoint's public keys (PEM forms,
// by kid) for the HS256 confusion attack.
func forgeries(j jwtParts, key *probeKey, jku string, pubKeys []publicKeyForm) []forgery {
	var out []forgery
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		in := signingInput(j.with(map[string]any{"alg": alg}), j.payload)
		out = append(out, forgery{"alg-none", `alg "` + alg + `", no signature`, in + "."})
	}
	in := signingInput(j.with(map[string]any{"alg": "none"}), j.payload)
	out = append(out, forgery{"alg-none", `alg "none", original signature kept`, in + "." + b64.EncodeToString(j.sig)})

	orig := signingInput(j.header, j.payload)
	out = append(out, forgery{"signature-stripped", "original header and claims, empty signature", orig + "."})
	if len(j.sig) > 0 {
		flipped := append([]byte(nil), j.sig...)
		flipped[len(flipped)/2] ^= 0x01
		out = append(out, forgery{"signature-flipped", "one bit of the signature flipped", orig + "." + b64.EncodeToString(flipped)})
	}

	out = append(out,
		forgery{"kid-injection", `HS256 with kid "../../../../../../../../dev/null" and an empty key`,
			hs256(signingInput(j.with(map[string]any{"alg": "HS256", "kid": "../../../../../../../../dev/null", "jku": nil, "jwk": nil, "x5u": nil}), j.payload), nil)},
		forgery{"kid-injection", `HS256 with kid "x' UNION SELECT 'wsprobe'-- " and the key "wsprobe"`,
			hs256(signingInput(j.with(map[string]any{"alg": "HS256", "kid": "x' UNION SELECT 'wsprobe'-- ", "jku": nil, "jwk": nil, "x5u": nil}), j.payload), []byte("wsprobe"))},
	)
	if key != nil {
		pub := make(map[string]any, len(key.jwk))
		for k, v := range key.jwk {
			pub[k] = v
		}
		if t, err := key.sign(signingInput(j.with(map[string]any{"alg": key.alg, "kid": "wsprobe", "jwk": pub}), j.payload)); err == nil {
			out = append(out, forgery{"jwk-embedded", key.alg + " signed with the probe's key, carried in the jwk header", t})
		}
		if jku != "" {
			if t, err := key.sign(signingInput(j.with(map[string]any{"alg": key.alg, "kid": "wsprobe", "jku": jku}), j.payload)); err == nil {
				out = append(out, forgery{"jku", key.alg + " signed with the probe's key, jku " + jku, t})
			}
		}
	}
	for _, pk := range pubKeys {
		changes := map[string]any{"alg": "HS256"}
		if pk.kid != "" {
			changes["kid"] = pk.kid
		}
		out = append(out, forgery{"hs256-public-key", "HS256 keyed with " + pk.what,
			hs256(signingInput(j.with(changes), j.payload), pk.bytes)})
	}
	return out
}

// publicKeyForm is one byte form of an endpoint's public key that a
// confused verifier might use as an HMAC secret.
type publicKeyForm struct {
	kid, what string
	bytes     []byte
}

// jwkSet is the JSON shape of a JWKS, only the fields the probe reads.
type jwkSet struct {
	Keys []struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Crv string `json:"crv"`
		N   string `json:"n"`
		E   string `json:"e"`
		X   string `json:"x"`
		Y   string `json:"y"`
	} `json:"keys"`
}

// publicKeyForms parses a JWKS (RSA and P-256/384/521 EC keys; others are
// skipped) into the PEM forms of each key, at most 4 keys.
func publicKeyForms(data []byte) ([]publicKeyForm, error) {
	var set jwkSet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var out []publicKeyForm
	for i, k := range set.Keys {
		if i == 4 {
			break
		}
		var pub any
		switch k.Kty {
		case "RSA":
			n, err1 := b64.DecodeString(k.N)
			e, err2 := b64.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
				continue
			}
			ev := int(new(big.Int).SetBytes(e).Int64())
			if ev < 3 {
				continue
			}
			pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			x, err1 := b64.DecodeString(k.X)
			y, err2 := b64.DecodeString(k.Y)
			size := (curve.Params().BitSize + 7) / 8
			if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
				continue
			}
			pub = &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		default:
			continue
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			continue
		}
		pemb := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		out = append(out,
			publicKeyForm{k.Kid, fmt.Sprintf("the PEM of JWKS key %q", k.Kid), pemb},
			publicKeyForm{k.Kid, fmt.Sprintf("the PEM of JWKS key %q without its final newline", k.Kid), bytes.TrimSuffix(pemb, []byte("\n"))},
			publicKeyForm{k.Kid, fmt.Sprintf("the DER of JWKS key %q", k.Kid), der},
		)
	}
	return out, nil
}

// jkuServer serves the probe's own JWKS on loopback and counts fetches.
type jkuServer struct {
	ln      net.Listener
	srv     *http.Server
	fetches atomic.Int64
	done    chan struct{}
}

func startJKU(jwk map[string]any) (*jkuServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	s := &jkuServer{ln: ln, done: make(chan struct{})}
	s.srv = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.fetches.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
	}
	go func() { defer close(s.done); _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *jkuServer) url() string { return "http://" + s.ln.Addr().String() + "/jwks.json" }

func (s *jkuServer) stop() {
	_ = s.srv.Close()
	<-s.done
}

// checkTokens: every forged token, the token in the query string and an
// expired token must be refused.
func (p *prober) checkTokens(ctx context.Context) {
	const g = "token"
	if p.cfg.Token == "" {
		p.add(g, "forged", NA, "no -token given")
		return
	}
	j, err := parseJWT(p.cfg.Token)
	if err != nil {
		p.add(g, "forged", NA, "-token is %v: only the query-string and expiry checks apply", err)
	} else {
		p.forgedTokens(ctx, g, j)
	}

	// The real token in the query string only.
	if kind, _ := p.cfg.tokenPlace(); kind != "query" {
		var upgraded []string
		var last string
		for _, name := range []string{"access_token", "token", "jwt", "auth"} {
			spec := p.legit()
			spec.token = ""
			spec.query = map[string][]string{name: {p.cfg.Token}}
			c, err := p.attempt(ctx, spec)
			if err != nil {
				p.add(g, "query-string", NA, "%v", err)
				break
			}
			c.Close()
			if c.upgraded() {
				upgraded = append(upgraded, "?"+name+"=")
			}
			last = c.statusText()
		}
		if len(upgraded) > 0 {
			p.add(g, "query-string", Fail, "the token is accepted in the URL (%s): URLs land in proxy and server logs", strings.Join(upgraded, ", "))
		} else if last != "" {
			p.add(g, "query-string", Pass, "the token in ?access_token=, ?token=, ?jwt=, ?auth= refused: %s", last)
		}
	} else {
		p.add(g, "query-string", Fail, "-token-in query: the endpoint takes tokens from the URL, which land in proxy and server logs")
	}

	if p.cfg.ExpiredToken == "" {
		p.add(g, "expired", NA, "no -expired-token given")
		return
	}
	spec := p.legit()
	spec.token = p.cfg.ExpiredToken
	c, err := p.attempt(ctx, spec)
	switch {
	case err != nil:
		p.add(g, "expired", NA, "%v", err)
	case c.upgraded():
		c.Close()
		p.add(g, "expired", Fail, "the expired token upgraded (101)")
	default:
		p.add(g, "expired", Pass, "the expired token refused: %s", c.statusText())
	}
}

func (p *prober) forgedTokens(ctx context.Context, g string, j jwtParts) {
	origAlg, _ := j.header["alg"].(string)
	key, err := newProbeKey(origAlg)
	if err != nil {
		p.add(g, "jwk-embedded", NA, "generating the probe's key: %v", err)
	}
	var jku *jkuServer
	if key != nil {
		if jku, err = startJKU(key.jwk); err == nil {
			defer jku.stop()
		}
	}
	var pubKeys []publicKeyForm
	if p.cfg.JWKS != "" {
		pubKeys, err = p.fetchJWKS(ctx)
		if err != nil || len(pubKeys) == 0 {
			p.add(g, "hs256-public-key", NA, "JWKS %s: no RSA or EC key read (%v)", shownRawURL(p.cfg.JWKS), err)
		}
	} else {
		p.add(g, "hs256-public-key", NA, "no -jwks given")
	}
	jkuURL := ""
	if jku != nil {
		jkuURL = jku.url()
	}

	type tally struct {
		tried    []string
		upgraded []string
		status   string
	}
	results := map[string]*tally{}
	var order []string
	for _, f := range forgeries(j, key, jkuURL, pubKeys) {
		if ctx.Err() != nil {
			break
		}
		t := results[f.check]
		if t == nil {
			t = &tally{}
			results[f.check] = t
			order = append(order, f.check)
		}
		spec := p.legit()
		spec.token = f.token
		c, err := p.attempt(ctx, spec)
		if err != nil {
			t.status = err.Error()
			continue
		}
		c.Close()
		t.tried = append(t.tried, f.what)
		if c.upgraded() {
			t.upgraded = append(t.upgraded, f.what)
		} else if retryable(c.status) {
			t.status = "inconclusive, still " + c.statusText()
		} else if t.status == "" {
			t.status = c.statusText()
		}
	}
	for _, name := range order {
		t := results[name]
		switch {
		case len(t.upgraded) > 0:
			p.add(g, name, Fail, "forged token upgraded (101): %s", strings.Join(t.upgraded, "; "))
		case strings.HasPrefix(t.status, "inconclusive") || len(t.tried) == 0:
			p.add(g, name, NA, "%s", t.status)
		default:
			extra := ""
			if name == "jku" && jku != nil && jku.fetches.Load() > 0 {
				extra = fmt.Sprintf(" (but the endpoint fetched the probe's jku URL %d times)", jku.fetches.Load())
			}
			p.add(g, name, Pass, "%d forged refused: %s%s", len(t.tried), t.status, extra)
		}
	}
}

func (p *prober) fetchJWKS(ctx context.Context) ([]publicKeyForm, error) {
	ctx, cancel := context.WithTimeout(ctx, p.remaining(10*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.JWKS, nil)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			ue.URL = shownRawURL(ue.URL)
		}
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: p.tlsConfig(req.URL.Hostname())}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			ue.URL = shownURL(req.URL)
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return publicKeyForms(data)
}
