package wssec_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec"
)

// A complete secured handler: registered actions with validated payloads,
// tenant channel rules, a policy, and a read loop that only ever sees
// messages that passed every guard. The client publishes once to its own
// tenant's channel, once to another tenant's, and once with a payload the
// policy refuses.
func ExampleGuard_Handler() {
	// Publish is the payload of the "publish" action: decoded strictly
	// (unknown or case-variant keys are refused) and validated.
	type Publish struct {
		Body string `json:"body" validate:"required,max=280"`
	}
	// Published is what the handler answers.
	type Published struct {
		Action  string `json:"action"`
		ID      string `json:"id"`
		Channel string `json:"channel"`
	}

	key := []byte("guard-handler-example-secret-32b") // 32 bytes; from a secret store in real code
	g, err := wssec.New(
		wssec.WithHMACKey(key),
		wssec.WithAction[Publish]("publish"),
		wssec.WithAction[struct{}]("subscribe"),
		// {tenant} must equal the token's tenant claim; subscribing needs
		// orders:read, publishing orders:write. Every other channel is denied.
		wssec.WithChannelRules(wssec.ChannelRule{
			Pattern: "tenant:{tenant}:orders",
			Read:    "orders:read",
			Write:   "orders:write",
		}),
		// The policy runs after the channel rules, on the decoded payload.
		// Its error is logged; the client only reads "forbidden".
		wssec.WithPolicy(func(_ context.Context, p *wssec.Principal, m *wssec.Message) error {
			if pub, ok := wssec.DataAs[Publish](m); ok && strings.Contains(pub.Body, "://") {
				return fmt.Errorf("%s posted a link", p.Subject)
			}
			return nil
		}),
		// The example's server is plain HTTP on loopback; production
		// endpoints are wss:// and leave this out.
		wssec.WithInsecureTransport(),
		// Security events go to the service's logger; discarded here.
		wssec.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	srv := httptest.NewServer(g.Handler(func(ctx context.Context, c *wssec.Conn) {
		for {
			m, err := c.ReadMessage(ctx)
			if err != nil {
				return // closed: by the client, a guard, or g.Close
			}
			switch m.Action {
			case "publish":
				pub, _ := wssec.DataAs[Publish](m)
				_ = pub.Body // fan out to the channel's subscribers here
				_ = c.Send(ctx, Published{Action: "published", ID: m.ID, Channel: m.Channel})
			case "subscribe":
				// register c for m.Channel here
			}
		}
	}))
	defer srv.Close()
	defer g.Close() // closes live sockets (1001) and waits for their goroutines

	// The client: alice of tenant acme may read and write orders.
	now := time.Now()
	tok, _ := jwt.NewBuilder().Subject("alice").IssuedAt(now).Expiration(now.Add(5*time.Minute)).
		Claim("tenant", "acme").Claim("scope", "orders:read orders:write").Build()
	signed, _ := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), key))
	h := http.Header{}
	h.Set("Origin", srv.URL) // a browser on the same origin
	h.Set("Authorization", "Bearer "+string(signed))
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), h)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	resp.Body.Close()
	defer ws.Close()

	for _, msg := range []string{
		`{"action":"publish","channel":"tenant:acme:orders","id":"1","payload":{"body":"order 42 shipped"}}`,
		`{"action":"publish","channel":"tenant:globex:orders","id":"2","payload":{"body":"hello"}}`,
		`{"action":"publish","channel":"tenant:acme:orders","id":"3","payload":{"body":"see https://evil.example"}}`,
	} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			fmt.Println("write:", err)
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, answer, err := ws.ReadMessage()
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		fmt.Println(string(answer))
	}

	// A clean close from the client ends the handler's read loop.
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	fmt.Println("closed:", errors.As(err, &ce))

	// Output:
	// {"action":"published","id":"1","channel":"tenant:acme:orders"}
	// {"action":"error","id":"2","error":{"code":"forbidden","message":"forbidden"}}
	// {"action":"error","id":"3","error":{"code":"forbidden","message":"forbidden"}}
	// closed: true
}

// Actions are channel-bound unless registered ChannelFree: a "publish"
// without a channel never reaches the handler, so no message slips past
// the channel rules by leaving its channel out. A channel-free action is
// authorized by its own RequireScope scopes and the Policy.
func ExampleChannelFree() {
	type Publish struct {
		Body string `json:"body" validate:"required"`
	}
	key := []byte("channel-free-example-secret--32b")
	g, err := wssec.New(
		wssec.WithHMACKey(key),
		wssec.WithAction[Publish]("publish"),                      // needs a channel
		wssec.WithAction[struct{}]("whoami", wssec.ChannelFree()), // about the caller, not a channel
		wssec.WithAction[struct{}]("admin.purge", wssec.ChannelFree(), wssec.RequireScope("admin:write")),
		wssec.WithChannelRules(wssec.ChannelRule{Pattern: "tenant:{tenant}:*", Read: "chat:read", Write: "chat:write"}),
		wssec.WithInsecureTransport(), // loopback example only
		wssec.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(g.Handler(func(ctx context.Context, c *wssec.Conn) {
		for {
			m, err := c.ReadMessage(ctx)
			if err != nil {
				return
			}
			_ = c.Send(ctx, map[string]string{"action": "ok", "id": m.ID, "subject": c.Principal().Subject})
		}
	}))
	defer srv.Close()
	defer g.Close()

	now := time.Now()
	tok, _ := jwt.NewBuilder().Subject("alice").IssuedAt(now).Expiration(now.Add(5*time.Minute)).
		Claim("tenant", "acme").Claim("scope", "chat:read chat:write").Build()
	signed, _ := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), key))
	h := http.Header{}
	h.Set("Origin", srv.URL)
	h.Set("Authorization", "Bearer "+string(signed))
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), h)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	resp.Body.Close()
	defer ws.Close()
	for _, msg := range []string{
		`{"action":"publish","id":"1","payload":{"body":"hi"}}`,
		`{"action":"whoami","id":"2"}`,
		`{"action":"admin.purge","id":"3"}`,
	} {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(msg))
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, answer, err := ws.ReadMessage()
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		fmt.Println(string(answer))
	}
	// Output:
	// {"action":"error","id":"1","error":{"code":"invalid_message","message":"channel required"}}
	// {"action":"ok","id":"2","subject":"alice"}
	// {"action":"error","id":"3","error":{"code":"forbidden","message":"forbidden"}}
}
