package wssec

import (
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestErrorFrame_UnknownActionAndEchoedID stops the error-frame contract
// from being broken: an unregistered action (a case variant included) was
// answered invalid_message "invalid action" or "unknown field", and an
// envelope refusal dropped the client's id, so a client waiting on that id
// never learned its request failed.
func TestErrorFrame_UnknownActionAndEchoedID(t *testing.T) {
	h := newConnHarness(t, WithDenialLimit(100))
	c := h.dialClient(t, "", false)
	for _, tc := range []struct{ msg, code, id string }{
		{`{"action":"admin","id":"u1","payload":{}}`, "unknown_action", "u1"},
		{`{"action":"Echo","id":"u2"}`, "unknown_action", "u2"},
		{`{"action":"admin","id":"u3","payload":null}`, "unknown_action", "u3"},
		{`{"action":"admin","id":"u4","role":"root"}`, "unknown_action", "u4"},
		{`{"action":"marker","id":"e1","payload":null}`, "invalid_message", "e1"},
		{`{"action":"marker","id":"e2","payload":{"n":1},"admin":true}`, "invalid_message", "e2"},
		{`{"action":"marker","payload":{"n":1},"admin":true,"id":"e3"}`, "invalid_message", "e3"},
		{`{"action":"marker","id":"e4","payload":{"n":1,"n":2}}`, "invalid_message", "e4"},
		{`{"action":"marker","id":"e5","payload":{"n":`, "invalid_message", "e5"},
		// Ambiguous or nested ids are not echoed.
		{`{"action":"marker","id":"a","id":"b"}`, "invalid_message", ""},
		{`{"action":"marker","payload":{"id":"inner"},"x":1}`, "invalid_message", ""},
	} {
		c.sendText(tc.msg)
		c.expectError(tc.code, tc.id)
	}
	c.marker("m1")
	if got := h.gotIDs(); !sameStrings(got, []string{"marker/m1"}) {
		t.Fatalf("the handler read %v", got)
	}
}

// TestErrorFrame_OversizeCloseHasReason: a plain (uncompressed) oversized
// message closed with 1009 and an empty reason, written by gorilla's read
// limit before wssec could say why.
func TestErrorFrame_OversizeCloseHasReason(t *testing.T) {
	for _, size := range []int{1025, 64 << 10} {
		h := newConnHarness(t, WithMaxMessageSize(1024))
		c := h.dialClient(t, "", false)
		c.sendText(`{"action":"marker","payload":{"n":1,"pad":"` + strings.Repeat("x", size) + `"}}`)
		code, reason := closeFrame(t, c.ws)
		if code != websocket.CloseMessageTooBig || reason != "message too big" {
			t.Fatalf("%d bytes over: close %d %q, want 1009 \"message too big\"", size, code, reason)
		}
	}
}
