package wssec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-playground/validator/v10"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// benchPublish is the payload of the benchmarked action.
type benchPublish struct {
	Text string `json:"text" validate:"required,max=200"`
}

var benchMsg = []byte(`{"action":"publish","channel":"tenant:acme:orders","id":"42","payload":{"text":"hello, 64 byte world!"}}`)

func benchPolicy(_ context.Context, p *Principal, m *Message) error {
	if p.Subject == "" {
		return errors.New("anonymous")
	}
	return nil
}

// benchConn is a Conn with no socket: enough for the message guards, whose
// accepting path never touches the network.
func benchConn(b *testing.B) *Conn {
	g, err := New(WithHMACKey(testKey), quiet(),
		WithMessageRate(1e9, 1<<30),
		WithAction[benchPublish]("publish"),
		WithChannelRules(ChannelRule{Pattern: "tenant:{tenant}:orders", Read: "orders:read", Write: "orders:write"}),
		WithPolicy(benchPolicy))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	p := &Principal{Subject: "alice", Tenant: "acme", Scopes: []string{"orders:read", "orders:write"}}
	c := &Conn{g: g, hs: &handshake{ip: netip.MustParseAddr("127.0.0.1")}, ctx: context.Background(),
		send: make(chan []byte, 64), done: make(chan struct{})}
	c.principal.Store(p)
	return c
}

// BenchmarkGuardPath is the per-message guard work of wssec: rate,
// envelope, schema, validator, channel rule and policy (no socket I/O).
func BenchmarkGuardPath(b *testing.B) {
	c := benchConn(b)
	b.ReportAllocs()
	for b.Loop() {
		m, err := c.admit(websocket.TextMessage, benchMsg)
		if err != nil || m == nil {
			b.Fatalf("refused: %v", err)
		}
	}
}

// BenchmarkGuardPathNaive is the same protection written the usual way:
// encoding/json with DisallowUnknownFields, validator, a rate.Limiter and a
// channel check with strings.Split. It is the baseline of the ratio.
func BenchmarkGuardPathNaive(b *testing.B) {
	type envelope struct {
		Action  string          `json:"action"`
		Channel string          `json:"channel"`
		ID      string          `json:"id"`
		Payload json.RawMessage `json:"payload"`
	}
	v := validator.New(validator.WithRequiredStructEnabled())
	lim := rate.NewLimiter(1e9, 1<<30)
	p := &Principal{Subject: "alice", Tenant: "acme", Scopes: []string{"orders:read", "orders:write"}}
	b.ReportAllocs()
	for b.Loop() {
		if !lim.Allow() {
			b.Fatal("rate")
		}
		var e envelope
		d := json.NewDecoder(bytes.NewReader(benchMsg))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil || e.Action != "publish" {
			b.Fatal(err)
		}
		var pl benchPublish
		if err := json.Unmarshal(e.Payload, &pl); err != nil {
			b.Fatal(err)
		}
		if err := v.Struct(&pl); err != nil {
			b.Fatal(err)
		}
		parts := strings.Split(e.Channel, ":")
		if len(parts) != 3 || parts[0] != "tenant" || parts[1] != p.Tenant || parts[2] != "orders" || !p.HasScope("orders:write") {
			b.Fatal("channel")
		}
		m := &Message{Action: e.Action, Channel: e.Channel, ID: e.ID, Payload: e.Payload, Data: &pl}
		if err := benchPolicy(context.Background(), p, m); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGuardPathAllocs pins the allocation count of the accepting path, so
// a change that adds one is noticed. (Counts, not times: no wall clock.)
func TestGuardPathAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	g, err := New(WithHMACKey(testKey), quiet(), WithMessageRate(1e9, 1<<30),
		WithAction[benchPublish]("publish"),
		WithChannelRules(ChannelRule{Pattern: "tenant:{tenant}:orders", Write: "orders:write"}),
		WithPolicy(benchPolicy))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c := &Conn{g: g, hs: &handshake{ip: netip.MustParseAddr("127.0.0.1")}, ctx: context.Background(),
		send: make(chan []byte, 64), done: make(chan struct{})}
	c.principal.Store(&Principal{Subject: "alice", Tenant: "acme", Scopes: []string{"orders:write"}})
	n := testing.AllocsPerRun(200, func() {
		if m, err := c.admit(websocket.TextMessage, benchMsg); err != nil || m == nil {
			t.Fatalf("refused: %v", err)
		}
	})
	t.Logf("allocations per accepted message: %.0f", n)
	const budget = 9
	if n > budget {
		t.Fatalf("%.0f allocations per accepted message; the budget is %d", n, budget)
	}
}
