package redisstore

import (
	"bytes"
	"testing"
	"time"
)

func TestOnce(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	prefix := WithPrefix(testPrefix(t))
	a := newStore(t, newClient(t, addr), prefix)
	b := newStore(t, newClient(t, addr), prefix)
	ctx := testCtx(t)
	tests := []struct {
		name string
		st   *Store
		key  string
		want bool
	}{
		{"first use", a, "jti:1", true},
		{"replay on the same store", a, "jti:1", false},
		{"replay on another store", b, "jti:1", false},
		{"another key", b, "jti:2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, err := tt.st.Once(ctx, tt.key, time.Minute)
			if err != nil || first != tt.want {
				t.Errorf("Once(%q) = %v, %v; want %v", tt.key, first, err, tt.want)
			}
		})
	}
	if _, err := a.Once(ctx, "k", 0); err == nil {
		t.Error("Once with a zero ttl succeeded")
	}
	if first, _ := a.Once(ctx, "short", 20*time.Millisecond); !first {
		t.Fatal("first use of short")
	}
	eventually(t, 5*time.Second, "the key to expire", func() bool {
		first, err := a.Once(ctx, "short", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return first
	})
}

func TestTickets(t *testing.T) {
	t.Parallel()
	addr, _, _ := startRedis(t)
	prefix := WithPrefix(testPrefix(t))
	a := newStore(t, newClient(t, addr), prefix)
	b := newStore(t, newClient(t, addr), prefix)
	ctx := testCtx(t)
	const id = "tkt-5f2c9e-secret"
	data := []byte(`{"sub":"alice"}`)

	if err := a.PutTicket(ctx, id, data, time.Minute); err != nil {
		t.Fatalf("PutTicket: %v", err)
	}
	// Redis holds no key that names the ticket.
	keys, err := a.client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if bytes.Contains([]byte(k), []byte(id)) {
			t.Errorf("Redis key %q contains the ticket id", k)
		}
	}
	got, ok, err := b.TakeTicket(ctx, id)
	if err != nil || !ok || !bytes.Equal(got, data) {
		t.Fatalf("TakeTicket = %q, %v, %v", got, ok, err)
	}
	if _, ok, err := a.TakeTicket(ctx, id); err != nil || ok {
		t.Fatalf("second TakeTicket: ok=%v err=%v; want ok=false", ok, err)
	}
	if _, ok, err := a.TakeTicket(ctx, "never-issued"); err != nil || ok {
		t.Fatalf("unknown ticket: ok=%v err=%v", ok, err)
	}
	err = a.PutTicket(ctx, id, data, 0)
	if err == nil {
		t.Fatal("PutTicket with a zero ttl succeeded")
	}
	noTicketID(t, err, id)
	if err := a.PutTicket(ctx, id, data, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the ticket to expire", func() bool {
		n, err := a.client.Exists(ctx, a.keys.ticket(id)).Result()
		return err == nil && n == 0
	})
	if _, ok, err := a.TakeTicket(ctx, id); err != nil || ok {
		t.Fatalf("expired ticket: ok=%v err=%v", ok, err)
	}
}

// noTicketID fails t if err's text contains the ticket id.
func noTicketID(t testing.TB, err error, id string) {
	t.Helper()
	if err != nil && bytes.Contains([]byte(err.Error()), []byte(id)) {
		t.Errorf("error %q contains the ticket id", err)
	}
}
