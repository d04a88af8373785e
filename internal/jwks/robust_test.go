package jwks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// withRaw appends raw JWK objects to a set's JSON.
func withRaw(set []byte, raw ...string) []byte {
	out := bytes.TrimSuffix(set, []byte("]}"))
	for _, r := range raw {
		out = append(out, ',')
		out = append(out, r...)
	}
	return append(out, "]}"...)
}

// Keycloak publishes an RSA-OAEP key with use "enc" beside its signing
// keys; before, the whole set was refused and New failed (or, after a
// rotation, every handshake got 503).
func TestParseSet_EncryptionKeysSkippedNotFatal(t *testing.T) {
	rsa := string(bytes.TrimSuffix(bytes.TrimPrefix(rsaSetJSON(t, 2048), []byte(`{"keys":[`)), []byte(`]}`)))
	encRSA := strings.Replace(rsa, `{`, `{"use":"enc","alg":"RSA-OAEP",`, 1)
	encAlgOnly := strings.Replace(rsa, `{`, `{"alg":"RSA-OAEP-256",`, 1)
	cases := []struct {
		name, raw, note string
	}{
		{"use enc", encRSA, `use "enc"`},
		{"encryption alg without use", encAlgOnly, `alg "RSA-OAEP-256"`},
		{"X25519", `{"kty":"OKP","crv":"X25519","kid":"x","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}`, `curve "X25519"`},
		{"secp256k1", `{"kty":"EC","crv":"secp256k1","kid":"x","x":"AQ","y":"AQ"}`, `curve "secp256k1"`},
		{"post-quantum key type", `{"kty":"AKP","alg":"ML-DSA-44","kid":"x","pub":"AQ"}`, `alg "ML-DSA-44"`},
		{"unknown key type", `{"kty":"XYZ","kid":"x"}`, `key type "XYZ"`},
		{"key_ops encrypt", strings.Replace(rsa, `{`, `{"key_ops":["encrypt"],`, 1), `key_ops`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := withRaw(setJSON(t, ecPublic(t, "sig1")), c.raw)
			set, notes, err := parseSet(body)
			if err != nil {
				t.Fatalf("parseSet: %v", err)
			}
			if set.Len() != 1 || !hasKid(set, "sig1") {
				t.Fatalf("set holds %d keys, want only sig1", set.Len())
			}
			if len(notes) != 1 || !strings.Contains(notes[0], c.note) || !strings.Contains(notes[0], "key 1") {
				t.Fatalf("notes %q, want one naming key 1 and %s", notes, c.note)
			}
		})
	}
}

func TestFetcher_OnSkippedOncePerChange(t *testing.T) {
	enc := `{"kty":"OKP","crv":"X25519","kid":"enc1","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}`
	srv := newJWKSServer(t, withRaw(setJSON(t, ecPublic(t, "k1")), enc))
	var mu sync.Mutex
	var calls [][]string
	f := mustNew(t, srv.URL(), Options{OnSkipped: func(n []string) {
		mu.Lock()
		calls = append(calls, n)
		mu.Unlock()
	}})
	for range 2 {
		if err := f.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || !strings.Contains(calls[0][0], `"enc1"`) {
		t.Fatalf("OnSkipped calls %q, want one naming enc1", calls)
	}
}

// A new instance must be able to start while the identity provider is
// down, when asked to: no set, retries, then the set.
func TestStartWithoutSet_RetriesUntilKeysArrive(t *testing.T) {
	srv := newJWKSServer(t, nil)
	srv.fail(http.StatusServiceUnavailable, nil)
	recovered := make(chan struct{}, 1)
	f, err := New(context.Background(), srv.URL(), Options{
		StartWithoutSet: true,
		OnRecovered:     func() { recovered <- struct{}{} },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer f.Close()
	if f.Set() != nil {
		t.Fatal("a set without a successful fetch")
	}
	if !errors.Is(f.InitialError(), ErrStatus) {
		t.Fatalf("InitialError %v, want ErrStatus", f.InitialError())
	}
	if _, ok := f.LookupKid(context.Background(), "k1"); ok {
		t.Fatal("a key without a set")
	}
	srv.publish(setJSON(t, ecPublic(t, "k1")))
	select {
	case <-recovered:
	case <-time.After(waitLimit):
		t.Fatal("no retry fetched the set")
	}
	if f.Set() == nil || !hasKid(f.Set(), "k1") {
		t.Fatal("set not published after the retry")
	}
}

func TestNew_WithoutStartWithoutSetStillFailsFast(t *testing.T) {
	srv := newJWKSServer(t, nil)
	srv.fail(http.StatusServiceUnavailable, nil)
	if f, err := New(context.Background(), srv.URL(), Options{}); err == nil {
		f.Close()
		t.Fatal("New succeeded while the server was down")
	}
}

// oidcServer serves a discovery document and a JWKS.
type oidcServer struct {
	*httptest.Server
	mu      sync.Mutex
	doc     func(base string) string
	jwks    []byte
	docHits int
}

func newOIDCServer(t *testing.T, jwks []byte) *oidcServer {
	s := &oidcServer{jwks: jwks}
	s.doc = func(base string) string {
		return fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q}`, base, base+"/keys")
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			s.docHits++
			_, _ = w.Write([]byte(s.doc(s.URL)))
		case "/keys":
			_, _ = w.Write(s.jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestDiscovery(t *testing.T) {
	srv := newOIDCServer(t, setJSON(t, ecPublic(t, "k1")))
	f, err := NewDiscovery(context.Background(), srv.URL, Options{})
	if err != nil {
		t.Fatalf("NewDiscovery: %v", err)
	}
	defer f.Close()
	if !hasKid(f.Set(), "k1") {
		t.Fatal("k1 missing")
	}
	// A refresh reads the document again.
	srv.mu.Lock()
	srv.jwks = setJSON(t, ecPublic(t, "k2"))
	srv.mu.Unlock()
	if err := f.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	hits := srv.docHits
	srv.mu.Unlock()
	if hits != 2 || !hasKid(f.Set(), "k2") {
		t.Fatalf("document fetched %d times, k2 present %v; want 2, true", hits, hasKid(f.Set(), "k2"))
	}
}

// An attacker who can serve a discovery document for another issuer (a
// shared host, a look-alike spelling) must not get its keys trusted.
func TestDiscovery_IssuerMustMatchExactly(t *testing.T) {
	cases := map[string]func(base string) string{
		"trailing slash": func(b string) string { return fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q}`, b+"/", b+"/keys") },
		"other host spelling": func(b string) string {
			return fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q}`, strings.Replace(b, "127.0.0.1", "localhost", 1), b+"/keys")
		},
		"upper case": func(b string) string {
			return fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q}`, strings.ToUpper(b), b+"/keys")
		},
		"missing":           func(b string) string { return fmt.Sprintf(`{"jwks_uri":%q}`, b+"/keys") },
		"jwks_uri insecure": func(b string) string { return fmt.Sprintf(`{"issuer":%q,"jwks_uri":"http://keys.example.com/k"}`, b) },
		"jwks_uri userinfo": func(b string) string {
			return fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q}`, b, strings.Replace(b, "://", "://user:secret@", 1)+"/keys")
		},
		"no jwks_uri": func(b string) string { return fmt.Sprintf(`{"issuer":%q}`, b) },
		"not JSON":    func(string) string { return `<html>` },
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newOIDCServer(t, setJSON(t, ecPublic(t, "k1")))
			srv.doc = doc
			f, err := NewDiscovery(context.Background(), srv.URL, Options{})
			if err == nil {
				f.Close()
				t.Fatal("NewDiscovery accepted the document")
			}
			if !errors.Is(err, ErrDiscovery) && !errors.Is(err, ErrIssuerMismatch) {
				t.Fatalf("error %v", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error repeats the URL's credentials: %v", err)
			}
		})
	}
}

func TestValidateIssuer(t *testing.T) {
	for _, bad := range []string{"", "http://idp.example.com", "https://idp.example.com/?x=1", "https://idp.example.com/#f", "https://u:p@idp.example.com", "idp.example.com"} {
		if ValidateIssuer(bad) == nil {
			t.Errorf("ValidateIssuer(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"https://idp.example.com", "https://login.example.com/tenant/v2.0", "https://idp.example.com/realms/x/", "http://127.0.0.1:8080"} {
		if err := ValidateIssuer(ok); err != nil {
			t.Errorf("ValidateIssuer(%q): %v", ok, err)
		}
	}
}

// The document is fetched from the issuer with its trailing slash removed
// before the suffix (Discovery §4), and its issuer still compared exactly.
func TestDiscovery_TrailingSlashIssuer(t *testing.T) {
	srv := newOIDCServer(t, setJSON(t, ecPublic(t, "k1")))
	srv.doc = func(b string) string { return fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q}`, b+"/", b+"/keys") }
	f, err := NewDiscovery(context.Background(), srv.URL+"/", Options{})
	if err != nil {
		t.Fatalf("NewDiscovery: %v", err)
	}
	f.Close()
}

// paddedDiscovery is a valid configuration document for base of exactly
// n bytes: only its size can make it refused.
func paddedDiscovery(base string, n int) []byte {
	head := fmt.Sprintf(`{"issuer":%q,"jwks_uri":%q,"pad":"`, base, base+"/keys")
	return []byte(head + strings.Repeat("a", n-len(head)-2) + `"}`)
}

// TestDiscovery_OversizedDocumentRefused: an issuer (or whoever answers
// for it) cannot make the Guard buffer an unbounded document: one byte
// over the 256 KiB cap is refused whether it announces its length or
// streams it chunked, while a document of exactly the cap is read.
func TestDiscovery_OversizedDocumentRefused(t *testing.T) {
	keys := setJSON(t, ecPublic(t, "k1"))
	cases := []struct {
		name       string
		size       int
		withLength bool
		ok         bool
	}{
		{"cap, chunked", maxDiscoveryBody, false, true},
		{"cap+1, chunked", maxDiscoveryBody + 1, false, false},
		{"cap, Content-Length", maxDiscoveryBody, true, true},
		{"cap+1, Content-Length", maxDiscoveryBody + 1, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/keys" {
					_, _ = w.Write(keys)
					return
				}
				body := paddedDiscovery("http://"+r.Host, tc.size)
				if tc.withLength {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
					_, _ = w.Write(body)
					return
				}
				// Flushing before the end makes net/http send it chunked,
				// with no length for the client to check first.
				_, _ = w.Write(body[:1024])
				w.(http.Flusher).Flush()
				_, _ = w.Write(body[1024:])
			}))
			t.Cleanup(srv.Close)
			f, err := NewDiscovery(context.Background(), srv.URL, Options{})
			if tc.ok {
				if err != nil {
					t.Fatalf("a document of exactly the cap: %v", err)
				}
				f.Close()
				return
			}
			if err == nil {
				f.Close()
				t.Fatal("a document over the cap was accepted")
			}
			if !errors.Is(err, ErrDiscovery) || !errors.Is(err, ErrBodyTooLarge) {
				t.Fatalf("err = %v, want ErrDiscovery and ErrBodyTooLarge", err)
			}
		})
	}
}

// TestDiscovery_RedirectDowngradeRefused: the discovery request follows no
// redirect from https to http (on the same host and port) or to another
// host, so a compromised or misconfigured path cannot downgrade the
// document's transport or hand the choice of keys to another server; a
// redirect within the host is followed. The error says what was refused
// and holds no query of the redirect's location.
func TestDiscovery_RedirectDowngradeRefused(t *testing.T) {
	keys := setJSON(t, ecPublic(t, "k1"))
	var otherHits atomic.Int64
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(other.Close)
	const secret = "s3cr3t-query"
	mux := http.NewServeMux()
	mux.HandleFunc("/to-http/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+r.Host+"/doc?token="+secret, http.StatusFound)
	})
	mux.HandleFunc("/cross/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/.well-known/openid-configuration?token="+secret, http.StatusFound)
	})
	mux.HandleFunc("/same/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/doc", http.StatusFound)
	})
	mux.HandleFunc("/doc", func(w http.ResponseWriter, r *http.Request) {
		base := "https://" + r.Host
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, base+"/same", base+"/keys")
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(keys) })
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	// srv's client trusts the certificate other serves too (httptest uses
	// one), so only the redirect policy can refuse.
	opts := Options{Client: srv.Client()}

	f, err := NewDiscovery(context.Background(), srv.URL+"/same", opts)
	if err != nil {
		t.Fatalf("control: a same-host https redirect was refused: %v", err)
	}
	f.Close()
	for _, path := range []string{"/to-http", "/cross"} {
		t.Run(path, func(t *testing.T) {
			f, err := NewDiscovery(context.Background(), srv.URL+path, opts)
			if err == nil {
				f.Close()
				t.Fatal("the redirect was followed and its document accepted")
			}
			if !errors.Is(err, ErrDiscovery) || !errors.Is(err, ErrRedirect) {
				t.Fatalf("err = %v, want ErrDiscovery and ErrRedirect", err)
			}
			if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, "?") {
				t.Fatalf("error holds the location's query: %v", err)
			}
			if !strings.Contains(err.Error(), "another scheme or host") {
				t.Fatalf("error does not say what was refused: %v", err)
			}
		})
	}
	if n := otherHits.Load(); n != 0 {
		t.Fatalf("the other host got %d requests, want 0", n)
	}
}
