package clientip

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func TestParseSet(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string // Set.String()
	}{
		{"nil", nil, ""},
		{"empty", []string{}, ""},
		{"cidr v4", []string{"10.0.0.0/8"}, "10.0.0.0/8"},
		{"bare v4", []string{"127.0.0.1"}, "127.0.0.1/32"},
		{"bare v6", []string{"::1"}, "::1/128"},
		{"cidr v6", []string{"2001:db8::/32"}, "2001:db8::/32"},
		{"host bits masked", []string{"10.1.2.3/8"}, "10.0.0.0/8"},
		{"v6 host bits masked", []string{"2001:db8::1/32"}, "2001:db8::/32"},
		{"spaces trimmed", []string{"  192.168.0.1 "}, "192.168.0.1/32"},
		{"mapped prefix unmapped", []string{"::ffff:192.168.0.0/112"}, "192.168.0.0/16"},
		{"mapped bare unmapped", []string{"::ffff:10.0.0.1"}, "10.0.0.1/32"},
		{"duplicates dropped", []string{"10.0.0.0/8", "10.0.0.0/8"}, "10.0.0.0/8"},
		{"covered dropped", []string{"10.1.0.0/16", "10.0.0.0/8", "10.2.3.4"}, "10.0.0.0/8"},
		{"sorted v4 first", []string{"::1", "192.168.0.0/16", "10.0.0.0/8"}, "10.0.0.0/8,192.168.0.0/16,::1/128"},
		{"adjacent kept", []string{"10.0.0.0/9", "10.128.0.0/9"}, "10.0.0.0/9,10.128.0.0/9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSet(tt.in)
			if err != nil {
				t.Fatalf("ParseSet(%q) error: %v", tt.in, err)
			}
			if got := s.String(); got != tt.want {
				t.Errorf("ParseSet(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := s.Len(); got != len(s.Prefixes()) {
				t.Errorf("Len() = %d, Prefixes() has %d", got, len(s.Prefixes()))
			}
		})
	}
}

func TestParseSet_BadEntries(t *testing.T) {
	tests := []struct {
		name  string
		entry string
	}{
		{"empty", ""},
		{"blank", "   "},
		{"word", "localhost"},
		{"bits too long v4", "10.0.0.0/33"},
		{"bits too long v6", "::/129"},
		{"negative bits", "10.0.0.0/-1"},
		{"missing bits", "10.0.0.0/"},
		{"double slash", "10.0.0.0/8/8"},
		{"short v4", "1.2.3"},
		{"leading zero", "010.0.0.1"},
		{"zone", "fe80::1%eth0"},
		{"zone prefix", "fe80::%eth0/64"},
		{"brackets", "[::1]"},
		{"with port", "127.0.0.1:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSet([]string{"10.0.0.0/8", tt.entry})
			if err == nil {
				t.Fatalf("ParseSet accepted %q: %v", tt.entry, s)
			}
			if !errors.Is(err, ErrInvalidCIDR) {
				t.Errorf("error %v does not wrap ErrInvalidCIDR", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.entry)) {
				t.Errorf("error %q does not name the entry %q", err, tt.entry)
			}
			if s != nil {
				t.Errorf("ParseSet returned a Set with an error")
			}
		})
	}
	t.Run("every bad entry named", func(t *testing.T) {
		_, err := ParseSet([]string{"bad-one", "10.0.0.0/8", "bad-two"})
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{`"bad-one"`, `"bad-two"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	})
}

func TestSetContains(t *testing.T) {
	s, err := ParseSet([]string{"10.0.0.0/8", "192.168.1.1", "2001:db8:1::/48", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"11.0.0.0", false},
		{"192.168.1.1", true},
		{"192.168.1.2", false},
		{"::ffff:10.1.2.3", true},  // mapped form of a member
		{"::ffff:11.1.2.3", false}, // mapped form of a non-member
		{"2001:db8:1:ffff::1", true},
		{"2001:db8:2::1", false},
		{"::1", true},
		{"::2", false},
		{"fe80::1%eth0", false},
		{"2001:db8:1::1%eth0", true}, // zone ignored
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if got := s.Contains(a); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", a, got, tt.want)
			}
		})
	}
	t.Run("invalid address", func(t *testing.T) {
		if s.Contains(netip.Addr{}) {
			t.Error("Contains(invalid) = true")
		}
	})
	t.Run("nil set", func(t *testing.T) {
		var nilSet *Set
		if nilSet.Contains(netip.MustParseAddr("10.0.0.1")) || nilSet.Len() != 0 || nilSet.String() != "" {
			t.Error("nil Set is not empty")
		}
	})
	t.Run("zero set", func(t *testing.T) {
		if new(Set).Contains(netip.MustParseAddr("10.0.0.1")) {
			t.Error("zero Set contains an address")
		}
	})
	t.Run("short v6 prefix never matches IPv4", func(t *testing.T) {
		all6, err := ParseSet([]string{"::/0"})
		if err != nil {
			t.Fatal(err)
		}
		if all6.Contains(netip.MustParseAddr("192.0.2.1")) || all6.Contains(netip.MustParseAddr("::ffff:192.0.2.1")) {
			t.Error("::/0 matched an IPv4 address")
		}
		if !all6.Contains(netip.MustParseAddr("2001:db8::1")) {
			t.Error("::/0 did not match an IPv6 address")
		}
	})
}

// TestSetContains_Indexed compares the per-length index of a large Set with
// a linear scan.
func TestSetContains_Indexed(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var entries []string
	var ref []netip.Prefix
	for range 200 {
		var a netip.Addr
		var bits int
		if r.IntN(2) == 0 {
			a = netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
			bits = 20 + r.IntN(13)
		} else {
			var b [16]byte
			b[0], b[1], b[2] = 0x20, 0x01, byte(r.IntN(4))
			for i := 3; i < 16; i++ {
				b[i] = byte(r.IntN(256))
			}
			a = netip.AddrFrom16(b)
			bits = 40 + r.IntN(89)
		}
		p := netip.PrefixFrom(a, bits)
		entries = append(entries, p.String())
		ref = append(ref, p.Masked())
	}
	s, err := ParseSet(entries)
	if err != nil {
		t.Fatal(err)
	}
	if s.idx4 == nil || s.idx6 == nil {
		t.Fatal("large Set is not indexed")
	}
	hits := 0
	for i := range 20000 {
		var a netip.Addr
		if i%2 == 0 {
			a = netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		} else {
			// Pick near a member so that matches happen.
			p := ref[r.IntN(len(ref))]
			b := p.Addr().As16()
			if p.Addr().Is4() {
				b4 := p.Addr().As4()
				b4[3] ^= byte(r.IntN(256))
				a = netip.AddrFrom4(b4)
			} else {
				b[15] ^= byte(r.IntN(256))
				b[7] ^= byte(r.IntN(2))
				a = netip.AddrFrom16(b)
			}
		}
		want := false
		for _, p := range ref {
			if p.Contains(a) {
				want = true
				break
			}
		}
		if got := s.Contains(a); got != want {
			t.Fatalf("Contains(%s) = %v, linear scan says %v", a, got, want)
		}
		if want {
			hits++
		}
	}
	if hits < 1000 {
		t.Errorf("only %d of 20000 probes were members; the test lacks coverage", hits)
	}
}

func TestSetContains_NoAlloc(t *testing.T) {
	small, _ := ParseSet([]string{"10.0.0.0/8", "2001:db8::/32"})
	var many []string
	for i := range 64 {
		many = append(many, fmt.Sprintf("10.%d.0.0/16", i), fmt.Sprintf("2001:db8:%x::/48", i))
	}
	large, _ := ParseSet(many)
	addrs := []netip.Addr{
		netip.MustParseAddr("10.1.2.3"),
		netip.MustParseAddr("::ffff:10.1.2.3"),
		netip.MustParseAddr("2001:db8:5::1"),
		netip.MustParseAddr("fe80::1%eth0"),
	}
	for _, s := range []*Set{small, large} {
		if n := testing.AllocsPerRun(100, func() {
			for _, a := range addrs {
				s.Contains(a)
			}
		}); n != 0 {
			t.Errorf("Contains allocates %v times per run", n)
		}
	}
}

func TestSet_ConcurrentUse(t *testing.T) {
	s, _ := ParseSet([]string{"10.0.0.0/8"})
	a := netip.MustParseAddr("10.0.0.1")
	done := make(chan bool)
	for range 8 {
		go func() {
			ok := true
			for range 1000 {
				ok = ok && s.Contains(a)
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Error("concurrent Contains returned false")
		}
	}
}
