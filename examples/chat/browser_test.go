package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wssec/wssec"
)

const chromiumPath = "/usr/bin/chromium"

// needChromium skips the test on a laptop without Chromium, and fails it
// in CI, where a missing browser is a broken setup, not a choice.
func needChromium(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: CI must install it (apt-get install chromium)", path)
	}
	t.Skipf("%s not found: apt-get install chromium to run the browser test", path)
}

// wsRequest is what the recorder saw of one handshake.
type wsRequest struct {
	origin    string
	hasCookie bool
}

// handshakeRecorder notes the Origin and cookie of every /ws request, so
// the test can prove the attacker's handshake really carried the cookie.
type handshakeRecorder struct {
	mu   sync.Mutex // guards seen
	seen []wsRequest
}

func (rec *handshakeRecorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			_, err := r.Cookie(sessionCookie)
			rec.mu.Lock()
			rec.seen = append(rec.seen, wsRequest{origin: r.Header.Get("Origin"), hasCookie: err == nil})
			rec.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func (rec *handshakeRecorder) from(origin string) []wsRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []wsRequest
	for _, s := range rec.seen {
		if s.origin == origin {
			out = append(out, s)
		}
	}
	return out
}

// attackerPage is served from another origin. It opens the chat's socket
// with nothing but the ambient cookie, as a cross-site hijacker would.
const attackerPage = `<!doctype html><meta charset="utf-8"><title>totally harmless</title>
<p id="r">pending</p>
<script>
window.result = "pending";
const s = new WebSocket(%q);
s.onopen = () => { window.result = "open"; document.getElementById("r").textContent = "open"; };
s.onclose = (e) => { if (window.result === "pending") window.result = "closed:" + e.code; };
</script>`

// TestBrowserEndToEnd drives the page in real headless Chromium: two
// users chat, a cross-tenant subscribe is refused in the security panel,
// and a cross-site page in alice's profile cannot hijack her socket.
func TestBrowserEndToEnd(t *testing.T) {
	needChromium(t, chromiumPath)

	rec := &handshakeRecorder{}
	a, chat := startApp(t, config{}, rec.wrap)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, attackerPage, wsURL(chat.URL))
	}))
	defer attacker.Close()
	if chat.URL == attacker.URL {
		t.Fatal("the attacker must be another origin")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 1000),
	)
	// Cancelling the allocator stops the Chromium process it started.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	alice, cancelAlice := chromedp.NewContext(allocCtx)
	defer cancelAlice()
	if err := chromedp.Do(alice, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// bob lives in a separate browser context: his own cookies and storage.
	bob, cancelBob := chromedp.NewContext(alice, chromedp.WithNewBrowserContext())
	defer cancelBob()
	// A tab lives as long as the context its first action runs with, so
	// the first action of each tab runs on the tab's own context (the
	// allocator's 60-second deadline bounds it).
	if err := chromedp.Do(bob, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("open bob's tab: %v", err)
	}

	step := func(name string, tab context.Context, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		t.Logf("step: %s", name)
		sctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// waitFor evaluates expr every 100 ms until it is true. (A plain
	// loop rather than chromedp.Poll: it survives the page's execution
	// context changing under it during a navigation.)
	waitFor := func(name string, tab context.Context, expr string) {
		t.Helper()
		t.Logf("wait: %s", name)
		deadline := time.Now().Add(15 * time.Second)
		var last error
		for time.Now().Before(deadline) {
			ectx, cancel := context.WithTimeout(tab, 5*time.Second)
			ok, err := chromedp.Run(ectx, chromedp.Evaluate[bool](expr))
			cancel()
			if err == nil && ok {
				return
			}
			last = err
			time.Sleep(100 * time.Millisecond)
		}
		tctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		text, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: not true after 15 s (last error %v)\npage text:\n%s", name, last, text)
	}
	loginAs := func(tab context.Context, user, tenant string) {
		t.Helper()
		step("open the page as "+user, tab,
			chromedp.Navigate(chat.URL+"/"),
			chromedp.WaitVisible(chromedp.ID("login-btn")),
			chromedp.SetValue(chromedp.ID("user"), user),
			chromedp.SetValue(chromedp.ID("tenant"), tenant),
			chromedp.Click(chromedp.ID("login-btn")),
		)
		waitFor(user+" connected", tab, `document.getElementById("status").textContent.startsWith("connected")`)
		step(user+" joins the lobby", tab, chromedp.Click(chromedp.ID("join-btn")))
		waitFor(user+" joined", tab, fmt.Sprintf(`!!document.querySelector('#rooms [data-channel="tenant:%s:lobby"]')`, tenant))
	}

	loginAs(alice, "alice", "acme")
	loginAs(bob, "bob", "acme")

	// alice's first socket used the one-time ticket; her session cookie is
	// HttpOnly, so the page's script cannot read it.
	cookieVisible, err := chromedp.Run(alice, chromedp.Evaluate[bool](`document.cookie.includes("chat_session")`))
	if err != nil || cookieVisible {
		t.Fatalf("document.cookie shows the session cookie (%v): it must be HttpOnly", err)
	}

	// alice says hello; bob's page shows it.
	step("alice sends", alice,
		chromedp.SetValue(chromedp.ID("msg"), "hello bob, this is alice <script>"),
		chromedp.Click(chromedp.ID("send-btn")),
	)
	waitFor("bob sees alice's message", bob,
		`[...document.querySelectorAll("#messages li")].some(li => li.textContent.includes("alice: hello bob, this is alice <script>"))`)
	step("bob answers", bob,
		chromedp.SetValue(chromedp.ID("msg"), "hi alice!"),
		chromedp.Click(chromedp.ID("send-btn")),
	)
	waitFor("alice sees bob's answer", alice, `document.getElementById("messages").textContent.includes("bob: hi alice!")`)

	// Another tenant's channel: the security panel shows forbidden.
	step("alice tries tenant:globex:lobby", alice, chromedp.Click(chromedp.ID("atk-tenant")))
	waitFor("forbidden in the security panel", alice,
		`document.getElementById("refusals").textContent.includes("forbidden") &&
		 document.getElementById("refusals").textContent.includes("tenant:globex:lobby")`)

	// The forged-token button: the handshake fails in the browser.
	beforeSig, _ := a.metrics.count(wssec.EventHandshakeRefused, "token_signature")
	step("alice opens a socket with a forged token", alice, chromedp.Click(chromedp.ID("atk-bogus")))
	waitFor("handshake refusal in the panel", alice, `document.getElementById("refusals").textContent.includes("forged token")`)
	if n, codes := a.metrics.count(wssec.EventHandshakeRefused, "token_signature"); n != beforeSig+1 || len(codes) != 1 || codes[0] != http.StatusUnauthorized {
		t.Errorf("observer: token_signature %d → %d (codes %v), want one more, 401", beforeSig, n, codes)
	}

	// Cross-site WebSocket hijacking: a page on another port, in alice's
	// browser context, so her chat_session cookie for 127.0.0.1 is sent.
	beforeOrigin, _ := a.metrics.count(wssec.EventHandshakeRefused, "origin_not_allowed")
	evil, cancelEvil := chromedp.NewContext(alice) // a new tab in alice's browser context
	defer cancelEvil()
	if err := chromedp.Do(evil, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("open the attacker's tab: %v", err)
	}
	step("alice visits the attacker's page", evil, chromedp.Navigate(attacker.URL+"/"))
	waitFor("attacker socket settled", evil, `window.result !== "pending"`)
	result, err := chromedp.Run(evil, chromedp.Evaluate[string](`window.result`))
	if err != nil {
		t.Fatal(err)
	}
	if result == "open" || !strings.HasPrefix(result, "closed:") {
		t.Fatalf("cross-site socket: %q, want it never to open", result)
	}
	after, codes := a.metrics.count(wssec.EventHandshakeRefused, "origin_not_allowed")
	if after != beforeOrigin+1 || len(codes) != 1 || codes[0] != http.StatusForbidden {
		t.Fatalf("observer: origin_not_allowed %d → %d (codes %v), want one more, 403", beforeOrigin, after, codes)
	}
	hits := rec.from(attacker.URL)
	if len(hits) != 1 || !hits[0].hasCookie {
		t.Fatalf("attacker handshakes %+v: want one, carrying alice's cookie (else the test proves nothing)", hits)
	}

	// The same cookie from the chat's own origin works: the refusal above
	// is the Origin check, not a missing credential.
	sameOrigin, err := chromedp.Run(alice, chromedp.Evaluate[string](fmt.Sprintf(`new Promise((resolve) => {
		const s = new WebSocket(%q);
		s.onopen = () => { resolve("open:" + s.protocol); s.close(1000); };
		s.onclose = (e) => resolve("closed:" + e.code);
	})`, wsURL(chat.URL)), chromedp.EvalAwaitPromise))
	if err != nil || sameOrigin != "open:" {
		t.Fatalf("same-origin cookie socket: %q %v, want open", sameOrigin, err)
	}
	if hits := rec.from(chat.URL); len(hits) == 0 || !hits[len(hits)-1].hasCookie {
		t.Fatalf("same-origin handshakes %+v: want the last one to carry the cookie", hits)
	}

	// alice's chat socket is still up after all of it.
	waitFor("alice still connected", alice, `document.getElementById("status").textContent.startsWith("connected")`)

	// The two attacks that cost alice her socket: the page shows the close
	// code, then reconnects with the bearer subprotocol and rejoins.
	step("alice sends a 40 KB message", alice, chromedp.Click(chromedp.ID("atk-big")))
	// The server lingers for the browser's close before closing the
	// socket, so the browser reads the 1009 frame (not a reset: 1006).
	waitFor("close 1009 in the panel", alice, `document.getElementById("refusals").textContent.includes("1009 message too big")`)
	eventually(t, "observer: one message_too_big with close 1009", func() bool {
		n, codes := a.metrics.count(wssec.EventMessageRefused, "message_too_big")
		return n == 1 && len(codes) == 1 && codes[0] == 1009
	})
	waitFor("alice reconnected", alice, `document.getElementById("status").textContent.startsWith("connected (bearer subprotocol")`)
	step("alice floods", alice, chromedp.Click(chromedp.ID("atk-flood")))
	waitFor("close 1013 in the panel", alice, `document.getElementById("refusals").textContent.includes("socket closed 1013")`)
	waitFor("alice reconnected again", alice, `document.getElementById("status").textContent.startsWith("connected (bearer subprotocol")`)
	waitFor("alice rejoined", alice, `!!document.querySelector('#rooms [data-channel="tenant:acme:lobby"]')`)
	eventually(t, "observer: rate_limited messages", func() bool {
		n, _ := a.metrics.count(wssec.EventMessageRefused, "rate_limited")
		return n > 0
	})
	step("alice sends after reconnecting", alice,
		chromedp.SetValue(chromedp.ID("msg"), "still here after two attacks"),
		chromedp.Click(chromedp.ID("send-btn")),
	)
	waitFor("bob sees it", bob, `document.getElementById("messages").textContent.includes("alice: still here after two attacks")`)

	if panel, err := chromedp.Run(alice, chromedp.Evaluate[string](`document.getElementById("refusals").innerText`)); err == nil {
		t.Logf("alice's security panel:\n%s", panel)
	}
	shot, err := chromedp.Run(alice, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join(repoRoot(t), "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chat.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", filepath.Join(dir, "chat.png"))
}

// repoRoot finds the module root (where go.mod is) above the test's
// working directory, the package directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}
