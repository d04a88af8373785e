package wssec

import (
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
)

// handshakeAnswer dials and returns the HTTP response of the handshake
// (the socket, if any, is closed at cleanup).
func handshakeAnswer(t *testing.T, f *fixture, h http.Header) *http.Response {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(f.url, h)
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	return resp
}

// TestREADME_RefusalTable checks each row of README's "What a refused
// client sees" over a real socket, so the table cannot drift from the
// wire. The slow reader's 1013 is TestConn_SlowConsumer.
func TestREADME_RefusalTable(t *testing.T) {
	base := []Option{WithHMACKey(testKey), WithInsecureTransport()}
	tok := func(t *testing.T) string { return mint(t, claims{}) }

	t.Run("plain ws:// when TLS is required: 426", func(t *testing.T) {
		f := newFixture(t, nil, WithHMACKey(testKey))
		if r := handshakeAnswer(t, f, f.headers(tok(t))); r.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
	t.Run("cross-site, null or missing Origin: 403", func(t *testing.T) {
		f := newFixture(t, nil, base...)
		for _, o := range []string{"https://evil.example", "null", ""} {
			h := f.headers(tok(t))
			h.Del("Origin")
			if o != "" {
				h.Set("Origin", o)
			}
			if r := handshakeAnswer(t, f, h); r.StatusCode != http.StatusForbidden {
				t.Fatalf("Origin %q: status %d", o, r.StatusCode)
			}
		}
	})
	t.Run("handshake rate or quota per IP, per subject: 429 with Retry-After", func(t *testing.T) {
		frozen := time.Now()
		for name, opt := range map[string]Option{
			"handshake rate": WithHandshakeRate(0.001, 1),
			"quota per IP":   WithConnLimits(1, 8, 100),
			"quota per sub":  WithConnLimits(8, 1, 100),
		} {
			f := newFixture(t, nil, append(base, opt, WithClock(func() time.Time { return frozen }))...)
			if r := handshakeAnswer(t, f, f.headers(tok(t))); r.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("%s: first handshake %d", name, r.StatusCode)
			}
			r := handshakeAnswer(t, f, f.headers(tok(t)))
			if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: status %d, Retry-After %q", name, r.StatusCode, r.Header.Get("Retry-After"))
			}
		}
	})
	t.Run("total capacity: 503", func(t *testing.T) {
		f := newFixture(t, nil, append(base, WithConnLimits(8, 8, 1))...)
		handshakeAnswer(t, f, f.headers(tok(t)))
		if r := handshakeAnswer(t, f, f.headers(mint(t, claims{sub: "bob"}))); r.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
	t.Run("missing, malformed, expired or untrusted token: 401 invalid_token", func(t *testing.T) {
		f := newFixture(t, nil, base...)
		other := []byte("another key, 32 bytes long......")
		for name, tk := range map[string]string{
			"missing":   "",
			"malformed": "not.a.jwt",
			"expired":   mint(t, claims{iat: time.Now().Add(-10 * time.Minute), exp: time.Now().Add(-5 * time.Minute)}),
			"untrusted": mintWith(t, jwa.HS256(), other, claims{}),
		} {
			r := handshakeAnswer(t, f, f.headers(tk))
			want := `Bearer error="invalid_token"`
			if tk != "" { // a presented token gets its class's sentence
				want += `, error_description="`
			}
			if got := r.Header.Get("WWW-Authenticate"); r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(got, want) {
				t.Fatalf("%s token: status %d, WWW-Authenticate %q", name, r.StatusCode, got)
			}
		}
	})
	t.Run("a token while WithStartWithoutKeys waits for the keys: 503 with Retry-After", func(t *testing.T) {
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		defer down.Close()
		f := newFixture(t, nil, WithJWKS(down.URL+"/jwks"), WithStartWithoutKeys(), WithInsecureTransport())
		priv, _ := newECKey(t, "k1")
		r := handshakeAnswer(t, f, f.headers(mintWith(t, jwa.ES256(), priv, claims{})))
		if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
		}
	})

	// Message rows.
	t.Run("malformed message: invalid_message", func(t *testing.T) {
		h := newConnHarness(t, WithDenialLimit(100))
		c := h.dialClient(t, "orders:write", false)
		for _, m := range []string{
			`{"action":"marker","id":"1"`,                                       // not JSON
			`["marker"]`,                                                        // not an object
			`{"action":"marker","id":"2","x":1}`,                                // unknown key
			`{"action":"marker","id":"3","id":"3"}`,                             // duplicate key
			`{"action":"marker","id":"4","payload":{"n":"x"}}`,                  // schema
			`{"action":"say","id":"5","payload":{"text":""}}`,                   // validate tag
			`{"action":"publish","id":"6","payload":{"body":"x"}}`,              // no channel
			`{"action":"publish","channel":"","id":"7","payload":{"body":"x"}}`, // empty channel
		} {
			c.sendText(m)
			f, code := c.next()
			if code != 0 || f.Action != "error" || f.Error == nil || f.Error.Code != "invalid_message" {
				t.Fatalf("%s: got %s (close %d)", m, c.seen[len(c.seen)-1], code)
			}
		}
	})
	t.Run("unregistered action: unknown_action", func(t *testing.T) {
		h := newConnHarness(t, WithDenialLimit(100))
		c := h.dialClient(t, "", false)
		for _, m := range []string{`{"action":"echo","id":"1"}`, `{"action":"Echo","id":"2"}`, `{"action":"echo","id":"3","x":null,"payload":null}`} {
			c.sendText(m)
			c.expectError("unknown_action", m[strings.Index(m, `"id":"`)+6:][:1])
		}
	})
	t.Run("channel rule, RequireScope or Policy: forbidden", func(t *testing.T) {
		h := newConnHarness(t, WithDenialLimit(100), WithAction[sayPayload]("admin.note", ChannelFree(), RequireScope("admin:write")))
		c := h.dialClient(t, "orders:read", false)
		for _, m := range []string{
			`{"action":"publish","channel":"tenant:acme:orders","id":"1","payload":{"body":"x"}}`,
			`{"action":"admin.note","id":"2","payload":{"text":"x"}}`,
			`{"action":"say","id":"3","payload":{"text":"deny"}}`,
		} {
			c.sendText(m)
			c.expectError("forbidden", m[strings.Index(m, `"id":"`)+6:][:1])
		}
	})
	t.Run("over the message rate: rate_limited", func(t *testing.T) {
		frozen := time.Now()
		h := newConnHarness(t, WithMessageRate(1, 1), WithClock(func() time.Time { return frozen }))
		c := h.dialClient(t, "", false)
		c.marker("1")
		c.sendText(`{"action":"marker","id":"2","payload":{"n":1}}`)
		c.expectError("rate_limited", "2")
	})
	t.Run("closes: 1009 message too big, 1007, 1008, 1013 flood, 1001", func(t *testing.T) {
		h := newConnHarness(t, WithMaxMessageSize(64))
		c := h.dialClient(t, "", false)
		c.sendText(`{"action":"marker","payload":{"n":1},"pad":"` + strings.Repeat("x", 100) + `"}`)
		if code, reason := closeFrame(t, c.ws); code != CloseTooBig || reason != "message too big" {
			t.Fatalf("oversize: %d %q", code, reason)
		}
		c = newConnHarness(t).dialClient(t, "", false)
		c.sendText("{\"action\":\"marker\",\"id\":\"\xff\"}")
		c.expectClose(CloseInvalidData)
		c = newConnHarness(t, WithDenialLimit(1)).dialClient(t, "", false)
		c.sendText(`{"action":"echo"}`)
		c.expectError("unknown_action", "")
		c.expectClose(ClosePolicy)
		frozen := time.Now()
		c = newConnHarness(t, WithMessageRate(1, 1), WithDenialLimit(1), WithClock(func() time.Time { return frozen })).dialClient(t, "", false)
		c.marker("1")
		c.sendText(`{"action":"marker","payload":{"n":1}}`)
		c.expectClose(CloseTryAgainLater)
		h = newConnHarness(t)
		c = h.dialClient(t, "", false)
		c.marker("1")
		h.g.Close()
		c.expectClose(CloseGoingAway)
	})
}

// TestREADME_NginxSnippetMatchesShippedConfig: the nginx lines README's
// "Behind a proxy" shows are the tested deploy/nginx/wssec.conf's own
// (comments aside), and the snippet leaves out none of the headers the
// file sets: a user who copies the snippet with WithClientIPHeader
// ("X-Real-IP") would otherwise run without the header it reads.
func TestREADME_NginxSnippetMatchesShippedConfig(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile("deploy/nginx/wssec.conf")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Behind a proxy")
	if !ok {
		t.Fatal(`README has no "Behind a proxy" section`)
	}
	_, rest, ok = strings.Cut(rest, "```nginx\n")
	if !ok {
		t.Fatal(`"Behind a proxy" has no nginx block`)
	}
	block, _, _ := strings.Cut(rest, "```")
	directives := func(text string) []string {
		var out []string
		for line := range strings.Lines(text) {
			line, _, _ = strings.Cut(line, "#")
			if line = strings.Join(strings.Fields(line), " "); line != "" {
				out = append(out, line)
			}
		}
		return out
	}
	shipped := directives(string(conf))
	shown := directives(block)
	if len(shown) < 5 {
		t.Fatalf("the README's nginx block has only %d directives", len(shown))
	}
	for _, d := range shown {
		if !slices.Contains(shipped, d) {
			t.Errorf("README shows %q, which deploy/nginx/wssec.conf does not have", d)
		}
	}
	for _, d := range shipped {
		if strings.HasPrefix(d, "proxy_set_header ") && !slices.Contains(shown, d) {
			t.Errorf("README's nginx block leaves out %q", d)
		}
	}
}
