// Command echo is the smallest useful wssec server: a secured echo socket
// and a page that talks to it.
//
//	go run ./examples/echo            # then open http://127.0.0.1:8080
//
// It signs short-lived development tokens with a key generated at start
// (POST /token), so nothing needs configuring. Plain ws:// is accepted only
// because it listens on a loopback address.
//
// Behind a TLS-terminating proxy on the same machine (deploy/nginx or
// deploy/haproxy), pass -trusted-proxy 127.0.0.1: the proxy's
// X-Forwarded-For and X-Forwarded-Proto are then believed, and a
// handshake that reached the proxy in clear text is refused with 426.
package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/wssec/wssec"
)

//go:embed index.html
var page []byte

// say is the payload of the "say" action: at most 200 characters.
type say struct {
	Text string `json:"text" validate:"required,max=200"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (plain ws:// only on loopback)")
	proxy := flag.String("trusted-proxy", "", "the address or CIDR of a TLS-terminating proxy in front (then wss:// only, through the proxy)")
	flag.Parse()
	var proxies []string
	if *proxy != "" {
		proxies = strings.Split(*proxy, ",")
	}
	if err := run(*addr, proxies); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, proxies []string) error {
	if !isLoopback(addr) {
		return errors.New("echo serves plain HTTP: listen on a loopback address, or see examples/chat for TLS")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	g, mux, err := newServer(key, slog.New(slog.NewTextHandler(os.Stderr, nil)), proxies...)
	if err != nil {
		return err
	}

	srv := wssec.HardenServer(&http.Server{Addr: addr, Handler: mux})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("echo: serving http://%s (Ctrl-C to stop)\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		g.Close()
		return err
	case <-ctx.Done():
	}
	// Close the sockets with 1001 first: Shutdown does not wait for
	// hijacked connections.
	g.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// newServer builds the Guard and the routes. Without proxies plain ws://
// is allowed: the caller listens on loopback only. With proxies (the
// addresses of a TLS-terminating proxy in front) their forwarding headers
// are believed and the transport must have been TLS at the proxy.
func newServer(key []byte, logger *slog.Logger, proxies ...string) (*wssec.Guard, *http.ServeMux, error) {
	opts := []wssec.Option{
		wssec.WithHMACKey(key),
		wssec.WithAction[say]("say", wssec.ChannelFree()),
		wssec.WithLogger(logger),
	}
	if len(proxies) > 0 {
		opts = append(opts, wssec.WithTrustedProxies(proxies...))
	} else {
		opts = append(opts, wssec.WithInsecureTransport())
	}
	g, err := wssec.New(opts...)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(page)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		tok, err := devToken(key, "visitor")
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]string{"token": tok})
	})
	mux.Handle("GET /ws", g.Handler(func(ctx context.Context, c *wssec.Conn) {
		for {
			m, err := c.ReadMessage(ctx)
			if err != nil {
				return
			}
			if s, ok := wssec.DataAs[say](m); ok {
				c.Send(ctx, map[string]any{"action": "echo", "id": m.ID, "payload": map[string]string{"text": s.Text}})
			}
		}
	}))
	return g, mux, nil
}

// devToken signs a 5-minute token for sub. A real service gets tokens
// from its identity provider and verifies them with wssec.WithJWKS.
func devToken(key []byte, sub string) (string, error) {
	now := time.Now()
	t, err := jwt.NewBuilder().Subject(sub).IssuedAt(now).Expiration(now.Add(5 * time.Minute)).Build()
	if err != nil {
		return "", err
	}
	b, err := jwt.Sign(t, jwt.WithKey(jwa.HS256(), key))
	return string(b), err
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
