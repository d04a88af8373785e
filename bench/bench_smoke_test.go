package bench

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestServers checks that every server echoes Request byte for byte and
// answers each refusal with the documented status and no upgrade.
func TestServers(t *testing.T) {
	ctx := context.Background()
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			s := start(t, kind, ES256)
			p, err := EchoPool(ctx, s.Target(), s.Header(token(t, ES256)), 2)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := p.Count(10); err != nil {
				t.Fatal(err)
			}
			if kind == Raw || kind == RawWriter {
				return
			}
			d := Dialer(s.Addr)
			good := "Bearer " + token(t, ES256)
			for _, c := range []struct {
				name   string
				h      http.Header
				status int
			}{
				{"bad origin", ProtectedHeader(BadOrigin, good), http.StatusForbidden},
				{"no origin", ProtectedHeader("", good), http.StatusForbidden},
				{"bad token", ProtectedHeader(Origin, "Bearer not-a.jwt"), http.StatusUnauthorized},
				{"no token", ProtectedHeader(Origin, ""), http.StatusUnauthorized},
			} {
				if err := Refused(ctx, d, s.Target(), c.h, c.status); err != nil {
					t.Errorf("%s: %v", c.name, err)
				}
			}
			if got := s.WaitUpgrades(3, 100*time.Millisecond); got != 2 {
				t.Errorf("%d upgrades, want the 2 echo clients", got)
			}
		})
	}
	t.Run("rate_limited", func(t *testing.T) {
		s, err := StartRateLimited(keys()[ES256])
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		h := s.Header(token(t, ES256))
		if err := Refused(ctx, Dialer(s.Addr), s.Target(), h, http.StatusTooManyRequests); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wssec algorithms", func(t *testing.T) {
		for _, a := range []Alg{EdDSA, HS256} {
			s := start(t, WSSec, a)
			if err := Handshake(ctx, Dialer(s.Addr), s.Target(), s.Header(token(t, a))); err != nil {
				t.Errorf("%s: %v", a, err)
			}
		}
	})
}

// TestTokenSupply: every token handed out is distinct and accepted, and
// an empty supply says so instead of repeating a token.
func TestTokenSupply(t *testing.T) {
	supply := NewTokenSupply(keys()[ES256], time.Minute)
	if err := supply.Fill(5); err != nil {
		t.Fatal(err)
	}
	if err := supply.Fill(7); err != nil { // tops up to 7
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 7; i++ {
		tok, err := supply.Take()
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatal("a token was handed out twice")
		}
		seen[tok] = true
	}
	if _, err := supply.Take(); !errors.Is(err, ErrSupplyExhausted) {
		t.Fatalf("empty supply: %v, want ErrSupplyExhausted", err)
	}
	s := start(t, WSSec, ES256)
	if err := supply.Fill(4); err != nil {
		t.Fatal(err)
	}
	p, err := FreshHandshakePool(context.Background(), s.Target(), Origin, supply, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Count(4); err != nil {
		t.Fatal(err)
	}
	if n := supply.Taken(); n != 11 {
		t.Fatalf("%d tokens taken, want 11", n)
	}
}

// TestIdleMemory runs the child-process measurement on a few sockets.
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range allKinds {
		r, err := MeasureIdleMemory(context.Background(), exe, kind, 64)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if r.Idle.Total() <= 0 || r.Idle.Goroutines < 1 {
			t.Errorf("%s: implausible %+v", kind, r)
		}
		t.Logf("%s: idle %.0f B/socket (%.1f goroutines), used %.0f B/socket", kind, r.Idle.Total(), r.Idle.Goroutines, r.Used.Total())
	}
}
