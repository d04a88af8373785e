package wssec_test

import (
	"fmt"

	"github.com/gorilla/websocket"
	"github.com/wssec/wssec"
)

// A development server on plain ws:// answers to "dev.example.test:8080"
// (an /etc/hosts entry) besides its own address. A page on
// rebind.attacker.example, whose DNS the attacker re-points at the
// server, sends its own name as Host with an Origin that agrees: without
// WithHosts only an IP literal or "localhost" would be accepted as Host
// here; with it, exactly the names listed.
func ExampleWithHosts() {
	g, err := wssec.New(
		wssec.WithHMACKey(exampleKey),
		wssec.WithInsecureTransport(), // development only
		wssec.WithHosts("dev.example.test:8080", "localhost:8080"),
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	url, _, stop := serve(g)
	defer stop()

	for _, host := range []string{"dev.example.test:8080", "rebind.attacker.example:8080"} {
		h := headers("http://"+host, exampleToken("alice"))
		h.Set("Host", host) // what the browser sends for a page on that name
		status, c := dial(url, h)
		if c != nil {
			c.Close()
		}
		fmt.Println(host, status)
	}
	// Output:
	// dev.example.test:8080 101
	// rebind.attacker.example:8080 403
}

// Behind nginx or HAProxy on the same machine, with their standard
// X-Forwarded-For / X-Forwarded-Proto lines (deploy/ has the tested
// configs). A client's own Forwarded or X-Real-IP header is ignored: only
// the header named here (the default, spelled out) is read, and only from
// the trusted proxy.
func ExampleWithClientIPHeader() {
	g, err := wssec.New(
		wssec.WithHMACKey(exampleKey),
		wssec.WithTrustedProxies("127.0.0.1/32"),
		wssec.WithClientIPHeader("X-Forwarded-For"),
		quietLogger(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	url, origin, stop := serve(g)
	defer stop()

	// The proxy's plain-HTTP listener wrote X-Forwarded-Proto: http; the
	// client added Forwarded: proto=https. TLS is still required.
	h := headers("https"+origin[len("http"):], exampleToken("alice"))
	h.Set("X-Forwarded-For", "203.0.113.7")
	h.Set("X-Forwarded-Proto", "http")
	h.Set("Forwarded", "for=6.6.6.6;proto=https")
	status, c := dial(url, h)
	if c != nil {
		c.Close()
	}
	fmt.Println(status)

	// The proxy's TLS listener wrote X-Forwarded-Proto: https.
	h.Set("X-Forwarded-Proto", "https")
	status, c = dial(url, h)
	if c != nil {
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		c.Close()
	}
	fmt.Println(status)
	// Output:
	// 426
	// 101
}
