package wssec_test

import (
	"context"
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

// sessionExampleKey signs the tokens of the session examples.
var sessionExampleKey = []byte("session-example-secret-32-bytes!")

// sessionExampleToken mints a token for sub, issued now (iat is required
// by default), valid for five minutes.
func sessionExampleToken(sub string) string {
	now := time.Now()
	t, _ := jwt.NewBuilder().Subject(sub).IssuedAt(now).Expiration(now.Add(5 * time.Minute)).Build()
	b, _ := jwt.Sign(t, jwt.WithKey(jwa.HS256(), sessionExampleKey))
	return string(b)
}

// sessionExampleServer serves g on loopback and returns a dial function.
func sessionExampleServer(g *wssec.Guard) (dial func(sub string) (*websocket.Conn, int), stop func()) {
	ready := make(chan struct{}, 8)
	srv := httptest.NewServer(g.Handler(func(ctx context.Context, c *wssec.Conn) {
		ready <- struct{}{} // the Guard holds the socket now
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				return
			}
		}
	}))
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	dial = func(sub string) (*websocket.Conn, int) {
		h := http.Header{"Origin": {srv.URL}, "Authorization": {"Bearer " + sessionExampleToken(sub)}}
		c, resp, err := websocket.DefaultDialer.Dial(url, h)
		if err != nil {
			return nil, resp.StatusCode
		}
		<-ready
		return c, resp.StatusCode
	}
	return dial, func() { g.Close(); srv.Close() }
}

// closeOf reads until the server closes c and prints the close frame.
func closeOf(c *websocket.Conn) string {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return fmt.Sprintf("%d %q", ce.Code, ce.Text)
			}
			return err.Error()
		}
	}
}

// A "log out other devices" button: Disconnect closes every socket of
// the subject (on every instance, with a shared Store) without revoking a
// token. Pair it with Revoke when the old tokens must stop working too.
func ExampleGuard_Disconnect() {
	g, err := wssec.New(
		wssec.WithHMACKey(sessionExampleKey),
		wssec.WithInsecureTransport(), // plain HTTP on loopback, for the example only
		wssec.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	dial, stop := sessionExampleServer(g)
	defer stop()

	phone, _ := dial("alice")
	defer phone.Close()
	if err := g.Disconnect(context.Background(), "alice", "signed out from another device"); err != nil {
		fmt.Println(err)
	}
	fmt.Println("phone:", closeOf(phone))
	// Nothing was revoked: alice can connect again.
	again, status := dial("alice")
	if again != nil {
		again.Close()
	}
	fmt.Println("reconnect:", status)
	// Output:
	// phone: 1008 "signed out from another device"
	// reconnect: 101
}

// A single-session application: one socket per subject, and a new login
// replaces the old session instead of being refused. The replaced socket
// is closed with 1008 and the reason "session replaced", which a client
// should take as "do not reconnect on your own".
func ExampleWithEvictOldest() {
	g, err := wssec.New(
		wssec.WithHMACKey(sessionExampleKey),
		wssec.WithConnLimits(32, 1, 10_000), // one socket per subject
		wssec.WithEvictOldest(),
		wssec.WithInsecureTransport(), // plain HTTP on loopback, for the example only
		wssec.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	dial, stop := sessionExampleServer(g)
	defer stop()

	laptop, _ := dial("alice")
	defer laptop.Close()
	phone, status := dial("alice")
	if phone != nil {
		defer phone.Close()
	}
	fmt.Println("phone:", status)
	fmt.Println("laptop:", closeOf(laptop))
	// Output:
	// phone: 101
	// laptop: 1008 "session replaced"
}
