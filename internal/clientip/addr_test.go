package clientip

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseRemoteAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means error
	}{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[fe80::1%eth0]:80", "fe80::1"},
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"fe80::1%eth0", "fe80::1"},
		{"", ""},
		{"@", ""},
		{"/run/app.sock", ""},
		{"192.0.2.1:", ""},
		{"192.0.2.1:http", ""},
		{"192.0.2.1:65536", ""},
		{"192.0.2.1:123456", ""},
		{"[192.0.2.1]:80", ""},
		{"[2001:db8::1", ""},
		{"[2001:db8::1]80", ""},
		{"[2001:db8::1]:", ""},
		{"example.com:80", ""},
		{"300.0.0.1:80", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRemoteAddr(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseRemoteAddr(%q) = %v, want error", tt.in, got)
				}
				if !errors.Is(err, ErrInvalidRemoteAddr) {
					t.Errorf("error %v does not wrap ErrInvalidRemoteAddr", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRemoteAddr(%q) error: %v", tt.in, err)
			}
			if want := netip.MustParseAddr(tt.want); got != want {
				t.Errorf("ParseRemoteAddr(%q) = %v, want %v", tt.in, got, want)
			}
		})
	}
}

func TestParseRemoteAddr_NoAlloc(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		_, _ = ParseRemoteAddr("192.0.2.1:1234")
		_, _ = ParseRemoteAddr("[2001:db8::1]:443")
	}); n != 0 {
		t.Errorf("ParseRemoteAddr allocates %v times per run", n)
	}
}

func TestLimitKey(t *testing.T) {
	key := func(s string) netip.Prefix { return LimitKey(netip.MustParseAddr(s)) }
	tests := []struct {
		name     string
		a, b     string
		sameKey  bool
		wantKeyA string
	}{
		{"v6 same /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true, "2001:db8:1:2::/64"},
		{"v6 different /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false, "2001:db8:1:2::/64"},
		{"v6 zone ignored", "fe80::1%eth0", "fe80::2", true, "fe80::/64"},
		{"v4 distinct", "192.0.2.1", "192.0.2.2", false, "192.0.2.1/32"},
		{"v4 same", "192.0.2.1", "192.0.2.1", true, "192.0.2.1/32"},
		{"mapped equals v4", "::ffff:192.0.2.1", "192.0.2.1", true, "192.0.2.1/32"},
		{"mapped not a /64", "::ffff:192.0.2.1", "::ffff:192.0.2.2", false, "192.0.2.1/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := key(tt.a), key(tt.b)
			if (ka == kb) != tt.sameKey {
				t.Errorf("LimitKey(%s) = %v, LimitKey(%s) = %v; same = %v, want %v", tt.a, ka, tt.b, kb, ka == kb, tt.sameKey)
			}
			if ka.String() != tt.wantKeyA {
				t.Errorf("LimitKey(%s) = %v, want %s", tt.a, ka, tt.wantKeyA)
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		if k := LimitKey(netip.Addr{}); k.IsValid() {
			t.Errorf("LimitKey(invalid) = %v", k)
		}
	})
	t.Run("map key", func(t *testing.T) {
		m := map[netip.Prefix]int{}
		m[key("2001:db8::1")]++
		m[key("2001:db8::2")]++
		m[key("2001:db8:0:1::1")]++
		if len(m) != 2 || m[key("2001:db8::3")] != 2 {
			t.Errorf("map = %v", m)
		}
	})
	t.Run("no alloc", func(t *testing.T) {
		a := netip.MustParseAddr("2001:db8::1")
		if n := testing.AllocsPerRun(100, func() { _ = LimitKey(a) }); n != 0 {
			t.Errorf("LimitKey allocates %v times per run", n)
		}
	})
}
