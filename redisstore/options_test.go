package redisstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec"
)

func TestNew_Validation(t *testing.T) {
	t.Parallel()
	// New must not talk to Redis: this client points at a closed port.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })

	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   []Option
		want   []string // substrings of the error; none means success
	}{
		{name: "defaults", client: client},
		{name: "all options", client: client, opts: []Option{WithPrefix("svc"), WithLeaseTTL(time.Second), WithTimeout(time.Second), WithMirrorCapacity(10)}},
		{name: "nil option ignored", client: client, opts: []Option{nil}},
		{name: "nil client", want: []string{"nil client"}},
		{name: "empty prefix", client: client, opts: []Option{WithPrefix("")}, want: []string{"empty prefix"}},
		{name: "prefix with brace", client: client, opts: []Option{WithPrefix("a{b")}, want: []string{"'{' or '}'"}},
		{name: "prefix with closing brace", client: client, opts: []Option{WithPrefix("a}")}, want: []string{"'{' or '}'"}},
		{name: "zero lease TTL", client: client, opts: []Option{WithLeaseTTL(0)}, want: []string{"lease TTL"}},
		{name: "negative lease TTL", client: client, opts: []Option{WithLeaseTTL(-time.Second)}, want: []string{"lease TTL"}},
		{name: "sub-millisecond lease TTL", client: client, opts: []Option{WithLeaseTTL(time.Microsecond)}, want: []string{"lease TTL"}},
		{name: "zero timeout", client: client, opts: []Option{WithTimeout(0)}, want: []string{"timeout"}},
		{name: "zero capacity", client: client, opts: []Option{WithMirrorCapacity(0)}, want: []string{"mirror capacity"}},
		{name: "later option wins", client: client, opts: []Option{WithPrefix(""), WithPrefix("ok")}},
		{
			name: "every problem at once",
			opts: []Option{WithPrefix(""), WithLeaseTTL(0), WithTimeout(-1), WithMirrorCapacity(-1)},
			want: []string{"nil client", "empty prefix", "lease TTL", "timeout", "mirror capacity"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.client, tt.opts...)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				return
			}
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded, want an error")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %q does not wrap ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "redisstore: ") {
					t.Errorf("error line %q lacks the redisstore: prefix", line)
				}
			}
		})
	}
}

func TestKeys_ShareOneHashTag(t *testing.T) {
	t.Parallel()
	k := newKeys("svc")
	for _, key := range []string{
		k.rate("hs:1.2.3.4"), k.pool("ip:{x}"), k.once("jti"), k.ticket("secret"),
		k.revs, k.revIB, k.bans, k.notices,
	} {
		if !strings.HasPrefix(key, "svc{svc}:") {
			t.Errorf("key %q does not start with svc{svc}:", key)
		}
	}
	if strings.Contains(k.ticket("secret-ticket"), "secret-ticket") {
		t.Error("the ticket key contains the ticket id")
	}
}

func TestClose_Idempotent(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	s := newStore(t, newClient(t, addr))
	ctx := testCtx(t)
	if _, err := s.Revoked(ctx, "a", "", time.Time{}); err != nil {
		t.Fatalf("Revoked: %v", err) // starts the feed
	}
	if _, err := s.Acquire(ctx, nil); err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if _, _, err := s.Allow(ctx, "k", 1, 1, time.Now()); !errors.Is(err, ErrClosed) {
		t.Errorf("Allow after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Revoked(ctx, "a", "", time.Time{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Revoked after Close: %v, want ErrClosed", err)
	}
	if err := s.Subscribe(ctx, func(wssec.Revocation) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
}
