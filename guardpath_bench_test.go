package wssec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/gorilla/websocket"
	"github.com/wssec/wssec/internal/strictjson"
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
		readSem: make(chan struct{}, 1), done: make(chan struct{})}
	c.principal.Store(p)
	return c
}

// BenchmarkGuardPath is the per-message guard work of wssec: rate,
// envelope, schema, validator, channel rule and policy (no socket I/O).
func BenchmarkGuardPath(b *testing.B) {
	c := benchConn(b)
	b.ReportAllocs()
	for b.Loop() {
		m, err := c.admitMessage(websocket.TextMessage, benchMsg)
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
		readSem: make(chan struct{}, 1), done: make(chan struct{})}
	c.principal.Store(&Principal{Subject: "alice", Tenant: "acme", Scopes: []string{"orders:write"}})
	n := testing.AllocsPerRun(200, func() {
		if m, err := c.admitMessage(websocket.TextMessage, benchMsg); err != nil || m == nil {
			t.Fatalf("refused: %v", err)
		}
	})
	t.Logf("allocations per accepted message: %.0f", n)
	// The Message and its *benchPublish (one allocation) and the copy of
	// channel, id and payload with the arena of the decoded strings (one).
	// The validate tags run as compiled checks, which allocate nothing.
	budget := 2.0
	if n > budget {
		t.Fatalf("%.0f allocations per accepted message; the budget is %.0f", n, budget)
	}
}

// raceBuild reports whether the test binary was built with -race.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// testConn is a Conn with no socket for g, enough for admitMessage's accepting
// path.
func testConn(g *Guard) *Conn {
	c := &Conn{g: g, hs: &handshake{ip: netip.MustParseAddr("127.0.0.1")}, ctx: context.Background(),
		readSem: make(chan struct{}, 1), done: make(chan struct{})}
	c.principal.Store(&Principal{Subject: "alice", Tenant: "acme", Scopes: []string{"orders:read", "orders:write"}})
	return c
}

// TestGuardPathAllocs_Fields: the compiled decoder allocates nothing per
// field (strings go to the arena), nor do the compiled validate tags;
// what grows with the number of fields is validator/v10, which boxes
// every field it visits, and only for types with a tag it must check
// (here email).
func TestGuardPathAllocs_Fields(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	type tagless struct {
		A string `json:"a"`
		B string `json:"b"`
		C int    `json:"c"`
		D bool   `json:"d"`
	}
	type tagged struct {
		A string `json:"a" validate:"required"`
		B string `json:"b"`
		C int    `json:"c"`
		D bool   `json:"d"`
	}
	type uncompiled struct {
		A string `json:"a" validate:"required,email"`
		B string `json:"b"`
		C int    `json:"c"`
		D bool   `json:"d"`
	}
	g, err := New(WithHMACKey(testKey), quiet(), WithMessageRate(1e9, 1<<30),
		WithAction[tagless]("tagless", ChannelFree()), WithAction[tagged]("tagged", ChannelFree()),
		WithAction[uncompiled]("uncompiled", ChannelFree()))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c := testConn(g)
	count := func(msg string) float64 {
		frame := []byte(msg)
		return testing.AllocsPerRun(100, func() {
			if m, err := c.admitMessage(websocket.TextMessage, frame); err != nil || m == nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	const payload = `"payload":{"a":"x\u00e9","b":"y","c":300,"d":true}}`
	if n := count(`{"action":"tagless","id":"1",` + payload); n != 2 {
		t.Errorf("a four-field payload without validate tags: %v allocations, want 2", n)
	}
	if g.msg.actions["tagged"].plan == nil {
		t.Fatal("required was not compiled")
	}
	if n := count(`{"action":"tagged","id":"1",` + payload); n != 2 {
		t.Errorf("the same with a compiled validate tag: %v allocations, want 2", n)
	}
	// Not asserted: under -race the validator's sync.Pool drops entries
	// at random, adding allocations.
	t.Logf("the same with a tag validator/v10 checks: %v allocations", count(`{"action":"uncompiled","id":"1","payload":{"a":"a@b.example","b":"y","c":300,"d":true}}`))
}

// jsonOnly returns a copy of the registered action r that decodes with
// encoding/json, the reference for the compiled decoder.
func jsonOnly(r *registered) *registered {
	slow := *r
	slow.dec = nil
	return &slow
}

// sameDecoding decodes an accepted frame's payload with the compiled
// decoder (into a Message built as admitMessage builds it) and with
// encoding/json, and reports any difference in the refusal reason or the
// decoded value.
func sameDecoding(t testing.TB, g *Guard, data []byte) {
	t.Helper()
	var env strictjson.Envelope
	in := bytes.Clone(data)
	if strictjson.Parse(in, g.msg.limits, g.msg.schemaFor, &env) != nil {
		return
	}
	reg := g.msg.actions[string(env.Action)]
	want := reflect.New(reg.typ)
	wantWhy := g.msg.decodeInto(jsonOnly(reg), env.Checked(), nil, want)

	m, got := reg.newMessage()
	arena := make([]byte, 0, reg.arenaLen(len(env.Payload)))
	gotWhy := g.msg.decodeInto(reg, env.Checked(), arena, got)
	if gotWhy != wantWhy {
		t.Fatalf("%s: refusal %q, encoding/json %q", data, gotWhy, wantWhy)
	}
	if wantWhy != "" {
		return
	}
	m.Data = got.Interface()
	for i := range in {
		in[i] = 0 // the input may be reused: Data must not alias it
	}
	if !reflect.DeepEqual(got.Interface(), want.Interface()) {
		t.Fatalf("%s: decoded %#v, encoding/json %#v", data, got.Elem().Interface(), want.Elem().Interface())
	}
	if reflect.TypeOf(m.Data) != reflect.PointerTo(reg.typ) {
		t.Fatalf("%s: Data is a %T", data, m.Data)
	}
}

// moreDecodeCases are frames beyond readPathCases that the compiled
// decoder must read exactly as encoding/json does.
var moreDecodeCases = []string{
	`{"action":"say","payload":{"text":"\u00e9\n\"\\\/\ud83d\ude00"}}`,
	`{"action":"say","payload":{"text":"héllo"}}`,
	`{"action":"say","payload":{"text":"12345678901"}}`,
	`{"action":"marker","payload":{"n":-9223372036854775808}}`,
	`{"action":"marker","payload":{"n":9223372036854775808}}`,
	`{"action":"marker","payload":{"n":1e2}}`,
	`{"action":"marker","payload":{"n":null}}`,
	`{"action":"marker","payload":{}}`,
	`{"action":"order.place","payload":{"items":[{"sku":"A1","qty":2},{"sku":"B2","qty":99}],"note":null,"meta":{"a":1,"b":2},"raw":{"x":[1,2]}}}`,
	`{"action":"order.place","payload":{"items":[{"sku":"A1","qty":2}],"note":"\u0041","meta":null,"raw":null}}`,
	`{"action":"order.place","payload":{"items":null}}`,
	`{"action":"order.place","payload":{"items":[null]}}`,
	`{"action":"order.place","payload":{"items":[{"sku":"A1","qty":2}],"meta":{"a":1.5}}}`,
	`{"action":"ptr","payload":{"name":"\u00e9"}}`,
	`{"action":"ptr","payload":{}}`,
	`{"action":"tags","payload":[]}`,
	`{"action":"tags","payload":["a",null,"\u00e9"]}`,
	`{"action":"counts","payload":{"a":1}}`,
	`{"action":"publish","payload":{"body":"x"}}`,
	`{"action":"subscribe","payload":{}}`,
}

// TestReadPath_DecodeMatchesEncodingJSON: for every registered type of the
// read-path tests, the compiled decoder and encoding/json give the same
// refusal reason and the same value.
func TestReadPath_DecodeMatchesEncodingJSON(t *testing.T) {
	g := readPathGuard(t)
	compiled := 0
	for _, r := range g.msg.actions {
		if r.dec != nil {
			compiled++
		}
	}
	// counts (a map) and auth's payload are left to encoding/json.
	if compiled < 7 {
		t.Fatalf("only %d actions have a compiled decoder", compiled)
	}
	for _, tc := range readPathCases {
		sameDecoding(t, g, []byte(tc.msg))
	}
	for _, msg := range moreDecodeCases {
		sameDecoding(t, g, []byte(msg))
	}
}

// TestAdmit_PayloadDoesNotAliasData: Data's strings live in an arena of
// their own: editing Payload in place (or the read buffer being reused)
// does not change what the validator checked.
func TestAdmit_PayloadDoesNotAliasData(t *testing.T) {
	g := readPathGuard(t)
	c := testConn(g)
	frame := []byte(`{"action":"order.place","id":"7","payload":{"items":[{"sku":"A1","qty":2}],"note":"n\u00f6te","raw":[1]}}`)
	m, err := c.admitMessage(websocket.TextMessage, frame)
	if err != nil || m == nil {
		t.Fatalf("refused: %v", err)
	}
	for i := range frame {
		frame[i] = 'X'
	}
	for i := range m.Payload {
		m.Payload[i] = 'X'
	}
	o, ok := DataAs[orderPayload](m)
	if !ok || len(o.Items) != 1 || o.Items[0].SKU != "A1" || o.Items[0].Qty != 2 || o.Note == nil || *o.Note != "nöte" ||
		string(o.Raw) != "[1]" || m.ID != "7" || m.Action != "order.place" {
		t.Fatalf("Data changed with the payload: %+v (id %q)", o, m.ID)
	}
	if _, ok := m.Data.(*orderPayload); !ok {
		t.Fatalf("Data is a %T", m.Data)
	}
}

// valuerField hands the validator another value to check, invisible in
// its own type.
type valuerField struct{ s string }

func (v valuerField) ValidatorValue() any {
	return struct {
		S string `validate:"required"`
	}{v.s}
}

// TestNeedsValidator: the validator is skipped only for types it could
// never refuse.
func TestNeedsValidator(t *testing.T) {
	type plain struct {
		A string
		B []struct{ C int }
	}
	type deep struct {
		P *struct {
			M map[string][]struct {
				X string `validate:"max=3"`
			}
		}
	}
	type empty struct {
		A string `validate:""`
	}
	type iface struct{ V any }
	type valued struct{ V valuerField }
	type rec struct {
		Next *rec
		Kids []rec
	}
	for typ, want := range map[reflect.Type]bool{
		reflect.TypeFor[plain]():        false,
		reflect.TypeFor[rec]():          false,
		reflect.TypeFor[struct{}]():     false,
		reflect.TypeFor[benchPublish](): true,
		reflect.TypeFor[deep]():         true,
		reflect.TypeFor[empty]():        true,
		reflect.TypeFor[iface]():        true,
		reflect.TypeFor[valued]():       true,
	} {
		if got := needsValidator(typ, map[reflect.Type]bool{}); got != want {
			t.Errorf("needsValidator(%v) = %v, want %v", typ, got, want)
		}
	}
	// time.Time, which the validator refuses as a top-level struct, keeps
	// being validated (and so refused) though it has no tags.
	g, err := New(WithHMACKey(testKey), quiet(), WithAction[time.Time]("when", ChannelFree()), WithAction[plain]("plain", ChannelFree()),
		WithAction[valued]("valued", ChannelFree()))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, _, _, why := readPath(g, []byte(`{"action":"valued","payload":{}}`)); why == "" {
		t.Error("the value a Valuer substitutes was not validated")
	}
	if _, _, _, why := readPath(g, []byte(`{"action":"when","payload":"2024-01-02T03:04:05Z"}`)); why == "" {
		t.Error("time.Time is accepted: the validator refuses it as a top-level struct")
	}
	if r := g.msg.actions["when"]; !r.validate {
		t.Error("time.Time is not validated")
	}
	if r := g.msg.actions["plain"]; r.validate {
		t.Error("a type without validate tags is validated")
	}
}

// FuzzReadPathDecode checks that every frame the envelope accepts decodes, with
// the compiled decoder, exactly as with encoding/json (same refusal
// reason, same value), for the types of the read-path tests.
func FuzzReadPathDecode(f *testing.F) {
	g := readPathGuard(f)
	for _, tc := range readPathCases {
		f.Add([]byte(tc.msg))
	}
	for _, msg := range moreDecodeCases {
		f.Add([]byte(msg))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameDecoding(t, g, data)
	})
}
