package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
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

// rebinder answers the first honest lookups with 127.0.0.1 and every
// later one with 192.0.2.1 (TEST-NET-1): a name whose DNS answer turns to
// someone else's address after the probe's loopback check, the DNS
// rebinding trick.
type rebinder struct {
	honest int32
	calls  atomic.Int32
}

func (r *rebinder) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	if host != "localhost" {
		return nil, errors.New("rebinder answers only localhost")
	}
	if r.calls.Add(1) <= r.honest {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
}

// countConns starts srv counting the connections it accepts.
func countConns(srv *httptest.Server, tlsCfg *tls.Config) *atomic.Int32 {
	var n atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	if tlsCfg != nil {
		srv.TLS = tlsCfg
		srv.StartTLS()
	} else {
		srv.Start()
	}
	return &n
}

// TestDNSRebinding_AfterTheCheck: the name resolves to loopback for the
// check and elsewhere for the dial that follows; the dial is refused
// (ErrNotLoopback) and nothing reaches either address. The probe
// connects from 127.0.0.1, so that even a broken guard could not send a
// packet off the machine (the kernel refuses that route).
func TestDNSRebinding_AfterTheCheck(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	conns := countConns(srv, nil)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	rb := &rebinder{honest: 1}
	_, err := Run(context.Background(), Config{URL: "ws://localhost:" + port + "/ws", Source: "127.0.0.1", lookup: rb.lookup})
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("Run: %v, want ErrNotLoopback", err)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the loopback server saw %d connections, want 0", n)
	}
}

// TestDNSRebinding_BetweenDials: the name turns after the check and the
// first (legitimate) handshake. Every later dial is refused: the raw
// frame sockets of the message checks and the TLS scans report n/a with
// ErrNotLoopback, and the server saw the first connection only.
func TestDNSRebinding_BetweenDials(t *testing.T) {
	var wg sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1) // before the upgrade: Close waits for a request only until it is hijacked
		defer wg.Done()
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	conns := countConns(srv, &tls.Config{MinVersion: tls.VersionTLS12})
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	rb := &rebinder{honest: 2} // checkLoopback, then the legitimate handshake
	r, err := Run(context.Background(), Config{
		URL: "wss://localhost:" + port + "/ws", Origin: "https://localhost:" + port,
		Source: "127.0.0.1", InsecureSkipVerify: true, lookup: rb.lookup,
		Skip: []string{"origin", "token", "forwarding", "lifetime"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ group, check string }{
		{"transport", "tls-version"}, {"transport", "tls-cbc-sha1"}, {"messages", "-"},
	} {
		f, ok := r.Find(c.group, c.check)
		if !ok || f.Verdict != NA || !strings.Contains(f.Evidence, "(localhost is 192.0.2.1)") {
			t.Errorf("%s/%s: %+v (found %v), want n/a: not loopback", c.group, c.check, f, ok)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the server saw %d connections, want the first handshake's only", n)
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
		wg.Add(1) // before the upgrade: Close waits for a request only until it is hijacked
		defer wg.Done()
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
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
