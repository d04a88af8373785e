// Package proxytest starts real nginx and HAProxy processes for tests, on
// free loopback ports, from the configuration files wssec ships in
// deploy/, and stops them by their PID. Each proxy has a TLS listener
// (with a self-signed certificate made here) and a plain-HTTP listener,
// and forwards to one upstream address.
package proxytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proxy is one running proxy.
type Proxy struct {
	// TLSAddr and PlainAddr are the listeners, host:port on 127.0.0.1.
	TLSAddr, PlainAddr string
	// Roots trusts the proxy's certificate (issued for 127.0.0.1).
	Roots *x509.CertPool

	name string
	dir  string
	logs []string // files worth showing when a test fails

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan error // receives cmd.Wait's result
}

// Options are what a test changes in a shipped configuration.
type Options struct {
	// Upstream is the address (host:port) of the service behind the proxy.
	Upstream string
	// IdleTimeout replaces the proxy's idle timeout for upgraded sockets
	// (nginx proxy_read_timeout and proxy_send_timeout, HAProxy timeout
	// tunnel) when positive. Whole seconds.
	IdleTimeout time.Duration
}

// lookPath finds bin, or skips the test with the install command (fails
// it when CI=true).
func lookPath(t testing.TB, bin, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} { // not always on a user's PATH
		if p := filepath.Join(dir, bin); isExecutable(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (CI=true, so this fails instead of skipping): install it with apt-get install %s", bin, pkg)
	}
	t.Skipf("%s not found; install it (apt-get install %s) to run the real-proxy tests", bin, pkg)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// StartNginx runs nginx with the server configuration conf (a file for
// nginx's http block, such as deploy/nginx/wssec.conf), included from a
// main configuration written here that keeps the pid file, logs and
// temporary files in a temporary directory. The proxy is stopped by its
// PID when t ends.
func StartNginx(t testing.TB, conf string, o Options) *Proxy {
	t.Helper()
	bin := lookPath(t, "nginx", "nginx")
	p := newProxy(t, "nginx")
	tlsPort, plainPort := freePort(t), freePort(t)
	repl := []replacement{
		{"listen 443 ssl;", "listen 127.0.0.1:" + tlsPort + " ssl;"},
		{"listen 80;", "listen 127.0.0.1:" + plainPort + ";"},
		{"server 127.0.0.1:8080;", "server " + o.Upstream + ";"},
		{"ssl_certificate     /etc/ssl/certs/wssec.crt;", "ssl_certificate " + p.path("cert.pem") + ";"},
		{"ssl_certificate_key /etc/ssl/private/wssec.key;", "ssl_certificate_key " + p.path("key.pem") + ";"},
	}
	if o.IdleTimeout > 0 {
		s := seconds(o.IdleTimeout)
		repl = append(repl,
			replacement{"proxy_read_timeout 60s;", "proxy_read_timeout " + s + ";"},
			replacement{"proxy_send_timeout 60s;", "proxy_send_timeout " + s + ";"})
	}
	p.render(t, conf, "wssec.conf", repl)

	user := ""
	if os.Geteuid() == 0 {
		// As root the workers would switch to an unprivileged user that
		// cannot enter the test's private temporary directory.
		user = "user root;\n"
	}
	main := user + fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/wssec.conf;
}
`, p.dir)
	p.write(t, "nginx.conf", main)
	p.logs = []string{p.path("error.log"), p.path("stderr.log")}
	p.start(t, bin, tlsPort, plainPort,
		"-p", p.dir, "-e", p.path("error.log"), "-c", p.path("nginx.conf"), "-g", "daemon off;")
	return p
}

// StartHAProxy runs haproxy in the foreground with conf (a complete
// configuration, such as deploy/haproxy/wssec.cfg). The proxy is stopped
// by its PID when t ends.
func StartHAProxy(t testing.TB, conf string, o Options) *Proxy {
	t.Helper()
	bin := lookPath(t, "haproxy", "haproxy")
	p := newProxy(t, "haproxy")
	tlsPort, plainPort := freePort(t), freePort(t)
	repl := []replacement{
		{"bind :443 ssl crt /etc/haproxy/certs/wssec.pem", "bind 127.0.0.1:" + tlsPort + " ssl crt " + p.path("bundle.pem")},
		{"bind :80", "bind 127.0.0.1:" + plainPort},
		{"server app1 127.0.0.1:8080", "server app1 " + o.Upstream},
	}
	if o.IdleTimeout > 0 {
		repl = append(repl, replacement{"timeout tunnel 60s", "timeout tunnel " + seconds(o.IdleTimeout)})
	}
	p.render(t, conf, "haproxy.cfg", repl)
	p.logs = []string{p.path("stderr.log")}
	p.start(t, bin, tlsPort, plainPort, "-db", "-f", p.path("haproxy.cfg"))
	return p
}

func seconds(d time.Duration) string {
	n := int(d / time.Second)
	if n < 1 {
		n = 1
	}
	return fmt.Sprintf("%ds", n)
}

func newProxy(t testing.TB, name string) *Proxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "wssec-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &Proxy{name: name, dir: dir}
	p.Roots = writeCert(t, dir)
	return p
}

func (p *Proxy) path(name string) string { return filepath.Join(p.dir, name) }

func (p *Proxy) write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(p.path(name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

type replacement struct{ line, with string }

// render copies the configuration file src to name in the proxy's
// directory with whole lines replaced. Each line to replace must occur
// exactly once (comments never match), so a change to the shipped file
// that the test does not know about fails here instead of going unseen.
func (p *Proxy) render(t testing.TB, src, name string, repl []replacement) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("reading the shipped configuration: %v", err)
	}
	lines := strings.Split(string(b), "\n")
	for _, r := range repl {
		n := 0
		for i, l := range lines {
			if strings.TrimSpace(l) == r.line {
				indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
				lines[i] = indent + r.with
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s: the line %q occurs %d times; the test expects it once", src, r.line, n)
		}
	}
	p.write(t, name, strings.Join(lines, "\n"))
}

// start launches the proxy and waits (10 s at most) until both listeners
// accept connections.
func (p *Proxy) start(t testing.TB, bin, tlsPort, plainPort string, args ...string) {
	t.Helper()
	p.TLSAddr = net.JoinHostPort("127.0.0.1", tlsPort)
	p.PlainAddr = net.JoinHostPort("127.0.0.1", plainPort)
	stderr, err := os.Create(p.path("stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // ends when the process does
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", p.name, p.Logs())
		}
		p.Stop()
	})

	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range []string{p.TLSAddr, p.PlainAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-done:
				done <- err // for Stop
				t.Fatalf("%s exited at start: %v\n%s", p.name, err, p.Logs())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not accept on %s: %v\n%s", p.name, addr, err, p.Logs())
			}
		}
	}
}

// Logs returns the proxy's error log and standard error.
func (p *Proxy) Logs() string {
	var b strings.Builder
	for _, f := range p.logs {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), data)
	}
	return b.String()
}

// Stop ends the proxy by its PID: SIGTERM (nginx and HAProxy then close
// their listeners and, for nginx, stop the worker), SIGKILL if it has not
// exited 10 s later. It does nothing when the proxy is not running.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd, p.done = nil, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// writeCert makes a self-signed ECDSA certificate for 127.0.0.1 and
// writes it as cert.pem, key.pem and bundle.pem (both, for HAProxy).
func writeCert(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wssec proxy test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	for name, data := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM, "bundle.pem": append(append([]byte(nil), certPEM...), keyPEM...)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
