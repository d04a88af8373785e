package origin

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParsePattern(f *testing.F) {
	for _, tc := range patternCases {
		f.Add(tc.in)
	}
	for _, tc := range matchCases {
		f.Add(tc.pattern)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePattern(s)
		if err != nil {
			if p != (Pattern{}) {
				t.Fatalf("ParsePattern(%q) returned %#v with error %v", s, p, err)
			}
			return
		}
		str := p.String()
		q, err := ParsePattern(str)
		if err != nil {
			t.Fatalf("ParsePattern(%q) ok, but its String %q does not re-parse: %v", s, str, err)
		}
		if q != p {
			t.Fatalf("ParsePattern(%q) = %#v; re-parse of %q = %#v", s, p, str, q)
		}
		if q.String() != str {
			t.Fatalf("String not stable: %q then %q", str, q.String())
		}
		if str != strings.ToLower(str) || !isASCII(str) {
			t.Fatalf("canonical form %q is not lowercase ASCII", str)
		}
		if p.scheme != "http" && p.scheme != "https" || p.port == 0 {
			t.Fatalf("bad pattern %#v", p)
		}
		if p.wildcard {
			if !strings.HasPrefix(p.host, ".") || strings.Count(p.host, ".") < 2 {
				t.Fatalf("wildcard suffix %q has fewer than two labels", p.host)
			}
		}
		// A canonical pattern is also a valid origin (without its "*.").
		o, err := ParseOrigin(strings.Replace(str, "*.", "", 1))
		if err != nil {
			t.Fatalf("canonical pattern %q is not a valid origin: %v", str, err)
		}
		if p.wildcard == p.Match(o) {
			t.Fatalf("%q.Match(%q) = %v", str, o, p.Match(o))
		}
	})
}

func FuzzParseOrigin(f *testing.F) {
	for _, tc := range originCases {
		f.Add(tc.in)
	}
	for _, tc := range matchCases {
		f.Add(tc.origin)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOrigin(s)
		if err != nil {
			if o != (Origin{}) {
				t.Fatalf("ParseOrigin(%q) returned %#v with error %v", s, o, err)
			}
			return
		}
		if o.Scheme != "http" && o.Scheme != "https" || o.Host == "" || o.Port == 0 {
			t.Fatalf("ParseOrigin(%q) = %#v", s, o)
		}
		if o.Host != strings.ToLower(o.Host) || !isASCII(o.Host) || strings.ContainsAny(o.Host, "/?#@[]* %") {
			t.Fatalf("ParseOrigin(%q) host %q not canonical", s, o.Host)
		}
		str := o.String()
		again, err := ParseOrigin(str)
		if err != nil || again != o {
			t.Fatalf("ParseOrigin(%q) = %#v; re-parse of %q = %#v, %v", s, o, str, again, err)
		}
		if !asciiEqualFold(s, str) && !strings.Contains(s, "[") && !strings.HasSuffix(s, ":443") && !strings.HasSuffix(s, ":80") {
			t.Fatalf("ParseOrigin(%q).String() = %q changed more than case and default port", s, str)
		}
		// The origin is its own exact pattern and is same-origin with its own host.
		p, err := ParsePattern(str)
		if err != nil {
			t.Fatalf("origin %q is not a valid pattern: %v", str, err)
		}
		if !p.Match(o) {
			t.Fatalf("pattern %q does not match its own origin", str)
		}
		host := strings.TrimPrefix(str, o.Scheme+"://")
		if !SameOrigin(o, host, o.Scheme == "https") {
			t.Fatalf("SameOrigin(%q, %q) = false", str, host)
		}
		if SameOrigin(o, host, o.Scheme != "https") {
			t.Fatalf("SameOrigin(%q, %q) true with the other scheme", str, host)
		}
	})
}

// FuzzMatch checks Match against a label-by-label reference.
func FuzzMatch(f *testing.F) {
	for _, tc := range matchCases {
		f.Add(tc.pattern, tc.origin)
	}
	f.Add("https://*.example.com", "https://evil.example.com.attacker.net")
	f.Add("https://*.example.com", "https://notexample.com")
	f.Fuzz(func(t *testing.T, ps, os string) {
		p, err := ParsePattern(ps)
		if err != nil {
			return
		}
		o, err := ParseOrigin(os)
		if err != nil {
			return
		}
		got := p.Match(o)
		if i, ok := NewSet([]Pattern{p, p}).Match(o); ok != got || (ok && i != 0) {
			t.Fatalf("Set.Match = %d, %v; Pattern.Match = %v", i, ok, got)
		}
		want := o.Scheme == p.scheme && o.Port == p.port
		if p.wildcard {
			suffix := strings.Split(strings.TrimPrefix(p.host, "."), ".")
			labels := strings.Split(o.Host, ".")
			if len(labels) <= len(suffix) || strings.Contains(o.Host, ":") {
				want = false
			}
			for i := 1; want && i <= len(suffix); i++ {
				if labels[len(labels)-i] != suffix[len(suffix)-i] {
					want = false
				}
			}
			if got && !(strings.HasSuffix(o.Host, p.host) && len(o.Host) > len(p.host)) {
				t.Fatalf("%q matched %q, whose host does not end in %q on a label boundary", ps, os, p.host)
			}
		} else {
			want = want && o.Host == p.host
		}
		if got != want {
			t.Fatalf("%q.Match(%q) = %v, reference says %v", p, o, got, want)
		}
		if got && !utf8.ValidString(o.Host) {
			t.Fatal("matched a non-UTF-8 host")
		}
	})
}

func FuzzParseHostPattern(f *testing.F) {
	for _, tc := range hostCases {
		f.Add(tc.pattern, tc.host, tc.tls)
	}
	f.Add("*.example.com:8080", "a.example.com:8080", false)
	f.Fuzz(func(t *testing.T, s, host string, tls bool) {
		p, err := ParseHostPattern(s)
		if err != nil {
			if p != (HostPattern{}) {
				t.Fatalf("ParseHostPattern(%q) returned %#v with error %v", s, p, err)
			}
		} else {
			str := p.String()
			q, err := ParseHostPattern(str)
			if err != nil || q != p {
				t.Fatalf("ParseHostPattern(%q) = %#v; re-parse of %q = %#v, %v", s, p, str, q, err)
			}
		}
		o, err := RequestOrigin(host, tls)
		if err != nil {
			if o != (Origin{}) {
				t.Fatalf("RequestOrigin(%q) returned %#v with error %v", host, o, err)
			}
			return
		}
		// A request origin is a valid origin, and its own host (with its
		// port) is a pattern that matches it.
		back, err := ParseOrigin(o.String())
		if err != nil || back != o {
			t.Fatalf("RequestOrigin(%q) = %#v; ParseOrigin(%q) = %#v, %v", host, o, o.String(), back, err)
		}
		h := o.Host
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		self, err := ParseHostPattern(h + ":" + strconv.Itoa(int(o.Port)))
		if err != nil || !self.Match(o) {
			t.Fatalf("the request's own host does not match it: %q, %v", host, err)
		}
		if p.Match(o) && !p.anyScheme && p.p.scheme != o.Scheme {
			t.Fatalf("%q matched %q across schemes", s, host)
		}
	})
}
