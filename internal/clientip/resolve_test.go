package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// testTrusted is the trusted-proxy set of the table tests.
var testTrustedCIDRs = []string{"10.0.0.0/8", "192.168.0.0/16", "2001:db8:1::/48", "127.0.0.1"}

func testTrusted(tb testing.TB) *Set {
	tb.Helper()
	s, err := ParseSet(testTrustedCIDRs)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// resolveCase is one table case; the fuzz targets are seeded from them.
type resolveCase struct {
	name    string
	remote  string
	fwd     []string // Forwarded lines
	xff     []string // X-Forwarded-For lines
	xfp     []string // X-Forwarded-Proto lines
	realIP  string   // X-Real-IP
	src     Source   // the header read from a trusted peer; zero: X-Forwarded-For
	client  string   // wanted Client, when err is nil
	proto   string   // wanted Proto
	via     bool     // wanted ViaProxy
	wantErr error
}

func (c resolveCase) header() http.Header {
	h := http.Header{}
	for _, v := range c.fwd {
		h.Add("Forwarded", v)
	}
	for _, v := range c.xff {
		h.Add("X-Forwarded-For", v)
	}
	for _, v := range c.xfp {
		h.Add("X-Forwarded-Proto", v)
	}
	if c.realIP != "" {
		h.Set("X-Real-IP", c.realIP)
	}
	return h
}

func runResolveCases(t *testing.T, cases []resolveCase) {
	t.Helper()
	trusted := testTrusted(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			remote := netip.MustParseAddr(tc.remote)
			got, err := Resolve(remote, tc.header(), trusted, tc.src)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve() = %+v, %v; want error %v", got, err, tc.wantErr)
				}
				if got != (Result{}) {
					t.Errorf("Resolve() returned %+v with an error, want the zero Result", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve() error: %v", err)
			}
			want := Result{Client: netip.MustParseAddr(tc.client), Proto: tc.proto, ViaProxy: tc.via}
			if got != want {
				t.Errorf("Resolve() = %+v, want %+v", got, want)
			}
		})
	}
}

func manyHops(n int, sep string, format func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = format(i)
	}
	return strings.Join(parts, sep)
}

var untrustedCases = []resolveCase{
	{name: "spoofed XFF", remote: "203.0.113.9", xff: []string{"1.2.3.4"}, client: "203.0.113.9"},
	{name: "spoofed XFF claiming a trusted proxy", remote: "203.0.113.9", xff: []string{"1.2.3.4, 10.0.0.1"}, client: "203.0.113.9"},
	{name: "spoofed XFP https", remote: "203.0.113.9", xff: []string{"1.2.3.4"}, xfp: []string{"https"}, client: "203.0.113.9"},
	{name: "spoofed X-Real-IP", remote: "203.0.113.9", realIP: "1.2.3.4", client: "203.0.113.9"},
	{name: "spoofed Forwarded", remote: "203.0.113.9", fwd: []string{"for=1.2.3.4;proto=https"}, client: "203.0.113.9"},
	{name: "malformed XFF", remote: "203.0.113.9", xff: []string{"not an ip, ;;;"}, client: "203.0.113.9"},
	{name: "malformed XFP", remote: "203.0.113.9", xfp: []string{"gopher"}, client: "203.0.113.9"},
	{name: "malformed Forwarded", remote: "203.0.113.9", fwd: []string{`for="unterminated`}, client: "203.0.113.9"},
	{name: "unknown Forwarded", remote: "203.0.113.9", fwd: []string{"for=unknown"}, client: "203.0.113.9"},
	{name: "oversized XFF", remote: "203.0.113.9", xff: []string{strings.Repeat("1.2.3.4, ", 2000)}, client: "203.0.113.9"},
	{name: "too many hops", remote: "203.0.113.9", xff: []string{manyHops(100, ",", func(int) string { return "1.2.3.4" })}, client: "203.0.113.9"},
	{name: "mapped remote", remote: "::ffff:203.0.113.9", xff: []string{"1.2.3.4"}, client: "203.0.113.9"},
	{name: "v6 remote", remote: "2001:db8:2::1", xff: []string{"1.2.3.4"}, client: "2001:db8:2::1"},
	{name: "zoned remote", remote: "fe80::1%eth0", xff: []string{"1.2.3.4"}, client: "fe80::1"},
	{name: "no headers", remote: "203.0.113.9", client: "203.0.113.9"},
}

// TestSpoofedXFF_UntrustedPeer: forwarding headers from a peer that is not a
// trusted proxy are ignored, whatever they hold, and never cause an error.
func TestSpoofedXFF_UntrustedPeer(t *testing.T) {
	for _, src := range allSources(t) {
		t.Run(src.String(), func(t *testing.T) {
			cases := append([]resolveCase(nil), untrustedCases...)
			for i := range cases {
				cases[i].src = src
			}
			runResolveCases(t, cases)
		})
	}

	t.Run("nil and empty trusted sets trust nobody", func(t *testing.T) {
		empty, _ := ParseSet(nil)
		h := http.Header{"X-Forwarded-For": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}}
		for _, s := range []*Set{nil, empty, {}} {
			for _, remote := range []string{"10.0.0.1", "127.0.0.1", "::1"} {
				a := netip.MustParseAddr(remote)
				got, err := Resolve(a, h, s, Forwarded)
				if err != nil || got != (Result{Client: a}) {
					t.Errorf("Resolve(%s) with set %v = %+v, %v", a, s, got, err)
				}
			}
		}
	})
}

var xffCases = []resolveCase{
	{name: "no headers", remote: "10.0.0.1", client: "10.0.0.1", via: true},
	{name: "X-Real-IP never used", remote: "10.0.0.1", realIP: "198.51.100.1", client: "10.0.0.1", via: true},
	{name: "Forwarded ignored", remote: "10.0.0.1", fwd: []string{"for=6.6.6.6;proto=https"}, client: "10.0.0.1", via: true},
	{name: "Forwarded ignored beside XFF", remote: "10.0.0.1", fwd: []string{"for=6.6.6.6;proto=https"}, xff: []string{"198.51.100.1"}, xfp: []string{"http"}, client: "198.51.100.1", proto: "http", via: true},
	{name: "malformed Forwarded ignored", remote: "10.0.0.1", fwd: []string{`for="garbage`}, xff: []string{"198.51.100.1"}, client: "198.51.100.1", via: true},
	{name: "one hop", remote: "10.0.0.1", xff: []string{"198.51.100.1"}, client: "198.51.100.1", via: true},
	{name: "rightmost untrusted with several trusted proxies", remote: "10.0.0.1",
		xff: []string{"6.6.6.6, 198.51.100.1, 10.0.0.2, 192.168.1.1"}, client: "198.51.100.1", via: true},
	{name: "trusted proxies in v6 and mapped forms", remote: "::ffff:10.0.0.1",
		xff: []string{"198.51.100.1, 2001:db8:1::5, ::ffff:10.0.0.2"}, client: "198.51.100.1", via: true},
	{name: "all trusted gives leftmost", remote: "10.0.0.1", xff: []string{"10.0.0.5, 192.168.0.6, 10.0.0.7"}, client: "10.0.0.5", via: true},
	{name: "lines concatenated in order", remote: "10.0.0.1",
		xff: []string{"6.6.6.6, 198.51.100.1", "10.0.0.2", "192.168.1.1"}, client: "198.51.100.1", via: true},
	{name: "spoofed garbage left of client ignored", remote: "10.0.0.1", xff: []string{"garbage, unknown, 198.51.100.1"}, client: "198.51.100.1", via: true},
	{name: "unparseable client hop", remote: "10.0.0.1", xff: []string{"198.51.100.1, garbage, 10.0.0.2"}, wantErr: ErrMalformed},
	{name: "unknown client hop", remote: "10.0.0.1", xff: []string{"unknown"}, wantErr: ErrMalformed},
	{name: "whitespace and tabs", remote: "10.0.0.1", xff: []string{" \t198.51.100.1\t ,  10.0.0.2  "}, client: "198.51.100.1", via: true},
	{name: "empty entries skipped", remote: "10.0.0.1", xff: []string{",198.51.100.1, ,, 10.0.0.2,", ""}, client: "198.51.100.1", via: true},
	{name: "only empty entries", remote: "10.0.0.1", xff: []string{" , "}, client: "10.0.0.1", via: true},
	{name: "v4 with port", remote: "10.0.0.1", xff: []string{"198.51.100.1:5555"}, client: "198.51.100.1", via: true},
	{name: "bare v6", remote: "10.0.0.1", xff: []string{"2001:db8:cafe::17"}, client: "2001:db8:cafe::17", via: true},
	{name: "bracketed v6", remote: "10.0.0.1", xff: []string{"[2001:db8:cafe::17]"}, client: "2001:db8:cafe::17", via: true},
	{name: "bracketed v6 with port", remote: "10.0.0.1", xff: []string{"[2001:db8:cafe::17]:4711"}, client: "2001:db8:cafe::17", via: true},
	{name: "mapped client unmapped", remote: "10.0.0.1", xff: []string{"::ffff:198.51.100.1"}, client: "198.51.100.1", via: true},
	{name: "bracketed mapped client", remote: "10.0.0.1", xff: []string{"[::ffff:198.51.100.1]:80"}, client: "198.51.100.1", via: true},
	{name: "mapped trusted hop skipped", remote: "10.0.0.1", xff: []string{"198.51.100.1, ::ffff:10.9.9.9"}, client: "198.51.100.1", via: true},
	{name: "zoned hop refused", remote: "10.0.0.1", xff: []string{"fe80::1%eth0"}, wantErr: ErrMalformed},
	{name: "leading zeros refused", remote: "10.0.0.1", xff: []string{"010.0.0.1"}, wantErr: ErrMalformed},
	{name: "bracketed v4 refused", remote: "10.0.0.1", xff: []string{"[198.51.100.1]"}, wantErr: ErrMalformed},
	{name: "bad port refused", remote: "10.0.0.1", xff: []string{"198.51.100.1:99999"}, wantErr: ErrMalformed},
	{name: "64 hops allowed", remote: "10.0.0.1", xff: []string{manyHops(64, ", ", func(i int) string { return fmt.Sprintf("10.0.0.%d", i) })}, client: "10.0.0.0", via: true},
	{name: "65 hops refused", remote: "10.0.0.1", xff: []string{manyHops(65, ", ", func(i int) string { return fmt.Sprintf("10.0.0.%d", i) })}, wantErr: ErrTooManyHops},
	{name: "hops counted over lines", remote: "10.0.0.1", xff: []string{manyHops(40, ",", func(int) string { return "10.0.0.9" }), manyHops(25, ",", func(int) string { return "10.0.0.9" })}, wantErr: ErrTooManyHops},
	{name: "oversized", remote: "10.0.0.1", xff: []string{strings.Repeat(" ", MaxHeaderBytes) + "198.51.100.1"}, wantErr: ErrHeaderTooLarge},
	{name: "oversized with XFP", remote: "10.0.0.1", xff: []string{strings.Repeat(" ", MaxHeaderBytes-10) + "198.51.100.1"}, xfp: []string{"https"}, wantErr: ErrHeaderTooLarge},
	{name: "many empty lines", remote: "10.0.0.1", xff: make([]string, MaxHeaderBytes+1), wantErr: ErrHeaderTooLarge},

	// X-Forwarded-Proto
	{name: "XFP single", remote: "10.0.0.1", xff: []string{"198.51.100.1"}, xfp: []string{"https"}, client: "198.51.100.1", proto: "https", via: true},
	{name: "XFP lowercased", remote: "10.0.0.1", xff: []string{"198.51.100.1"}, xfp: []string{" HTTPS "}, client: "198.51.100.1", proto: "https", via: true},
	{name: "XFP wss", remote: "10.0.0.1", xff: []string{"198.51.100.1"}, xfp: []string{"WSS"}, client: "198.51.100.1", proto: "wss", via: true},
	{name: "XFP single with several hops", remote: "10.0.0.1", xff: []string{"198.51.100.1, 10.0.0.2"}, xfp: []string{"http"}, client: "198.51.100.1", proto: "http", via: true},
	{name: "XFP list at client index", remote: "10.0.0.1", xff: []string{"6.6.6.6, 198.51.100.1, 10.0.0.2"}, xfp: []string{"https, http, https"}, client: "198.51.100.1", proto: "http", via: true},
	{name: "XFP list over lines at client index", remote: "10.0.0.1", xff: []string{"6.6.6.6, 198.51.100.1", "10.0.0.2"}, xfp: []string{"https", "http, https"}, client: "198.51.100.1", proto: "http", via: true},
	{name: "XFP list all trusted uses index 0", remote: "10.0.0.1", xff: []string{"10.0.0.5, 10.0.0.6"}, xfp: []string{"http, https"}, client: "10.0.0.5", proto: "http", via: true},
	{name: "XFP list length mismatch uses rightmost", remote: "10.0.0.1", xff: []string{"6.6.6.6, 198.51.100.1, 10.0.0.2"}, xfp: []string{"http, https"}, client: "198.51.100.1", proto: "https", via: true},
	{name: "XFP without XFF", remote: "10.0.0.1", xfp: []string{"https"}, client: "10.0.0.1", proto: "https", via: true},
	{name: "XFP list without XFF uses rightmost", remote: "10.0.0.1", xfp: []string{"http, https"}, client: "10.0.0.1", proto: "https", via: true},
	{name: "XFP unsupported value", remote: "10.0.0.1", xff: []string{"198.51.100.1"}, xfp: []string{"ftp"}, wantErr: ErrInvalidProto},
	{name: "XFP selected entry unsupported", remote: "10.0.0.1", xff: []string{"198.51.100.1, 10.0.0.2"}, xfp: []string{"gopher, https"}, wantErr: ErrInvalidProto},
	{name: "XFP unselected entry ignored", remote: "10.0.0.1", xff: []string{"198.51.100.1, 10.0.0.2"}, xfp: []string{"https, gopher"}, client: "198.51.100.1", proto: "https", via: true},
	{name: "XFP empty entries skipped", remote: "10.0.0.1", xff: []string{"198.51.100.1"}, xfp: []string{", https,"}, client: "198.51.100.1", proto: "https", via: true},
	{name: "XFP empty", remote: "10.0.0.1", xff: []string{"198.51.100.1"}, xfp: []string{""}, client: "198.51.100.1", via: true},
}

func TestResolve_XForwardedFor(t *testing.T) {
	runResolveCases(t, xffCases)
}

var forwardedCases = []resolveCase{
	{name: "one element", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7"}, client: "198.51.100.7", via: true},
	{name: "XFF and XFP ignored", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7"}, xff: []string{"6.6.6.6"}, xfp: []string{"https"}, client: "198.51.100.7", via: true},
	{name: "exclusive even when malformed", remote: "10.0.0.1", fwd: []string{"for="}, xff: []string{"198.51.100.1"}, wantErr: ErrMalformed},
	{name: "absent: the peer, whatever XFF says", remote: "10.0.0.1", xff: []string{"6.6.6.6"}, xfp: []string{"https"}, realIP: "6.6.6.7", client: "10.0.0.1", via: true},
	{name: "proto", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7;proto=https"}, client: "198.51.100.7", proto: "https", via: true},
	{name: "quoted proto uppercase", remote: "10.0.0.1", fwd: []string{`for=198.51.100.7;proto="HTTP"`}, client: "198.51.100.7", proto: "http", via: true},
	{name: "names case-insensitive", remote: "10.0.0.1", fwd: []string{"For=198.51.100.7;PROTO=https;By=10.0.0.1;HOST=example.com"}, client: "198.51.100.7", proto: "https", via: true},
	{name: "quoted v6", remote: "10.0.0.1", fwd: []string{`for="[2001:db8:cafe::17]"`}, client: "2001:db8:cafe::17", via: true},
	{name: "quoted v6 with port", remote: "10.0.0.1", fwd: []string{`for="[2001:db8:cafe::17]:4711"`}, client: "2001:db8:cafe::17", via: true},
	{name: "quoted v4 with port", remote: "10.0.0.1", fwd: []string{`for="198.51.100.7:8080"`}, client: "198.51.100.7", via: true},
	{name: "quoted v4", remote: "10.0.0.1", fwd: []string{`for="198.51.100.7"`}, client: "198.51.100.7", via: true},
	{name: "obfuscated port", remote: "10.0.0.1", fwd: []string{`for="198.51.100.7:_abc-1"`}, client: "198.51.100.7", via: true},
	{name: "escaped characters", remote: "10.0.0.1", fwd: []string{`for="[2001:db8::\1]:\80"`}, client: "2001:db8::1", via: true},
	{name: "mapped v6 unmapped", remote: "10.0.0.1", fwd: []string{`for="[::ffff:198.51.100.7]"`}, client: "198.51.100.7", via: true},
	{name: "mapped trusted hop skipped", remote: "10.0.0.1", fwd: []string{`for=198.51.100.7, for="[::ffff:10.0.0.3]"`}, client: "198.51.100.7", via: true},
	{name: "rightmost untrusted with several trusted proxies", remote: "10.0.0.1",
		fwd: []string{`for=6.6.6.6;proto=http, for=198.51.100.7;proto=https, for=192.168.0.2;proto=http, for="[2001:db8:1::1]"`}, client: "198.51.100.7", proto: "https", via: true},
	{name: "all trusted gives leftmost", remote: "10.0.0.1", fwd: []string{"for=10.0.0.5;proto=HTTPS, for=10.0.0.6;proto=http"}, client: "10.0.0.5", proto: "https", via: true},
	{name: "lines concatenated in order", remote: "10.0.0.1", fwd: []string{"for=6.6.6.6, for=198.51.100.7", "for=10.0.0.2"}, client: "198.51.100.7", via: true},
	{name: "whitespace around separators", remote: "10.0.0.1", fwd: []string{" for=198.51.100.7 ;\tproto=https ,  for=10.0.0.2 "}, client: "198.51.100.7", proto: "https", via: true},
	{name: "empty pairs allowed", remote: "10.0.0.1", fwd: []string{";for=198.51.100.7;;proto=https;"}, client: "198.51.100.7", proto: "https", via: true},
	{name: "extension parameter", remote: "10.0.0.1", fwd: []string{`for=198.51.100.7;ext="a;b,c"`}, client: "198.51.100.7", via: true},
	{name: "no proto", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7, for=10.0.0.2;proto=https"}, client: "198.51.100.7", via: true},
	{name: "unknown left of client ignored", remote: "10.0.0.1", fwd: []string{"for=unknown, for=198.51.100.7"}, client: "198.51.100.7", via: true},
	{name: "unsupported proto on other hop ignored", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7;proto=https, for=10.0.0.2;proto=gopher"}, client: "198.51.100.7", proto: "https", via: true},
	{name: "64 elements allowed", remote: "10.0.0.1", fwd: []string{manyHops(64, ", ", func(int) string { return "for=10.1.1.1" })}, client: "10.1.1.1", via: true},

	// The client cannot be identified.
	{name: "unknown", remote: "10.0.0.1", fwd: []string{"for=unknown"}, wantErr: ErrUnknownClient},
	{name: "unknown uppercase quoted with port", remote: "10.0.0.1", fwd: []string{`for="UNKNOWN:80"`}, wantErr: ErrUnknownClient},
	{name: "unknown behind trusted", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7, for=unknown, for=10.0.0.2"}, wantErr: ErrUnknownClient},
	{name: "obfuscated", remote: "10.0.0.1", fwd: []string{"for=_hidden"}, wantErr: ErrUnknownClient},
	{name: "obfuscated quoted with port", remote: "10.0.0.1", fwd: []string{`for="_hidden:_port"`}, wantErr: ErrUnknownClient},
	{name: "missing for", remote: "10.0.0.1", fwd: []string{"by=10.0.0.1;proto=https"}, wantErr: ErrUnknownClient},
	{name: "element of empty pairs", remote: "10.0.0.1", fwd: []string{";"}, wantErr: ErrUnknownClient},
	{name: "unsupported proto", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7;proto=ftp"}, wantErr: ErrInvalidProto},

	// Malformed.
	{name: "unterminated quote", remote: "10.0.0.1", fwd: []string{`for="[2001:db8::1]`}, wantErr: ErrMalformed},
	{name: "unterminated quote left of client", remote: "10.0.0.1", fwd: []string{`for="x, for=198.51.100.7`}, wantErr: ErrMalformed},
	{name: "quote not closed on its line", remote: "10.0.0.1", fwd: []string{`for="198.51.100.7`, `"`}, wantErr: ErrMalformed},
	{name: "missing equals", remote: "10.0.0.1", fwd: []string{"for"}, wantErr: ErrMalformed},
	{name: "missing equals after pair", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7;proto"}, wantErr: ErrMalformed},
	{name: "missing equals left of client", remote: "10.0.0.1", fwd: []string{"secret, for=198.51.100.7"}, wantErr: ErrMalformed},
	{name: "space instead of equals", remote: "10.0.0.1", fwd: []string{"for 198.51.100.7"}, wantErr: ErrMalformed},
	{name: "space around equals", remote: "10.0.0.1", fwd: []string{"for = 198.51.100.7"}, wantErr: ErrMalformed},
	{name: "missing name", remote: "10.0.0.1", fwd: []string{"=198.51.100.7"}, wantErr: ErrMalformed},
	{name: "missing value", remote: "10.0.0.1", fwd: []string{"for="}, wantErr: ErrMalformed},
	{name: "missing value before semicolon", remote: "10.0.0.1", fwd: []string{"for=;proto=https"}, wantErr: ErrMalformed},
	{name: "empty element", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7,,for=10.0.0.2"}, wantErr: ErrMalformed},
	{name: "empty element with spaces", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7, ,for=10.0.0.2"}, wantErr: ErrMalformed},
	{name: "leading comma", remote: "10.0.0.1", fwd: []string{",for=198.51.100.7"}, wantErr: ErrMalformed},
	{name: "trailing comma", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7,"}, wantErr: ErrMalformed},
	{name: "empty line", remote: "10.0.0.1", fwd: []string{""}, wantErr: ErrMalformed},
	{name: "empty second line", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7", " "}, wantErr: ErrMalformed},
	{name: "bad escape control character", remote: "10.0.0.1", fwd: []string{"for=\"198.51.100.7\\\x01\""}, wantErr: ErrMalformed},
	{name: "bad escape at end", remote: "10.0.0.1", fwd: []string{`for="198.51.100.7\`}, wantErr: ErrMalformed},
	{name: "escaped closing quote", remote: "10.0.0.1", fwd: []string{`for="198.51.100.7\"`}, wantErr: ErrMalformed},
	{name: "control character in quotes", remote: "10.0.0.1", fwd: []string{"for=\"198.51.100.7\x00\""}, wantErr: ErrMalformed},
	{name: "DEL in quotes", remote: "10.0.0.1", fwd: []string{"for=\"198.51.100.7\x7f\""}, wantErr: ErrMalformed},
	{name: "text after quoted value", remote: "10.0.0.1", fwd: []string{`for="198.51.100.7"x`}, wantErr: ErrMalformed},
	{name: "pairs without separator", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7 proto=https"}, wantErr: ErrMalformed},
	{name: "duplicate for", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7;for=198.51.100.8"}, wantErr: ErrMalformed},
	{name: "duplicate for other case", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7;FOR=198.51.100.8"}, wantErr: ErrMalformed},
	{name: "duplicate proto", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7;proto=https;proto=http"}, wantErr: ErrMalformed},
	{name: "duplicate extension", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7;x=1;X=2"}, wantErr: ErrMalformed},
	{name: "duplicate left of client", remote: "10.0.0.1", fwd: []string{"by=a;by=b, for=198.51.100.7"}, wantErr: ErrMalformed},
	{name: "too many parameters", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7" + manyHops(16, "", func(i int) string { return fmt.Sprintf(";x%d=1", i) })}, wantErr: ErrMalformed},
	{name: "unquoted v6", remote: "10.0.0.1", fwd: []string{"for=[2001:db8::1]"}, wantErr: ErrMalformed},
	{name: "unquoted port", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7:80"}, wantErr: ErrMalformed},
	{name: "unbracketed v6", remote: "10.0.0.1", fwd: []string{`for="2001:db8::1"`}, wantErr: ErrMalformed},
	{name: "bracketed v4", remote: "10.0.0.1", fwd: []string{`for="[198.51.100.7]"`}, wantErr: ErrMalformed},
	{name: "unclosed bracket", remote: "10.0.0.1", fwd: []string{`for="[2001:db8::1"`}, wantErr: ErrMalformed},
	{name: "text after bracket", remote: "10.0.0.1", fwd: []string{`for="[2001:db8::1]x"`}, wantErr: ErrMalformed},
	{name: "bad port", remote: "10.0.0.1", fwd: []string{`for="198.51.100.7:99999"`}, wantErr: ErrMalformed},
	{name: "empty port", remote: "10.0.0.1", fwd: []string{`for="[2001:db8::1]:"`}, wantErr: ErrMalformed},
	{name: "zone", remote: "10.0.0.1", fwd: []string{`for="[fe80::1%eth0]"`}, wantErr: ErrMalformed},
	{name: "empty quoted for", remote: "10.0.0.1", fwd: []string{`for=""`}, wantErr: ErrMalformed},
	{name: "hostname for", remote: "10.0.0.1", fwd: []string{"for=example.com"}, wantErr: ErrMalformed},
	{name: "65 elements", remote: "10.0.0.1", fwd: []string{manyHops(65, ", ", func(int) string { return "for=10.1.1.1" })}, wantErr: ErrTooManyHops},
	{name: "65 elements over lines", remote: "10.0.0.1", fwd: []string{manyHops(60, ",", func(int) string { return "for=10.1.1.1" }), manyHops(5, ",", func(int) string { return "for=10.1.1.1" })}, wantErr: ErrTooManyHops},
	{name: "oversized", remote: "10.0.0.1", fwd: []string{"for=198.51.100.7;x=\"" + strings.Repeat("a", MaxHeaderBytes) + "\""}, wantErr: ErrHeaderTooLarge},
}

func TestResolve_Forwarded(t *testing.T) {
	cases := append([]resolveCase(nil), forwardedCases...)
	for i := range cases {
		cases[i].src = Forwarded
	}
	runResolveCases(t, cases)
}

var realIP = mustSource("X-Real-IP")

func mustSource(name string) Source {
	s, err := ParseSource(name)
	if err != nil {
		panic(err)
	}
	return s
}

// allSources is one Source of each kind.
func allSources(tb testing.TB) []Source {
	tb.Helper()
	return []Source{XForwardedFor, Forwarded, realIP}
}

var singleCases = []resolveCase{
	{name: "one address", remote: "10.0.0.1", realIP: "198.51.100.1", client: "198.51.100.1", via: true, src: realIP},
	{name: "with port", remote: "10.0.0.1", realIP: "198.51.100.1:4711", client: "198.51.100.1", via: true, src: realIP},
	{name: "v6", remote: "10.0.0.1", realIP: "2001:db8::7", client: "2001:db8::7", via: true, src: realIP},
	{name: "bracketed v6 with port", remote: "10.0.0.1", realIP: "[2001:db8::7]:80", client: "2001:db8::7", via: true, src: realIP},
	{name: "a trusted address is still the client", remote: "10.0.0.1", realIP: "10.0.0.9", client: "10.0.0.9", via: true, src: realIP},
	{name: "absent: the peer", remote: "10.0.0.1", xff: []string{"6.6.6.6"}, fwd: []string{"for=6.6.6.7"}, client: "10.0.0.1", via: true, src: realIP},
	{name: "XFF and Forwarded ignored", remote: "10.0.0.1", realIP: "198.51.100.1", xff: []string{"6.6.6.6"}, fwd: []string{"for=6.6.6.7;proto=https"}, client: "198.51.100.1", via: true, src: realIP},
	{name: "scheme from the right-most XFP", remote: "10.0.0.1", realIP: "198.51.100.1", xfp: []string{"https, http"}, client: "198.51.100.1", proto: "http", via: true, src: realIP},
	{name: "XFP without the header", remote: "10.0.0.1", xfp: []string{"HTTPS"}, client: "10.0.0.1", proto: "https", via: true, src: realIP},
	{name: "list refused", remote: "10.0.0.1", realIP: "6.6.6.6, 198.51.100.1", wantErr: ErrMalformed, src: realIP},
	{name: "not an address", remote: "10.0.0.1", realIP: "unknown", wantErr: ErrMalformed, src: realIP},
	{name: "empty", remote: "10.0.0.1", realIP: " ", wantErr: ErrMalformed, src: realIP},
	{name: "zoned", remote: "10.0.0.1", realIP: "fe80::1%eth0", wantErr: ErrMalformed, src: realIP},
	{name: "bad XFP", remote: "10.0.0.1", realIP: "198.51.100.1", xfp: []string{"gopher"}, wantErr: ErrInvalidProto, src: realIP},
	{name: "oversized", remote: "10.0.0.1", realIP: strings.Repeat(" ", MaxHeaderBytes) + "198.51.100.1", wantErr: ErrHeaderTooLarge, src: realIP},
}

func TestResolve_SingleAddressHeader(t *testing.T) {
	runResolveCases(t, singleCases)
	t.Run("sent twice", func(t *testing.T) {
		h := http.Header{"X-Real-Ip": {"198.51.100.1", "198.51.100.2"}}
		if _, err := Resolve(netip.MustParseAddr("10.0.0.1"), h, testTrusted(t), realIP); !errors.Is(err, ErrMalformed) {
			t.Fatalf("two X-Real-IP lines: err %v, want ErrMalformed", err)
		}
	})
	t.Run("CF-Connecting-IP", func(t *testing.T) {
		h := http.Header{"Cf-Connecting-Ip": {"198.51.100.3"}, "X-Real-Ip": {"6.6.6.6"}}
		got, err := Resolve(netip.MustParseAddr("10.0.0.1"), h, testTrusted(t), mustSource("cf-connecting-ip"))
		if err != nil || got.Client != netip.MustParseAddr("198.51.100.3") {
			t.Fatalf("Resolve() = %+v, %v; want 198.51.100.3", got, err)
		}
	})
}

func TestParseSource(t *testing.T) {
	for name, want := range map[string]string{
		"X-Forwarded-For": "X-Forwarded-For", "x-forwarded-for": "X-Forwarded-For",
		"Forwarded": "Forwarded", "FORWARDED": "Forwarded",
		"X-Real-IP": "X-Real-IP", "x-real-ip": "X-Real-IP",
		"CF-Connecting-IP": "CF-Connecting-IP", "True-Client-IP": "True-Client-IP", "Fastly-Client-IP": "Fastly-Client-IP",
	} {
		s, err := ParseSource(name)
		if err != nil || s.String() != want {
			t.Errorf("ParseSource(%q) = %v, %v; want %s", name, s, err, want)
		}
	}
	if s, _ := ParseSource("x-forwarded-for"); s != XForwardedFor {
		t.Error("X-Forwarded-For is not the zero Source")
	}
	for _, name := range []string{"", " ", "X-Forwarded-For ", "X-Forwarded-Proto", "X-Client-IP", "Host", "X Real IP", "X-Real-IP:"} {
		if _, err := ParseSource(name); !errors.Is(err, ErrInvalidSource) {
			t.Errorf("ParseSource(%q) error = %v, want ErrInvalidSource", name, err)
		}
	}
}

func TestSource_Hints(t *testing.T) {
	h := http.Header{"Forwarded": {"for=6.6.6.6"}, "X-Forwarded-Proto": {"https"}, "X-Real-Ip": {"6.6.6.6"}, "Cookie": {"a=b"}}
	if got := fmt.Sprint(PresentHeaders(h)); got != "[Forwarded X-Forwarded-Proto X-Real-Ip]" {
		t.Errorf("PresentHeaders = %s", got)
	}
	if got := fmt.Sprint(XForwardedFor.IgnoredHeaders(h)); got != "[Forwarded X-Real-Ip]" {
		t.Errorf("XForwardedFor.IgnoredHeaders = %s", got)
	}
	if got := fmt.Sprint(Forwarded.IgnoredHeaders(h)); got != "[X-Forwarded-Proto X-Real-Ip]" {
		t.Errorf("Forwarded.IgnoredHeaders = %s", got)
	}
	if got := fmt.Sprint(realIP.IgnoredHeaders(h)); got != "[Forwarded]" {
		t.Errorf("X-Real-IP IgnoredHeaders = %s", got)
	}
}

func TestContainsPublic(t *testing.T) {
	for p, want := range map[string]bool{
		"127.0.0.1/32": false, "10.0.0.0/8": false, "10.1.0.0/16": false, "172.16.0.0/12": false, "192.168.1.0/24": false,
		"100.64.0.0/10": false, "169.254.0.0/16": false, "::1/128": false, "fd00::/8": false, "fe80::/64": false,
		"::ffff:10.0.0.0/104": false,
		"0.0.0.0/0":           true, "::/0": true, "8.0.0.0/7": true, "10.0.0.0/7": true, "172.0.0.0/8": true, "203.0.113.0/24": true,
		"2001:db8::/32": true, "::ffff:0:0/96": true, "1.1.1.1/32": true,
	} {
		if got := ContainsPublic(netip.MustParsePrefix(p)); got != want {
			t.Errorf("ContainsPublic(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestResolve_InvalidRemote(t *testing.T) {
	_, err := Resolve(netip.Addr{}, http.Header{}, testTrusted(t), XForwardedFor)
	if !errors.Is(err, ErrInvalidRemoteAddr) {
		t.Errorf("Resolve(invalid) error = %v, want ErrInvalidRemoteAddr", err)
	}
}

func TestResolve_NilHeader(t *testing.T) {
	remote := netip.MustParseAddr("10.0.0.1")
	got, err := Resolve(remote, nil, testTrusted(t), Forwarded)
	if want := (Result{Client: remote, ViaProxy: true}); err != nil || got != want {
		t.Errorf("Resolve(nil header) = %+v, %v; want %+v", got, err, want)
	}
}

func TestResolve_TrustedMappedRemote(t *testing.T) {
	// A trusted entry written in mapped form matches the plain IPv4 peer,
	// and a plain IPv4 entry matches the mapped peer.
	for _, entry := range []string{"::ffff:10.0.0.0/104", "10.0.0.0/8"} {
		s, err := ParseSet([]string{entry})
		if err != nil {
			t.Fatal(err)
		}
		for _, remote := range []string{"10.1.2.3", "::ffff:10.1.2.3"} {
			h := http.Header{"X-Forwarded-For": {"198.51.100.1"}}
			got, err := Resolve(netip.MustParseAddr(remote), h, s, XForwardedFor)
			want := Result{Client: netip.MustParseAddr("198.51.100.1"), ViaProxy: true}
			if err != nil || got != want {
				t.Errorf("trusted %s, remote %s: Resolve() = %+v, %v; want %+v", entry, remote, got, err, want)
			}
		}
	}
}

func TestResolveRequest(t *testing.T) {
	trusted := testTrusted(t)
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.RemoteAddr = "10.0.0.1:40000"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	r.Header.Set("X-Forwarded-Proto", "https")
	got, err := ResolveRequest(r, trusted, XForwardedFor)
	want := Result{Client: netip.MustParseAddr("198.51.100.1"), Proto: "https", ViaProxy: true}
	if err != nil || got != want {
		t.Errorf("ResolveRequest() = %+v, %v; want %+v", got, err, want)
	}
	if !got.SecureProto() {
		t.Error("SecureProto() = false for https")
	}

	r.RemoteAddr = "@"
	if _, err := ResolveRequest(r, trusted, XForwardedFor); !errors.Is(err, ErrInvalidRemoteAddr) {
		t.Errorf("ResolveRequest(RemoteAddr=@) error = %v, want ErrInvalidRemoteAddr", err)
	}
}

func TestResult_SecureProto(t *testing.T) {
	for proto, want := range map[string]bool{"https": true, "wss": true, "http": false, "ws": false, "": false} {
		if got := (Result{Proto: proto}).SecureProto(); got != want {
			t.Errorf("SecureProto() for %q = %v, want %v", proto, got, want)
		}
	}
}

func TestResolve_UntrustedNoAlloc(t *testing.T) {
	trusted := testTrusted(t)
	h := http.Header{"X-Forwarded-For": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}}
	remote := netip.MustParseAddr("203.0.113.9")
	for _, src := range allSources(t) {
		if n := testing.AllocsPerRun(100, func() { _, _ = Resolve(remote, h, trusted, src) }); n != 0 {
			t.Errorf("Resolve(%v) with an untrusted peer allocates %v times per run", src, n)
		}
	}
}

func TestResolve_TrustedChainNoAlloc(t *testing.T) {
	trusted := testTrusted(t)
	remote := netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		h   http.Header
		src Source
	}{
		{http.Header{"X-Forwarded-For": {"198.51.100.1, 10.0.0.2, 192.168.0.3"}, "X-Forwarded-Proto": {"https"}}, XForwardedFor},
		{http.Header{"Forwarded": {`for=198.51.100.1;proto=https, for="[2001:db8:1::2]:80", for=192.168.0.3`}}, Forwarded},
		{http.Header{"X-Real-Ip": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}}, realIP},
	} {
		h := tc.h
		if n := testing.AllocsPerRun(100, func() { _, _ = Resolve(remote, h, trusted, tc.src) }); n != 0 {
			t.Errorf("Resolve(%v) allocates %v times per run", h, n)
		}
	}
}

// worstCaseHeaders are headers at the size bound built to maximise work.
func worstCaseHeaders() []http.Header {
	return []http.Header{
		{"Forwarded": {"for=1.1.1.1" + strings.Repeat(";", MaxHeaderBytes-20)}},
		{"Forwarded": {"for=1.1.1.1" + manyHops(15, "", func(i int) string { return fmt.Sprintf(";x%d=%s", i, strings.Repeat("a", 500)) })}},
		{"X-Forwarded-For": {strings.Repeat(",", MaxHeaderBytes-20) + "198.51.100.1"}, "X-Forwarded-Proto": {"https"}},
	}
}

// sourceFor is the Source that reads h: Forwarded when h has it.
func sourceFor(h http.Header) Source {
	if _, ok := h["Forwarded"]; ok {
		return Forwarded
	}
	return XForwardedFor
}

// TestResolve_WorstCaseAllocs: the worst-case headers resolve with a small,
// fixed number of allocations, whatever their length (their speed is
// measured by BenchmarkResolve_WorstCase, not asserted here).
func TestResolve_WorstCaseAllocs(t *testing.T) {
	trusted := testTrusted(t)
	remote := netip.MustParseAddr("10.0.0.1")
	for i, h := range worstCaseHeaders() {
		if n := testing.AllocsPerRun(20, func() { _, _ = Resolve(remote, h, trusted, sourceFor(h)) }); n > 4 {
			t.Errorf("input %d: %v allocations per Resolve", i, n)
		}
	}
}
