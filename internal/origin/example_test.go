package origin_test

import (
	"fmt"

	"github.com/wssec/wssec/internal/origin"
)

func ExampleSet_Match() {
	var ps []origin.Pattern
	for _, s := range []string{"https://app.example.com", "https://*.example.org"} {
		p, err := origin.ParsePattern(s)
		if err != nil {
			panic(err)
		}
		ps = append(ps, p)
	}
	set := origin.NewSet(ps)
	for _, h := range []string{
		"https://app.example.com",
		"https://a.b.example.org",
		"https://example.org",                  // the wildcard needs a subdomain
		"https://app.example.com.attacker.net", // not a suffix on a label boundary
	} {
		o, err := origin.ParseOrigin(h)
		if err != nil {
			fmt.Println(h, "refused:", err)
			continue
		}
		i, ok := set.Match(o)
		fmt.Println(h, ok, i)
	}
	// Output:
	// https://app.example.com true 0
	// https://a.b.example.org true 1
	// https://example.org false -1
	// https://app.example.com.attacker.net false -1
}

func ExampleParsePattern_incorrect() {
	// A string-prefix wildcard is the classic mistake; it is refused.
	for _, s := range []string{"h*", "*", "https://*.com", "https://example.com/"} {
		_, err := origin.ParsePattern(s)
		fmt.Printf("%q: %v\n", s, err)
	}
	// Output:
	// "h*": missing "scheme://": write "https://host[:port]"
	// "*": bare "*" is not allowed: list each origin, or use a wildcard such as "https://*.example.com"
	// "https://*.com": wildcard must be followed by at least two labels, as in "https://*.example.com"
	// "https://example.com/": has a path: write "scheme://host[:port]" with nothing after the host, not even "/"
}
