package wssec

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// selfSigned writes a P-256 certificate for 127.0.0.1 and its key to dir
// and returns their paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wssec test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// serveTLS serves srv with ServeTLS on a loopback port until the test
// ends, and returns its address.
func serveTLS(t *testing.T, srv *http.Server, certFile, keyFile string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ServeTLS(ln, certFile, keyFile)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	return ln.Addr().String()
}

// cbcSuites are the TLS 1.2 CBC suites Go's default server configuration
// still accepts (LUCKY13-class: MAC-then-encrypt).
var cbcSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
}

// TestTLSDowngrade_HardenServer: behind HardenServer a TLS 1.1 hello and
// a TLS 1.2 hello offering only CBC suites are refused at the handshake,
// while TLS 1.2 with AES-GCM and TLS 1.3 open a wss:// socket through the
// Guard. The same CBC hello to a server without the profile succeeds, so
// the refusal is the profile's doing.
func TestTLSDowngrade_HardenServer(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	g, err := New(WithHMACKey(testKey), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	h := g.Handler(func(ctx context.Context, c *Conn) {
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				return
			}
		}
	})
	hardenedSrv := HardenServer(&http.Server{Handler: h, ErrorLog: discardLog()})
	hardened := serveTLS(t, hardenedSrv, certFile, keyFile)
	plain := serveTLS(t, &http.Server{Handler: h, ErrorLog: discardLog()}, certFile, keyFile)

	handshake := func(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
		cfg.RootCAs = pool
		cfg.NextProtos = []string{"http/1.1"}
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		return c.ConnectionState(), nil
	}

	// Go's server refuses TLS 1.0 and 1.1 by default (since Go 1.22) unless
	// GODEBUG=tls10server=1, so a bare refusal proves nothing about the
	// profile. The subtest checks the profile's own minimum, shows the
	// same TLS 1.1 hello succeeding against a server that allows it (the
	// client really offers TLS 1.1), and checks the profile still refuses
	// it with the old default switched back on, while a plain server
	// then accepts it.
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		tls11 := func() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11} }
		if got := hardenedSrv.TLSConfig.MinVersion; got != tls.VersionTLS12 {
			t.Fatalf("HardenServer's MinVersion is %s, want TLS 1.2", tls.VersionName(got))
		}
		if _, err := handshake(hardened, tls11()); err == nil {
			t.Fatal("a TLS 1.1 hello was accepted")
		}
		old := serveTLS(t, &http.Server{Handler: h, ErrorLog: discardLog(), TLSConfig: &tls.Config{MinVersion: tls.VersionTLS10}}, certFile, keyFile)
		st, err := handshake(old, tls11())
		if err != nil || st.Version != tls.VersionTLS11 {
			t.Fatalf("control: a server with MinVersion TLS 1.0 did not negotiate TLS 1.1 (%s, %v): the test proves nothing", tls.VersionName(st.Version), err)
		}
		t.Setenv("GODEBUG", "tls10server=1")
		if st, err := handshake(plain, tls11()); err != nil || st.Version != tls.VersionTLS11 {
			t.Fatalf("control: with tls10server=1 a plain server did not negotiate TLS 1.1 (%s, %v)", tls.VersionName(st.Version), err)
		}
		if _, err := handshake(hardened, tls11()); err == nil {
			t.Fatal("with tls10server=1, a TLS 1.1 hello was accepted by HardenServer")
		}
	})
	t.Run("TLS 1.2 CBC-only refused", func(t *testing.T) {
		cfg := func() *tls.Config {
			return &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: cbcSuites}
		}
		if st, err := handshake(hardened, cfg()); err == nil {
			t.Fatalf("a CBC-only TLS 1.2 hello was accepted with %s", tls.CipherSuiteName(st.CipherSuite))
		}
		// Control: without the profile the same hello gets a CBC suite.
		st, err := handshake(plain, cfg())
		if err != nil {
			t.Fatalf("control: a plain server refused the CBC hello too (%v): the test proves nothing", err)
		}
		t.Logf("control: a plain http.Server negotiated %s", tls.CipherSuiteName(st.CipherSuite))
	})

	dialWSS := func(t *testing.T, cfg *tls.Config) {
		t.Helper()
		cfg.RootCAs = pool
		d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}
		origin := "https://" + hardened
		c, resp, err := d.Dial("wss://"+hardened+"/ws", http.Header{
			"Origin":        {origin},
			"Authorization": {"Bearer " + mint(t, claims{})},
		})
		if err != nil {
			t.Fatalf("wss dial: %v (resp %v)", err, resp)
		}
		defer c.Close()
		resp.Body.Close()
		tc, ok := c.NetConn().(*tls.Conn)
		if !ok {
			t.Fatalf("socket is %T, not TLS", c.NetConn())
		}
		st := tc.ConnectionState()
		if cfg.MaxVersion != 0 && st.Version != cfg.MaxVersion {
			t.Errorf("negotiated %s, want %s", tls.VersionName(st.Version), tls.VersionName(cfg.MaxVersion))
		}
		t.Logf("negotiated %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseNormal, ""), time.Now().Add(time.Second))
	}
	t.Run("TLS 1.2 GCM accepted", func(t *testing.T) {
		dialWSS(t, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	})
	t.Run("TLS 1.3 accepted", func(t *testing.T) {
		dialWSS(t, &tls.Config{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13})
	})
}

// TestHardenServer_KeepsCallerTLSConfig: a caller's TLSConfig is kept as
// it is, even one weaker than the profile; a bare server gets the profile.
func TestHardenServer_KeepsCallerTLSConfig(t *testing.T) {
	mine := &tls.Config{MinVersion: tls.VersionTLS13}
	srv := HardenServer(&http.Server{TLSConfig: mine})
	if srv.TLSConfig != mine || mine.MinVersion != tls.VersionTLS13 || mine.CipherSuites != nil || mine.CurvePreferences != nil {
		t.Fatalf("HardenServer changed the caller's TLSConfig: %+v", srv.TLSConfig)
	}
	bare := HardenServer(&http.Server{})
	if bare.TLSConfig == nil || bare.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Fatalf("HardenServer set no TLS 1.2 minimum: %+v", bare.TLSConfig)
	}
	for _, id := range bare.TLSConfig.CipherSuites {
		for _, s := range tls.InsecureCipherSuites() {
			if s.ID == id {
				t.Errorf("profile enables an insecure suite: %s", s.Name)
			}
		}
		if name := tls.CipherSuiteName(id); !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("profile enables a non-AEAD suite: %s", name)
		}
	}
	if TLSProfile() == TLSProfile() {
		t.Error("TLSProfile returns a shared Config")
	}
}

// discardLog silences net/http's log of the refused TLS handshakes.
func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
