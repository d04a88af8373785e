package wssec_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec"
	"golang.org/x/time/rate"
)

// The examples start a local server and dial it with gorilla/websocket,
// printing the status the handshake got: 101 when it was upgraded.

// exampleKey is the HMAC secret the examples sign tokens with. Use at least
// 32 random bytes from a secret store in real code.
var exampleKey = []byte("example-secret-example-secret-32")

// exampleToken signs a five-minute HS256 token for sub.
func exampleToken(sub string) string {
	now := time.Now()
	tok, err := jwt.NewBuilder().Subject(sub).IssuedAt(now).Expiration(now.Add(5 * time.Minute)).Build()
	if err != nil {
		panic(err)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), exampleKey))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// quietLogger drops the Guard's security events, which the examples do
// not print. A real service keeps them: they are its audit trail.
func quietLogger() wssec.Option { return wssec.WithLogger(slog.New(slog.DiscardHandler)) }

// serve starts a test server for g that echoes every accepted message. It
// returns the ws:// URL and a function that stops everything.
func serve(g *wssec.Guard) (url, origin string, stop func()) {
	srv := httptest.NewServer(g.Handler(func(ctx context.Context, c *wssec.Conn) {
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				return
			}
		}
	}))
	return "ws" + strings.TrimPrefix(srv.URL, "http"), srv.URL, func() {
		g.Close()
		srv.Close()
	}
}

// dial opens a socket with headers h and returns the status (101 when
// upgraded) and the open connection, if any.
func dial(url string, h http.Header) (int, *websocket.Conn) {
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	if err != nil {
		return status, nil
	}
	return status, c
}

// headers is an Origin and, if tok is not empty, a bearer token.
func headers(origin, tok string) http.Header {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return h
}

func ExampleNew() {
	g, err := wssec.New(
		wssec.WithHMACKey(exampleKey),
		wssec.WithOrigins("https://app.example.com"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	mux := http.NewServeMux()
	mux.Handle("/ws", g.Handler(func(ctx context.Context, c *wssec.Conn) {
		for {
			m, err := c.ReadMessage(ctx)
			if err != nil {
				return // closed, refused too often, or ctx done
			}
			_ = c.Send(ctx, map[string]string{"action": "echo", "id": m.ID})
		}
	}))
	_ = &http.Server{Addr: ":8443", Handler: mux} // then ListenAndServeTLS
	fmt.Println("guard ready")

	// A configuration that cannot authenticate anyone is an error, not a
	// Guard that lets everyone in.
	_, err = wssec.New()
	fmt.Println(errors.Is(err, wssec.ErrConfig))
	// Output:
	// guard ready
	// true
}

func ExampleWithOrigins() {
	g, err := wssec.New(
		wssec.WithHMACKey(exampleKey),
		wssec.WithOrigins("https://app.example.com", "https://*.example.com"),
		wssec.WithInsecureTransport(), // the test server is plain HTTP
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	url, _, stop := serve(g)
	defer stop()

	tok := exampleToken("alice")
	for _, origin := range []string{
		"https://app.example.com",
		"https://a.example.com",
		"https://evil.example.com.attacker.net", // not a subdomain
		"https://notexample.com",                // no dot boundary
		"null",                                  // sandboxed frames, file:// pages
		"",                                      // no Origin at all
	} {
		status, c := dial(url, headers(origin, tok))
		if c != nil {
			c.Close()
		}
		fmt.Printf("%q: %d\n", origin, status)
	}
	// Output:
	// "https://app.example.com": 101
	// "https://a.example.com": 101
	// "https://evil.example.com.attacker.net": 403
	// "https://notexample.com": 403
	// "null": 403
	// "": 403
}

// A wildcard must be a whole left-most label under a registrable-looking
// domain. Patterns that would admit any origin are refused by New, so the
// mistake shows at startup rather than as an open endpoint.
func ExampleWithOrigins_incorrect() {
	for _, p := range []string{"https://*", "h*", "*", "https://*.*.example.com", "https://app.example.com/"} {
		_, err := wssec.New(wssec.WithHMACKey(exampleKey), wssec.WithOrigins(p))
		fmt.Printf("%q refused: %v\n", p, errors.Is(err, wssec.ErrConfig))
	}
	// Output:
	// "https://*" refused: true
	// "h*" refused: true
	// "*" refused: true
	// "https://*.*.example.com" refused: true
	// "https://app.example.com/" refused: true
}

func ExampleWithTrustedProxies() {
	// The load balancer at 127.0.0.1 is trusted: its X-Forwarded-For names
	// the client, and its X-Forwarded-Proto says the client used TLS.
	g, err := wssec.New(
		wssec.WithHMACKey(exampleKey),
		wssec.WithTrustedProxies("127.0.0.1/32"),
		wssec.WithOrigins("https://app.example.com"),
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	clients := make(chan string, 1)
	srv := httptest.NewServer(g.Handler(func(ctx context.Context, c *wssec.Conn) {
		clients <- c.RemoteIP()
	}))
	defer srv.Close()
	defer g.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	h := headers("https://app.example.com", exampleToken("alice"))
	h.Set("X-Forwarded-For", "203.0.113.7")
	h.Set("X-Forwarded-Proto", "https")
	status, c := dial(url, h)
	if c != nil {
		c.Close()
	}
	fmt.Println(status, <-clients)

	// Without WithTrustedProxies the same headers are ignored: the request
	// is plain HTTP from 127.0.0.1, so TLS is missing.
	g2, err := wssec.New(wssec.WithHMACKey(exampleKey), wssec.WithOrigins("https://app.example.com"), quietLogger())
	if err != nil {
		fmt.Println(err)
		return
	}
	url2, _, stop := serve(g2)
	defer stop()
	status, _ = dial(url2, h)
	fmt.Println(status)
	// Output:
	// 101 203.0.113.7
	// 426
}

// fixedClock is a clock that moves only when told, for a deterministic
// example; a real Guard uses time.Now.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func ExampleWithHandshakeRate() {
	clock := &fixedClock{t: time.Now()}
	g, err := wssec.New(
		wssec.WithHMACKey(exampleKey),
		wssec.WithHandshakeRate(rate.Limit(1), 2), // per client IP: bursts of 2, then 1 a second
		wssec.WithClock(clock.Now),
		wssec.WithInsecureTransport(),
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	url, origin, stop := serve(g)
	defer stop()

	tok := exampleToken("alice")
	for i := 0; i < 3; i++ {
		c, resp, err := websocket.DefaultDialer.Dial(url, headers(origin, tok))
		if err == nil {
			c.Close()
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			fmt.Println(resp.StatusCode, "Retry-After:", ra)
		} else {
			fmt.Println(resp.StatusCode)
		}
	}
	clock.Advance(time.Second)
	status, c := dial(url, headers(origin, tok))
	if c != nil {
		c.Close()
	}
	fmt.Println(status)
	// Output:
	// 101
	// 101
	// 429 Retry-After: 1
	// 101
}

func ExampleWithConnLimits() {
	g, err := wssec.New(
		wssec.WithHMACKey(exampleKey),
		wssec.WithConnLimits(2, 1, 100), // 2 sockets per IP, 1 per subject, 100 in all
		wssec.WithInsecureTransport(),
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	url, origin, stop := serve(g)
	defer stop()

	var open []*websocket.Conn
	for _, sub := range []string{"alice", "alice", "bob", "carol"} {
		status, c := dial(url, headers(origin, exampleToken(sub)))
		if c != nil {
			open = append(open, c)
		}
		fmt.Println(sub, status)
	}
	for _, c := range open {
		c.Close()
	}
	// Output:
	// alice 101
	// alice 429
	// bob 101
	// carol 429
}

func ExampleWithHMACKey() {
	g, err := wssec.New(
		wssec.WithHMACKey(exampleKey), // at least 32 bytes
		wssec.WithInsecureTransport(),
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	url, origin, stop := serve(g)
	defer stop()

	status, c := dial(url, headers(origin, exampleToken("alice")))
	if c != nil {
		c.Close()
	}
	fmt.Println("signed token:", status)

	// Browsers cannot set Authorization on a WebSocket; they send the token
	// as a subprotocol beside the application's, and the server selects
	// the application's.
	d := websocket.Dialer{Subprotocols: []string{"wssec.v1", "bearer." + exampleToken("alice")}}
	c, resp, err := d.Dial(url, headers(origin, ""))
	if err == nil {
		fmt.Println("subprotocol token:", resp.StatusCode, c.Subprotocol())
		c.Close()
	}

	status, _ = dial(url, headers(origin, ""))
	fmt.Println("no token:", status)

	forged := exampleToken("alice")
	forged = forged[:len(forged)-4] + "AAAA" // tampered signature
	_, resp, _ = websocket.DefaultDialer.Dial(url, headers(origin, forged))
	fmt.Println("forged token:", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))

	_, err = wssec.New(wssec.WithHMACKey([]byte("too short")))
	fmt.Println("short key refused:", errors.Is(err, wssec.ErrConfig))
	// Output:
	// signed token: 101
	// subprotocol token: 101 wssec.v1
	// no token: 401
	// forged token: 401 Bearer error="invalid_token", error_description="The token signature is invalid."
	// short key refused: true
}

func ExampleWithInsecureTransport() {
	tok := exampleToken("alice")

	// By default plain ws:// is refused: tokens would cross the network in
	// clear text.
	g, err := wssec.New(wssec.WithHMACKey(exampleKey), quietLogger())
	if err != nil {
		fmt.Println(err)
		return
	}
	url, origin, stop := serve(g)
	status, _ := dial(url, headers(origin, tok))
	stop()
	fmt.Println("TLS required:", status)

	// For local development only; New logs a warning.
	g, err = wssec.New(wssec.WithHMACKey(exampleKey), wssec.WithInsecureTransport(), quietLogger())
	if err != nil {
		fmt.Println(err)
		return
	}
	url, origin, stop = serve(g)
	defer stop()
	status, c := dial(url, headers(origin, tok))
	if c != nil {
		c.Close()
	}
	fmt.Println("insecure allowed:", status)
	// Output:
	// TLS required: 426
	// insecure allowed: 101
}
