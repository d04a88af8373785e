package origin

import (
	"errors"
	"strings"
	"testing"
)

// patternCases is shared by TestParsePattern and the fuzz seeds. want is
// the canonical form when err is nil.
var patternCases = []struct {
	name string
	in   string
	want string
	err  error
}{
	// Accepted.
	{"exact https", "https://example.com", "https://example.com", nil},
	{"exact http", "http://example.com", "http://example.com", nil},
	{"uppercase scheme and host", "HTTPS://Example.COM", "https://example.com", nil},
	{"mixed case scheme", "hTTp://a.example", "http://a.example", nil},
	{"explicit port", "https://example.com:8443", "https://example.com:8443", nil},
	{"https default port folded", "https://example.com:443", "https://example.com", nil},
	{"http default port folded", "http://example.com:80", "http://example.com", nil},
	{"https port 80 kept", "https://example.com:80", "https://example.com:80", nil},
	{"http port 443 kept", "http://example.com:443", "http://example.com:443", nil},
	{"port 1", "http://example.com:1", "http://example.com:1", nil},
	{"port 65535", "http://example.com:65535", "http://example.com:65535", nil},
	{"single label", "http://localhost:3000", "http://localhost:3000", nil},
	{"digits and hyphens", "https://a-1.b2-c.example", "https://a-1.b2-c.example", nil},
	{"IPv4", "http://127.0.0.1:8080", "http://127.0.0.1:8080", nil},
	{"IPv6 loopback", "http://[::1]:3000", "http://[::1]:3000", nil},
	{"IPv6 canonicalized", "https://[2001:DB8:0:0:0:0:0:1]", "https://[2001:db8::1]", nil},
	{"IPv6 default port", "https://[::1]:443", "https://[::1]", nil},
	{"IPv4-mapped IPv6", "http://[::ffff:7f00:1]", "http://[::ffff:127.0.0.1]", nil},
	{"wildcard", "https://*.example.com", "https://*.example.com", nil},
	{"wildcard port", "https://*.example.com:8443", "https://*.example.com:8443", nil},
	{"wildcard default port", "https://*.example.com:443", "https://*.example.com", nil},
	{"wildcard uppercase", "HTTPS://*.EXAMPLE.com", "https://*.example.com", nil},
	{"wildcard deep suffix", "https://*.a.b.example.com", "https://*.a.b.example.com", nil},
	{"IDN", "https://bücher.example", "https://xn--bcher-kva.example", nil},
	{"IDN uppercase", "https://BÜCHER.example", "https://xn--bcher-kva.example", nil},
	{"IDN wildcard", "https://*.münchen.example", "https://*.xn--mnchen-3ya.example", nil},
	{"IDN ideographic full stop", "https://bücher\u3002example", "https://xn--bcher-kva.example", nil},
	{"IDN given as punycode", "https://XN--BCHER-KVA.example", "https://xn--bcher-kva.example", nil},
	{"Kelvin sign lowercases to ASCII", "https://\u212Aa.example", "https://ka.example", nil},
	{"63-byte label", "https://" + strings.Repeat("a", 63) + ".example", "https://" + strings.Repeat("a", 63) + ".example", nil},
	{"253-byte host", "https://" + longHost(253), "https://" + longHost(253), nil},

	// Refused: overall shape.
	{"empty", "", "", ErrEmpty},
	{"too long", "https://" + strings.Repeat("a", MaxLength), "", ErrTooLong},
	{"bare star", "*", "", ErrBareWildcard},
	{"prefix glob", "h*", "", ErrNoScheme},
	{"no scheme", "example.com", "", ErrNoScheme},
	{"no scheme wildcard", "*.example.com", "", ErrNoScheme},
	{"scheme relative", "//example.com", "", ErrNoScheme},
	{"empty scheme", "://example.com", "", ErrScheme},
	{"ws scheme", "ws://example.com", "", ErrScheme},
	{"file scheme", "file:///etc/passwd", "", ErrScheme},
	{"long-s scheme", "httpſ://example.com", "", ErrScheme},
	{"scheme with star", "http*://example.com", "", ErrScheme},
	{"invalid UTF-8", "https://ex\xffample.com", "", ErrInvalidUTF8},
	{"leading space", " https://example.com", "", ErrSpace},
	{"trailing newline", "https://example.com\n", "", ErrSpace},
	{"inner space", "https://exa mple.com", "", ErrSpace},
	{"tab", "https://example.com\t", "", ErrSpace},
	{"no-break space", "https://example.com\u00a0", "", ErrSpace},
	{"NUL", "https://example.com\x00", "", ErrSpace},
	{"slash path", "https://example.com/", "", ErrPath},
	{"path", "https://example.com/app", "", ErrPath},
	{"port then path", "https://example.com:443/", "", ErrPath},
	{"backslash", "https://example.com\\", "", ErrPath},
	{"doubled scheme", "https://https://example.com", "", ErrPath},
	{"query", "https://example.com?a=1", "", ErrQuery},
	{"fragment", "https://example.com#x", "", ErrFragment},
	{"userinfo", "https://user@example.com", "", ErrUserinfo},
	{"userinfo password", "https://user:pw@example.com", "", ErrUserinfo},
	{"userinfo trick", "https://example.com@attacker.net", "", ErrUserinfo},

	// Refused: host.
	{"empty host", "https://", "", ErrEmptyHost},
	{"empty host with port", "https://:443", "", ErrEmptyHost},
	{"trailing dot", "https://example.com.", "", ErrTrailingDot},
	{"trailing dot with port", "https://example.com.:443", "", ErrTrailingDot},
	{"leading dot", "https://.example.com", "", ErrEmptyLabel},
	{"double dot", "https://a..example.com", "", ErrEmptyLabel},
	{"underscore", "https://a_b.example.com", "", ErrHostChar},
	{"percent", "https://a%2eb.example.com", "", ErrHostChar},
	{"leading hyphen", "https://-a.example.com", "", ErrLabelHyphen},
	{"trailing hyphen", "https://a-.example.com", "", ErrLabelHyphen},
	{"64-byte label", "https://" + strings.Repeat("a", 64) + ".example", "", ErrLabelTooLong},
	{"254-byte host", "https://" + longHost(254), "", ErrHostTooLong},
	{"IDN label too long", "https://" + strings.Repeat("ü", 64) + ".example", "", ErrLabelTooLong},
	{"IDN encodes too long", "https://" + spreadRunes(30) + ".example", "", ErrLabelTooLong},
	{"IDN symbol", "https://a\u2665b.example", "", ErrIDN},
	{"IDN zero width space", "https://a\u200bb.example", "", ErrIDN},
	{"IDN fullwidth solidus", "https://a\uff0fb.example", "", ErrIDN},
	{"short IPv4", "http://127.1", "", ErrNumericHost},
	{"IPv4 leading zero", "http://127.0.0.01", "", ErrNumericHost},
	{"IPv4 out of range", "http://256.0.0.1", "", ErrNumericHost},
	{"hex IPv4", "http://0x7f.0.0.1", "", ErrNumericHost},
	{"numeric TLD", "http://example.123", "", ErrNumericHost},
	{"hex TLD", "http://example.0x1f", "", ErrNumericHost},

	// Refused: port.
	{"empty port", "https://example.com:", "", ErrEmptyPort},
	{"port zero", "https://example.com:0", "", ErrPort},
	{"port leading zero", "https://example.com:0443", "", ErrPort},
	{"port too big", "https://example.com:65536", "", ErrPort},
	{"port six digits", "https://example.com:100000", "", ErrPort},
	{"port sign", "https://example.com:+443", "", ErrPort},
	{"port letters", "https://example.com:https", "", ErrPort},
	{"port fullwidth digits", "https://example.com:\uff18\uff10", "", ErrPort},

	// Refused: IPv6.
	{"unbracketed IPv6", "http://::1", "", ErrUnbracketedIPv6},
	{"two ports", "http://example.com:80:80", "", ErrUnbracketedIPv6},
	{"unclosed bracket", "http://[::1", "", ErrBracket},
	{"stray bracket", "http://a]b.com", "", ErrBracket},
	{"junk after bracket", "http://[::1]x", "", ErrBracket},
	{"nested bracket", "http://[[::1]]", "", ErrBracket},
	{"empty brackets", "http://[]", "", ErrEmptyHost},
	{"bad IPv6", "http://[::g]", "", ErrIPv6},
	{"IPv4 in brackets", "http://[127.0.0.1]", "", ErrIPv6},
	{"IPv6 zone", "http://[fe80::1%25eth0]", "", ErrIPv6Zone},

	// Refused: wildcards.
	{"wildcard host only", "https://*", "", ErrWildcardBroad},
	{"wildcard host only with port", "https://*:443", "", ErrWildcardBroad},
	{"wildcard TLD", "https://*.com", "", ErrWildcardBroad},
	{"wildcard empty suffix", "https://*.", "", ErrWildcardBroad},
	{"wildcard inner", "https://a.*.com", "", ErrWildcardPosition},
	{"wildcard label prefix", "https://*a.example.com", "", ErrWildcardPosition},
	{"wildcard label suffix", "https://a*.example.com", "", ErrWildcardPosition},
	{"double star", "https://**.example.com", "", ErrWildcardPosition},
	{"wildcard last", "https://example.*", "", ErrWildcardPosition},
	{"wildcard twice", "https://*.*.example.com", "", ErrWildcardTwice},
	{"wildcard twice deeper", "https://*.a.*.example.com", "", ErrWildcardTwice},
	{"wildcard IPv4", "https://*.0.0.1", "", ErrWildcardIP},
	{"wildcard full IPv4", "https://*.127.0.0.1", "", ErrWildcardIP},
	{"wildcard IPv6", "https://*.[::1]", "", ErrWildcardIP},
	{"wildcard inside IPv6", "https://[*::1]", "", ErrWildcardIP},
	{"wildcard trailing dot", "https://*.example.com.", "", ErrTrailingDot},
}

// spreadRunes returns n distinct CJK runes far apart, a label of n runes
// whose punycode form is much longer than n bytes.
func spreadRunes(n int) string {
	r := make([]rune, n)
	for i := range r {
		r[i] = rune(0x4e00 + 397*i)
	}
	return string(r)
}

// longHost returns a valid host of exactly n bytes made of labels of up to
// 63 bytes.
func longHost(n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		l := min(63, n-b.Len())
		if b.Len() > 0 && l == 0 {
			l = 1
		}
		b.WriteString(strings.Repeat("a", l))
	}
	s := b.String()
	if len(s) != n || strings.HasSuffix(s, ".") {
		panic("longHost: cannot build host of that length")
	}
	return s
}

func TestParsePattern(t *testing.T) {
	seen := map[error]bool{}
	for _, tc := range patternCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePattern(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("ParsePattern(%q) = %v, %v; want error %q", tc.in, p, err, tc.err)
				}
				if p != (Pattern{}) {
					t.Errorf("ParsePattern(%q) returned non-zero pattern %#v with error", tc.in, p)
				}
				seen[tc.err] = true
				return
			}
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tc.in, err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("ParsePattern(%q).String() = %q, want %q", tc.in, got, tc.want)
			}
			q, err := ParsePattern(p.String())
			if err != nil || q != p {
				t.Errorf("re-parse of %q = %#v, %v; want %#v", p.String(), q, err, p)
			}
			if p.Wildcard() != strings.Contains(tc.want, "*") {
				t.Errorf("Wildcard() = %v", p.Wildcard())
			}
		})
	}
}

// TestErrorMessagesDistinct checks that every error has its own message.
func TestErrorMessagesDistinct(t *testing.T) {
	all := []error{ErrEmpty, ErrTooLong, ErrNull, ErrBareWildcard, ErrInvalidUTF8, ErrNonASCII,
		ErrSpace, ErrNoScheme, ErrScheme, ErrPath, ErrQuery, ErrFragment, ErrUserinfo, ErrEmptyHost,
		ErrEmptyPort, ErrPort, ErrHostTooLong, ErrTrailingDot, ErrEmptyLabel, ErrLabelTooLong,
		ErrHostChar, ErrLabelHyphen, ErrNumericHost, ErrIDN, ErrIPv6, ErrIPv6Zone,
		ErrUnbracketedIPv6, ErrBracket, ErrWildcardPosition, ErrWildcardTwice, ErrWildcardBroad,
		ErrWildcardIP, errPunycodeOverflow}
	msgs := map[string]bool{}
	for _, e := range all {
		if msgs[e.Error()] {
			t.Errorf("duplicate message %q", e.Error())
		}
		msgs[e.Error()] = true
		if strings.HasPrefix(e.Error(), "origin") || strings.HasPrefix(e.Error(), "wssec") {
			t.Errorf("message %q has a prefix", e.Error())
		}
	}
}

func TestZeroPattern(t *testing.T) {
	var p Pattern
	if p.String() != "" {
		t.Errorf("zero Pattern String() = %q", p.String())
	}
	if p.Match(Origin{}) || p.Match(Origin{Scheme: "https", Host: "example.com", Port: 443}) {
		t.Error("zero Pattern matched")
	}
}

func TestMustParsePattern(t *testing.T) {
	if got := MustParsePattern("https://a.example").String(); got != "https://a.example" {
		t.Errorf("MustParsePattern = %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParsePattern did not panic on a bad pattern")
		}
	}()
	MustParsePattern("h*")
}
