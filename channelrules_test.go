package wssec

import (
	"errors"
	"strings"
	"testing"
)

// TestChannelBypass_MessageWithoutChannel stops a message from escaping
// the channel rules by leaving its channel out: a principal with only
// orders:read once published (and subscribed) with no channel, or with
// "channel":"", while the same publish on a channel was forbidden.
func TestChannelBypass_MessageWithoutChannel(t *testing.T) {
	extra := []Option{
		WithAction[subscribePayload]("unsubscribe"),
		WithAction[sayPayload]("admin.note", ChannelFree(), RequireScope("admin:write")),
		WithAction[sayPayload]("whoami", ChannelFree()),
	}
	cases := []struct {
		name, scope, msg string
		want             *wireFrame // nil: accepted (acked)
	}{
		{"publish without a channel", "orders:read",
			`{"action":"publish","id":"p1","payload":{"body":"x"}}`,
			&wireFrame{Action: "error", ID: "p1", Error: &wireError{Code: "invalid_message", Message: "channel required"}}},
		{"publish with an empty channel", "orders:read",
			`{"action":"publish","channel":"","id":"p2","payload":{"body":"x"}}`,
			&wireFrame{Action: "error", ID: "p2", Error: &wireError{Code: "invalid_message", Message: "channel required"}}},
		{"publish on the channel without write scope", "orders:read",
			`{"action":"publish","channel":"tenant:acme:orders","id":"p3","payload":{"body":"x"}}`,
			&wireFrame{Action: "error", ID: "p3", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{"publish without a channel, even with write scope", "orders:read orders:write",
			`{"action":"publish","id":"p4","payload":{"body":"x"}}`,
			&wireFrame{Action: "error", ID: "p4", Error: &wireError{Code: "invalid_message", Message: "channel required"}}},
		{"subscribe without a channel", "orders:read",
			`{"action":"subscribe","id":"s1"}`,
			&wireFrame{Action: "error", ID: "s1", Error: &wireError{Code: "invalid_message", Message: "channel required"}}},
		{"unsubscribe with an empty channel", "orders:read",
			`{"action":"unsubscribe","channel":"","id":"s2"}`,
			&wireFrame{Action: "error", ID: "s2", Error: &wireError{Code: "invalid_message", Message: "channel required"}}},
		{"subscribe on the channel", "orders:read",
			`{"action":"subscribe","channel":"tenant:acme:orders","id":"s3"}`, nil},
		{"channel-free action needing a scope, without it", "orders:read orders:write",
			`{"action":"admin.note","id":"a1","payload":{"text":"hi"}}`,
			&wireFrame{Action: "error", ID: "a1", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{"channel-free action needing a scope, with it", "admin:write",
			`{"action":"admin.note","id":"a2","payload":{"text":"hi"}}`, nil},
		{"a required scope is needed on a channel too", "orders:read orders:write",
			`{"action":"admin.note","channel":"tenant:acme:orders","id":"a3","payload":{"text":"hi"}}`,
			&wireFrame{Action: "error", ID: "a3", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{"channel-free action without a scope of its own", "",
			`{"action":"whoami","id":"w1","payload":{"text":"hi"}}`, nil},
		{"a channel-free action naming a channel meets the channel rules", "",
			`{"action":"whoami","channel":"tenant:globex:orders","id":"w2","payload":{"text":"hi"}}`,
			&wireFrame{Action: "error", ID: "w2", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{"the channel-free policy still runs", "",
			`{"action":"whoami","id":"w3","payload":{"text":"deny"}}`,
			&wireFrame{Action: "error", ID: "w3", Error: &wireError{Code: "forbidden", Message: "forbidden"}}},
		{"built-in ping needs no channel", "",
			`{"action":"ping","id":"g1"}`, &wireFrame{Action: "pong", ID: "g1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newConnHarness(t, extra...)
			c := h.dialClient(t, tc.scope, false)
			c.sendText(tc.msg)
			want := []string{"marker/m1"}
			if tc.want == nil {
				id := tc.msg[strings.Index(tc.msg, `"id":"`)+6:]
				id, _, _ = strings.Cut(id, `"`)
				action := tc.msg[strings.Index(tc.msg, `"action":"`)+10:]
				action, _, _ = strings.Cut(action, `"`)
				c.expectFrame(wireFrame{Action: "ack", ID: id})
				want = []string{action + "/" + id, "marker/m1"}
			} else {
				c.expectFrame(*tc.want)
			}
			c.marker("m1")
			if got := h.gotIDs(); !sameStrings(got, want) {
				t.Fatalf("the handler read %v, want %v", got, want)
			}
		})
	}
}

// TestChannelBypass_ConfigErrors: the action options are checked by New.
func TestChannelBypass_ConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
		want string
	}{
		{"subscribe cannot be channel-free", WithAction[struct{}]("subscribe", ChannelFree()), "ChannelFree"},
		{"unsubscribe cannot be channel-free", WithAction[struct{}]("unsubscribe", ChannelFree()), "ChannelFree"},
		{"empty scope", WithAction[struct{}]("x", RequireScope("")), "RequireScope"},
		{"scope with a space", WithAction[struct{}]("x", RequireScope("a b")), "RequireScope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(WithHMACKey(testKey), tc.opt)
			var ce *ConfigError
			if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want a ConfigError about %s", err, tc.want)
			}
		})
	}
	// A nil ActionOption is ignored, and the old one-argument form compiles.
	if g, err := New(WithHMACKey(testKey), WithAction[struct{}]("x", nil), WithAction[struct{}]("y")); err != nil {
		t.Fatal(err)
	} else {
		g.Close()
	}
}

// TestChannelBypass_ReportOnly: during a rollout, WithReportOnly
// (GuardChannel) lets a channel-less message through and reports it.
func TestChannelBypass_ReportOnly(t *testing.T) {
	h := newConnHarness(t, WithReportOnly(GuardChannel))
	c := h.dialClient(t, "", false)
	c.sendText(`{"action":"publish","id":"p1","payload":{"body":"x"}}`)
	c.expectFrame(wireFrame{Action: "ack", ID: "p1"})
	eventually(t, "a report_only event", func() bool { return h.events.has(EventReportOnly, "invalid_message") })
}
