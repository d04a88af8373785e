package main

// The probe against servers with known weaknesses, all on loopback: a raw
// gorilla/websocket echo that accepts every Origin, a Node ws echo with
// the package's defaults, and a server whose per-IP limit believes a
// client-sent Forwarded header, behind the shipped nginx configuration.
// Each must be reported with its evidence line and exit status 1.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssec/wssec/internal/probe"
	"github.com/wssec/wssec/internal/proxytest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// probeJSON runs the command with -json and returns its report and exit
// status; a status of 2 (the probe could not run) fails the test.
func probeJSON(t *testing.T, args ...string) (*probe.Report, int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, append([]string{"-json"}, args...), &out, &errb)
	if code == 2 {
		t.Fatalf("wsprobe %v: exit 2: %s", args, errb.String())
	}
	var r probe.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("wsprobe output is not JSON: %v\n%s", err, out.String())
	}
	t.Logf("wsprobe %s: %d pass, %d fail, %d n/a", r.Target, r.Passed, r.Failed, r.NA)
	for _, f := range r.Findings {
		t.Logf("  %-10s %-18s %-4s %s", f.Group, f.Check, f.Verdict, f.Evidence)
	}
	return &r, code
}

// want asserts that group/check has verdict v and that its evidence
// contains each of the given fragments.
func want(t *testing.T, r *probe.Report, group, check string, v probe.Verdict, evidence ...string) {
	t.Helper()
	f, ok := r.Find(group, check)
	if !ok {
		t.Errorf("%s/%s: not reported", group, check)
		return
	}
	if f.Verdict != v {
		t.Errorf("%s/%s: %s (%s), want %s", group, check, f.Verdict, f.Evidence, v)
		return
	}
	for _, e := range evidence {
		if !strings.Contains(f.Evidence, e) {
			t.Errorf("%s/%s evidence %q lacks %q", group, check, f.Evidence, e)
		}
	}
}

// gorillaEcho is the echo every tutorial shows: CheckOrigin returns true
// and no read limit is set.
func gorillaEcho(t *testing.T) *httptest.Server {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1) // before the upgrade: Close waits for a request only until it is hijacked
		defer wg.Done()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, m); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return srv
}

func TestProbe_GorillaEchoAnyOrigin(t *testing.T) {
	srv := gorillaEcho(t)
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	r, code := probeJSON(t, "-url", url, "-idle", "0", "-skip", "lifetime,forwarding", "-flood-count", "300")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	for _, check := range []string{"foreign", "null", "lookalike-suffix", "userinfo", "other-scheme"} {
		want(t, r, "origin", check, probe.Fail, "upgraded (101)")
	}
	want(t, r, "origin", "none", probe.Fail, "no Origin upgraded")
	want(t, r, "messages", "oversized", probe.Fail, "no size cap")
	want(t, r, "messages", "fragment-flood", probe.Fail, "accepted")
	want(t, r, "messages", "invalid-utf8", probe.Fail, "echoed back")
	want(t, r, "messages", "control-126", probe.Pass, "closed with 1002")
	want(t, r, "messages", "compression-bomb", probe.NA, "not negotiated")
	want(t, r, "token", "forged", probe.NA, "no -token")
}

// TestProbe_GorillaCompressionNoBombCap: gorilla's read limit counts the
// compressed bytes, so a 32 KiB limit with compression on still inflates
// a bomb in full.
func TestProbe_GorillaCompressionNoBombCap(t *testing.T) {
	up := websocket.Upgrader{EnableCompression: true}
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1) // before the upgrade: Close waits for a request only until it is hijacked
		defer wg.Done()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(32 << 10)
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, m); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	r, code := probeJSON(t, "-url", url, "-idle", "0", "-skip", "transport,origin,token,lifetime,forwarding", "-max-message", "32768", "-flood-count", "100")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	want(t, r, "messages", "oversized", probe.Pass, "closed with 1009")
	want(t, r, "messages", "compression-bomb", probe.Fail, "no cap on the inflated size")
}

// startNode runs testdata/node/echo.js and returns its URL; the process is
// stopped by its PID when the test ends.
func startNode(t *testing.T) string {
	t.Helper()
	install := "apt-get install nodejs npm && (cd cmd/wsprobe/testdata/node && npm ci)"
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node not found (CI=true, so this fails instead of skipping): %s", install)
		}
		t.Skipf("node not found; to run the Node ws test: %s", install)
	}
	dir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testdata/node/node_modules missing (CI=true, so this fails instead of skipping): %s", install)
		}
		t.Skipf("testdata/node/node_modules missing; to run the Node ws test: %s", install)
	}
	cmd := exec.Command(node, "echo.js")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // reaps the process; ends with it
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() { // ends when stdout reaches EOF, at the latest when the process exits
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		for s.Scan() {
		}
	}()
	select {
	case l := <-line:
		port, ok := strings.CutPrefix(l, "listening ")
		if !ok {
			t.Fatalf("node echo.js printed %q", l)
		}
		return "ws://127.0.0.1:" + port + "/"
	case <-time.After(20 * time.Second):
		t.Fatal("node echo.js did not start within 20 s")
	}
	return ""
}

func TestProbe_NodeWSDefaults(t *testing.T) {
	url := startNode(t)
	r, code := probeJSON(t, "-url", url, "-idle", "0", "-skip", "forwarding", "-flood-count", "300",
		"-message", `{"pad":"`+strings.Repeat("x", 4000)+`"}`)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	for _, check := range []string{"foreign", "null", "none", "lookalike-suffix", "userinfo", "case", "other-port"} {
		want(t, r, "origin", check, probe.Fail, "upgraded (101)")
	}
	want(t, r, "messages", "oversized", probe.Fail, "no size cap")
	want(t, r, "messages", "invalid-utf8", probe.Pass, "closed with 1007")
	want(t, r, "messages", "control-126", probe.Pass, "closed with 1002")
	want(t, r, "messages", "compression-bomb", probe.NA, "not negotiated")
	want(t, r, "lifetime", "slow-reader", probe.Fail, "buffered without bound")
}

// forwardedLimit allows max sockets per client address, and takes the
// address from a Forwarded for= parameter when there is one: the mistake
// of trusting a header the client can send.
type forwardedLimit struct {
	max int
	up  websocket.Upgrader
	wg  sync.WaitGroup

	mu   sync.Mutex // guards open
	open map[string]int
}

func clientAddr(r *http.Request) string {
	for _, part := range strings.FieldsFunc(r.Header.Get("Forwarded"), func(c rune) bool { return c == ';' || c == ',' }) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(strings.ToLower(part)), "for="); ok {
			return strings.Trim(v, `"`)
		}
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return host
}

func (s *forwardedLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := clientAddr(r)
	s.mu.Lock()
	if s.open[key] >= s.max {
		s.mu.Unlock()
		http.Error(w, "too many sockets", http.StatusTooManyRequests)
		return
	}
	s.open[key]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open[key]--
		s.mu.Unlock()
	}()
	s.wg.Add(1) // before the upgrade: Close waits for a request only until it is hijacked
	defer s.wg.Done()
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

func TestProbe_ForwardedSpoofBehindNginx(t *testing.T) {
	s := &forwardedLimit{max: 4, open: map[string]int{}}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); s.wg.Wait() })
	px := proxytest.StartNginx(t, "../../deploy/nginx/wssec.conf", proxytest.Options{Upstream: strings.TrimPrefix(srv.URL, "http://")})
	r, code := probeJSON(t, "-url", "wss://"+px.TLSAddr+"/ws", "-plain-url", "ws://"+px.PlainAddr+"/ws",
		"-insecure", "-source", "127.0.0.2", "-max-sockets", "12", "-idle", "0", "-skip", "origin,token,messages,lifetime")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	want(t, r, "forwarding", "client-address", probe.Fail, "bites after 4 sockets", "12 opened with a different client-sent Forwarded on each")
	want(t, r, "transport", "tls-version", probe.Pass)
	want(t, r, "transport", "tls-cbc-sha1", probe.Pass)
}

// TestLeak_URLSecretsInReport: a target URL that carries a token in its
// query and credentials in its userinfo, and a -jwks URL with an API key,
// are shown in the report (table and JSON, which land in CI logs) without
// userinfo, query or fragment, also inside the error of a failed JWKS
// fetch.
func TestLeak_URLSecretsInReport(t *testing.T) {
	srv := gorillaEcho(t)
	hostport := strings.TrimPrefix(srv.URL, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	jwksAddr := ln.Addr().String()
	ln.Close() // nothing listens there: the fetch fails with an error naming its URL
	enc := base64.RawURLEncoding
	token := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(`{"sub":"alice"}`)) + "." + enc.EncodeToString([]byte("not a signature"))
	args := []string{
		"-url", "ws://probeuser:SECRETPASS@" + hostport + "/ws?access_token=SECRETTOKEN#SECRETFRAG",
		"-jwks", "http://jwksuser:SECRETPASS@" + jwksAddr + "/jwks.json?api_key=SECRETKEY#SECRETFRAG",
		"-token", token, "-idle", "0", "-skip", "transport,origin,forwarding,messages,lifetime",
	}
	for _, mode := range []string{"table", "json"} {
		t.Run(mode, func(t *testing.T) {
			a := args
			if mode == "json" {
				a = append([]string{"-json"}, args...)
			}
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if code := run(ctx, a, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1 (forged tokens upgrade on this echo); stderr %s", code, errb.String())
			}
			got := out.String() + errb.String()
			var wrong []string
			for _, secret := range []string{"SECRET", "probeuser", "jwksuser", "api_key", "#"} {
				if strings.Contains(got, secret) {
					wrong = append(wrong, "shows "+secret)
				}
			}
			for _, shown := range []string{"ws://" + hostport + "/ws", "JWKS http://" + jwksAddr + "/jwks.json: no RSA or EC key read", `"http://` + jwksAddr + `/jwks.json"`} {
				if mode == "json" {
					shown = strings.ReplaceAll(shown, `"`, `\"`)
				}
				if !strings.Contains(got, shown) {
					wrong = append(wrong, "lacks "+shown)
				}
			}
			if len(wrong) > 0 {
				t.Errorf("the report %s:\n%s", strings.Join(wrong, "; "), got)
			}
		})
	}
}

// TestRefusesNonLoopback: without -i-own-this-target nothing is sent to
// an address that is not loopback.
func TestRefusesNonLoopback(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-url", "ws://192.0.2.1/ws"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "-i-own-this-target") {
		t.Fatalf("exit %d, stderr %q; want 2 and a hint at -i-own-this-target", code, errb.String())
	}
}

// TestDocListsEveryFlag: go doc shows every flag the command takes.
func TestDocListsEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	run(context.Background(), []string{"-h"}, &out, &errb)
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(errb.String(), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(f[0], "-") {
			continue
		}
		n++
		if !strings.Contains(string(doc), "//\t"+f[0]+" ") {
			t.Errorf("flag %s is not in doc.go's flag list", f[0])
		}
	}
	if n < 20 {
		t.Fatalf("only %d flags in the usage:\n%s", n, errb.String())
	}
}
