package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// waitLimit bounds every wait in the tests; none is expected to come close.
const waitLimit = 5 * time.Second

// jwksServer is an httptest server publishing a JWK set that a test can
// change, break or hang, and that counts its requests.
type jwksServer struct {
	srv  *httptest.Server
	hits atomic.Int64
	hit  chan struct{} // one value per request, dropped when full
	stop chan struct{} // closed at cleanup: releases hanging handlers

	mu      sync.Mutex
	body    []byte
	status  int
	hang    bool          // block until the client goes away (or release)
	release chan struct{} // when hang: closing it lets the request proceed
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{
		body:   body,
		status: http.StatusOK,
		hit:    make(chan struct{}, 64),
		stop:   make(chan struct{}),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.stop)
		s.srv.Close()
	})
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	select {
	case s.hit <- struct{}{}:
	default:
	}
	s.mu.Lock()
	body, status, hang, release := s.body, s.status, s.hang, s.release
	s.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case <-release:
		}
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *jwksServer) URL() string { return s.srv.URL + "/jwks" }

func (s *jwksServer) publish(body []byte) {
	s.mu.Lock()
	s.body, s.status = body, http.StatusOK
	s.mu.Unlock()
}

func (s *jwksServer) fail(status int, body []byte) {
	s.mu.Lock()
	s.body, s.status = body, status
	s.mu.Unlock()
}

// hangRequests makes requests block until the client gives up or the
// returned function is called.
func (s *jwksServer) hangRequests() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hang, s.release = true, ch
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// drainHits forgets the requests seen so far by waitHit.
func (s *jwksServer) drainHits() {
	for {
		select {
		case <-s.hit:
		default:
			return
		}
	}
}

// waitHit waits for the next request to reach the server.
func (s *jwksServer) waitHit(t *testing.T) {
	t.Helper()
	select {
	case <-s.hit:
	case <-time.After(waitLimit):
		t.Fatal("no request reached the server")
	}
}

// fakeClock is an injectable clock for MinRefetch.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// errRecorder collects OnError calls.
type errRecorder struct {
	ch chan error
}

func newErrRecorder() *errRecorder { return &errRecorder{ch: make(chan error, 64)} }

func (r *errRecorder) OnError(err error) {
	select {
	case r.ch <- err:
	default:
	}
}

func (r *errRecorder) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.ch:
		return err
	case <-time.After(waitLimit):
		t.Fatal("OnError was not called")
		return nil
	}
}

// drain forgets the errors recorded so far.
func (r *errRecorder) drain() {
	for {
		select {
		case <-r.ch:
		default:
			return
		}
	}
}

func (r *errRecorder) none(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.ch:
		t.Fatalf("OnError called unexpectedly: %v", err)
	default:
	}
}

// ecPrivate returns a P-256 private key as a JWK with the given kid.
func ecPrivate(t testing.TB, kid string) jwk.Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	setKid(t, k, kid)
	return k
}

// ecPublic returns a fresh P-256 public key as a JWK with the given kid.
func ecPublic(t testing.TB, kid string) jwk.Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	setKid(t, k, kid)
	return k
}

// edPublic returns a fresh Ed25519 public key as a JWK with the given kid.
func edPublic(t testing.TB, kid string) jwk.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	setKid(t, k, kid)
	return k
}

// edPrivate returns a fresh Ed25519 private key as a JWK with the given kid.
func edPrivate(t testing.TB, kid string) jwk.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	setKid(t, k, kid)
	return k
}

// octKey returns a symmetric key as a JWK with the given kid.
func octKey(t testing.TB, kid string) jwk.Key {
	t.Helper()
	k, err := jwk.Import([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	setKid(t, k, kid)
	return k
}

func setKid(t testing.TB, k jwk.Key, kid string) {
	t.Helper()
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
}

// setJSON marshals keys as a JWK set.
func setJSON(t testing.TB, keys ...jwk.Key) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustNew creates a Fetcher and closes it at cleanup.
func mustNew(t *testing.T, url string, o Options) *Fetcher {
	t.Helper()
	f, err := New(context.Background(), url, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(f.Close)
	return f
}

func hasKid(s jwk.Set, kid string) bool {
	_, ok := s.LookupKeyID(kid)
	return ok
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// rsaSetJSON returns a JWK set holding one RSA public key of the given
// size, built by hand so that sizes jwk.Import would refuse can be tested.
func rsaSetJSON(t testing.TB, bits int) []byte {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	n := base64.RawURLEncoding.EncodeToString(priv.N.Bytes())
	return []byte(`{"keys":[{"kty":"RSA","kid":"r","e":"AQAB","n":"` + n + `"}]}`)
}
