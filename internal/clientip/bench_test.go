package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
)

func BenchmarkResolve(b *testing.B) {
	trusted := testTrusted(b)
	benches := []struct {
		name   string
		remote string
		h      http.Header
	}{
		{"untrusted_spoofed", "203.0.113.9", http.Header{
			"X-Forwarded-For": {"1.2.3.4, 10.0.0.1"}, "Forwarded": {"for=1.2.3.4"}, "X-Forwarded-Proto": {"https"},
		}},
		{"xff_3hop", "10.0.0.1", http.Header{
			"X-Forwarded-For": {"198.51.100.1, 10.0.0.2, 192.168.0.3"}, "X-Forwarded-Proto": {"https"},
		}},
		{"forwarded_3hop", "10.0.0.1", http.Header{
			"Forwarded": {`for=198.51.100.1;proto=https, for="[2001:db8:1::2]:8080";proto=https, for=192.168.0.3;proto=https`},
		}},
	}
	for _, bb := range benches {
		remote := netip.MustParseAddr(bb.remote)
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Resolve(remote, bb.h, trusted, sourceFor(bb.h)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkResolveRequest_Untrusted(b *testing.B) {
	trusted := testTrusted(b)
	r := &http.Request{RemoteAddr: "203.0.113.9:50000", Header: http.Header{"X-Forwarded-For": {"1.2.3.4"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ResolveRequest(r, trusted, XForwardedFor); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetContains(b *testing.B) {
	var many []string
	for i := range 256 {
		many = append(many, fmt.Sprintf("10.%d.0.0/16", i), fmt.Sprintf("2001:db8:%x::/48", i))
	}
	small, _ := ParseSet([]string{"10.0.0.0/8", "192.168.0.0/16", "2001:db8:1::/48", "127.0.0.1"})
	large, _ := ParseSet(many)
	a := netip.MustParseAddr("203.0.113.9")
	for _, s := range []struct {
		name string
		set  *Set
	}{{"small", small}, {"large_512", large}} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = s.set.Contains(a)
			}
		})
	}
}

// BenchmarkResolve_WorstCase resolves headers at the size bound built to
// maximise work: a quadratic blow-up would show here as µs turning to ms.
//
//	go test -run='^$' -bench=Resolve_WorstCase ./internal/clientip/
func BenchmarkResolve_WorstCase(b *testing.B) {
	trusted := testTrusted(b)
	remote := netip.MustParseAddr("10.0.0.1")
	for i, h := range worstCaseHeaders() {
		b.Run(fmt.Sprint("input", i), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Resolve(remote, h, trusted, sourceFor(h))
			}
		})
	}
}
