package wssec

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestBlindness_EnvelopeVsPayloadReasons: the client sees invalid_message
// for every malformed message, but the event (and so the metrics label)
// tells a broken envelope — fuzzing or injection at the protocol level —
// from a payload that fails its schema, which is more often a client bug.
func TestBlindness_EnvelopeVsPayloadReasons(t *testing.T) {
	cases := []struct{ name, msg, reason string }{
		{"truncated JSON", `{"action":"order.place","payload":{"items":`, "invalid_envelope"},
		{"unknown top-level key", `{"action":"order.place","payload":{"items":[{"sku":"a","qty":1}]},"admin":true}`, "invalid_envelope"},
		{"duplicate top-level key", `{"action":"order.place","action":"order.place"}`, "invalid_envelope"},
		{"not an object", `["order.place"]`, "invalid_envelope"},
		{"malformed action", `{"action":"Order Place"}`, "invalid_envelope"},
		{"trailing data", `{"action":"order.place"}x`, "invalid_envelope"},
		{"unknown payload field", `{"action":"order.place","payload":{"items":[{"sku":"a","qty":1}],"admin":true}}`, "invalid_payload"},
		{"payload wrong type", `{"action":"order.place","payload":{"items":"all"}}`, "invalid_payload"},
		{"payload fails validate tag", `{"action":"order.place","payload":{"items":[{"sku":"a","qty":500}]}}`, "invalid_payload"},
		{"payload missing required field", `{"action":"order.place","payload":{}}`, "invalid_payload"},
		{"unregistered action", `{"action":"drop.tables","payload":{"x":1}}`, "unknown_action"},
	}
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithDenialLimit(1000),
		WithMessageRate(1000, 1000), WithAction[orderPayload]("order.place", ChannelFree()))
	c, status, err := f.dial(f.headers(mint(t, claims{})))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	for i, tc := range cases {
		if err := c.WriteMessage(websocket.TextMessage, []byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, b, err := c.ReadMessage(); err != nil {
			t.Fatalf("%s: no error frame: %v", tc.name, err)
		} else if want := `"code":"` + map[bool]string{true: "unknown_action", false: "invalid_message"}[tc.reason == "unknown_action"] + `"`; !strings.Contains(string(b), want) {
			t.Errorf("%s: error frame %s, want %s", tc.name, b, want)
		}
		var got []string
		eventually(t, tc.name+" event", func() bool {
			got = f.events.reasons(EventMessageRefused)
			return len(got) > i
		})
		if got[i] != tc.reason {
			t.Errorf("%s: event reason %q, want %q", tc.name, got[i], tc.reason)
		}
	}
}
