package origin

import (
	"testing"
)

// matchCases is shared by TestMatch and the FuzzMatch seeds.
var matchCases = []struct {
	name    string
	pattern string
	origin  string
	want    bool
}{
	{"exact", "https://example.com", "https://example.com", true},
	{"exact case-insensitive", "https://Example.com", "HTTPS://EXAMPLE.COM", true},
	{"exact other host", "https://example.com", "https://example.org", false},
	{"exact not subdomain", "https://example.com", "https://a.example.com", false},
	{"exact scheme mismatch", "https://example.com", "http://example.com", false},
	{"exact port mismatch", "https://example.com", "https://example.com:8443", false},
	{"default port folded in pattern", "https://example.com:443", "https://example.com", true},
	{"default port folded in origin", "https://example.com", "https://example.com:443", true},
	{"default port folded both", "http://example.com:80", "http://example.com:80", true},
	{"http default port", "http://example.com", "http://example.com:80", true},
	{"https pattern port 80", "https://example.com:80", "https://example.com", false},
	{"explicit port", "http://localhost:3000", "http://localhost:3000", true},
	{"explicit port mismatch", "http://localhost:3000", "http://localhost:3001", false},
	{"IPv4", "http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
	{"IPv6", "http://[::1]:8080", "http://[::1]:8080", true},
	{"IPv6 canonical both sides", "http://[0:0::1]:8080", "http://[::0:1]:8080", true},
	{"IDN pattern punycode origin", "https://bücher.example", "https://xn--bcher-kva.example", true},
	{"IDN wildcard", "https://*.münchen.example", "https://a.xn--mnchen-3ya.example", true},
	{"wildcard one level", "https://*.example.com", "https://a.example.com", true},
	{"wildcard two levels", "https://*.example.com", "https://a.b.example.com", true},
	{"wildcard not apex", "https://*.example.com", "https://example.com", false},
	{"wildcard scheme", "https://*.example.com", "http://a.example.com", false},
	{"wildcard port", "https://*.example.com", "https://a.example.com:8443", false},
	{"wildcard explicit port", "https://*.example.com:8443", "https://a.example.com:8443", true},
	{"wildcard default port folded", "https://*.example.com:443", "https://a.example.com:443", true},
	{"wildcard not prefix glob", "https://*.example.com", "https://notexample.com", false},
	{"wildcard hyphen glue", "https://*.example.com", "https://evil-example.com", false},
	{"wildcard suffix trick", "https://*.example.com", "https://example.com.attacker.net", false},
	{"wildcard suffix trick subdomain", "https://*.example.com", "https://evil.example.com.attacker.net", false},
	{"wildcard different TLD", "https://*.example.com", "https://a.example.co", false},
	{"wildcard longer TLD", "https://*.example.com", "https://a.example.community", false},
}

func TestMatch(t *testing.T) {
	for _, tc := range matchCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePattern(tc.pattern)
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tc.pattern, err)
			}
			o, err := ParseOrigin(tc.origin)
			if err != nil {
				t.Fatalf("ParseOrigin(%q): %v", tc.origin, err)
			}
			if got := p.Match(o); got != tc.want {
				t.Errorf("%q.Match(%q) = %v, want %v", tc.pattern, tc.origin, got, tc.want)
			}
			i, ok := NewSet([]Pattern{p}).Match(o)
			if ok != tc.want || (ok && i != 0) || (!ok && i != -1) {
				t.Errorf("Set{%q}.Match(%q) = %d, %v; want %v", tc.pattern, tc.origin, i, ok, tc.want)
			}
		})
	}
}

// cswshAttempt checks that none of origins is allowed by patterns.
func cswshAttempt(t *testing.T, patterns []string, origins ...string) {
	t.Helper()
	ps := make([]Pattern, len(patterns))
	for i, s := range patterns {
		ps[i] = MustParsePattern(s)
	}
	set := NewSet(ps)
	for _, s := range origins {
		t.Run(s, func(t *testing.T) {
			o, err := ParseOrigin(s)
			if err != nil {
				return // refused at parse time: fine
			}
			if i, ok := set.Match(o); ok {
				t.Errorf("origin %q allowed by pattern %q", s, patterns[i])
			}
		})
	}
}

func TestCSWSH_WildcardSuffixTrick(t *testing.T) {
	cswshAttempt(t, []string{"https://*.example.com"},
		"https://evil.example.com.attacker.net",
		"https://example.com.attacker.net",
		"https://notexample.com",
		"https://evil-example.com",
		"https://example.com",
		"https://xexample.com",
		"https://example.comm",
		"https://a.example.com.",
	)
}

func TestCSWSH_PrefixGlob(t *testing.T) {
	// "h*" is refused at parse time; nothing can make it a prefix match.
	if _, err := ParsePattern("h*"); err == nil {
		t.Fatal(`ParsePattern("h*") succeeded`)
	}
	cswshAttempt(t, []string{"https://app.example.com"},
		"https://app.example.com.attacker.net",
		"https://app.example.community",
		"https://app.example.co",
		"https://xapp.example.com",
		"https://app-example.com",
	)
}

func TestCSWSH_UserinfoAndPathTricks(t *testing.T) {
	cswshAttempt(t, []string{"https://example.com"},
		"https://example.com@attacker.net",
		"https://attacker.net/https://example.com",
		"https://attacker.net#https://example.com",
		"https://attacker.net?https://example.com",
		"https://attacker.net\\.example.com",
		"https://example.com.",
		"http://example.com",
		"null",
	)
}

func TestCSWSH_DefaultPortConfusion(t *testing.T) {
	cswshAttempt(t, []string{"https://example.com"},
		"https://example.com:80",
		"https://example.com:8443",
		"http://example.com:443",
	)
}

func TestCSWSH_UnicodeCaseFold(t *testing.T) {
	// U+212A KELVIN SIGN folds to "k" under Unicode rules; origins must
	// be ASCII and are never folded that way.
	cswshAttempt(t, []string{"https://k.example"}, "https://\u212A.example")
}

func TestSetFirstMatchWins(t *testing.T) {
	ps := []Pattern{
		MustParsePattern("https://*.example.com"),
		MustParsePattern("https://a.example.com"),
		MustParsePattern("https://other.org"),
		MustParsePattern("https://other.org"), // duplicate
		MustParsePattern("https://*.a.example.com"),
		{}, // zero: keeps its index, never matches
		MustParsePattern("http://b.example.net"),
	}
	set := NewSet(ps)
	if set.Len() != len(ps) {
		t.Fatalf("Len() = %d", set.Len())
	}
	for _, tc := range []struct {
		origin string
		index  int
	}{
		{"https://a.example.com", 0},
		{"https://x.a.example.com", 0},
		{"https://other.org", 2},
		{"http://b.example.net", 6},
		{"https://example.com", -1},
		{"https://nope.net", -1},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			i, ok := set.Match(mustOrigin(t, tc.origin))
			if i != tc.index || ok != (tc.index >= 0) {
				t.Errorf("Match(%q) = %d, %v; want %d", tc.origin, i, ok, tc.index)
			}
			if ok && !set.Pattern(i).Match(mustOrigin(t, tc.origin)) {
				t.Errorf("Pattern(%d) does not match", i)
			}
		})
	}

	// An exact pattern before a wildcard wins.
	set = NewSet([]Pattern{MustParsePattern("https://z.org"), MustParsePattern("https://a.example.com"), MustParsePattern("https://*.example.com")})
	if i, ok := set.Match(mustOrigin(t, "https://a.example.com")); i != 1 || !ok {
		t.Errorf("Match = %d, %v; want 1", i, ok)
	}
}

func TestSetEmpty(t *testing.T) {
	o := mustOrigin(t, "https://example.com")
	for name, s := range map[string]*Set{"nil": nil, "empty": NewSet(nil), "zero patterns": NewSet(make([]Pattern, 3))} {
		t.Run(name, func(t *testing.T) {
			if i, ok := s.Match(o); ok || i != -1 {
				t.Errorf("Match = %d, %v", i, ok)
			}
			if i, ok := s.Match(Origin{}); ok || i != -1 {
				t.Errorf("Match(zero) = %d, %v", i, ok)
			}
		})
	}
	if (*Set)(nil).Len() != 0 {
		t.Error("nil Set Len != 0")
	}
}

func TestNewSetCopies(t *testing.T) {
	ps := []Pattern{MustParsePattern("https://example.com")}
	set := NewSet(ps)
	ps[0] = MustParsePattern("https://evil.com")
	if _, ok := set.Match(mustOrigin(t, "https://evil.com")); ok {
		t.Error("Set saw a change to the caller's slice")
	}
}

func TestMatchNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not reliable under -race")
	}
	set := NewSet([]Pattern{
		MustParsePattern("https://app.example.com"),
		MustParsePattern("https://*.example.org"),
		MustParsePattern("http://[::1]:8080"),
	})
	for _, in := range []string{"https://app.example.com", "https://a.b.example.org", "http://[::1]:8080", "https://miss.example.net"} {
		t.Run(in, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				o, err := ParseOrigin(in)
				if err != nil {
					t.Fatal(err)
				}
				set.Match(o)
				SameOrigin(o, "app.example.com", true)
			})
			if allocs != 0 {
				t.Errorf("ParseOrigin+Match(%q): %v allocs, want 0", in, allocs)
			}
		})
	}
}

func mustOrigin(t testing.TB, s string) Origin {
	t.Helper()
	o, err := ParseOrigin(s)
	if err != nil {
		t.Fatalf("ParseOrigin(%q): %v", s, err)
	}
	return o
}
