package wssec

import (
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wssec/wssec/internal/strictjson"
)

// Payload types for the read-path tests (beside those of conn_test.go).
type (
	orderItem struct {
		SKU string `json:"sku" validate:"required,alphanum,max=12"`
		Qty int    `json:"qty" validate:"min=1,max=99"`
	}
	orderPayload struct {
		Items []orderItem     `json:"items" validate:"required,min=1,max=5,dive"`
		Note  *string         `json:"note,omitempty" validate:"omitempty,max=20"`
		Meta  map[string]int  `json:"meta,omitempty"`
		Raw   json.RawMessage `json:"raw,omitempty"`
	}
	// ptrPayload is registered as a pointer type, WithAction[*ptrPayload].
	ptrPayload struct {
		Name string `json:"name" validate:"required"`
	}
)

// readPathGuard builds a Guard (no server) with the actions of the Conn
// tests plus a nested, a pointer, a slice and a map payload.
func readPathGuard(t testing.TB) *Guard {
	t.Helper()
	g, err := New(connBaseOptions(
		WithLogger(slog.New(slog.DiscardHandler)),
		WithAction[orderPayload]("order.place", ChannelFree()),
		WithAction[*ptrPayload]("ptr", ChannelFree()),
		WithAction[[]string]("tags", ChannelFree()),
		WithAction[map[string]int]("counts", ChannelFree()),
	)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// readPath runs a client frame through the Conn's parse, decode and
// validation, as readOne does. It returns the error code and reason of a
// refusal, or the decoded data.
func readPath(g *Guard, data []byte) (env strictjson.Envelope, out any, code, reason string) {
	if err := strictjson.Parse(data, g.msg.limits, g.msg.schemaFor, &env); err != nil {
		var ee *strictjson.Error
		if !errors.As(err, &ee) {
			return env, nil, "internal", err.Error()
		}
		return env, nil, ee.Code, ee.Reason
	}
	reg := g.msg.actions[string(env.Action)]
	if reg == nil {
		return env, nil, "internal", "accepted an unregistered action"
	}
	v, why := g.msg.decode(reg, env.Checked())
	if why != "" {
		return env, nil, strictjson.CodeInvalidMessage, why
	}
	return env, v, "", ""
}

// readPathCases are the table of TestReadPath and the seeds of
// FuzzReadPath.
var readPathCases = []struct {
	name, msg    string
	code, reason string // "" when accepted
}{
	{"marker", `{"action":"marker","id":"1","payload":{"n":3}}`, "", ""},
	{"marker without payload", `{"action":"marker"}`, "", ""},
	{"ping", `{"action":"ping","id":"x"}`, "", ""},
	{"ping empty payload", `{"action":"ping","payload":{}}`, "", ""},
	{"ping payload field", `{"action":"ping","payload":{"a":1}}`, "invalid_message", "unknown field"},
	{"say ok", `{"action":"say","payload":{"text":"hello"}}`, "", ""},
	{"say required", `{"action":"say","payload":{"text":""}}`, "invalid_message", `field "text" failed "required"`},
	{"say absent payload", `{"action":"say"}`, "invalid_message", `field "text" failed "required"`},
	{"say max", `{"action":"say","payload":{"text":"01234567890"}}`, "invalid_message", `field "text" failed "max"`},
	{"say case variant", `{"action":"say","payload":{"Text":"x"}}`, "invalid_message", "unknown field"},
	{"say unicode case variant", `{"action":"say","payload":{"ſtext":"x"}}`, "invalid_message", "unknown field"},
	// An escaped payload key is compared unescaped, as encoding/json
	// reads it: "t\u0065xt" is "text", no bypass either way.
	{"say escaped key", `{"action":"say","payload":{"t\u0065xt":"x"}}`, "", ""},
	{"say escaped case variant", `{"action":"say","payload":{"T\u0065xt":"x"}}`, "invalid_message", "unknown field"},
	{"say wrong type", `{"action":"say","payload":{"text":["x"]}}`, "invalid_message", "wrong type"},
	{"say null field", `{"action":"say","payload":{"text":null}}`, "invalid_message", `field "text" failed "required"`},
	{"null payload", `{"action":"say","payload":null}`, "invalid_message", "wrong type"},
	{"payload before action", `{"payload":{"Text":"x"},"action":"say"}`, "invalid_message", "unknown field"},
	{"duplicate key", `{"action":"say","action":"marker"}`, "invalid_message", "duplicate key"},
	{"nested duplicate", `{"action":"order.place","payload":{"items":[{"sku":"a","sku":"b","qty":1}]}}`, "invalid_message", "duplicate key"},
	{"ACTION", `{"ACTION":"say"}`, "invalid_message", "unknown field"},
	{"trailing", `{"action":"marker"}x`, "invalid_message", "trailing data"},
	{"trailing object", `{"action":"marker"}{"action":"marker"}`, "invalid_message", "trailing data"},
	{"unknown action", `{"action":"drop_tables"}`, "unknown_action", "unknown action"},
	{"built-in auth, unknown payload field", `{"action":"auth","payload":{"token":"t","x":1}}`, "invalid_message", "unknown field"},
	{"upper-case action", `{"action":"Marker"}`, "invalid_message", "invalid action"},
	{"empty", ``, "invalid_message", "invalid json"},
	{"array", `[]`, "invalid_message", "not an object"},
	{"comment", `{"action":"marker"/*x*/}`, "invalid_message", "invalid json"},
	{"bad channel", `{"action":"marker","channel":"a b"}`, "invalid_message", "invalid channel"},
	{"bidi id", "{\"action\":\"marker\",\"id\":\"\u202e\"}", "invalid_message", "invalid id"},
	{"invalid utf-8", "{\"action\":\"marker\",\"id\":\"\xff\"}", "invalid_message", "invalid utf-8"},
	{"order ok", `{"action":"order.place","payload":{"items":[{"sku":"A1","qty":2}],"note":"hi","meta":{"a":1},"raw":[1,{"x":2}]}}`, "", ""},
	{"order dive", `{"action":"order.place","payload":{"items":[{"sku":"A1","qty":0}]}}`, "invalid_message", `field "qty" failed "min"`},
	{"order sku", `{"action":"order.place","payload":{"items":[{"sku":"a-b","qty":1}]}}`, "invalid_message", `field "sku" failed "alphanum"`},
	{"order empty items", `{"action":"order.place","payload":{"items":[]}}`, "invalid_message", `field "items" failed "min"`},
	{"order nested unknown", `{"action":"order.place","payload":{"items":[{"sku":"a","qty":1,"price":0}]}}`, "invalid_message", "unknown field"},
	{"order meta wrong type", `{"action":"order.place","payload":{"items":[{"sku":"a","qty":1}],"meta":{"a":"1"}}}`, "invalid_message", "wrong type"},
	{"order qty overflow", `{"action":"order.place","payload":{"items":[{"sku":"a","qty":1e400}]}}`, "invalid_message", "number out of range"},
	{"order qty fraction", `{"action":"order.place","payload":{"items":[{"sku":"a","qty":1.5}]}}`, "invalid_message", "payload does not match the action's schema"},
	{"ptr ok", `{"action":"ptr","payload":{"name":"x"}}`, "", ""},
	{"ptr required", `{"action":"ptr","payload":{"name":""}}`, "invalid_message", `field "name" failed "required"`},
	{"ptr absent payload", `{"action":"ptr"}`, "invalid_message", `field "name" failed "required"`},
	{"tags", `{"action":"tags","payload":["a","b"]}`, "", ""},
	{"tags wrong type", `{"action":"tags","payload":[1]}`, "invalid_message", "wrong type"},
	{"counts", `{"action":"counts","payload":{"a":1,"B":2}}`, "", ""},
	{"deep", `{"action":"order.place","payload":{"items":[{"sku":"a","qty":1}],"raw":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, "invalid_message", "too deep"},
	{"deep wrong type", `{"action":"tags","payload":[[[]]]}`, "invalid_message", "wrong type"},
}

func TestReadPath(t *testing.T) {
	g := readPathGuard(t)
	for _, tc := range readPathCases {
		t.Run(tc.name, func(t *testing.T) {
			_, out, code, reason := readPath(g, []byte(tc.msg))
			if code != tc.code || reason != tc.reason {
				t.Fatalf("got (%q, %q), want (%q, %q)", code, reason, tc.code, tc.reason)
			}
			if code == "" && out == nil {
				t.Fatal("accepted without data")
			}
			sameValidation(t, g, []byte(tc.msg))
		})
	}
}

// validatorOnly returns a copy of the registered action r whose tags
// validator/v10 checks, the reference for the compiled checks.
func validatorOnly(r *registered) *registered {
	slow := *r
	slow.plan = nil
	return &slow
}

// sameValidation decodes an accepted frame's payload with the compiled
// validate checks and with validator/v10 and fails on any difference in
// the refusal reason.
func sameValidation(t testing.TB, g *Guard, data []byte) {
	t.Helper()
	var env strictjson.Envelope
	if strictjson.Parse(data, g.msg.limits, g.msg.schemaFor, &env) != nil {
		return
	}
	reg := g.msg.actions[string(env.Action)]
	if reg.plan == nil {
		return
	}
	_, got := g.msg.decode(reg, env.Checked())
	_, want := g.msg.decode(validatorOnly(reg), env.Checked())
	if got != want {
		t.Fatalf("%s: compiled checks %q, validator/v10 %q", data, got, want)
	}
}

// TestReadPath_TagsCompiled: the test payloads' tags (required, max,
// min, omitempty, alphanum, dive into structs) run as compiled checks; a
// tag outside that set, or a malformed one, leaves the type with
// validator/v10.
func TestReadPath_TagsCompiled(t *testing.T) {
	g := readPathGuard(t)
	for _, a := range []string{"say", "order.place", "ptr"} {
		if g.msg.actions[a].plan == nil {
			t.Errorf("%s: validate tags not compiled", a)
		}
	}
	type mail struct {
		To string `json:"to" validate:"required,email"`
	}
	type inner struct {
		A string `json:"a" validate:"max=abc"`
	}
	type hidden struct {
		In *inner `json:"in"`
	}
	g2, err := New(WithHMACKey(testKey), WithLogger(slog.New(slog.DiscardHandler)),
		WithAction[mail]("mail"), WithAction[hidden]("hidden"))
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	for _, a := range []string{"mail", "hidden"} {
		if g2.msg.actions[a].plan != nil {
			t.Errorf("%s: compiled, want validator/v10", a)
		}
	}
	if _, _, _, why := readPath(g2, []byte(`{"action":"mail","payload":{"to":"not a mail"}}`)); why != `field "to" failed "email"` {
		t.Errorf("mail: %q", why)
	}
}

// TestReadPath_ReasonNeverEchoesInput: what the client reads names the
// field and the failed tag, never the value it sent.
func TestReadPath_ReasonNeverEchoesInput(t *testing.T) {
	g := readPathGuard(t)
	for _, msg := range []string{
		`{"action":"say","payload":{"text":"<script>alert(1)</script>"}}`,
		`{"action":"order.place","payload":{"items":[{"sku":"<script>","qty":1}]}}`,
		`{"action":"order.place","payload":{"items":[{"sku":"a","qty":1}],"note":"<script>alert(1)</script>"}}`,
		`{"action":"<script>"}`,
		`{"action":"say","payload":{"<script>":1}}`,
	} {
		_, _, code, reason := readPath(g, []byte(msg))
		if code == "" || strings.Contains(reason, "script") {
			t.Errorf("%s: (%q, %q)", msg, code, reason)
		}
	}
}

// TestReadPath_DataTypes: Data is a *T for WithAction[T], and DataAs
// reads it back (a *T for WithAction[*T]).
func TestReadPath_DataTypes(t *testing.T) {
	g := readPathGuard(t)
	_, out, _, _ := readPath(g, []byte(`{"action":"order.place","payload":{"items":[{"sku":"A1","qty":2}],"note":"hi"}}`))
	m := &Message{Action: "order.place", Data: out}
	o, ok := DataAs[orderPayload](m)
	if !ok || len(o.Items) != 1 || o.Items[0].SKU != "A1" || o.Note == nil || *o.Note != "hi" {
		t.Fatalf("DataAs[orderPayload]: %+v %v", o, ok)
	}
	_, out, _, _ = readPath(g, []byte(`{"action":"ptr","payload":{"name":"x"}}`))
	p, ok := DataAs[*ptrPayload](&Message{Data: out})
	if !ok || p == nil || p.Name != "x" {
		t.Fatalf("DataAs[*ptrPayload]: %+v %v", p, ok)
	}
	_, out, _, _ = readPath(g, []byte(`{"action":"tags","payload":["a"]}`))
	if tags, ok := DataAs[[]string](&Message{Data: out}); !ok || len(tags) != 1 {
		t.Fatalf("DataAs[[]string]: %v %v", tags, ok)
	}
	if _, ok := DataAs[orderPayload](nil); ok {
		t.Fatal("DataAs(nil) succeeded")
	}
	if _, ok := DataAs[orderPayload](&Message{}); ok {
		t.Fatal("DataAs of a message without data succeeded")
	}
}

// TestNew_ActionConfigErrors: every bad registration is reported by New,
// all at once, each a *ConfigError matching ErrConfig.
func TestNew_ActionConfigErrors(t *testing.T) {
	type badTag struct {
		A string `json:"a" validate:"maxx=3"`
	}
	type badParam struct {
		A string `json:"a" validate:"max=abc"`
	}
	type left struct{ X string }
	type right struct{ X string }
	type conflict struct { // encoding/json would silently drop X
		left
		right
	}
	bad := []struct {
		opt  Option
		name string
	}{
		{WithAction[sayPayload]("Say"), `"Say"`},
		{WithAction[sayPayload](""), `""`},
		{WithAction[sayPayload](strings.Repeat("a", 65)), `"` + strings.Repeat("a", 65) + `"`},
		{WithAction[sayPayload]("ping"), `"ping"`},
		{WithAction[sayPayload]("pong"), `"pong"`},
		{WithAction[sayPayload]("auth"), `"auth"`},
		{WithAction[sayPayload]("error"), `"error"`},
		{WithAction[chan int]("chan"), `"chan"`},
		{WithAction[conflict]("conflict"), `"conflict"`},
		{WithAction[badTag]("badtag"), `"badtag"`},
		{WithAction[badParam]("badparam"), `"badparam"`},
	}
	opts := []Option{WithHMACKey(testKey), WithLogger(slog.New(slog.DiscardHandler)),
		WithAction[sayPayload]("twice"), WithAction[markerPayload]("twice")}
	for _, b := range bad {
		opts = append(opts, b.opt)
	}
	_, err := New(opts...)
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("New: %v, want ErrConfig", err)
	}
	msg := err.Error()
	for _, b := range append(bad, struct {
		opt  Option
		name string
	}{nil, `"twice"`}) {
		if !strings.Contains(msg, "WithAction("+b.name+")") {
			t.Errorf("no error for %s in:\n%s", b.name, msg)
		}
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Option != "WithAction" {
		t.Fatalf("not a *ConfigError for WithAction: %v", err)
	}
}

// TestReadPath_ValidatorPanicContained: a malformed tag the zero value
// could not reveal at New (behind a nil pointer) refuses the message
// instead of panicking on the reading goroutine.
func TestReadPath_ValidatorPanicContained(t *testing.T) {
	type inner struct {
		A string `json:"a" validate:"max=abc"`
	}
	type outer struct {
		In *inner `json:"in"`
	}
	g, err := New(WithHMACKey(testKey), WithLogger(slog.New(slog.DiscardHandler)), WithAction[outer]("o"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer g.Close()
	_, _, code, reason := readPath(g, []byte(`{"action":"o","payload":{"in":{"a":"x"}}}`))
	if code != "invalid_message" || reason != "payload failed validation" {
		t.Fatalf("got (%q, %q)", code, reason)
	}
}

// FuzzReadPath feeds arbitrary bytes through the path every client frame
// takes: strictjson.Parse with the registered schemas, then decode and the
// validator. It must not panic, anything accepted must name a registered
// action and decode into that action's type, the strict parser must
// agree with encoding/json on what it accepts, and the compiled validate
// checks with validator/v10 on what they refuse.
func FuzzReadPath(f *testing.F) {
	g := readPathGuard(f)
	for _, tc := range readPathCases {
		f.Add([]byte(tc.msg))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameValidation(t, g, data)
		env, out, code, reason := readPath(g, data)
		if code == "internal" {
			t.Fatalf("%q: %s", data, reason)
		}
		if code == strictjson.CodeUnknownAction {
			if g.msg.actions[string(env.Action)] != nil {
				t.Fatalf("%q: registered action %q reported unknown", data, env.Action)
			}
			return
		}
		if code != "" {
			if code != strictjson.CodeInvalidMessage || reason == "" {
				t.Fatalf("%q: refusal (%q, %q)", data, code, reason)
			}
			return
		}
		// Accepted.
		reg := g.msg.actions[string(env.Action)]
		if reg == nil {
			t.Fatalf("%q: accepted unregistered action %q", data, env.Action)
		}
		if got, want := reflect.TypeOf(out), reflect.PointerTo(reg.typ); got != want {
			t.Fatalf("%q: data of type %v, want %v", data, got, want)
		}
		if !utf8.Valid(data) || !json.Valid(data) {
			t.Fatalf("%q: accepted invalid UTF-8 or JSON", data)
		}
		var m Message
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%q: accepted, but encoding/json refuses it: %v", data, err)
		}
		if m.Action != string(env.Action) || m.Channel != string(env.Channel) || m.ID != string(env.ID) {
			t.Fatalf("%q: strict parse (%q, %q, %q) disagrees with encoding/json (%q, %q, %q)",
				data, env.Action, env.Channel, env.ID, m.Action, m.Channel, m.ID)
		}
	})
}
