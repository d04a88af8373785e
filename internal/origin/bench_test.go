package origin

import "testing"

func benchSet() *Set {
	return NewSet([]Pattern{
		MustParsePattern("https://app.example.com"),
		MustParsePattern("https://admin.example.com"),
		MustParsePattern("http://localhost:3000"),
		MustParsePattern("https://*.tenants.example.org"),
		MustParsePattern("https://*.preview.example.net"),
	})
}

func BenchmarkParseOriginMatch(b *testing.B) {
	set := benchSet()
	for _, bc := range []struct{ name, origin string }{
		{"exact", "https://app.example.com"},
		{"wildcard", "https://acme.eu.tenants.example.org"},
		{"miss", "https://evil.example.com.attacker.net"},
		{"ipv6", "http://[::1]:3000"},
		{"uppercase", "HTTPS://App.Example.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o, err := ParseOrigin(bc.origin)
				if err != nil {
					b.Fatal(err)
				}
				set.Match(o)
			}
		})
	}
}

func BenchmarkMatch(b *testing.B) {
	set := benchSet()
	o := mustOrigin(b, "https://acme.eu.tenants.example.org")
	b.ReportAllocs()
	for b.Loop() {
		set.Match(o)
	}
}

func BenchmarkSameOrigin(b *testing.B) {
	o := mustOrigin(b, "https://app.example.com")
	b.ReportAllocs()
	for b.Loop() {
		SameOrigin(o, "app.example.com", true)
	}
}

func BenchmarkParsePattern(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePattern("https://*.bücher.example:8443"); err != nil {
			b.Fatal(err)
		}
	}
}
