package wssec

import (
	"bufio"
	"context"
	"fmt"
	"github.com/gorilla/websocket"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBadInput_AbsurdHeaders: headers of absurd count or size get a clear
// refusal, never a panic or an upgrade, and never an echo of the token.
func TestBadInput_AbsurdHeaders(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithHandshakeRate(1000, 1000))
	good := mint(t, claims{})
	huge := strings.Repeat("A", 200<<10)
	cases := []struct {
		name   string
		h      func() http.Header
		status int
		reason string
	}{
		{"500 Origin headers", func() http.Header {
			h := f.headers(good)
			for i := 0; i < 500; i++ {
				h.Add("Origin", fmt.Sprintf("https://o%d.example", i))
			}
			return h
		}, 403, "origin_not_allowed"},
		{"200 KiB Origin", func() http.Header {
			h := f.headers(good)
			h.Set("Origin", "https://"+huge+".example")
			return h
		}, 403, "origin_not_allowed"},
		{"300 Authorization headers", func() http.Header {
			h := f.headers("")
			for i := 0; i < 300; i++ {
				h.Add("Authorization", "Bearer "+good)
			}
			return h
		}, 401, "token_malformed"},
		{"200 KiB bearer token", func() http.Header { return f.headers(huge + "." + huge + "." + huge) }, 401, "token_too_large"},
		{"200 KiB of subprotocols", func() http.Header {
			h := f.headers("")
			h.Set("Sec-WebSocket-Protocol", strings.Repeat("x,", 100<<10))
			return h
		}, 401, "token_missing"},
		{"1000 X-Forwarded-For hops from an untrusted peer", func() http.Header {
			h := f.headers(good)
			h.Set("X-Forwarded-For", strings.Repeat("1.2.3.4, ", 1000))
			return h
		}, 101, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := f.try(tc.h())
			if a.status != tc.status {
				t.Fatalf("status %d, want %d (%v)", a.status, tc.status, a.err)
			}
			if tc.reason != "" {
				if e, ok := f.events.last(EventHandshakeRefused); !ok || e.Reason != tc.reason {
					t.Fatalf("last refusal %+v, want reason %s", e, tc.reason)
				}
			}
			if strings.Contains(a.body, good) || strings.Contains(f.logs.String(), good) {
				t.Fatal("the token was echoed")
			}
			if len(f.logs.String()) > 1<<20 {
				t.Fatal("an absurd header was logged whole")
			}
		})
	}
}

// TestBadInput_MalformedForwardedFromTrustedProxy: a trusted proxy's
// garbage in the configured header is refused with 400 (fail closed),
// never guessed at; the same garbage in a header that is not the
// configured one is never read at all.
func TestBadInput_MalformedForwardedFromTrustedProxy(t *testing.T) {
	t.Run("Forwarded not configured: ignored", func(t *testing.T) {
		f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithTrustedProxies("127.0.0.1/32"))
		h := f.headers(mint(t, claims{}))
		h.Set("Forwarded", `for="[::1`)
		wantAccepted(t, f, f.try(h))
	})
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithTrustedProxies("127.0.0.1/32"), WithClientIPHeader("Forwarded"))
	for _, v := range []string{`for="[::1`, `for=unknown`, `for=_hidden`, `for=1.2.3.4;for=5.6.7.8`, strings.Repeat("for=1.2.3.4,", 100)} {
		h := f.headers(mint(t, claims{}))
		h.Set("Forwarded", v)
		if a := f.try(h); a.status != http.StatusBadRequest {
			t.Errorf("Forwarded %.40q: status %d, want 400", v, a.status)
		}
	}
	if !f.events.has(EventHandshakeRefused, "forwarded_malformed") {
		t.Fatal("no forwarded_malformed event")
	}
}

// TestHardenServer_OversizedHeaders: behind HardenServer, a request whose
// headers exceed 16 KiB is refused by net/http (431) before any handler.
func TestHardenServer_OversizedHeaders(t *testing.T) {
	g, err := New(WithHMACKey(testKey), WithInsecureTransport(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ran := false
	srv := httptest.NewUnstartedServer(g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true })))
	HardenServer(srv.Config)
	srv.Start()
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 64<<10))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	if ran {
		t.Fatal("the handler ran")
	}
}

func TestWithSameOrigin_BesidePatterns(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(), WithOrigins("https://app.example.com"), WithSameOrigin())
	tok := mint(t, claims{})
	if a := f.try(f.headers(tok)); a.status != http.StatusSwitchingProtocols {
		t.Fatalf("same origin with WithSameOrigin: %d, want 101", a.status)
	}
	h := f.headers(tok)
	h.Set("Origin", "https://app.example.com")
	if a := f.try(h); a.status != http.StatusSwitchingProtocols {
		t.Fatalf("listed origin: %d, want 101", a.status)
	}
	h.Set("Origin", "https://evil.example.com")
	if a := f.try(h); a.status != http.StatusForbidden {
		t.Fatalf("foreign origin: %d, want 403", a.status)
	}
}

func TestConn_Deny_CountsTowardTheLimit(t *testing.T) {
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		for {
			m, err := c.ReadMessage(ctx)
			if err != nil {
				return
			}
			c.Deny(m, "forbidden", "not today")
		}
	}, WithHMACKey(testKey), WithInsecureTransport(), WithDenialLimit(2), WithAction[struct{}]("poke", ChannelFree()))
	ws, _, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatal(err)
	}
	ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"poke","id":"1"}`))
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil || string(b) != `{"action":"error","id":"1","error":{"code":"forbidden","message":"not today"}}` {
		t.Fatalf("first denial: %s %v", b, err)
	}
	ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"poke","id":"2"}`))
	if code := closeCode(t, ws); code != ClosePolicy {
		t.Fatalf("close after the denial limit: %d, want 1008", code)
	}
	if !f.events.has(EventMessageRefused, "app_forbidden") {
		t.Fatal("no app_forbidden event")
	}
}
