package clientip_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/wssec/wssec/internal/clientip"
)

func ExampleResolveRequest() {
	trusted, err := clientip.ParseSet([]string{"10.0.0.0/8"})
	if err != nil {
		panic(err)
	}

	// Behind the trusted load balancer 10.0.0.1, itself behind the trusted
	// proxy 10.0.0.9 that the client reached.
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.RemoteAddr = "10.0.0.1:41000"
	r.Header.Set("Forwarded", `for="[2001:db8::5]:443";proto=https, for=10.0.0.9;proto=http`)
	r.Header.Set("X-Forwarded-For", "203.0.113.66") // ignored: only the configured header is read
	res, err := clientip.ResolveRequest(r, trusted, clientip.Forwarded)
	fmt.Println(res.Client, res.Proto, res.ViaProxy, err)

	// The same request read as X-Forwarded-For: now Forwarded is ignored.
	res, err = clientip.ResolveRequest(r, trusted, clientip.XForwardedFor)
	fmt.Println(res.Client, res.Proto, res.ViaProxy, err)

	// Straight from the internet, with a spoofed header.
	r.RemoteAddr = "198.51.100.200:5000"
	r.Header.Set("X-Forwarded-For", "10.0.0.7")
	res, err = clientip.ResolveRequest(r, trusted, clientip.XForwardedFor)
	fmt.Println(res.Client, res.Proto == "", res.ViaProxy, err)

	// Output:
	// 2001:db8::5 https true <nil>
	// 203.0.113.66  true <nil>
	// 198.51.100.200 true false <nil>
}
