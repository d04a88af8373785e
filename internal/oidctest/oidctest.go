// Package oidctest runs a real OpenID Provider for tests: the oidc-provider
// package under Node.js (node/server.mjs, its dependencies pinned by
// node/package-lock.json), on a free loopback port, stopped by its PID.
//
// oidc-provider 8.x runs on Node.js 18 (Debian 12's) and later.
//
// The provider issues RFC 9068 access tokens (typ at+jwt, signed ES256)
// through the client-credentials grant, with the claims each Client
// carries, and publishes an RSA encryption key ("use":"enc") beside its
// signing keys, as Keycloak does.
//
// Without node on PATH or without node/node_modules, a test using it is
// skipped with the install command, or fails when CI=true.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// InstallHint is how to get what the provider needs, from the module root.
const InstallHint = "apt-get install nodejs npm, then (cd internal/oidctest/node && npm ci)"

// Client is one client of the provider.
type Client struct {
	ID, Secret string
	// TTL is the lifetime of its access tokens; zero means 5 minutes.
	TTL time.Duration
	// Claims are added to each of its access tokens.
	Claims map[string]any
}

// Options configures a Provider.
type Options struct {
	// Audience is the aud of every access token. Default
	// "https://api.example.test".
	Audience string
	Clients  []Client
	// Scopes are the scopes the resource server grants (a client asks for
	// some of them). Default "orders:read" and "orders:write".
	Scopes []string
}

// Provider is one oidc-provider process.
type Provider struct {
	t      testing.TB
	node   string
	script string
	dir    string
	opts   Options

	mu    sync.Mutex // guards the fields below
	port  int        // 0 until the first start
	keys  []jwk.Key  // private signing keys; the first one signs
	kidN  int
	cmd   *exec.Cmd
	done  chan error
	runs  int
	httpc *http.Client // for token requests; no keep-alive, so no idle goroutines
}

// nodeDir is the folder holding server.mjs and its package files.
func nodeDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "node")
}

// Start starts a provider for t with one ES256 signing key (kid "sig-1")
// and waits until it listens (20 s at most). It is killed by its PID when
// t ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	dir := nodeDir()
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("oidc-provider under Node.js is not installed (CI=true, so this fails instead of skipping): %v; %s", err, InstallHint)
		}
		t.Skipf("oidc-provider under Node.js is not installed (%v): %s", err, InstallHint)
	}
	if o.Audience == "" {
		o.Audience = "https://api.example.test"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"orders:read", "orders:write"}
	}
	p := &Provider{t: t, node: nodeBin, script: filepath.Join(dir, "server.mjs"), dir: t.TempDir(), opts: o,
		httpc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	t.Cleanup(p.Stop)
	p.keys = []jwk.Key{p.newKey(t)}
	if err := p.start(); err != nil {
		t.Fatalf("starting oidc-provider: %v", err)
	}
	return p
}

// newKey makes an ES256 private signing key with the next kid.
func (p *Provider) newKey(t testing.TB) jwk.Key {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	p.kidN++
	_ = k.Set(jwk.KeyIDKey, "sig-"+strconv.Itoa(p.kidN))
	_ = k.Set(jwk.KeyUsageKey, "sig")
	_ = k.Set(jwk.AlgorithmKey, "ES256")
	return k
}

// Issuer is the provider's issuer URL, http://127.0.0.1:<port>.
func (p *Provider) Issuer() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "http://127.0.0.1:" + strconv.Itoa(p.port)
}

// Audience is the aud of the provider's access tokens.
func (p *Provider) Audience() string { return p.opts.Audience }

// SigningKid is the kid of the key that signs new tokens.
func (p *Provider) SigningKid() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	kid, _ := p.keys[0].KeyID()
	return kid
}

// config is what server.mjs reads.
type config struct {
	Port          int          `json:"port"`
	SigningKeys   []jwk.Key    `json:"signingKeys"`
	EncryptionKey bool         `json:"encryptionKey"`
	Audience      string       `json:"audience"`
	Scopes        []string     `json:"scopes"`
	Clients       []clientJSON `json:"clients"`
}

type clientJSON struct {
	ID     string         `json:"client_id"`
	Secret string         `json:"client_secret"`
	TTL    int            `json:"ttl"`
	Claims map[string]any `json:"claims,omitempty"`
}

// start launches the process with the current keys, on the current port
// (any free one the first time), and waits for its READY line.
func (p *Provider) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runs++
	cfg := config{Port: p.port, SigningKeys: p.keys, EncryptionKey: true, Audience: p.opts.Audience, Scopes: p.opts.Scopes}
	for _, c := range p.opts.Clients {
		ttl := int(c.TTL / time.Second)
		if ttl == 0 {
			ttl = 300
		}
		cfg.Clients = append(cfg.Clients, clientJSON{ID: c.ID, Secret: c.Secret, TTL: ttl, Claims: c.Claims})
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	run := strconv.Itoa(p.runs)
	cfgPath := filepath.Join(p.dir, "config-"+run+".json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return err
	}
	outPath := filepath.Join(p.dir, "stdout-"+run+".log")
	out, err := os.Create(outPath)
	if err != nil {
		return err
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(p.dir, "stderr-"+run+".log"))
	if err != nil {
		return err
	}
	defer errf.Close()
	cmd := exec.Command(p.node, p.script, cfgPath)
	cmd.Dir = filepath.Dir(p.script)
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // ends when the process does
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(outPath)
		if line, ok := strings.CutPrefix(string(b), "READY "); ok && strings.HasSuffix(line, "\n") {
			port, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				_ = cmd.Process.Kill()
				<-done
				return fmt.Errorf("bad READY line %q", b)
			}
			p.port, p.cmd, p.done = port, cmd, done
			return nil
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(errf.Name())
			return fmt.Errorf("exited before listening: %v\n%s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			log, _ := os.ReadFile(errf.Name())
			return fmt.Errorf("not listening after 20 s\n%s", log)
		}
	}
}

// Stop kills the provider by its PID and reaps it; it does nothing when
// it is not running. The port stays reserved for Restart only by
// convention: nothing else on the machine should take it meanwhile.
func (p *Provider) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd, p.done = nil, nil
}

// Restart stops the provider and starts it again on the same port with
// the current keys. Tokens it issued before stay valid (same keys), but
// it forgets every other state.
func (p *Provider) Restart() {
	p.t.Helper()
	p.Stop()
	var err error
	for range 20 { // the port may linger for a moment after the kill
		if err = p.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("restarting oidc-provider: %v", err)
}

// RotateKey restarts the provider with a new signing key in front of the
// current ones (which stay published) and returns the new kid.
func (p *Provider) RotateKey() string {
	p.t.Helper()
	k := p.newKey(p.t)
	p.mu.Lock()
	p.keys = append([]jwk.Key{k}, p.keys...)
	p.mu.Unlock()
	p.Restart()
	kid, _ := k.KeyID()
	return kid
}

// DropOldKeys restarts the provider with only its current signing key.
func (p *Provider) DropOldKeys() {
	p.t.Helper()
	p.mu.Lock()
	p.keys = p.keys[:1]
	p.mu.Unlock()
	p.Restart()
}

// Token gets an access token for the client through the client-credentials
// grant, with the given scope ("" for none).
func (p *Provider) Token(t testing.TB, clientID, scope string) string {
	t.Helper()
	var secret string
	for _, c := range p.opts.Clients {
		if c.ID == clientID {
			secret = c.Secret
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequest(http.MethodPost, p.Issuer()+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := p.httpc.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" {
		t.Fatalf("token request: status %d: %s", resp.StatusCode, body)
	}
	return tr.AccessToken
}
