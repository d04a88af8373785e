package jwks

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

func TestNew_FirstFetchOK(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1"), edPublic(t, "k2")))
	f := mustNew(t, srv.URL(), Options{})

	if got := f.Set().Len(); got != 2 {
		t.Fatalf("Set().Len() = %d, want 2", got)
	}
	for _, kid := range []string{"k1", "k2"} {
		if _, ok := f.LookupKid(context.Background(), kid); !ok {
			t.Errorf("LookupKid(%q) not found", kid)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("server hits = %d, want 1", got)
	}
}

func TestNew_FirstFetchFails(t *testing.T) {
	good := setJSON(t, ecPublic(t, "k1"))
	tests := []struct {
		name    string
		status  int
		body    []byte
		maxBody int64
		want    error
	}{
		{name: "status 500", status: 500, body: good, want: ErrStatus},
		{name: "status 404", status: 404, body: good, want: ErrStatus},
		{name: "status 204", status: 204, want: ErrStatus},
		{name: "junk body", body: []byte("<html>not json</html>"), want: ErrMalformed},
		{name: "empty body", body: nil, want: ErrMalformed},
		{name: "JSON null", body: []byte("null"), want: ErrMalformed},
		{name: "JSON array", body: []byte(`[{"kty":"EC"}]`), want: ErrMalformed},
		{name: "no keys member", body: []byte(`{"foo":[]}`), want: ErrMalformed},
		{name: "keys not an array", body: []byte(`{"keys":{}}`), want: ErrMalformed},
		{name: "keys null", body: []byte(`{"keys":null}`), want: ErrMalformed},
		{name: "key not an object", body: []byte(`{"keys":[1]}`), want: ErrMalformed},
		{name: "bare JWK, not a set", body: bytes.TrimSuffix(bytes.TrimPrefix(good, []byte(`{"keys":[`)), []byte(`]}`)), want: ErrMalformed},
		{name: "empty set", body: []byte(`{"keys":[]}`), want: ErrEmptySet},
		{name: "unknown kty alone (skipped)", body: []byte(`{"keys":[{"kty":"XYZ","kid":"x"}]}`), want: ErrEmptySet},
		{name: "encryption key alone (skipped)", body: []byte(`{"keys":[{"kty":"RSA","use":"enc","alg":"RSA-OAEP","kid":"e","n":"AQAB","e":"AQAB"}]}`), want: ErrEmptySet},
		{name: "EC coordinate too short", body: []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"x","x":"AQ","y":"AQ"}]}`), want: ErrMalformed},
		{name: "EC point off curve", body: []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"x","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","y":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}]}`), want: ErrMalformed},
		{name: "Ed25519 key of wrong length", body: []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"x","x":"AQEB"}]}`), want: ErrMalformed},
		{name: "RSA modulus too short", body: rsaSetJSON(t, 1024), want: ErrMalformed},
		{name: "RSA 2048 is fine, oct beside it", body: append(bytes.TrimSuffix(rsaSetJSON(t, 2048), []byte("]}")), []byte(`,{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`)...), want: ErrSymmetricKey},
		{name: "private EC key", body: setJSON(t, ecPrivate(t, "k1")), want: ErrPrivateKey},
		{name: "private Ed25519 key", body: setJSON(t, edPrivate(t, "k1")), want: ErrPrivateKey},
		{name: "private key beside a public one", body: setJSON(t, ecPublic(t, "k1"), ecPrivate(t, "k2")), want: ErrPrivateKey},
		{name: "oct key", body: setJSON(t, octKey(t, "k1")), want: ErrSymmetricKey},
		{name: "oct key beside a public one", body: setJSON(t, ecPublic(t, "k1"), octKey(t, "k2")), want: ErrSymmetricKey},
		{name: "RSA prime without d", body: []byte(`{"keys":[{"kty":"RSA","kid":"x","n":"AQAB","e":"AQAB","p":"AQ"}]}`), want: ErrPrivateKey},
		{name: "body over MaxBody", body: good, maxBody: int64(len(good)) - 1, want: ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, nil)
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			srv.fail(status, tt.body)
			f, err := New(context.Background(), srv.URL(), Options{MaxBody: tt.maxBody})
			if err == nil {
				f.Close()
				t.Fatal("New succeeded, want an error")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("New error = %v, want errors.Is %v", err, tt.want)
			}
			if got := srv.hits.Load(); got != 1 {
				t.Errorf("server hits = %d, want 1", got)
			}
		})
	}
}

// TestNew_MaxBodyBoundary checks that a body of exactly MaxBody bytes is
// accepted and one byte more is refused, also when the server does not
// announce a Content-Length.
func TestNew_MaxBodyBoundary(t *testing.T) {
	body := setJSON(t, ecPublic(t, "k1"))
	for _, chunked := range []bool{false, true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if chunked {
				w.(http.Flusher).Flush() // forces chunked encoding, no Content-Length
			}
			_, _ = w.Write(body)
		}))
		t.Cleanup(srv.Close)

		f, err := New(context.Background(), srv.URL, Options{MaxBody: int64(len(body))})
		if err != nil {
			t.Fatalf("chunked=%v: body of exactly MaxBody refused: %v", chunked, err)
		}
		f.Close()

		_, err = New(context.Background(), srv.URL, Options{MaxBody: int64(len(body)) - 1})
		if !errors.Is(err, ErrBodyTooLarge) {
			t.Fatalf("chunked=%v: body of MaxBody+1 bytes: err = %v, want ErrBodyTooLarge", chunked, err)
		}
	}
}

// TestNew_DefaultMaxBody checks the 1 MiB default against a body just over
// it.
func TestNew_DefaultMaxBody(t *testing.T) {
	good := setJSON(t, ecPublic(t, "k1"))
	// Valid JSON padded with whitespace to just over 1 MiB.
	body := append(bytes.Repeat([]byte(" "), DefaultMaxBody+1-len(good)), good...)
	srv := newJWKSServer(t, body)
	_, err := New(context.Background(), srv.URL(), Options{})
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("err = %v, want ErrBodyTooLarge", err)
	}
}

// TestNew_URLRefusedWithoutNetwork checks that a bad URL is refused before
// any request is made.
func TestNew_URLRefusedWithoutNetwork(t *testing.T) {
	var calls int
	var mu sync.Mutex
	client := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return nil, errors.New("no network in this test")
	})}
	tests := []struct {
		url  string
		want error
	}{
		{"http://example.com/jwks", ErrInsecureURL},
		{"http://10.0.0.1/jwks", ErrInsecureURL},
		{"https://user:secret@example.com/jwks", ErrInvalidURL},
		{"https://example.com/jwks#frag", ErrInvalidURL},
		{"ftp://example.com/jwks", ErrInvalidURL},
		{"/jwks", ErrInvalidURL},
		{"", ErrInvalidURL},
	}
	for _, tt := range tests {
		_, err := New(context.Background(), tt.url, Options{Client: client})
		if !errors.Is(err, tt.want) {
			t.Errorf("New(%q) error = %v, want errors.Is %v", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("New(%q) error leaks the URL's password: %v", tt.url, err)
		}
	}
	if calls != 0 {
		t.Fatalf("%d requests made, want none", calls)
	}
}

func TestNew_InvalidOptions(t *testing.T) {
	_, err := New(context.Background(), "http://example.com/jwks", Options{
		RefreshInterval: -1,
		MinRefetch:      -1,
		InitialTimeout:  -1,
		MaxBody:         -1,
	})
	if !errors.Is(err, ErrInvalidOptions) || !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("err = %v, want ErrInvalidOptions and ErrInsecureURL joined", err)
	}
	for _, name := range []string{"RefreshInterval", "MinRefetch", "InitialTimeout", "MaxBody"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s: %v", name, err)
		}
	}
	//lint:ignore SA1012 a nil context is exactly what is tested
	if _, err := New(nil, "https://example.com/jwks", Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("nil context: err = %v, want ErrInvalidOptions", err)
	}
}

// TestNew_InitialTimeout checks that a server that hangs makes New fail
// after about InitialTimeout instead of blocking.
func TestNew_InitialTimeout(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	srv.hangRequests()

	start := time.Now()
	f, err := New(context.Background(), srv.URL(), Options{InitialTimeout: 200 * time.Millisecond})
	if err == nil {
		f.Close()
		t.Fatal("New succeeded against a hanging server")
	}
	if !errors.Is(err, ErrFetch) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrFetch wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > waitLimit {
		t.Errorf("New took %v", d)
	}
}

func TestNew_ContextCanceled(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(ctx, srv.URL(), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestNew_ServerDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := New(context.Background(), url, Options{})
	if !errors.Is(err, ErrFetch) {
		t.Fatalf("err = %v, want ErrFetch", err)
	}
}

func TestRedirects(t *testing.T) {
	body := setJSON(t, ecPublic(t, "k1"))
	other := newJWKSServer(t, body)

	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) })
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/jwks", http.StatusFound)
	})
	mux.HandleFunc("/cross", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL(), http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		u := "http://user:pw@" + r.Host + "/jwks"
		http.Redirect(w, r, u, http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	permissive := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	for _, client := range []*http.Client{nil, permissive} {
		name := "default client"
		if client != nil {
			name = "supplied permissive client"
		}
		t.Run(name, func(t *testing.T) {
			f, err := New(context.Background(), srv.URL+"/same", Options{Client: client})
			if err != nil {
				t.Fatalf("same-host redirect refused: %v", err)
			}
			f.Close()
			for _, path := range []string{"/cross", "/loop", "/userinfo"} {
				_, err := New(context.Background(), srv.URL+path, Options{Client: client})
				if !errors.Is(err, ErrRedirect) {
					t.Errorf("%s: err = %v, want ErrRedirect", path, err)
				}
			}
			if got := other.hits.Load(); got != 0 {
				t.Errorf("the other host got %d requests, want 0", got)
			}
			if client != nil && client.CheckRedirect == nil {
				t.Error("supplied client was modified")
			}
		})
	}
	if permissive.Timeout != 0 {
		t.Error("supplied client was modified")
	}
}

// TestLookupKid_Rotation publishes a new key and checks that a kid miss
// finds it with one refetch, at once even right after New (a key added
// just before this instance started), and that MinRefetch limits further
// misses.
func TestLookupKid_Rotation(t *testing.T) {
	clock := newFakeClock()
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	f := mustNew(t, srv.URL(), Options{Now: clock.Now})
	ctx := context.Background()

	k1 := ecPublic(t, "k1")
	srv.publish(setJSON(t, k1, edPublic(t, "k2")))

	// The first fetch, in New, just happened: the first miss fetches anyway.
	if _, ok := f.LookupKid(ctx, "k2"); !ok {
		t.Fatal("k2 not found by the first miss after New")
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2", got)
	}
	// The refetch replaced the whole set: k1 is the new k1.
	if got, _ := f.LookupKid(ctx, "k1"); !jwkEqual(t, got, k1) {
		t.Error("k1 is not the republished key")
	}

	// A second miss within MinRefetch does not reach the server.
	clock.Advance(DefaultMinRefetch - time.Nanosecond)
	if _, ok := f.LookupKid(ctx, "unknown"); ok {
		t.Fatal("unknown kid found")
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (miss within MinRefetch must not fetch)", got)
	}

	// Once MinRefetch has passed, a miss fetches again, once.
	clock.Advance(time.Nanosecond)
	for range 3 {
		if _, ok := f.LookupKid(ctx, "unknown"); ok {
			t.Fatal("unknown kid found")
		}
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("hits = %d, want 3", got)
	}

	// An empty kid never fetches.
	clock.Advance(time.Hour)
	if _, ok := f.LookupKid(ctx, ""); ok {
		t.Fatal("empty kid found")
	}
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("hits = %d after an empty kid, want 3", got)
	}
}

func jwkEqual(t *testing.T, a, b jwk.Key) bool {
	t.Helper()
	if a == nil || b == nil {
		return false
	}
	ta, err := a.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ta, tb)
}

// TestLookupKid_Concurrent checks that 50 simultaneous misses for the same
// kid cause one request.
func TestLookupKid_Concurrent(t *testing.T) {
	clock := newFakeClock()
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	f := mustNew(t, srv.URL(), Options{Now: clock.Now})
	srv.drainHits()

	srv.publish(setJSON(t, ecPublic(t, "k1"), ecPublic(t, "k2")))
	release := srv.hangRequests() // hold the refetch until every caller has missed
	clock.Advance(DefaultMinRefetch)

	const n = 50
	var wg sync.WaitGroup
	found := make(chan bool, n)
	for range n {
		wg.Go(func() {
			_, ok := f.LookupKid(context.Background(), "k2")
			found <- ok
		})
	}
	srv.waitHit(t)
	time.Sleep(20 * time.Millisecond) // let the remaining callers reach the wait
	release()
	wg.Wait()
	close(found)
	for ok := range found {
		if !ok {
			t.Error("a caller did not find k2")
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2 (New and one shared refetch)", got)
	}
}

// TestLookupKid_RespectsContext checks that a caller waiting for a refetch
// returns when its context is done, and that Close ends the fetch.
func TestLookupKid_RespectsContext(t *testing.T) {
	clock := newFakeClock()
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	f := mustNew(t, srv.URL(), Options{Now: clock.Now})
	srv.drainHits()
	srv.hangRequests()
	clock.Advance(DefaultMinRefetch)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() {
		_, ok := f.LookupKid(ctx, "k2")
		done <- ok
	}()
	srv.waitHit(t)
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("k2 found")
		}
	case <-time.After(waitLimit):
		t.Fatal("LookupKid did not return after its context was cancelled")
	}
	// Another caller joins the fetch still in flight and is released by
	// Close.
	go func() {
		_, ok := f.LookupKid(context.Background(), "k2")
		done <- ok
	}()
	f.Close()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("k2 found")
		}
	case <-time.After(waitLimit):
		t.Fatal("LookupKid did not return after Close")
	}
}

// TestLookupKid_BoundedByClientTimeout checks that a caller with no
// deadline waits at most the client timeout.
func TestLookupKid_BoundedByClientTimeout(t *testing.T) {
	clock := newFakeClock()
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	rec := newErrRecorder()
	f := mustNew(t, srv.URL(), Options{
		Client:  &http.Client{Timeout: 200 * time.Millisecond},
		Now:     clock.Now,
		OnError: rec.OnError,
	})
	srv.hangRequests()
	clock.Advance(DefaultMinRefetch)

	done := make(chan bool)
	go func() {
		_, ok := f.LookupKid(context.Background(), "k2")
		done <- ok
	}()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("k2 found")
		}
	case <-time.After(waitLimit):
		t.Fatal("LookupKid blocked past the client timeout")
	}
	if err := rec.wait(t); !errors.Is(err, ErrFetch) {
		t.Fatalf("OnError got %v, want ErrFetch", err)
	}
	if !hasKid(f.Set(), "k1") {
		t.Fatal("last good set lost")
	}
}

func TestRefresh_RemovedKeyGone(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1"), ecPublic(t, "k2")))
	f := mustNew(t, srv.URL(), Options{})

	srv.publish(setJSON(t, ecPublic(t, "k2")))
	if err := f.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if hasKid(f.Set(), "k1") {
		t.Fatal("removed key k1 still in the set")
	}
	if _, ok := f.LookupKid(context.Background(), "k1"); ok {
		t.Fatal("LookupKid found the removed key k1")
	}
	if !hasKid(f.Set(), "k2") {
		t.Fatal("k2 missing")
	}
}

// TestRefresh_FailureKeepsLastGoodSet checks every kind of failed refresh:
// the error is returned and reported to OnError, and the last good set
// stays.
func TestRefresh_FailureKeepsLastGoodSet(t *testing.T) {
	good := setJSON(t, ecPublic(t, "k1"))
	tests := []struct {
		name   string
		status int
		body   []byte
		want   error
	}{
		{"status 500", 500, []byte("oops"), ErrStatus},
		{"junk JSON", 200, []byte("{junk"), ErrMalformed},
		{"oversized body", 200, append(bytes.Repeat([]byte(" "), 4096), good...), ErrBodyTooLarge},
		{"empty set", 200, []byte(`{"keys":[]}`), ErrEmptySet},
		{"private key", 200, setJSON(t, ecPrivate(t, "k1")), ErrPrivateKey},
		{"oct key", 200, setJSON(t, octKey(t, "k1")), ErrSymmetricKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, good)
			rec := newErrRecorder()
			f := mustNew(t, srv.URL(), Options{OnError: rec.OnError, MaxBody: 4096})
			before := f.Set()

			srv.fail(tt.status, tt.body)
			err := f.Refresh(context.Background())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Refresh error = %v, want errors.Is %v", err, tt.want)
			}
			if got := rec.wait(t); !errors.Is(got, tt.want) {
				t.Fatalf("OnError got %v, want errors.Is %v", got, tt.want)
			}
			if f.Set() != before || !hasKid(f.Set(), "k1") {
				t.Fatal("last good set replaced")
			}

			// Recovery: a good set is taken again.
			srv.publish(setJSON(t, ecPublic(t, "k3")))
			if err := f.Refresh(context.Background()); err != nil {
				t.Fatalf("Refresh after recovery: %v", err)
			}
			if !hasKid(f.Set(), "k3") || hasKid(f.Set(), "k1") {
				t.Fatal("recovered set not in use")
			}
		})
	}
}

// TestBackgroundRefresh checks the periodic refresh: a rotation is picked
// up, a server that fails or goes away leaves the last good set in place
// and is reported to OnError.
func TestBackgroundRefresh(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	rec := newErrRecorder()
	f := mustNew(t, srv.URL(), Options{RefreshInterval: 20 * time.Millisecond, OnError: rec.OnError})

	srv.publish(setJSON(t, ecPublic(t, "k2")))
	srv.drainHits()
	// Fetches never overlap: once a second request arrives, the first
	// one after publish has been stored.
	srv.waitHit(t)
	srv.waitHit(t)
	if !hasKid(f.Set(), "k2") || hasKid(f.Set(), "k1") {
		t.Fatal("background refresh did not replace the set")
	}
	rec.none(t)

	srv.fail(http.StatusInternalServerError, nil)
	if err := rec.wait(t); !errors.Is(err, ErrStatus) {
		t.Fatalf("OnError got %v, want ErrStatus", err)
	}
	if !hasKid(f.Set(), "k2") {
		t.Fatal("last good set lost after a 500")
	}

	rec.drain()
	srv.srv.Close()
	for {
		err := rec.wait(t)
		if errors.Is(err, ErrFetch) {
			break
		}
	}
	if !hasKid(f.Set(), "k2") {
		t.Fatal("last good set lost after the server went down")
	}
}

// TestClose checks that Close is idempotent and safe for simultaneous use,
// that it cancels a fetch in flight without reporting it to OnError, and
// that the Fetcher stays readable afterwards. goleak in TestMain proves
// the goroutine stopped.
func TestClose(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	rec := newErrRecorder()
	f, err := New(context.Background(), srv.URL(), Options{RefreshInterval: 20 * time.Millisecond, OnError: rec.OnError})
	if err != nil {
		t.Fatal(err)
	}
	srv.hangRequests()
	srv.drainHits()
	srv.waitHit(t) // a background fetch is in flight

	var wg sync.WaitGroup
	for range 5 {
		wg.Go(f.Close)
	}
	wg.Wait()
	f.Close()

	rec.none(t)
	if !hasKid(f.Set(), "k1") {
		t.Fatal("Set after Close lost the last good set")
	}
	if err := f.Refresh(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Refresh after Close = %v, want ErrClosed", err)
	}
	if _, ok := f.LookupKid(context.Background(), "unknown"); ok {
		t.Fatal("unknown kid found after Close")
	}
}

func TestRefresh_RespectsContext(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	f := mustNew(t, srv.URL(), Options{})
	srv.hangRequests()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.Refresh(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refresh = %v, want context.DeadlineExceeded", err)
	}
}

func TestSet_NoAllocs(t *testing.T) {
	srv := newJWKSServer(t, setJSON(t, ecPublic(t, "k1")))
	f := mustNew(t, srv.URL(), Options{})
	if n := testing.AllocsPerRun(100, func() { _ = f.Set() }); n != 0 {
		t.Fatalf("Set allocates %v times, want 0", n)
	}
}

func BenchmarkLookupKid_Hit(b *testing.B) {
	body := setJSON(b, ecPublic(b, "k1"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	f, err := New(context.Background(), srv.URL, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := f.LookupKid(ctx, "k1"); !ok {
			b.Fatal("miss")
		}
	}
}
