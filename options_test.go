package wssec

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/time/rate"
)

// quiet keeps New's configuration warnings out of the test output.
func quiet() Option { return WithLogger(slog.New(slog.DiscardHandler)) }

// configErrors flattens the *ConfigError values of a joined error.
func configErrors(err error) []*ConfigError {
	var out []*ConfigError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ce, ok := e.(*ConfigError); ok {
			out = append(out, ce)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// wantConfigError asserts that New(opts...) fails with ErrConfig and that
// every problem reported names option (a prefix of its Option): the bad
// input is found, and nothing else is blamed.
func wantConfigError(t *testing.T, option string, opts ...Option) *ConfigError {
	t.Helper()
	g, err := New(append([]Option{quiet()}, opts...)...)
	if err == nil {
		g.Close()
		t.Fatalf("New accepted the configuration; want an error for %s", option)
	}
	if g != nil {
		t.Fatalf("New returned a Guard with an error")
	}
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("error %v does not match ErrConfig", err)
	}
	if !strings.HasPrefix(err.Error(), "wssec: ") {
		t.Fatalf("error %q lacks the wssec: prefix", err)
	}
	ces := configErrors(err)
	if len(ces) == 0 {
		t.Fatalf("error %v holds no *ConfigError", err)
	}
	for _, ce := range ces {
		if !strings.HasPrefix(ce.Option, option) {
			t.Fatalf("problem names option %q; want %q (%v)", ce.Option, option, err)
		}
		if !errors.Is(ce, ErrConfig) {
			t.Fatalf("%v does not match ErrConfig", ce)
		}
	}
	return ces[0]
}

// TestConfig_NoAuthenticator: a Guard needs a way to authenticate unless
// it is explicitly anonymous.
func TestConfig_NoAuthenticator(t *testing.T) {
	wantConfigError(t, "New")
	g, err := New(quiet(), WithAnonymous())
	if err != nil {
		t.Fatalf("WithAnonymous: %v", err)
	}
	g.Close()
	g, err = New(quiet(), WithAuthenticator(func(*http.Request) (*Principal, error) { return &Principal{Subject: "a"}, nil }))
	if err != nil {
		t.Fatalf("WithAuthenticator: %v", err)
	}
	g.Close()
}

func TestConfig_Keys(t *testing.T) {
	ecRaw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, ecPub := jwkPair(t, ecRaw, &ecRaw.PublicKey, "ec1")
	oct, err := jwk.Import(testKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := oct.Set(jwk.KeyIDKey, "oct1"); err != nil {
		t.Fatal(err)
	}
	_, _, rsaPub := newRSAKey(t, "rsa1")
	wrongAlg, err := jwk.Import(&ecRaw.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := wrongAlg.Set(jwk.AlgorithmKey, jwa.RS256()); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		option string
		opts   []Option
	}{
		{"HMAC key under 32 bytes", "WithHMACKey", []Option{WithHMACKey([]byte("0123456789abcdef0123456789abcde"))}},
		{"empty HMAC key", "", []Option{WithHMACKey([]byte{})}},
		{"key set mixing HMAC and asymmetric keys", "WithKeySet", []Option{WithKeySet(keySet(t, oct, ecPub))}},
		{"key set mixing asymmetric and HMAC keys", "WithKeySet", []Option{WithKeySet(keySet(t, rsaPub, oct))}},
		{"key set holding a private key", "WithKeySet", []Option{WithKeySet(keySet(t, ecPriv))}},
		{"empty key set", "WithKeySet", []Option{WithKeySet(jwk.NewSet())}},
		{"key whose alg does not fit its type", "WithKeySet", []Option{WithKeySet(keySet(t, wrongAlg))}},
		{"WithAlgorithms none", "WithAlgorithms", []Option{WithHMACKey(testKey), WithAlgorithms("none")}},
		{"WithAlgorithms NONE", "WithAlgorithms", []Option{WithHMACKey(testKey), WithAlgorithms("NONE")}},
		{"WithAlgorithms unknown", "WithAlgorithms", []Option{WithHMACKey(testKey), WithAlgorithms("HS1024")}},
		{"WithAlgorithms not fitting the keys", "WithAlgorithms", []Option{WithHMACKey(testKey), WithAlgorithms("RS256")}},
		{"authenticator with keys", "WithAuthenticator", []Option{WithHMACKey(testKey),
			WithAuthenticator(func(*http.Request) (*Principal, error) { return nil, nil })}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantConfigError(t, tc.option, tc.opts...)
		})
	}
	t.Run("secret never in the error", func(t *testing.T) {
		short := []byte("short-secret-value")
		_, err := New(quiet(), WithHMACKey(short))
		if err == nil || strings.Contains(err.Error(), string(short)) {
			t.Fatalf("error %v; want one that does not hold the key", err)
		}
	})
	t.Run("public key sets accepted", func(t *testing.T) {
		for _, s := range []jwk.Set{keySet(t, ecPub), keySet(t, rsaPub), keySet(t, ecPub, rsaPub), keySet(t, oct)} {
			g, err := New(quiet(), WithKeySet(s))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			g.Close()
		}
	})
}

func TestConfig_Origins(t *testing.T) {
	for _, p := range []string{
		"h*",
		"*",
		"https://*",
		"https://*.*.example.com",
		"https://a.*.example.com",
		"https://*example.com",
		"https://a.com/path",
		"https://a.com/",
		"https://user@a.com",
		"https://a.com?q",
		"example.com",
		"ftp://a.com",
		"https://*.com",
		"https://*.127.0.0.1",
		"",
	} {
		t.Run(p, func(t *testing.T) {
			ce := wantConfigError(t, "WithOrigins", WithHMACKey(testKey), WithOrigins(p))
			if p != "" && !strings.Contains(ce.Value, p) {
				t.Fatalf("problem value %q does not name the pattern %q", ce.Value, p)
			}
		})
	}
	t.Run("WithOrigins with no pattern", func(t *testing.T) {
		wantConfigError(t, "WithOrigins", WithHMACKey(testKey), WithOrigins())
	})
	t.Run("good patterns", func(t *testing.T) {
		g, err := New(quiet(), WithHMACKey(testKey), WithOrigins("https://app.example.com", "https://*.example.com", "http://localhost:8080", "https://[::1]:8443"))
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
	})
}

func TestConfig_TrustedProxies(t *testing.T) {
	for _, c := range []string{"10.0.0.0/33", "not-a-cidr", "10.0.0.256", "", "::1/129"} {
		t.Run(c, func(t *testing.T) {
			wantConfigError(t, "WithTrustedProxies", WithHMACKey(testKey), WithTrustedProxies(c))
		})
	}
	g, err := New(quiet(), WithHMACKey(testKey), WithTrustedProxies("10.0.0.0/8", "192.168.1.1", "::1", "fd00::/8"))
	if err != nil {
		t.Fatalf("good proxies: %v", err)
	}
	g.Close()
}

func TestConfig_Limits(t *testing.T) {
	cases := []struct {
		option string
		opt    Option
	}{
		{"WithConnLimits perIP", WithConnLimits(0, 8, 100)},
		{"WithConnLimits perIP", WithConnLimits(-1, 8, 100)},
		{"WithConnLimits perSubject", WithConnLimits(32, 0, 100)},
		{"WithConnLimits total", WithConnLimits(32, 8, 0)},
		{"WithHandshakeRate", WithHandshakeRate(0, 20)},
		{"WithHandshakeRate", WithHandshakeRate(-1, 20)},
		{"WithHandshakeRate burst", WithHandshakeRate(5, 0)},
		{"WithMessageRate", WithMessageRate(0, 40)},
		{"WithMessageRate burst", WithMessageRate(20, -1)},
		{"WithMaxMessageSize", WithMaxMessageSize(0)},
		{"WithMaxMessageSize", WithMaxMessageSize(-1)},
		{"WithMaxTokenSize", WithMaxTokenSize(0)},
		{"WithIdleTimeout", WithIdleTimeout(0)},
		{"WithPingInterval", WithPingInterval(-time.Second)},
		{"WithWriteTimeout", WithWriteTimeout(0)},
		{"WithMaxConnAge", WithMaxConnAge(0)},
		{"WithSendQueue", WithSendQueue(0)},
		{"WithDenialLimit", WithDenialLimit(0)},
		{"WithMaxTokenLifetime", WithMaxTokenLifetime(0)},
		{"WithClockSkew", WithClockSkew(-time.Second)},
		{"WithClockSkew", WithClockSkew(time.Hour)},
		{"WithPingInterval", WithPingInterval(time.Minute)}, // not shorter than the 60 s idle timeout
	}
	for _, tc := range cases {
		t.Run(tc.option, func(t *testing.T) {
			wantConfigError(t, tc.option, WithHMACKey(testKey), tc.opt)
		})
	}
	t.Run("rate.Inf disables a rate", func(t *testing.T) {
		g, err := New(quiet(), WithHMACKey(testKey), WithHandshakeRate(rate.Inf, 1), WithMessageRate(rate.Inf, 1))
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
	})
}

func TestConfig_Subprotocols(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string
	}{
		{"bearer prefix", []string{"bearer.x"}},
		{"bearer prefix any case", []string{"wssec.v1", "Bearer.abc"}},
		{"empty", []string{""}},
		{"not a token", []string{"chat v1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantConfigError(t, "WithSubprotocols", WithHMACKey(testKey), WithSubprotocols(tc.names...))
		})
	}
}

func TestConfig_TokenSources(t *testing.T) {
	for _, tc := range []struct {
		name string
		srcs []TokenSource
	}{
		{"zero source", []TokenSource{{}}},
		{"cookie without a name", []TokenSource{CookieToken("")}},
		{"query with a bad name", []TokenSource{QueryToken("a b")}},
		{"listed twice", []TokenSource{HeaderToken(), HeaderToken()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantConfigError(t, "WithTokenSources", WithHMACKey(testKey), WithTokenSources(tc.srcs...))
		})
	}
}

// TestConfig_AllProblemsAtOnce: New reports every problem in one error.
func TestConfig_AllProblemsAtOnce(t *testing.T) {
	_, err := New(quiet(),
		WithHMACKey([]byte("too short")),
		WithOrigins("h*", "https://a.com/path"),
		WithTrustedProxies("bad-cidr"),
		WithConnLimits(0, 0, 0),
		WithSendQueue(-1),
		WithAlgorithms("none"),
		WithSubprotocols("bearer.token"),
	)
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("error %v does not match ErrConfig", err)
	}
	got := map[string]int{}
	for _, ce := range configErrors(err) {
		got[ce.Option]++
		if !errors.Is(ce, ErrConfig) {
			t.Fatalf("%v does not match ErrConfig", ce)
		}
	}
	want := map[string]int{
		"WithHMACKey":               1,
		"WithOrigins":               2,
		"WithTrustedProxies":        1,
		"WithConnLimits perIP":      1,
		"WithConnLimits perSubject": 1,
		"WithConnLimits total":      1,
		"WithSendQueue":             1,
		"WithAlgorithms":            1,
		"WithSubprotocols":          1,
	}
	for opt, n := range want {
		if got[opt] != n {
			t.Errorf("%s reported %d times; want %d (all: %v)", opt, got[opt], n, err)
		}
	}
	if u, ok := err.(interface{ Unwrap() []error }); !ok || len(u.Unwrap()) < len(want) {
		t.Fatalf("not one joined error of every problem: %v", err)
	}

	t.Run("missing authenticator reported beside other problems", func(t *testing.T) {
		_, err := New(quiet(), WithOrigins("https://*"), WithSendQueue(0))
		got := map[string]bool{}
		for _, ce := range configErrors(err) {
			got[ce.Option] = true
		}
		for _, opt := range []string{"New", "WithOrigins", "WithSendQueue"} {
			if !got[opt] {
				t.Errorf("%s not reported: %v", opt, err)
			}
		}
	})
}

// TestConfig_JWKS: a JWKS URL must be https or loopback http, and New
// fetches it once so that a bad endpoint fails at startup.
func TestConfig_JWKS(t *testing.T) {
	t.Run("http on a non-loopback host fails without network", func(t *testing.T) {
		ce := wantConfigError(t, "WithJWKS", WithJWKS("http://example.com/jwks"))
		if strings.Contains(ce.Reason, "fetch") {
			t.Fatalf("reason %q: a fetch was attempted", ce.Reason)
		}
	})
	t.Run("http on a non-loopback address is never fetched", func(t *testing.T) {
		ip := nonLoopbackIP(t)
		var hits atomic.Int32
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Skipf("cannot listen on %s: %v", ip, err)
		}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Write(jwksBody(t))
		}))
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		wantConfigError(t, "WithJWKS", WithJWKS(srv.URL+"/jwks"))
		if n := hits.Load(); n != 0 {
			t.Fatalf("the insecure JWKS URL was fetched %d times", n)
		}
	})
	for _, u := range []string{"ftp://localhost/jwks", "https://user:pw@auth.example.com/jwks", "https://auth.example.com/jwks#frag", "/relative"} {
		t.Run("bad URL "+u, func(t *testing.T) {
			wantConfigError(t, "WithJWKS", WithJWKS(u))
		})
	}
	t.Run("empty URL", func(t *testing.T) {
		// An empty URL configures no key at all; New still refuses.
		wantConfigError(t, "", WithJWKS(""))
	})
	t.Run("server error fails fast", func(t *testing.T) {
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			http.Error(w, "boom", http.StatusInternalServerError)
		}))
		t.Cleanup(srv.Close)
		wantConfigError(t, "WithJWKS", WithJWKS(srv.URL+"/jwks"))
		if n := hits.Load(); n < 1 {
			t.Fatalf("the JWKS was not fetched")
		}
	})
	for name, body := range map[string]string{
		"junk":                  "<html>not json</html>",
		"JSON without keys":     `{"keys":[]}`,
		"a key that is no key":  `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`,
		"a private HMAC secret": `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`,
	} {
		t.Run("JWKS serving "+name+" fails fast", func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, body)
			}))
			t.Cleanup(srv.Close)
			wantConfigError(t, "WithJWKS", WithJWKS(srv.URL+"/jwks"))
		})
	}
	t.Run("JWKS server down fails fast", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String() + "/jwks"
		ln.Close() // nothing listens there now: connection refused
		wantConfigError(t, "WithJWKS", WithJWKS(url))
	})
	t.Run("JWKS server that never answers fails under the timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(release); srv.Close() })
		wantConfigError(t, "WithJWKS", WithJWKS(srv.URL+"/jwks"))
	})
	t.Run("good loopback JWKS", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(jwksBody(t))
		}))
		t.Cleanup(srv.Close)
		g, err := New(quiet(), WithJWKS(srv.URL+"/jwks"))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		g.Close()
	})
}

// jwksBody is a JWKS document holding one EC public key.
func jwksBody(t *testing.T) []byte {
	_, pub := newECKey(t, "jwks1")
	b, err := json.Marshal(keySet(t, pub))
	if err != nil {
		t.Error(err)
	}
	return b
}

// nonLoopbackIP returns an IPv4 address of this host that is not loopback,
// or skips the test.
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("interfaces: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address")
	return ""
}

// TestConfig_Defaults: the zero configuration with a key is the secure one.
func TestConfig_Defaults(t *testing.T) {
	g, err := New(quiet(), WithHMACKey(testKey))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c := g.cfg
	if c.insecureTransport || c.allowMissingOrigin || c.originsSet || len(c.trustedProxies) != 0 || c.anonymous {
		t.Fatalf("a relaxation is on by default: %+v", c)
	}
	if c.maxPerIP != 32 || c.maxPerSubject != 8 || c.maxTotal != 10000 {
		t.Fatalf("conn limits %d/%d/%d", c.maxPerIP, c.maxPerSubject, c.maxTotal)
	}
	if c.handshakeRate != 5 || c.handshakeBurst != 20 || c.messageRate != 20 || c.messageBurst != 40 {
		t.Fatalf("rates %v/%d %v/%d", c.handshakeRate, c.handshakeBurst, c.messageRate, c.messageBurst)
	}
	if c.maxMessageSize != 32<<10 || c.maxTokenSize != 8<<10 || c.maxTokenLifetime != 15*time.Minute || c.clockSkew != 30*time.Second {
		t.Fatalf("sizes or token limits off: %+v", c)
	}
	if len(c.subprotocols) != 1 || c.subprotocols[0] != DefaultSubprotocol {
		t.Fatalf("subprotocols %v", c.subprotocols)
	}
	if len(c.tokenSources) != 2 || c.tokenSources[0] != HeaderToken() || c.tokenSources[1] != SubprotocolToken() {
		t.Fatalf("token sources %v", c.tokenSources)
	}
}

// TestConfig_Warnings: each loudly named relaxation is logged once at New.
func TestConfig_Warnings(t *testing.T) {
	for _, tc := range []struct {
		opt    Option
		reason string
	}{
		{WithInsecureTransport(), "insecure_transport"},
		{WithAllowMissingOrigin(), "allow_missing_origin"},
		{WithTokenSources(HeaderToken(), QueryToken("access_token")), "query_token"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			rec := &recorder{}
			logs := &logBuffer{}
			g, err := New(WithHMACKey(testKey), WithObserver(rec), WithLogger(slog.New(slog.NewJSONHandler(logs, nil))), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			g.Close()
			if got := rec.reasons(EventConfigWarning); len(got) != 1 || got[0] != tc.reason {
				t.Fatalf("warnings %v; want [%s]", got, tc.reason)
			}
			if rec := lastLogged(t, logs, EventConfigWarning); rec == nil || rec["reason"] != tc.reason || rec["level"] != "WARN" {
				t.Fatalf("logged warning %v; want reason %s at WARN", rec, tc.reason)
			}
		})
	}
	t.Run("anonymous", func(t *testing.T) {
		rec := &recorder{}
		g, err := New(WithAnonymous(), WithObserver(rec), quiet())
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
		if !rec.has(EventConfigWarning, "anonymous") {
			t.Fatalf("warnings %v; want anonymous", rec.reasons(EventConfigWarning))
		}
	})
	t.Run("secure configuration is silent", func(t *testing.T) {
		rec := &recorder{}
		g, err := New(WithHMACKey(testKey), WithObserver(rec), quiet())
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
		if got := rec.reasons(EventConfigWarning); len(got) != 0 {
			t.Fatalf("warnings %v for a secure configuration", got)
		}
	})
}

// TestConfig_NilOption: a nil Option is ignored rather than a panic.
func TestConfig_NilOption(t *testing.T) {
	g, err := New(nil, WithHMACKey(testKey), nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}

// TestConfig_JWKSCredentialsNotInError: a ConfigError's Value is "never a
// secret", and New's error is what a service logs when it fails to start.
// Credentials in a JWKS URL (userinfo, or a key in the query) must not
// reach it.
func TestConfig_JWKSCredentialsNotInError(t *testing.T) {
	for _, tc := range []struct {
		url, secret string
	}{
		{"https://user:s3cr3t-pw@auth.example.com/jwks", "s3cr3t-pw"},
		{"http://example.com/jwks?api_key=s3cr3t-key", "s3cr3t-key"},
	} {
		t.Run(tc.secret, func(t *testing.T) {
			_, err := New(quiet(), WithJWKS(tc.url))
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v; want ErrConfig", err)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error %q leaks a credential of the JWKS URL", err)
			}
		})
	}
}
