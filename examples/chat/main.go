// Command chat is the wssec demo a newcomer runs first: a multi-tenant chat
// in the browser, with a security panel that tries the classic WebSocket
// attacks from the page and shows each one refused.
//
//	go run ./examples/chat              # then open http://127.0.0.1:8080
//
// Log in with any user and tenant (the built-in development issuer signs
// a 5-minute token for whoever asks: it has no passwords, so it exists only
// for the demo), join rooms of your tenant and chat. To verify tokens from
// a real identity provider instead, pass its issuer URL as -oidc-issuer
// with -audience (the keys are found by OpenID discovery), or -jwks-url
// (with -issuer and -audience); -tenant-claim names the claim that holds
// the tenant when it is not "tenant". The login endpoint is then disabled
// and the page accepts a pasted token.
//
// With -redis host:port, quotas, rate state, revocations, bans and tickets
// live in that Redis, so several chat instances enforce one limit.
//
// Plain ws:// is accepted only when -addr is a loopback address; on any
// other address the server refuses to start without -tls-cert and
// -tls-key. Behind a TLS-terminating proxy on the same machine (the
// configurations in deploy/), pass -trusted-proxy 127.0.0.1: the proxy's
// X-Forwarded-For and X-Forwarded-Proto are then believed and a handshake
// that reached the proxy in clear text gets 426.
//
// Endpoints: GET / (the page), POST /login, GET /ws (the secured socket),
// GET /healthz, GET /metrics (counters of security events).
package main

import (
	"context"
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

	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec"
	"github.com/wssec/wssec/redisstore"
)

// flags is what the command line sets.
type flags struct {
	addr        string
	origins     string
	jwksURL     string
	oidcIssuer  string
	issuer      string
	audience    string
	tenantClaim string
	tlsCert     string
	tlsKey      string
	redis       string
	proxies     string
}

func main() {
	var f flags
	flag.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address; plain ws:// only on a loopback address, TLS otherwise")
	flag.StringVar(&f.origins, "origin", "", "extra allowed browser origins, comma-separated (e.g. https://chat.example.com)")
	flag.StringVar(&f.jwksURL, "jwks-url", "", "verify tokens with this JWKS (https, or http on loopback) instead of the built-in development issuer; disables /login")
	flag.StringVar(&f.oidcIssuer, "oidc-issuer", "", "verify tokens from this OpenID Provider (its issuer URL; keys by discovery) instead of the built-in development issuer; needs -audience; disables /login")
	flag.StringVar(&f.issuer, "issuer", "", "required iss of external tokens (with -jwks-url)")
	flag.StringVar(&f.audience, "audience", "", "required aud of external tokens (with -jwks-url or -oidc-issuer)")
	flag.StringVar(&f.tenantClaim, "tenant-claim", "", `JSON pointer to the tenant claim of external tokens, e.g. /tid (default: the claim "tenant")`)
	flag.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	flag.StringVar(&f.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	flag.StringVar(&f.redis, "redis", "", "share quotas, rates, revocations, bans and tickets through the Redis at this address (host:port); the chat rooms themselves stay in this process")
	flag.StringVar(&f.proxies, "trusted-proxy", "", "addresses or CIDRs of TLS-terminating proxies in front, comma-separated (e.g. 127.0.0.1 for deploy/nginx on this machine)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ready := func(base string) { fmt.Printf("chat: open %s in a browser (Ctrl-C to stop)\n", base) }
	if err := run(ctx, f, logger, ready); err != nil {
		log.Fatal(err)
	}
}

// run listens, serves until ctx ends (SIGINT or SIGTERM in main), then
// closes every socket with 1001 and shuts the HTTP server down. ready, if
// not nil, receives the base URL once the server accepts connections.
func run(ctx context.Context, f flags, logger *slog.Logger, ready func(baseURL string)) error {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("chat: -tls-cert and -tls-key go together")
	}
	useTLS := f.tlsCert != ""
	// Check the address before binding it: a non-loopback listener without
	// TLS must never open, not even briefly.
	if !useTLS && !isLoopbackAddr(f.addr) {
		return fmt.Errorf("chat: %s is not a loopback address: serving it needs -tls-cert and -tls-key (plain ws:// would send tokens in clear text)", f.addr)
	}
	var store wssec.Store
	if f.redis != "" {
		client := redis.NewClient(&redis.Options{Addr: f.redis})
		defer client.Close()
		rs, err := redisstore.New(client)
		if err != nil {
			return err
		}
		defer rs.Close()
		store = rs
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	a, err := newApp(config{
		Store:       store,
		Addr:        ln.Addr().String(),
		Origins:     splitList(f.origins),
		JWKSURL:     f.jwksURL,
		OIDCIssuer:  f.oidcIssuer,
		TenantClaim: f.tenantClaim,
		Issuer:      f.issuer,
		Audience:    f.audience,
		TLS:         useTLS,
		Logger:      logger,

		TrustedProxies: splitList(f.proxies),
	})
	if err != nil {
		ln.Close()
		return err
	}
	srv := wssec.HardenServer(&http.Server{
		Handler:  a.Handler(),
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}) // TLSConfig: wssec.TLSProfile(), set by HardenServer
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	logger.Info("chat: serving", "url", base)

	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	if ready != nil {
		ready(base)
	}
	select {
	case err := <-errc:
		a.Close()
		return err
	case <-ctx.Done():
	}
	// Close the sockets first, with 1001 (going away): Shutdown neither
	// waits for nor closes hijacked connections.
	a.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// splitList splits a comma-separated flag, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
