package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNotLoopback_Refused: nothing is sent to a target that resolves to
// an address that is not loopback, unless OwnTarget says so.
func TestNotLoopback_Refused(t *testing.T) {
	for _, tc := range []struct {
		url, plain string
		ok         bool
	}{
		{"ws://127.0.0.1:1/ws", "", true},
		{"ws://[::1]:1/ws", "", true},
		{"wss://localhost:1/ws", "", true},
		{"ws://192.0.2.1/ws", "", false},
		{"ws://127.0.0.1.nip.invalid/ws", "", false}, // does not resolve
		{"wss://127.0.0.1:1/ws", "ws://192.0.2.1/ws", false},
		{"wss://127.0.0.1/ws", "", true}, // plain twin derived: ws://127.0.0.1/ws
	} {
		p, err := validate(Config{URL: tc.url, PlainURL: tc.plain})
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		err = p.checkLoopback(context.Background())
		if (err == nil) != tc.ok {
			t.Errorf("%s (plain %q): %v", tc.url, tc.plain, err)
		}
		if !tc.ok && strings.Contains(tc.url+tc.plain, "192.0.2.1") {
			if !errors.Is(err, ErrNotLoopback) {
				t.Errorf("%s: %v is not ErrNotLoopback", tc.url, err)
			}
		}
	}
	// Run refuses before any traffic.
	if _, err := Run(context.Background(), Config{URL: "ws://192.0.2.1/ws"}); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("Run: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := validate(Config{URL: "http://x", TokenIn: "cookie", Source: "nope"})
	for _, want := range []string{"-url", "-token-in", "-source"} {
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %s", err, want)
		}
	}
}

// TestOriginCases: every cross-site case differs from the page origin.
func TestOriginCases(t *testing.T) {
	for _, page := range []string{"https://app.example.com", "http://127.0.0.1:8080", "https://[::1]:8443"} {
		cases := originCases(page)
		if len(cases) != 10 {
			t.Fatalf("%s: %d cases", page, len(cases))
		}
		for _, c := range cases {
			if c.origin != nil && strings.EqualFold(*c.origin, page) {
				t.Errorf("%s: case %s is the page origin itself", page, c.check)
			}
		}
	}
}

// echoTLS is a gorilla echo (same-origin check) over TLS with cfg.
func echoTLS(t *testing.T, cfg *tls.Config) *httptest.Server {
	var wg sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.Close()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return srv
}

// TestTLS_OldVersionsAndCBCSHA1: a server that still accepts TLS 1.0 and
// CBC-SHA1 suites is reported, one that does not passes.
func TestTLS_OldVersionsAndCBCSHA1(t *testing.T) {
	weak := echoTLS(t, &tls.Config{
		MinVersion:   tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA},
	})
	strong := echoTLS(t, &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
	for _, tc := range []struct {
		srv       *httptest.Server
		v, suites Verdict
		evidence  string
	}{
		{weak, Fail, Fail, "TLS 1.0"},
		{strong, Pass, Pass, "TLS 1.3"},
	} {
		r, err := Run(context.Background(), Config{
			URL:                "wss" + strings.TrimPrefix(tc.srv.URL, "https") + "/",
			InsecureSkipVerify: true,
			Skip:               []string{"origin", "token", "forwarding", "messages", "lifetime"},
		})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := r.Find("transport", "tls-version")
		s, _ := r.Find("transport", "tls-cbc-sha1")
		if v.Verdict != tc.v || s.Verdict != tc.suites || !strings.Contains(v.Evidence, tc.evidence) {
			t.Errorf("%s: tls-version %+v, tls-cbc-sha1 %+v; want %s and %s", tc.srv.URL, v, s, tc.v, tc.suites)
		}
	}
}
