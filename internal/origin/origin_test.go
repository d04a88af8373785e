package origin

import (
	"errors"
	"strings"
	"testing"
)

// originCases is shared by TestParseOrigin and the fuzz seeds.
var originCases = []struct {
	name string
	in   string
	want Origin
	err  error
}{
	// Accepted.
	{"https", "https://example.com", Origin{"https", "example.com", 443}, nil},
	{"http", "http://example.com", Origin{"http", "example.com", 80}, nil},
	{"port", "https://example.com:8443", Origin{"https", "example.com", 8443}, nil},
	{"https default port explicit", "https://example.com:443", Origin{"https", "example.com", 443}, nil},
	{"http default port explicit", "http://example.com:80", Origin{"http", "example.com", 80}, nil},
	{"uppercase", "HTTPS://App.Example.COM", Origin{"https", "app.example.com", 443}, nil},
	{"subdomain", "https://a.b.example.com", Origin{"https", "a.b.example.com", 443}, nil},
	{"punycode", "https://xn--bcher-kva.example", Origin{"https", "xn--bcher-kva.example", 443}, nil},
	{"localhost", "http://localhost:3000", Origin{"http", "localhost", 3000}, nil},
	{"IPv4", "http://127.0.0.1:8080", Origin{"http", "127.0.0.1", 8080}, nil},
	{"IPv6", "http://[::1]:8080", Origin{"http", "::1", 8080}, nil},
	{"IPv6 no port", "https://[2001:db8::1]", Origin{"https", "2001:db8::1", 443}, nil},
	{"IPv6 canonicalized", "https://[2001:DB8:0::1]", Origin{"https", "2001:db8::1", 443}, nil},

	// Refused.
	{"empty", "", Origin{}, ErrEmpty},
	{"null", "null", Origin{}, ErrNull},
	{"NULL", "NULL", Origin{}, ErrNull},
	{"too long", "https://" + strings.Repeat("a", MaxLength), Origin{}, ErrTooLong},
	{"file", "file://", Origin{}, ErrScheme},
	{"file path", "file:///etc/passwd", Origin{}, ErrScheme},
	{"chrome extension", "chrome-extension://abcdef", Origin{}, ErrScheme},
	{"wss", "wss://example.com", Origin{}, ErrScheme},
	{"no scheme", "example.com", Origin{}, ErrNoScheme},
	{"scheme relative", "//example.com", Origin{}, ErrNoScheme},
	{"slash", "https://a.com/", Origin{}, ErrPath},
	{"path", "https://a.com/x", Origin{}, ErrPath},
	{"backslash", "https://a.com\\@b.com", Origin{}, ErrPath},
	{"userinfo", "https://user@a.com", Origin{}, ErrUserinfo},
	{"userinfo trick", "https://a.com@evil.net", Origin{}, ErrUserinfo},
	{"query", "https://a.com?x", Origin{}, ErrQuery},
	{"fragment", "https://a.com#x", Origin{}, ErrFragment},
	{"empty port", "https://a.com:", Origin{}, ErrEmptyPort},
	{"port zero", "https://a.com:0", Origin{}, ErrPort},
	{"port too big", "https://a.com:65536", Origin{}, ErrPort},
	{"port leading zero", "https://a.com:0443", Origin{}, ErrPort},
	{"port letters", "https://a.com:x", Origin{}, ErrPort},
	{"empty host", "https://", Origin{}, ErrEmptyHost},
	{"empty host port", "https://:443", Origin{}, ErrEmptyHost},
	{"leading space", " https://a.com", Origin{}, ErrSpace},
	{"trailing space", "https://a.com ", Origin{}, ErrSpace},
	{"inner tab", "https://a\t.com", Origin{}, ErrSpace},
	{"CRLF", "https://a.com\r\n", Origin{}, ErrSpace},
	{"DEL", "https://a.com\x7f", Origin{}, ErrSpace},
	{"non-ASCII", "https://bücher.example", Origin{}, ErrNonASCII},
	{"non-ASCII long s", "httpſ://a.com", Origin{}, ErrNonASCII},
	{"trailing dot", "https://example.com.", Origin{}, ErrTrailingDot},
	{"empty label", "https://a..com", Origin{}, ErrEmptyLabel},
	{"underscore", "https://a_b.com", Origin{}, ErrHostChar},
	{"star", "https://*.example.com", Origin{}, ErrHostChar},
	{"hyphen", "https://-a.com", Origin{}, ErrLabelHyphen},
	{"label too long", "https://" + strings.Repeat("a", 64) + ".com", Origin{}, ErrLabelTooLong},
	{"host too long", "https://" + longHost(254), Origin{}, ErrHostTooLong},
	{"short IPv4", "http://127.1", Origin{}, ErrNumericHost},
	{"unbracketed IPv6", "http://::1", Origin{}, ErrUnbracketedIPv6},
	{"bad IPv6", "http://[::x]", Origin{}, ErrIPv6},
	{"IPv6 zone", "http://[fe80::1%eth0]", Origin{}, ErrIPv6Zone},
	{"unclosed bracket", "http://[::1", Origin{}, ErrBracket},
}

func TestParseOrigin(t *testing.T) {
	for _, tc := range originCases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOrigin(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("ParseOrigin(%q) = %#v, %v; want error %q", tc.in, o, err, tc.err)
				}
				if o != (Origin{}) {
					t.Errorf("ParseOrigin(%q) returned %#v with an error", tc.in, o)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOrigin(%q): %v", tc.in, err)
			}
			if o != tc.want {
				t.Fatalf("ParseOrigin(%q) = %#v, want %#v", tc.in, o, tc.want)
			}
			again, err := ParseOrigin(o.String())
			if err != nil || again != o {
				t.Errorf("re-parse of %q = %#v, %v; want %#v", o.String(), again, err, o)
			}
		})
	}
}

func TestOriginString(t *testing.T) {
	for _, tc := range []struct {
		o    Origin
		want string
	}{
		{Origin{"https", "example.com", 443}, "https://example.com"},
		{Origin{"http", "example.com", 80}, "http://example.com"},
		{Origin{"https", "example.com", 80}, "https://example.com:80"},
		{Origin{"http", "::1", 8080}, "http://[::1]:8080"},
		{Origin{"https", "2001:db8::1", 443}, "https://[2001:db8::1]"},
		{Origin{}, ""},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.o.String(); got != tc.want {
				t.Errorf("%#v.String() = %q, want %q", tc.o, got, tc.want)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		name   string
		origin string
		host   string
		tls    bool
		want   bool
	}{
		{"https default port", "https://example.com", "example.com", true, true},
		{"https explicit default port in Host", "https://example.com", "example.com:443", true, true},
		{"https explicit default port in Origin", "https://example.com:443", "example.com", true, true},
		{"http default port", "http://example.com", "example.com", false, true},
		{"http explicit port", "http://example.com:80", "example.com:80", false, true},
		{"custom port", "https://example.com:8443", "example.com:8443", true, true},
		{"Host uppercase", "https://example.com", "EXAMPLE.com", true, true},
		{"IPv4", "http://127.0.0.1:8080", "127.0.0.1:8080", false, true},
		{"IPv6 with port", "http://[::1]:8080", "[::1]:8080", false, true},
		{"IPv6 default port", "https://[::1]", "[::1]", true, true},
		{"IPv6 Host not canonical", "http://[2001:db8::1]:8080", "[2001:DB8:0:0::1]:8080", false, true},

		{"scheme mismatch http origin on tls", "http://example.com", "example.com", true, false},
		{"scheme mismatch https origin without tls", "https://example.com", "example.com", false, false},
		{"port mismatch", "https://example.com:8443", "example.com", true, false},
		{"default port mismatch", "https://example.com", "example.com:80", true, false},
		{"host mismatch", "https://evil.com", "example.com", true, false},
		{"subdomain is not same origin", "https://a.example.com", "example.com", true, false},
		{"suffix trick", "https://example.com.attacker.net", "example.com", true, false},
		{"Host trailing dot", "https://example.com", "example.com.", true, false},
		{"Host empty", "https://example.com", "", true, false},
		{"Host bad port", "https://example.com", "example.com:0443", true, false},
		{"Host empty port", "https://example.com", "example.com:", true, false},
		{"Host two ports", "https://example.com", "example.com:443:443", true, false},
		{"IPv6 mismatch", "http://[::1]:8080", "[::2]:8080", false, false},
		{"IPv6 port mismatch", "http://[::1]:8080", "[::1]:8081", false, false},
		{"IPv6 unbracketed Host", "http://[::1]", "::1", false, false},
		{"IPv6 zone in Host", "http://[fe80::1]", "[fe80::1%eth0]", false, false},
		{"IPv4 vs IPv6 mapped", "http://127.0.0.1", "[::ffff:127.0.0.1]", false, false},
		{"non-ASCII fold trick", "https://k.example", "\u212A.example", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOrigin(tc.origin)
			if err != nil {
				t.Fatalf("ParseOrigin(%q): %v", tc.origin, err)
			}
			if got := SameOrigin(o, tc.host, tc.tls); got != tc.want {
				t.Errorf("SameOrigin(%q, %q, %v) = %v, want %v", tc.origin, tc.host, tc.tls, got, tc.want)
			}
		})
	}
	if SameOrigin(Origin{}, "", false) || SameOrigin(Origin{Scheme: "http", Port: 80}, ":80", false) {
		t.Error("SameOrigin matched an empty host")
	}
}

// TestParseOriginNoAlloc checks that lowercase input is returned as
// substrings.
func TestParseOriginNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not reliable under -race")
	}
	for _, in := range []string{
		"https://app.example.com",
		"https://a.b.example.com:8443",
		"http://127.0.0.1:8080",
		"http://[::1]:8080",
		"https://xn--bcher-kva.example",
	} {
		t.Run(in, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := ParseOrigin(in); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("ParseOrigin(%q): %v allocs, want 0", in, allocs)
			}
		})
	}
}
