package origin

import (
	"errors"
	"testing"
)

// hostCases are the Host-allowlist table cases; the fuzz targets are
// seeded from them.
var hostCases = []struct {
	pattern string
	host    string
	tls     bool
	want    bool
}{
	{"app.example.com", "app.example.com", true, true},
	{"app.example.com", "APP.Example.com", true, true},
	{"app.example.com", "app.example.com:443", true, true},
	{"app.example.com", "app.example.com:80", false, true},
	{"app.example.com", "app.example.com:8443", true, false},
	{"app.example.com", "app.example.com:443", false, false},
	{"app.example.com", "evil.example.com", true, false},
	{"app.example.com", "app.example.com.", true, false},
	{"app.example.com", "app.example.com.evil", true, false},
	{"app.example.com:8443", "app.example.com:8443", true, true},
	{"app.example.com:8443", "app.example.com:8443", false, true},
	{"app.example.com:8443", "app.example.com", true, false},
	{"*.example.com", "a.b.example.com", true, true},
	{"*.example.com", "example.com", true, false},
	{"*.example.com", "a.example.com:8080", false, false},
	{"*.example.com:8080", "a.example.com:8080", false, true},
	{"localhost:8080", "localhost:8080", false, true},
	{"localhost:8080", "localhost:8081", false, false},
	{"127.0.0.1:9000", "127.0.0.1:9000", false, true},
	{"[::1]:9000", "[0:0::1]:9000", false, true},
	{"[::1]", "[::1]", true, true},
	{"https://app.example.com", "app.example.com", true, true},
	{"https://app.example.com", "app.example.com:80", false, false},
	{"https://app.example.com", "app.example.com:443", false, false},
	{"http://localhost:8080", "localhost:8080", false, true},
	{"http://localhost:8080", "localhost:8080", true, false},
	{"app.example.com", "", true, false},
	{"app.example.com", "app.example.com/x", true, false},
	{"app.example.com", "user@app.example.com", true, false},
	{"app.example.com", "app.example.com:", true, false},
	{"app.example.com", "app.example.com:0443", true, false},
	{"app.example.com", "app.example.com:443:443", true, false},
}

func TestHostPattern_Match(t *testing.T) {
	for _, tc := range hostCases {
		p, err := ParseHostPattern(tc.pattern)
		if err != nil {
			t.Fatalf("ParseHostPattern(%q): %v", tc.pattern, err)
		}
		o, err := RequestOrigin(tc.host, tc.tls)
		got := err == nil && p.Match(o)
		if got != tc.want {
			t.Errorf("%q matches Host %q (tls %v) = %v (%v), want %v", tc.pattern, tc.host, tc.tls, got, err, tc.want)
		}
		s := NewHostSet([]HostPattern{{}, p})
		if i, ok := s.Match(o); err == nil && (ok != tc.want || ok && i != 1) {
			t.Errorf("HostSet.Match = %d, %v", i, ok)
		}
	}
}

func TestParseHostPattern_Refusals(t *testing.T) {
	for in, want := range map[string]error{
		"":                      ErrEmpty,
		"*":                     ErrWildcardBroad,
		"*.com":                 ErrWildcardBroad,
		"example.com/":          ErrPath,
		"example.com.":          ErrTrailingDot,
		"a.*.example.com":       ErrWildcardPosition,
		"example.com:0":         ErrPort,
		"ftp://example.com":     ErrScheme,
		"https://*":             ErrWildcardBroad,
		"user@example.com":      ErrUserinfo,
		"2001:db8::1":           ErrUnbracketedIPv6,
		"exa mple.com":          ErrSpace,
		"https://example.com/x": ErrPath,
	} {
		if _, err := ParseHostPattern(in); !errors.Is(err, want) {
			t.Errorf("ParseHostPattern(%q) error %v, want %v", in, err, want)
		}
	}
}

func TestHostPattern_String(t *testing.T) {
	for in, want := range map[string]string{
		"App.Example.com":         "app.example.com",
		"app.example.com:80":      "app.example.com:80",
		"*.Example.com:8443":      "*.example.com:8443",
		"[0::1]:3000":             "[::1]:3000",
		"HTTPS://app.example.com": "https://app.example.com",
		"bücher.example":          "xn--bcher-kva.example",
	} {
		p, err := ParseHostPattern(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseHostPattern(%q).String() = %q, %v; want %q", in, p.String(), err, want)
		}
	}
	if (HostPattern{}).String() != "" || (HostPattern{}).Match(Origin{Scheme: "http", Host: "x", Port: 80}) {
		t.Error("the zero HostPattern is not empty")
	}
}

func TestIsLiteralOrLocalhost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:8080": true, "127.0.0.1": true, "127.0.0.1:8080": true, "[::1]:80": true,
		"192.168.1.20:3000": true, "[2001:db8::1]": true,
		"rebind.attacker.example": false, "localhost.attacker.example": false, "a.localhost": false,
		"myapp.local:8080": false, "127.0.0.1.nip.io": false,
	} {
		o, err := RequestOrigin(host, false)
		if err != nil {
			t.Fatalf("RequestOrigin(%q): %v", host, err)
		}
		if got := IsLiteralOrLocalhost(o); got != want {
			t.Errorf("IsLiteralOrLocalhost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestRequestOrigin_NoAlloc(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = RequestOrigin("app.example.com:8443", true) }); n != 0 {
		t.Errorf("RequestOrigin allocates %v times", n)
	}
}
