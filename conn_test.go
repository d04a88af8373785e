package wssec

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// Payload types of the actions the Conn tests register.
type (
	markerPayload struct {
		N int `json:"n"`
	}
	sayPayload struct {
		Text string `json:"text" validate:"required,max=10"`
	}
	publishPayload struct {
		Body string `json:"body" validate:"max=100"`
	}
	subscribePayload struct{}
)

// connPolicySecret is in the error the test Policy returns; it must reach
// the log and never the client.
const connPolicySecret = "policy-secret-7f3a: rule 12 matched subject"

// connTestPolicy denies a "say" whose text is "deny".
func connTestPolicy(_ context.Context, _ *Principal, m *Message) error {
	if d, ok := DataAs[sayPayload](m); ok && d.Text == "deny" {
		return errors.New(connPolicySecret)
	}
	return nil
}

// connBaseOptions is what every Conn test starts from: plain ws:// on
// loopback, the shared HMAC key, the test actions, one tenant channel rule
// and the test policy. Later options win (or add, for repeatable ones).
func connBaseOptions(extra ...Option) []Option {
	return append([]Option{
		WithInsecureTransport(),
		WithHMACKey(testKey),
		WithAction[markerPayload]("marker", ChannelFree()),
		WithAction[sayPayload]("say", ChannelFree()),
		WithAction[publishPayload]("publish"),
		WithAction[subscribePayload]("subscribe"),
		WithChannelRules(ChannelRule{Pattern: "tenant:{tenant}:orders", Read: "orders:read", Write: "orders:write"}),
		WithPolicy(connTestPolicy),
	}, extra...)
}

// connHarness is a fixture whose handler records everything ReadMessage
// returns and acknowledges each message with {"action":"ack","id":…}, so
// the client knows when a message got through. It serves one connection.
type connHarness struct {
	*fixture
	once  sync.Once
	ended chan struct{} // closed when the read loop ends

	mu   sync.Mutex // guards got and end
	got  []*Message // what ReadMessage returned, in order
	end  error      // the error that ended the read loop
	conn *Conn
}

type ackFrame struct {
	Action string `json:"action"`
	ID     string `json:"id,omitempty"`
}

func newConnHarness(t *testing.T, opts ...Option) *connHarness {
	t.Helper()
	h := &connHarness{ended: make(chan struct{})}
	serve := func(ctx context.Context, c *Conn) {
		h.mu.Lock()
		h.conn = c
		h.mu.Unlock()
		defer h.once.Do(func() { close(h.ended) })
		for {
			m, err := c.ReadMessage(ctx)
			h.mu.Lock()
			if err != nil {
				h.end = err
				h.mu.Unlock()
				return
			}
			h.got = append(h.got, m)
			h.mu.Unlock()
			_ = c.Send(ctx, ackFrame{Action: "ack", ID: m.ID})
		}
	}
	h.fixture = newFixture(t, serve, connBaseOptions(opts...)...)
	return h
}

// gotIDs lists "action/id" of every message the handler received.
func (h *connHarness) gotIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.got {
		out = append(out, m.Action+"/"+m.ID)
	}
	return out
}

// waitEnded waits (boundedly) for the read loop to end and returns the
// error it ended with.
func (h *connHarness) waitEnded(t *testing.T) error {
	t.Helper()
	select {
	case <-h.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's read loop did not end")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.end
}

// connTestToken is a token for alice of tenant acme with scope.
func connTestToken(t *testing.T, scope string) string {
	return mint(t, claims{sub: "alice", tenant: "acme", scope: scope})
}

// testClient is the client end of a socket; it keeps every frame it read.
type testClient struct {
	t    *testing.T
	ws   *websocket.Conn
	seen [][]byte
}

// dialClient opens a socket as alice@acme with scope.
func (h *connHarness) dialClient(t *testing.T, scope string, compress bool) *testClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: compress}
	ws, resp, err := d.Dial(h.url, h.headers(connTestToken(t, scope)))
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	if compress && !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatalf("compression not negotiated: %q", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	return &testClient{t: t, ws: ws}
}

// wireFrame is a server frame, decoded strictly.
type wireFrame struct {
	Action string     `json:"action"`
	ID     string     `json:"id,omitempty"`
	Error  *wireError `json:"error,omitempty"`
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// send writes one frame.
func (c *testClient) send(typ int, data []byte) {
	c.t.Helper()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.ws.WriteMessage(typ, data); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

func (c *testClient) sendText(s string) { c.t.Helper(); c.send(websocket.TextMessage, []byte(s)) }

// next reads one frame; it returns the close code instead when the server
// closed the socket, and fails the test on any other error.
func (c *testClient) next() (wireFrame, int) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return wireFrame{}, ce.Code
		}
		c.t.Fatalf("client read: %v", err)
	}
	c.seen = append(c.seen, data)
	if typ != websocket.TextMessage {
		c.t.Fatalf("server sent frame type %d", typ)
	}
	var f wireFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		c.t.Fatalf("server frame %s: %v", data, err)
	}
	return f, 0
}

// expectFrame reads one frame and compares it with want; an error
// message must be present, and is compared only when want has one.
func (c *testClient) expectFrame(want wireFrame) {
	c.t.Helper()
	got, code := c.next()
	if code != 0 {
		c.t.Fatalf("got close %d, want frame %+v", code, want)
	}
	if got.Action != want.Action || got.ID != want.ID || (got.Error == nil) != (want.Error == nil) {
		c.t.Fatalf("got frame %s, want %+v", c.seen[len(c.seen)-1], want)
	}
	if want.Error != nil {
		if got.Error.Code != want.Error.Code || got.Error.Message == "" ||
			(want.Error.Message != "" && got.Error.Message != want.Error.Message) {
			c.t.Fatalf("got frame %s, want error %+v", c.seen[len(c.seen)-1], *want.Error)
		}
	}
}

func (c *testClient) expectError(code, id string) {
	c.t.Helper()
	c.expectFrame(wireFrame{Action: "error", ID: id, Error: &wireError{Code: code}})
}

// expectClose reads the close the server sent.
func (c *testClient) expectClose(code int) {
	c.t.Helper()
	got, gotCode := c.next()
	if gotCode != code {
		c.t.Fatalf("got close %d (frame %+v), want close %d", gotCode, got, code)
	}
}

// marker sends a valid marker and waits for its ack, proving that
// everything the client sent before it was processed.
func (c *testClient) marker(id string) {
	c.t.Helper()
	c.sendText(`{"action":"marker","id":"` + id + `","payload":{"n":1}}`)
	c.expectFrame(wireFrame{Action: "ack", ID: id})
}

// noSecrets fails if any frame the client read carries the policy's text.
func (c *testClient) noSecrets() {
	c.t.Helper()
	for _, f := range c.seen {
		if bytes.Contains(f, []byte("policy-secret")) {
			c.t.Fatalf("the policy's error reached the client: %s", f)
		}
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConn_Guards sends one bad message per case between two valid
// markers, over a real socket, and checks what the client receives and
// that the handler's ReadMessage returned only what it should.
func TestConn_Guards(t *testing.T) {
	long := `{"action":"marker","id":"big","payload":{"n":1,"pad":"` + strings.Repeat("x", 2048) + `"}}`
	cases := []struct {
		name  string
		opts  []Option
		scope string
		typ   int // frame type; 0 means text
		msg   string
		// Exactly one of the following.
		want      *wireFrame // the answer frame
		wantClose int        // the close code
		accepted  bool       // ReadMessage returns it (answered with an ack)
	}{
		{name: "oversize frame", opts: []Option{WithMaxMessageSize(1024)}, msg: long, wantClose: CloseTooBig},
		{name: "binary frame", typ: websocket.BinaryMessage, msg: `{"action":"marker","id":"b1","payload":{"n":1}}`,
			want: &wireFrame{Action: "error", ID: "b1", Error: &wireError{Code: "invalid_message"}}},
		{name: "invalid utf-8", msg: "{\"action\":\"marker\",\"id\":\"\xff\xfe\",\"payload\":{\"n\":1}}", wantClose: CloseInvalidData},
		{name: "invalid json", msg: `{"action":"marker","id":"j1",`,
			want: &wireFrame{Action: "error", ID: "j1", Error: &wireError{Code: "invalid_message", Message: "invalid json"}}},
		{name: "not an object", msg: `["marker"]`,
			want: &wireFrame{Action: "error", Error: &wireError{Code: "invalid_message"}}},
		{name: "unknown envelope field", msg: `{"action":"marker","id":"u1","payload":{"n":1},"admin":true}`,
			want: &wireFrame{Action: "error", ID: "u1", Error: &wireError{Code: "invalid_message", Message: "unknown field"}}},
		{name: "duplicate key", msg: `{"action":"marker","id":"d1","action":"marker"}`,
			want: &wireFrame{Action: "error", ID: "d1", Error: &wireError{Code: "invalid_message", Message: "duplicate key"}}},
		// A duplicate key is malformed at any depth, but the one top-level
		// id is well-formed: it is echoed, as for every refusal.
		{name: "duplicate payload key", msg: `{"action":"say","id":"d2","payload":{"text":"hi","text":"deny"}}`,
			want: &wireFrame{Action: "error", ID: "d2", Error: &wireError{Code: "invalid_message", Message: "duplicate key"}}},
		{name: "ACTION case variant", msg: `{"ACTION":"marker","id":"a1","payload":{"n":1}}`,
			want: &wireFrame{Action: "error", ID: "a1", Error: &wireError{Code: "invalid_message", Message: "unknown field"}}},
		{name: "trailing data", msg: `{"action":"marker","id":"t1","payload":{"n":1}} {"action":"marker"}`,
			want: &wireFrame{Action: "error", ID: "t1", Error: &wireError{Code: "invalid_message", Message: "trailing data"}}},
		{name: "unknown action", msg: `{"action":"delete_all","id":"ua1"}`,
			want: &wireFrame{Action: "error", ID: "ua1", Error: &wireError{Code: "unknown_action"}}},
		{name: "built-in auth with a garbage token", msg: `{"action":"auth","id":"au1","payload":{"token":"x"}}`,
			want: &wireFrame{Action: "error", ID: "au1", Error: &wireError{Code: "forbidden", Message: "re-authentication refused"}}},
		{name: "built-in auth with an unknown payload field", msg: `{"action":"auth","id":"au2","payload":{"token":"x","sub":"root"}}`,
			want: &wireFrame{Action: "error", ID: "au2", Error: &wireError{Code: "invalid_message"}}},
		{name: "validator required", msg: `{"action":"say","id":"v1","payload":{"text":""}}`,
			want: &wireFrame{Action: "error", ID: "v1", Error: &wireError{Code: "invalid_message", Message: `field "text" failed "required"`}}},
		{name: "validator max", msg: `{"action":"say","id":"v2","payload":{"text":"01234567890"}}`,
			want: &wireFrame{Action: "error", ID: "v2", Error: &wireError{Code: "invalid_message", Message: `field "text" failed "max"`}}},
		{name: "payload key case variant", msg: `{"action":"say","id":"c1","payload":{"Text":"x"}}`,
			want: &wireFrame{Action: "error", ID: "c1", Error: &wireError{Code: "invalid_message", Message: "unknown field"}}},
		{name: "payload unknown field", msg: `{"action":"say","id":"c2","payload":{"text":"x","admin":true}}`,
			want: &wireFrame{Action: "error", ID: "c2", Error: &wireError{Code: "invalid_message", Message: "unknown field"}}},
		{name: "payload wrong type", msg: `{"action":"say","id":"c3","payload":{"text":5}}`,
			want: &wireFrame{Action: "error", ID: "c3", Error: &wireError{Code: "invalid_message", Message: "wrong type"}}},
		{name: "other tenant's channel", scope: "orders:read", msg: `{"action":"subscribe","channel":"tenant:globex:orders","id":"f1"}`,
			want: &wireFrame{Action: "error", ID: "f1", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{name: "channel without a rule", scope: "orders:read orders:write", msg: `{"action":"publish","channel":"admin:orders","id":"f2","payload":{"body":"x"}}`,
			want: &wireFrame{Action: "error", ID: "f2", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{name: "publish without write scope", scope: "orders:read", msg: `{"action":"publish","channel":"tenant:acme:orders","id":"p1","payload":{"body":"x"}}`,
			want: &wireFrame{Action: "error", ID: "p1", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{name: "subscribe without read scope", scope: "orders:write", msg: `{"action":"subscribe","channel":"tenant:acme:orders","id":"s0"}`,
			want: &wireFrame{Action: "error", ID: "s0", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{name: "subscribe with read scope", scope: "orders:read", msg: `{"action":"subscribe","channel":"tenant:acme:orders","id":"s1"}`,
			accepted: true},
		{name: "publish with write scope", scope: "orders:write", msg: `{"action":"publish","channel":"tenant:acme:orders","id":"p2","payload":{"body":"x"}}`,
			accepted: true},
		{name: "policy denial", msg: `{"action":"say","id":"pol1","payload":{"text":"deny"}}`,
			want: &wireFrame{Action: "error", ID: "pol1", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{name: "policy allows", msg: `{"action":"say","id":"pol2","payload":{"text":"hello"}}`, accepted: true},
		{name: "built-in ping", msg: `{"action":"ping","id":"pg1"}`, want: &wireFrame{Action: "pong", ID: "pg1"}},
		{name: "ping with payload", msg: `{"action":"ping","id":"pg2","payload":{"x":1}}`,
			want: &wireFrame{Action: "error", ID: "pg2", Error: &wireError{Code: "invalid_message", Message: "unknown field"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newConnHarness(t, tc.opts...)
			c := h.dialClient(t, tc.scope, false)
			c.marker("m1")
			typ := tc.typ
			if typ == 0 {
				typ = websocket.TextMessage
			}
			c.send(typ, []byte(tc.msg))
			want := []string{"marker/m1"}
			switch {
			case tc.wantClose != 0:
				c.expectClose(tc.wantClose)
				err := h.waitEnded(t)
				var ce *CloseError
				if !errors.As(err, &ce) || ce.Code != tc.wantClose || !errors.Is(err, ErrClosed) {
					t.Fatalf("ReadMessage ended with %v, want a CloseError %d", err, tc.wantClose)
				}
			case tc.accepted:
				var env struct{ ID string }
				_ = json.Unmarshal([]byte(tc.msg), &env)
				c.expectFrame(wireFrame{Action: "ack", ID: env.ID})
				var action string
				if i := strings.Index(tc.msg, `"action":"`); i >= 0 {
					action, _, _ = strings.Cut(tc.msg[i+len(`"action":"`):], `"`)
				}
				want = append(want, action+"/"+env.ID)
				c.marker("m2")
				want = append(want, "marker/m2")
			default:
				c.expectFrame(*tc.want)
				c.marker("m2")
				want = append(want, "marker/m2")
			}
			if got := h.gotIDs(); !sameStrings(got, want) {
				t.Fatalf("ReadMessage returned %v, want %v", got, want)
			}
			c.noSecrets()
		})
	}
}

// TestConn_ErrorFrameWire pins the exact bytes of an error frame.
func TestConn_ErrorFrameWire(t *testing.T) {
	h := newConnHarness(t)
	c := h.dialClient(t, "", false)
	c.sendText(`{"action":"nope","id":"42"}`)
	c.next()
	want := `{"action":"error","id":"42","error":{"code":"unknown_action","message":"unknown action"}}`
	if got := string(c.seen[0]); got != want {
		t.Fatalf("error frame %s, want %s", got, want)
	}
	c.sendText(`{"action":"ping","id":"7"}`)
	c.next()
	if got := string(c.seen[1]); got != `{"action":"pong","id":"7"}` {
		t.Fatalf("pong frame %s", got)
	}
	// Without an id the frame has none.
	c.sendText(`{"action":"ping"}`)
	c.next()
	if got := string(c.seen[2]); got != `{"action":"pong"}` {
		t.Fatalf("pong frame %s", got)
	}
}

// TestConn_DataAs checks that ReadMessage hands the handler the decoded,
// validated payload.
func TestConn_DataAs(t *testing.T) {
	h := newConnHarness(t)
	c := h.dialClient(t, "orders:write", false)
	c.sendText(`{"action":"publish","channel":"tenant:acme:orders","id":"1","payload":{"body":"hello"}}`)
	c.expectFrame(wireFrame{Action: "ack", ID: "1"})
	h.mu.Lock()
	m := h.got[0]
	h.mu.Unlock()
	p, ok := DataAs[publishPayload](m)
	if !ok || p.Body != "hello" || m.Channel != "tenant:acme:orders" || string(m.Payload) != `{"body":"hello"}` {
		t.Fatalf("message %+v, data %+v %v", m, p, ok)
	}
	if _, ok := DataAs[sayPayload](m); ok {
		t.Fatal("DataAs with the wrong type succeeded")
	}
}

// TestConn_PolicyErrorOnlyInLog: the Policy's error text is logged for
// the operator but never sent to the client.
func TestConn_PolicyErrorOnlyInLog(t *testing.T) {
	h := newConnHarness(t)
	c := h.dialClient(t, "", false)
	c.sendText(`{"action":"say","id":"x","payload":{"text":"deny"}}`)
	c.expectError("forbidden", "x")
	c.noSecrets()
	// The frame is queued before the event is logged.
	eventually(t, "the policy's reason in the log", func() bool { return strings.Contains(h.logs.String(), connPolicySecret) })
	if !h.events.has(EventMessageRefused, "forbidden") {
		t.Fatal("no forbidden event")
	}
}

// TestConn_DenialLimit: the third refusal is answered and closes the
// socket with 1008; the markers between refusals still get through.
func TestConn_DenialLimit(t *testing.T) {
	h := newConnHarness(t, WithDenialLimit(3))
	c := h.dialClient(t, "orders:read", false)
	c.marker("m1")
	c.sendText(`{"action":"nope","id":"d1"}`)
	c.expectError("unknown_action", "d1")
	c.marker("m2")
	c.sendText(`{"action":"subscribe","channel":"tenant:globex:orders","id":"d2"}`)
	c.expectError("forbidden", "d2")
	c.marker("m3")
	c.sendText(`{"action":"say","id":"d3","payload":{"text":""}}`)
	c.expectError("invalid_message", "d3")
	c.expectClose(ClosePolicy)
	err := h.waitEnded(t)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ClosePolicy || ce.Remote {
		t.Fatalf("ReadMessage ended with %v, want a local CloseError 1008", err)
	}
	if got, want := h.gotIDs(), []string{"marker/m1", "marker/m2", "marker/m3"}; !sameStrings(got, want) {
		t.Fatalf("ReadMessage returned %v, want %v", got, want)
	}
	eventually(t, "denial_limit event", func() bool { return h.events.has(EventMessageRefused, "denial_limit") })
}

// TestConn_MessageFlood: with a burst of 2 and a frozen clock, the third
// and fourth messages get rate_limited frames and the fifth (the
// denial-limit count of rate refusals) closes the socket with 1013.
func TestConn_MessageFlood(t *testing.T) {
	frozen := time.Now()
	h := newConnHarness(t, WithMessageRate(rate.Limit(1), 2), WithDenialLimit(3),
		WithClock(func() time.Time { return frozen }))
	c := h.dialClient(t, "", false)
	for i := 1; i <= 5; i++ {
		c.sendText(fmt.Sprintf(`{"action":"marker","id":"f%d","payload":{"n":%d}}`, i, i))
	}
	c.expectFrame(wireFrame{Action: "ack", ID: "f1"})
	c.expectFrame(wireFrame{Action: "ack", ID: "f2"})
	c.expectError("rate_limited", "f3")
	c.expectError("rate_limited", "f4")
	c.expectClose(CloseTryAgainLater)
	if err := h.waitEnded(t); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("ReadMessage ended with %v, want a close matching ErrRateLimited", err)
	}
	if got, want := h.gotIDs(), []string{"marker/f1", "marker/f2"}; !sameStrings(got, want) {
		t.Fatalf("ReadMessage returned %v, want %v", got, want)
	}
	eventually(t, "rate_abuse event", func() bool { return h.events.has(EventMessageRefused, "rate_abuse") })
}

// TestConn_RateRecovers: a rate-limited client that slows down is served
// again, and an accepted message resets the count of rate refusals.
func TestConn_RateRecovers(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	h := newConnHarness(t, WithMessageRate(rate.Limit(1), 1), WithDenialLimit(2),
		WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
	c := h.dialClient(t, "", false)
	for range 3 {
		c.sendText(`{"action":"marker","id":"ok","payload":{"n":1}}`)
		c.expectFrame(wireFrame{Action: "ack", ID: "ok"})
		c.sendText(`{"action":"marker","id":"over","payload":{"n":1}}`)
		c.expectError("rate_limited", "over")
		now.Add(int64(time.Second)) // one token earned
	}
	if got := len(h.gotIDs()); got != 3 {
		t.Fatalf("ReadMessage returned %d messages, want 3", got)
	}
}

// TestConn_DecompressionBomb: with compression on and a 64 KiB limit, one
// frame of about 64 KB on the wire that inflates to 64 MiB (deflate's best
// ratio) closes the socket with 1009, nothing reaches the handler, the
// heap (runtime.ReadMemStats after a GC) grows by less than 2× the limit,
// and all the server allocated meanwhile is a few times the limit. The
// frame is built before the baseline and written raw, so the client
// allocates nothing during the attack.
func TestConn_DecompressionBomb(t *testing.T) {
	const limit = 64 << 10
	const inflated = 64 << 20
	h := newConnHarness(t, WithCompression(), WithMaxMessageSize(limit))
	c := h.dialClient(t, "", true)
	c.marker("m1")

	// A permessage-deflate message is a raw deflate stream without its
	// final empty block's tail (RFC 7692 §7.2.1).
	var wire bytes.Buffer
	fw, _ := flate.NewWriter(&wire, flate.BestCompression)
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	for range inflated / len(chunk) {
		fw.Write(chunk)
	}
	fw.Flush()
	payload := bytes.TrimSuffix(wire.Bytes(), []byte{0, 0, 0xff, 0xff})
	if len(payload) >= limit {
		t.Fatalf("the compressed frame (%d bytes) would hit the wire limit, not the inflate cap", len(payload))
	}
	frame := atkFrame(true, atkRSV1, websocket.TextMessage, payload, true)
	t.Logf("bomb: %d bytes on the wire, %d inflated, limit %d", len(payload), inflated, limit)
	chunk, fw = nil, nil
	wire = bytes.Buffer{}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)

	// The server hangs up as soon as the inflated size passes the cap,
	// possibly while the frame is still being written: a write error here
	// is the defence working, not a failure.
	raw := c.ws.UnderlyingConn()
	_ = raw.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Write(frame); err != nil {
		t.Logf("client write ended early: %v", err)
	}
	c.expectClose(CloseTooBig)
	err := h.waitEnded(t)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseTooBig {
		t.Fatalf("ReadMessage ended with %v, want CloseError 1009", err)
	}
	h.mu.Lock()
	conn := h.conn
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(frame)

	heapDelta := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	allocDelta := after.TotalAlloc - before.TotalAlloc
	t.Logf("heap growth after GC: %d bytes; allocated during the attack: %d bytes (limit %d)", heapDelta, allocDelta, limit)
	if heapDelta >= 2*limit {
		t.Errorf("heap grew by %d bytes: not under 2× the limit (%d)", heapDelta, 2*limit)
	}
	// Everything allocated while refusing the bomb (the read buffer, which
	// doubles up to limit+1; gorilla's inflater, about 87 KiB of window
	// state; the events) is a few times the limit, not the 64 MiB the frame
	// inflates to.
	if allocDelta >= 8*limit {
		t.Errorf("allocated %d bytes during the attack, over 8× the limit: the server inflated past the cap", allocDelta)
	}
	if got, want := h.gotIDs(), []string{"marker/m1"}; !sameStrings(got, want) {
		t.Fatalf("ReadMessage returned %v, want %v", got, want)
	}
	if !h.events.has(EventMessageRefused, "message_too_big") {
		t.Fatal("no message_too_big event")
	}
}

// TestConn_CompressedWithinLimit: compression on, a normal message still
// works both ways.
func TestConn_CompressedWithinLimit(t *testing.T) {
	h := newConnHarness(t, WithCompression())
	c := h.dialClient(t, "", true)
	c.marker("m1")
	c.sendText(`{"action":"say","id":"s","payload":{"text":"` + strings.Repeat("a", 10) + `"}}`)
	c.expectFrame(wireFrame{Action: "ack", ID: "s"})
}

// TestConn_SlowConsumer: the server Sends 1 600 messages of 64 KiB (100
// MiB) to a client that never reads. The bounded queue fills, the socket
// is closed with 1013, Send returns errors, and the server's heap (after
// GC, measured in the handler at the first refused Send while the Conn and
// its queue are still alive) stays within the queue's capacity + 1 MiB.
func TestConn_SlowConsumer(t *testing.T) {
	const (
		queue = 16
		size  = 64 << 10
		count = 1600
	)
	type bulk struct {
		Action string `json:"action"`
		Data   string `json:"data"`
	}
	msg := bulk{Action: "bulk", Data: strings.Repeat("x", size-32)}
	type result struct {
		firstErr   error
		firstAt    int
		errs       int
		heapAtFull int64
	}
	res := make(chan result, 1)
	var base runtime.MemStats
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		var r result
		r.firstAt = -1
		for i := range count {
			err := c.Send(ctx, msg)
			if err == nil {
				continue
			}
			r.errs++
			if r.firstErr == nil {
				r.firstErr, r.firstAt = err, i
				var ms runtime.MemStats
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&ms)
				r.heapAtFull = int64(ms.HeapAlloc) - int64(base.HeapAlloc)
			}
		}
		res <- r
	}, WithInsecureTransport(), WithHMACKey(testKey), WithSendQueue(queue))

	runtime.GC() // twice: the first leaves sync.Pool victims alive
	runtime.GC()
	runtime.ReadMemStats(&base)
	ws, status, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	_ = ws // never read

	var r result
	select {
	case r = <-res:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler did not finish sending")
	}
	t.Logf("first refused Send at #%d of %d: %v; heap delta with a full queue: %d bytes", r.firstAt, count, r.firstErr, r.heapAtFull)
	var ce *CloseError
	if r.firstErr == nil || !errors.As(r.firstErr, &ce) || ce.Code != CloseTryAgainLater || !errors.Is(r.firstErr, ErrSlowConsumer) {
		t.Fatalf("first Send error %v, want a CloseError 1013 matching ErrSlowConsumer", r.firstErr)
	}
	if r.errs != count-r.firstAt {
		t.Fatalf("%d Sends failed after the first failure at #%d; every later Send must fail", r.errs, r.firstAt)
	}
	if limit := int64(queue*size + 1<<20); r.heapAtFull > limit {
		t.Errorf("heap grew by %d bytes with a full queue, over queue cap + 1 MiB (%d)", r.heapAtFull, limit)
	}
	if !f.events.has(EventMessageRefused, "slow_consumer") {
		t.Fatal("no slow_consumer event")
	}
	eventually(t, "conn_closed 1013", func() bool { return closedWith(f.events, CloseTryAgainLater, "slow consumer") })
}

// closedWith reports whether a conn_closed event with code and reason
// was observed.
func closedWith(r *recorder, code int, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Kind == EventConnClosed && e.CloseCode == code && e.Detail == reason {
			return true
		}
	}
	return false
}

// TestConn_SendCloseRace: 64 goroutines Send while others Close, under
// -race: no panic, no race, every Send either succeeds or reports the
// close, and the connection's goroutines end (goleak in TestMain).
func TestConn_SendCloseRace(t *testing.T) {
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
			ws, status, err := f.dial(f.headers(mint(t, claims{})))
			if err != nil {
				t.Fatalf("dial: %d %v", status, err)
			}
			// The client drains until the close so the writer is never stuck.
			clientDone := make(chan struct{})
			go func() {
				defer close(clientDone)
				_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						return
					}
				}
			}()
			var c *Conn
			select {
			case c = <-f.ran:
			case <-time.After(5 * time.Second):
				t.Fatal("handler did not run")
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			var bad atomic.Value
			for i := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for j := range 20 {
						err := c.Send(context.Background(), map[string]int{"g": i, "n": j})
						if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrSlowConsumer) {
							bad.Store(err)
						}
					}
				}()
			}
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					runtime.Gosched()
					if err := c.Close(CloseNormal, "bye"); err != nil {
						bad.Store(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Wait(ctx); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if err, _ := bad.Load().(error); err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if err := c.Send(context.Background(), "late"); !errors.Is(err, ErrClosed) {
				t.Fatalf("Send after Close: %v, want ErrClosed", err)
			}
			select {
			case <-clientDone:
			case <-time.After(5 * time.Second):
				t.Fatal("client did not see the close")
			}
		})
	}
}

// TestConn_IdleTimeout: a client that never reads never answers the
// server's pings; the server closes the socket when the idle timeout
// passes, and reports it in the conn_closed event.
func TestConn_IdleTimeout(t *testing.T) {
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey),
		WithIdleTimeout(200*time.Millisecond), WithPingInterval(50*time.Millisecond))
	ws, status, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	eventually(t, "idle close", func() bool { return closedWith(f.events, CloseGoingAway, "idle timeout") })
	// What the client finds when it finally reads: pings, then the close.
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	ws.SetPingHandler(func(string) error { return nil })
	for range 1000 {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != CloseGoingAway {
			t.Fatalf("client read %v, want close 1001", err)
		}
		return
	}
	t.Fatal("no close")
}

// TestConn_PongsKeepAlive: a client that reads (and so answers pings)
// outlives several idle timeouts.
func TestConn_PongsKeepAlive(t *testing.T) {
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey),
		WithIdleTimeout(time.Second), WithPingInterval(100*time.Millisecond),
		WithMaxConnAge(3*time.Second))
	ws, status, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	// Read until the server closes: max age (1008) must come first, not
	// the idle timeout.
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != ClosePolicy {
		t.Fatalf("client read %v, want close 1008 (max age)", err)
	}
	if closedWith(f.events, CloseGoingAway, "idle timeout") {
		t.Fatal("an answering client hit the idle timeout")
	}
}

// TestConn_MaxAge: a connection older than WithMaxConnAge is closed with
// 1008 whatever its activity.
func TestConn_MaxAge(t *testing.T) {
	h := newConnHarness(t, WithMaxConnAge(300*time.Millisecond))
	c := h.dialClient(t, "", false)
	c.marker("m1")
	c.expectClose(ClosePolicy)
	err := h.waitEnded(t)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ClosePolicy || ce.Reason != "maximum connection age" {
		t.Fatalf("ReadMessage ended with %v", err)
	}
	eventually(t, "conn_closed max age", func() bool { return closedWith(h.events, ClosePolicy, "maximum connection age") })
}

// TestConn_GuardCloseShutsDown: Guard.Close closes every live socket with
// 1001 and returns only once their goroutines have ended.
func TestConn_GuardCloseShutsDown(t *testing.T) {
	const n = 3
	ends := make(chan error, n)
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		for {
			if _, err := c.ReadMessage(ctx); err != nil {
				ends <- err
				return
			}
		}
	}, WithInsecureTransport(), WithHMACKey(testKey))
	var clients []*websocket.Conn
	var conns []*Conn
	for i := range n {
		ws, status, err := f.dial(f.headers(mint(t, claims{sub: fmt.Sprint("user", i)})))
		if err != nil {
			t.Fatalf("dial: %d %v", status, err)
		}
		clients = append(clients, ws)
		select {
		case c := <-f.ran:
			conns = append(conns, c)
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not run")
		}
	}
	if err := f.g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close has returned: every connection is fully torn down already.
	for i, c := range conns {
		select {
		case <-c.gone:
		default:
			t.Fatalf("conn %d not torn down when Close returned", i)
		}
	}
	if got := len(f.events.reasons(EventConnClosed)); got != n {
		t.Fatalf("%d conn_closed events when Close returned, want %d", got, n)
	}
	if _, _, total := f.g.lim.counts(); total != 0 {
		t.Fatalf("%d connection slots still held", total)
	}
	for i, ws := range clients {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != CloseGoingAway {
			t.Fatalf("client %d read %v, want close 1001", i, err)
		}
	}
	for range n {
		select {
		case err := <-ends:
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != CloseGoingAway {
				t.Fatalf("ReadMessage ended with %v, want CloseError 1001", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a handler did not return")
		}
	}
	// A new handshake is refused.
	if _, status, err := f.dial(f.headers(mint(t, claims{}))); err == nil || status != http.StatusServiceUnavailable {
		t.Fatalf("handshake after Close: %d %v, want 503", status, err)
	}
}

// TestConn_ReadContext: a ReadMessage whose context ends returns the
// context's error and closes the connection (1001, "read abandoned").
func TestConn_ReadContext(t *testing.T) {
	ended := make(chan error, 1)
	f := newFixture(t, func(_ context.Context, c *Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.ReadMessage(ctx)
		ended <- err
		// The connection is closed: a later read reports it.
		if _, err := c.ReadMessage(context.Background()); !errors.Is(err, ErrClosed) {
			ended <- fmt.Errorf("second read: %v", err)
		}
	}, WithInsecureTransport(), WithHMACKey(testKey))
	ws, status, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadMessage: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadMessage did not return when its context ended")
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseGoingAway {
		t.Fatalf("client read %v, want close 1001", err)
	}
	eventually(t, "read abandoned", func() bool { return closedWith(f.events, CloseGoingAway, "read abandoned") })
	select {
	case err := <-ended:
		t.Fatal(err)
	default:
	}
}

// TestConn_ReadCanceledContext: a context that is already done never
// blocks ReadMessage.
func TestConn_ReadCanceledContext(t *testing.T) {
	ended := make(chan error, 1)
	f := newFixture(t, func(_ context.Context, c *Conn) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.ReadMessage(ctx)
		ended <- err
	}, WithInsecureTransport(), WithHMACKey(testKey))
	if _, status, err := f.dial(f.headers(mint(t, claims{}))); err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ReadMessage: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadMessage blocked on a canceled context")
	}
}

// TestConn_SendsBeforeCloseDelivered: what a handler Sends before it
// returns reaches the client before the close frame.
func TestConn_SendsBeforeCloseDelivered(t *testing.T) {
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		for i := range 10 {
			_ = c.Send(ctx, ackFrame{Action: "ack", ID: fmt.Sprint(i)})
		}
	}, WithInsecureTransport(), WithHMACKey(testKey))
	for round := range 20 {
		ws, status, err := f.dial(f.headers(mint(t, claims{})))
		if err != nil {
			t.Fatalf("dial: %d %v", status, err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for i := range 10 {
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("round %d: message %d lost: %v", round, i, err)
			}
			if want := fmt.Sprintf(`{"action":"ack","id":"%d"}`, i); string(data) != want {
				t.Fatalf("round %d: got %s, want %s", round, data, want)
			}
		}
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != CloseNormal {
			t.Fatalf("round %d: %v, want close 1000", round, err)
		}
		ws.Close()
	}
}

// TestConn_ClientClose: a client's close frame ends ReadMessage with a
// remote CloseError carrying the client's code.
func TestConn_ClientClose(t *testing.T) {
	h := newConnHarness(t)
	c := h.dialClient(t, "", false)
	c.marker("m1")
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "done"), time.Now().Add(time.Second))
	err := h.waitEnded(t)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "done" || !ce.Remote {
		t.Fatalf("ReadMessage ended with %v", err)
	}
}

// TestConn_CloseReasonTruncated: a long reason is cut to what a close
// frame holds, on a rune boundary.
func TestConn_CloseReasonTruncated(t *testing.T) {
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		c.Close(4000, strings.Repeat("é", 100))
	}, WithInsecureTransport(), WithHMACKey(testKey))
	ws, status, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || len(ce.Text) > 123 || !strings.HasPrefix(ce.Text, "éé") {
		t.Fatalf("client read %v", err)
	}
}

// TestHandler_ServePanics: a serve function that panics does not take the
// process down: the panic is logged, the socket is closed with 1011, and
// the Guard keeps serving.
func TestHandler_ServePanics(t *testing.T) {
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		if _, err := c.ReadMessage(ctx); err == nil {
			panic("application bug")
		}
	}, WithHMACKey(testKey), WithInsecureTransport(), WithAction[struct{}]("say", ChannelFree()))
	ws, st, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatalf("dial: %d %v", st, err)
	}
	ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"say","id":"s","payload":{}}`))
	if code, _ := closeFrame(t, ws); code != CloseInternalError {
		t.Fatalf("close %d after the serve function panicked, want 1011", code)
	}
	if !strings.Contains(f.logs.String(), "application bug") {
		t.Fatal("the panic was not logged")
	}
	if _, st, err := f.dial(f.headers(mint(t, claims{}))); err != nil {
		t.Fatalf("the Guard stopped serving after a panic: %d %v", st, err)
	}
}

// TestSlowConsumer_StalledReaderClosed1013: a client that stops reading
// while fewer frames than the queue holds are waiting is still closed
// with 1013 (slow consumer) when a frame cannot be written within the
// write timeout, not left open or ended as a lost connection (1006). The
// first Send, which the socket cannot take whole, returns nil at once:
// the rest is left to the drainer; a later Send reports only that 1013.
func TestSlowConsumer_StalledReaderClosed1013(t *testing.T) {
	const size = 1 << 20 // 8 of them are far more than the socket buffers hold
	type bulk struct {
		Action string `json:"action"`
		Data   string `json:"data"`
	}
	msg := bulk{Action: "bulk", Data: strings.Repeat("x", size)}
	res := make(chan []error, 1)
	f := newFixture(t, func(ctx context.Context, c *Conn) {
		var errs []error
		for range 8 {
			errs = append(errs, c.Send(ctx, msg))
		}
		res <- errs
		<-ctx.Done()
	}, WithInsecureTransport(), WithHMACKey(testKey), WithWriteTimeout(300*time.Millisecond))
	ws, status, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	_ = ws // never read
	var errs []error
	select {
	case errs = <-res:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's Sends did not return")
	}
	if errs[0] != nil {
		t.Fatalf("first Send: %v, want nil (accepted without waiting)", errs[0])
	}
	for i, err := range errs {
		var ce *CloseError
		if err != nil && (!errors.As(err, &ce) || ce.Code != CloseTryAgainLater) {
			t.Fatalf("Send #%d: %v; want nil or the 1013 close", i, err)
		}
	}
	eventually(t, "conn_closed 1013 slow consumer", func() bool { return closedWith(f.events, CloseTryAgainLater, "slow consumer") })
	if !f.events.has(EventMessageRefused, "slow_consumer") {
		t.Fatal("no slow_consumer event")
	}
}

// TestDoS_CloseWhileRegisteringNoPanic: a Conn is visible to the Guard's
// scans (Disconnect, bans, revocations, Guard.Close) from the moment it
// is registered. A close that reached it before its timer was armed used
// to crash the whole server (a nil timer in the teardown), so a client
// could take the process down by getting its own address banned while
// its next handshake completed. Handshakes and Disconnects of the same
// subject race here; every socket must end in a close frame or a
// refusal, and the process must live.
func TestDoS_CloseWhileRegisteringNoPanic(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithInsecureTransport(),
		WithHandshakeRate(1e6, 1e6), WithConnLimits(1000, 1000, 1000))
	tok := mint(t, claims{sub: "alice"})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = f.g.Disconnect(context.Background(), "alice", "signed out")
		}
	}()
	go func() { // the fixture's handlers report here; keep them running
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-f.ran:
			}
		}
	}()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for range 300 {
		ws, _, err := d.Dial(f.url, f.headers(tok))
		if err != nil {
			continue // refused or cut: what counts is that the server lives
		}
		ws.Close()
	}
	close(stop)
	wg.Wait()
	// The server still serves: a fresh socket of another subject works.
	ws, st, err := f.dial(f.headers(mint(t, claims{sub: "bob"})))
	if err != nil {
		t.Fatalf("after the race: %d %v", st, err)
	}
	f.waitHandlers(1)
	sendJSON(t, ws, map[string]any{"action": "ping", "id": "p"})
	if m := readFrame(t, ws); m["action"] != "pong" {
		t.Fatalf("after the race: %v, want pong", m)
	}
}
