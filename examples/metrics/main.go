// Command metrics is a secured echo socket that exports its security
// events as Prometheus metrics.
//
//	go run ./examples/metrics          # listens on 127.0.0.1:8081
//	curl -s -X POST http://127.0.0.1:8081/token
//	curl -s http://127.0.0.1:8081/metrics | grep ^wssec_
//
// Every handshake, refused message, close, ban and revocation is counted
// by prommetrics, with labels that a client cannot inflate (see the
// prommetrics package documentation for the metric names).
//
// It signs short-lived development tokens with a key generated at start
// (POST /token), so nothing needs configuring. Plain ws:// is accepted only
// because it listens on a loopback address. A production service would
// serve /metrics on a separate, internal listener rather than next to its
// public socket.
package main

import (
	"context"
	"crypto/rand"
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
	"syscall"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wssec/wssec"
	"github.com/wssec/wssec/prommetrics"
)

// say is the payload of the "say" action: at most 200 characters.
type say struct {
	Text string `json:"text" validate:"required,max=200"`
}

const usage = `wssec metrics example

POST /token    a 5-minute development token: {"token":"…"}
GET  /ws       the echo socket: offer the subprotocols "wssec.v1" and
               "bearer.<token>", send {"action":"say","id":"1","payload":{"text":"hi"}}
GET  /metrics  Prometheus metrics
`

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address (plain ws:// only on loopback)")
	flag.Parse()
	if err := run(*addr); err != nil {
		log.Fatal(err)
	}
}

func run(addr string) error {
	if !isLoopback(addr) {
		return errors.New("metrics serves plain HTTP: listen on a loopback address")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	g, handler, err := newServer(key, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}

	srv := wssec.HardenServer(&http.Server{Addr: addr, Handler: handler})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		g.Close()
		return err
	}
	fmt.Printf("metrics: serving http://%s (metrics at /metrics; Ctrl-C to stop)\n", ln.Addr())

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

// newServer builds the metrics registry, the Guard that reports to it, and
// the routes. Plain ws:// is allowed: the caller listens on loopback only.
func newServer(key []byte, logger *slog.Logger) (*wssec.Guard, http.Handler, error) {
	reg := prometheus.NewRegistry()
	obs, err := prommetrics.New(reg, prommetrics.WithActions("say"))
	if err != nil {
		return nil, nil, err
	}
	g, err := wssec.New(
		wssec.WithHMACKey(key),
		wssec.WithAction[say]("say", wssec.ChannelFree()),
		wssec.WithLogger(logger),
		wssec.WithObserver(obs),
		wssec.WithInsecureTransport(),
	)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, usage)
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
