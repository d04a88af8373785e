// Command cluster runs two instances of one secured WebSocket service on two
// ports, sharing one Redis through redisstore, as two replicas behind a load
// balancer would:
//
//	redis-server --port 6379 &          # or any Redis, Valkey or Redis Cluster
//	go run ./examples/cluster -redis 127.0.0.1:6379
//
// Then, with any WebSocket client (here websocat), see one limit enforced
// across both instances:
//
//	TOKEN=$(curl -s -X POST 'http://127.0.0.1:8081/token?sub=alice')
//	websocat -H "Authorization: Bearer $TOKEN" -H 'Origin: http://127.0.0.1:8081' ws://127.0.0.1:8081/ws &
//	websocat -H "Authorization: Bearer $TOKEN" -H 'Origin: http://127.0.0.1:8081' ws://127.0.0.1:8082/ws &
//	websocat -H "Authorization: Bearer $TOKEN" -H 'Origin: http://127.0.0.1:8081' ws://127.0.0.1:8082/ws   # 429: alice holds 2 sockets
//	curl -X POST 'http://127.0.0.1:8082/revoke?sub=alice'   # both sockets close with 1008, wherever they are
//
// Both instances verify the same development tokens (a key generated at
// start, shared in process; real replicas share a JWKS URL). Plain ws:// is
// accepted only on loopback addresses.
package main

import (
	"context"
	"crypto/rand"
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
	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec"
	"github.com/wssec/wssec/redisstore"
)

func main() {
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address shared by the instances")
	addrs := flag.String("addrs", "127.0.0.1:8081,127.0.0.1:8082", "comma-separated listen addresses, one instance each (loopback only)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ready := func(urls []string) {
		for i, u := range urls {
			fmt.Printf("cluster: instance %d serving %s\n", i+1, u)
		}
	}
	if err := run(ctx, *redisAddr, strings.Split(*addrs, ","), logger, ready); err != nil {
		log.Fatal(err)
	}
}

// run serves one instance per address until ctx ends, then closes every
// socket with 1001 and shuts each instance down. ready, if not nil,
// receives the instances' base URLs once they accept connections.
func run(ctx context.Context, redisAddr string, addrs []string, logger *slog.Logger, ready func(urls []string)) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	var insts []*instance
	defer func() {
		for _, in := range insts {
			in.close()
		}
	}()
	errc := make(chan error, len(addrs))
	var urls []string
	for i, addr := range addrs {
		if !isLoopback(addr) {
			return fmt.Errorf("%s: this example serves plain HTTP; listen on a loopback address", addr)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		// Each instance has its own Redis client, as separate processes
		// would. ContextTimeoutEnabled lets the store's per-call timeout
		// reach the socket.
		client := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
		in, err := newInstance(key, client, logger.With("instance", i+1))
		if err != nil {
			ln.Close()
			return err
		}
		insts = append(insts, in)
		in.srv = wssec.HardenServer(&http.Server{Handler: in.mux})
		urls = append(urls, "http://"+ln.Addr().String())
		go func() { errc <- in.srv.Serve(ln) }()
	}
	if ready != nil {
		ready(urls)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return nil
	}
}

// instance is one replica: a Guard on a redisstore, and its routes.
type instance struct {
	g      *wssec.Guard
	store  *redisstore.Store
	client *redis.Client
	mux    *http.ServeMux
	srv    *http.Server
}

func newInstance(key []byte, client *redis.Client, logger *slog.Logger) (*instance, error) {
	store, err := redisstore.New(client)
	if err != nil {
		client.Close()
		return nil, err
	}
	g, err := wssec.New(
		wssec.WithHMACKey(key),
		wssec.WithStore(store),
		wssec.WithConnLimits(32, 2, 10_000), // at most 2 sockets per subject, across every instance
		wssec.WithLogger(logger),
		wssec.WithInsecureTransport(),
		wssec.WithAllowMissingOrigin(), // command-line clients send none
		wssec.WithOrigins("http://127.0.0.1:8081", "http://127.0.0.1:8082"),
	)
	if err != nil {
		store.Close()
		client.Close()
		return nil, err
	}
	in := &instance{g: g, store: store, client: client, mux: http.NewServeMux()}
	in.mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		sub := r.URL.Query().Get("sub")
		if sub == "" || len(sub) > 64 {
			http.Error(w, "sub required", http.StatusBadRequest)
			return
		}
		tok, err := devToken(key, sub)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, tok)
	})
	// A real service puts this behind its own admin authentication.
	in.mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		if err := g.Revoke(r.Context(), r.URL.Query().Get("sub")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "revoked on every instance")
	})
	in.mux.Handle("GET /ws", g.Handler(func(ctx context.Context, c *wssec.Conn) {
		for {
			m, err := c.ReadMessage(ctx)
			if err != nil {
				return
			}
			c.Send(ctx, map[string]any{"action": "echo", "id": m.ID})
		}
	}))
	return in, nil
}

// close shuts the instance down: sockets closed with 1001, then the
// server, the store and the client.
func (in *instance) close() {
	in.g.Close()
	if in.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in.srv.Shutdown(ctx)
	}
	in.store.Close()
	in.client.Close()
}

// devToken signs a 5-minute token for sub.
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
