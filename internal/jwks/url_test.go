package jwks

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

var urlTests = []struct {
	url  string
	want error // nil: accepted
}{
	{"https://issuer.example.com/.well-known/jwks.json", nil},
	{"https://issuer.example.com:8443/jwks?tenant=a", nil},
	{"HTTPS://issuer.example.com/jwks", nil},
	{"https://10.0.0.1/jwks", nil},
	{"http://localhost/jwks", nil},
	{"http://LOCALHOST:8080/jwks", nil},
	{"http://127.0.0.1:9000/jwks", nil},
	{"http://127.8.9.10/jwks", nil},
	{"http://[::1]:9000/jwks", nil},
	{"http://[::ffff:127.0.0.1]/jwks", nil},

	{"http://example.com/jwks", ErrInsecureURL},
	{"http://10.0.0.1/jwks", ErrInsecureURL},
	{"http://0.0.0.0/jwks", ErrInsecureURL},
	{"http://[::]/jwks", ErrInsecureURL},
	{"http://localhost.example.com/jwks", ErrInsecureURL},
	{"http://127.0.0.1.nip.io/jwks", ErrInsecureURL},
	{"http://localhost./jwks", ErrInsecureURL},
	{"http://0x7f.0.0.1/jwks", ErrInsecureURL},
	{"http://2130706433/jwks", ErrInsecureURL},
	{"http://[fe80::1%25lo]/jwks", ErrInsecureURL},

	{"", ErrInvalidURL},
	{"/jwks", ErrInvalidURL},
	{"issuer.example.com/jwks", ErrInvalidURL},
	{"//issuer.example.com/jwks", ErrInvalidURL},
	{"https:///jwks", ErrInvalidURL},
	{"https://:443/jwks", ErrInvalidURL},
	{"https:issuer.example.com", ErrInvalidURL},
	{"ftp://issuer.example.com/jwks", ErrInvalidURL},
	{"file:///etc/jwks.json", ErrInvalidURL},
	{"wss://issuer.example.com/jwks", ErrInvalidURL},
	{"https://user@issuer.example.com/jwks", ErrInvalidURL},
	{"https://user:secret@issuer.example.com/jwks", ErrInvalidURL},
	{"http://user:secret@localhost/jwks", ErrInvalidURL},
	{"https://issuer.example.com/jwks#keys", ErrInvalidURL},
	{"https://issuer.example.com/jwks#", ErrInvalidURL},
	{"https://issuer.example.com:port/jwks", ErrInvalidURL},
	{"https://issuer example.com/jwks", ErrInvalidURL},
	{"https://issuer.example.com/\x00", ErrInvalidURL},
}

func TestValidateURL(t *testing.T) {
	for _, tt := range urlTests {
		t.Run(tt.url, func(t *testing.T) {
			err := ValidateURL(tt.url)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

// FuzzValidateURL checks the invariants of an accepted URL against the
// standard parser.
func FuzzValidateURL(f *testing.F) {
	for _, tt := range urlTests {
		f.Add(tt.url)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := ValidateURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) && !errors.Is(err, ErrInsecureURL) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("accepted %q that url.Parse refuses: %v", raw, perr)
		}
		if u.User != nil || strings.Contains(raw, "#") || u.Host == "" {
			t.Fatalf("accepted %q with userinfo, fragment or no host", raw)
		}
		switch u.Scheme {
		case "https":
		case "http":
			if !isLoopbackHost(u.Hostname()) {
				t.Fatalf("accepted http URL %q with a non-loopback host", raw)
			}
		default:
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
	})
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.255.255.254": true,
		"::1": true, "::ffff:127.0.0.1": true,
		"": false, "localhost.": false, "0.0.0.0": false, "::": false, "128.0.0.1": false,
		"::1%lo": false, "example.com": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
