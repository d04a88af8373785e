package prommetrics_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wssec/wssec"
	"github.com/wssec/wssec/prommetrics"
)

// ExampleNew wires an Observer into a Guard and serves the registry, then
// shows a cross-site handshake being counted.
func ExampleNew() {
	reg := prometheus.NewRegistry() // not the global one: New registers only where told
	obs, err := prommetrics.New(reg, prommetrics.WithActions("chat.send"))
	if err != nil {
		log.Fatal(err)
	}
	g, err := wssec.New(
		wssec.WithOrigins("https://app.example.com"),
		wssec.WithHMACKey([]byte("an example key of at least 32 bytes!")),
		wssec.WithObserver(obs),
		wssec.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	mux := http.NewServeMux()
	mux.Handle("/ws", g.Handler(func(ctx context.Context, c *wssec.Conn) { /* … */ }))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	// A page on another site tries to open the socket.
	req := httptest.NewRequest(http.MethodGet, "https://app.example.com/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Origin", "https://evil.example.net")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println("handshake:", rec.Code)

	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "wssec_handshakes_total{") {
			fmt.Println(line)
		}
	}
	// Output:
	// handshake: 403
	// wssec_handshakes_total{outcome="accepted",reason="ok"} 0
	// wssec_handshakes_total{outcome="refused",reason="origin_not_allowed"} 1
}
