package prommetrics

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wssec/wssec"
)

func newTestObserver(t testing.TB, opts ...Option) (*Observer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o, err := New(reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return o, reg
}

func TestNew_ConfigErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, tc := range []struct {
		name string
		reg  prometheus.Registerer
		opts []Option
		want []string
	}{
		{"nil registerer", nil, nil, []string{"nil Registerer"}},
		{"bad namespace", reg, []Option{WithNamespace("my-app")}, []string{"WithNamespace"}},
		{"no buckets", reg, []Option{WithDurationBuckets()}, []string{"no bucket"}},
		{"decreasing buckets", reg, []Option{WithDurationBuckets(1, 5, 2)}, []string{"strictly increasing"}},
		{"negative bucket", reg, []Option{WithDurationBuckets(-1, 5)}, []string{"finite and positive"}},
		{"zero label values", reg, []Option{WithMaxLabelValues(0)}, []string{"WithMaxLabelValues"}},
		{"huge label values", reg, []Option{WithMaxLabelValues(1 << 20)}, []string{"WithMaxLabelValues"}},
		{"bad action", reg, []Option{WithActions("ok", "Drop Table")}, []string{`WithActions "Drop Table"`}},
		{"every problem at once", nil, []Option{WithNamespace("1x"), WithMaxLabelValues(-1)}, []string{"nil Registerer", "WithNamespace", "WithMaxLabelValues"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := New(tc.reg, tc.opts...)
			if err == nil || o != nil {
				t.Fatalf("New = %v, %v; want an error", o, err)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	if got, err := reg.Gather(); err != nil || len(got) != 0 {
		t.Fatalf("a failed New registered %d families (%v)", len(got), err)
	}
}

// TestNew_RegistrationConflict: a second Observer in the same namespace
// fails, leaves nothing half-registered, and another namespace works.
func TestNew_RegistrationConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	// A foreign collector that owns one of the names, midway through.
	foreign := prometheus.NewCounter(prometheus.CounterOpts{Name: "wssec_bans_total", Help: "not ours"})
	reg.MustRegister(foreign)
	if _, err := New(reg); err == nil {
		t.Fatal("New over a conflicting name: no error")
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 1 {
		t.Fatalf("after the failed New: %d series (%v), want only the foreign one", n, err)
	}
	// (A registry remembers a name's label names for its lifetime, so the
	// rest runs on a fresh one.)
	reg = prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(reg); !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		t.Fatalf("second New in the same namespace: %v, want an AlreadyRegisteredError", err)
	}
	o, err := New(reg, WithNamespace("edge"))
	if err != nil {
		t.Fatalf("New in another namespace: %v", err)
	}
	o.Observe(wssec.Event{Kind: wssec.EventHandshakeAccepted})
	if v := gather(t, reg).value("edge_handshakes_total", "outcome", "accepted"); v != 1 {
		t.Fatalf("edge_handshakes_total = %v, want 1", v)
	}
}

// TestNew_LeavesDefaultRegistryAlone: New registers only where told.
func TestNew_LeavesDefaultRegistryAlone(t *testing.T) {
	o, _ := newTestObserver(t)
	o.Observe(wssec.Event{Kind: wssec.EventHandshakeAccepted})
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "wssec_") {
			t.Fatalf("the default registry has %s", mf.GetName())
		}
	}
}

// TestObserve maps each kind of event to its series.
func TestObserve(t *testing.T) {
	o, reg := newTestObserver(t, WithActions("publish"))
	evs := []wssec.Event{
		{Kind: wssec.EventHandshakeAccepted, Pattern: "https://app.example.com", Origin: "https://app.example.com"},
		{Kind: wssec.EventHandshakeAccepted}, // same-origin: no pattern
		{Kind: wssec.EventHandshakeRefused, Reason: "origin_not_allowed", Status: 403, Origin: "https://evil.test"},
		{Kind: wssec.EventHandshakeRefused, Reason: "token_expired", Status: 401, Pattern: "https://app.example.com"},
		{Kind: wssec.EventReportOnly, Reason: "handshake_rate", Status: 429},
		{Kind: wssec.EventReportOnly, Reason: "forbidden", Action: "publish", Channel: "c", Pattern: "tenant:{tenant}:orders"},
		{Kind: wssec.EventMessageRefused, Reason: "forbidden", Action: "publish", Channel: "tenant:x:orders"},
		{Kind: wssec.EventMessageRefused, Reason: "unknown_action", Action: "made_up"},
		{Kind: wssec.EventMessageRefused, Reason: "slow_consumer", CloseCode: 1013},
		{Kind: wssec.EventMessageRefused, Reason: "reauth_subject", Action: "auth"},
		{Kind: wssec.EventConnClosed, CloseCode: 1000, Duration: 2 * time.Second, Reason: "client text"},
		{Kind: wssec.EventConnClosed, CloseCode: 4321, Duration: 90 * time.Second},
		{Kind: wssec.EventConnClosed, CloseCode: 3000, Duration: -time.Second},
		{Kind: wssec.EventBanned, Reason: "token"},
		{Kind: wssec.EventRevoked, Reason: "token_revoked"},
		{Kind: wssec.EventReauthenticated},
		{Kind: wssec.EventConfigWarning, Reason: "insecure_transport"},
		{Kind: wssec.EventStoreUnavailable, Reason: "revocation"},
		{Kind: "future_kind", Reason: "whatever"},
	}
	for _, e := range evs {
		o.Observe(e)
	}
	for range 3 {
		o.MessageAccepted("publish", "")
	}
	o.MessageAccepted("subscribe", "") // admitted on first sight
	o.Observe(wssec.Event{Kind: wssec.EventMessageRefused, Reason: "forbidden", Action: "subscribe"})

	s := gather(t, reg)
	s.check(t,
		w(hs, 2, "outcome", "accepted", "reason", "ok"),
		w(hs, 1, "outcome", "refused", "reason", "origin_not_allowed"),
		w(hs, 1, "outcome", "refused", "reason", "token_expired"),
		w(hs, 1, "outcome", "report_only", "reason", "handshake_rate"),
		w(byOrigin, 1, "outcome", "accepted", "origin_pattern", "https://app.example.com"),
		w(byOrigin, 1, "outcome", "accepted", "origin_pattern", "other"),
		w(byOrigin, 1, "outcome", "refused", "origin_pattern", "https://app.example.com"),
		w(byOrigin, 1, "outcome", "refused", "origin_pattern", "other"),
		w(msgs, 3, "outcome", "accepted", "reason", "ok", "action", "publish"),
		w(msgs, 1, "outcome", "accepted", "reason", "ok", "action", "subscribe"),
		w(msgs, 1, "outcome", "report_only", "reason", "forbidden", "action", "publish"),
		w(msgs, 1, "outcome", "refused", "reason", "forbidden", "action", "publish"),
		w(msgs, 1, "outcome", "refused", "reason", "forbidden", "action", "subscribe"),
		w(msgs, 1, "outcome", "refused", "reason", "unknown_action", "action", "other"),
		w(msgs, 1, "outcome", "refused", "reason", "slow_consumer", "action", "other"),
		w(msgs, 1, "outcome", "refused", "reason", "reauth_subject", "action", "auth"),
		w(chans, 1, "outcome", "report_only", "channel_rule", "tenant:{tenant}:orders"),
		w(chans, 1, "outcome", "refused", "channel_rule", "other"),
		w(chans, 2),
		w("wssec_send_queue_drops_total", 1),
		w(active, -1), // two accepted, three closed: the events, not reality
		w(closed, 1, "code", "1000"),
		w(closed, 1, "code", "4321"),
		w(closed, 1, "code", "other"),
		w(duration, 3),
		w("wssec_bans_total", 1, "class", "token"),
		w("wssec_revocations_total", 1, "reason", "token_revoked"),
		w("wssec_reauthentications_total", 1),
		w("wssec_config_warnings_total", 1, "reason", "insecure_transport"),
		w("wssec_store_unavailable_total", 1, "check", "revocation"),
		w("wssec_events_total", 1, "kind", "future_kind"),
		w("wssec_events_total", float64(len(evs)+1)),
		w("wssec_label_overflows_total", 0),
	)
	// The negative duration was clamped; the others land in their buckets.
	if sum := s[duration].GetMetric()[0].GetHistogram().GetSampleSum(); sum != 92 {
		t.Errorf("duration sum = %v, want 92", sum)
	}
	for k, vals := range s.labelValues() {
		for v := range vals {
			if v == "https://evil.test" || v == "client text" || v == "made_up" || v == "c" {
				t.Errorf("%s has the value %q, which comes from the client", k, v)
			}
		}
	}
}

// TestCardinality_DistinctReasons: even if every event carried a
// distinct reason, action and pattern, each label keeps at most
// WithMaxLabelValues values plus "other", and the overflows are counted.
func TestCardinality_DistinctReasons(t *testing.T) {
	const max, n = 8, 10_000
	o, reg := newTestObserver(t, WithMaxLabelValues(max))
	kinds := []wssec.EventKind{
		wssec.EventHandshakeRefused, wssec.EventReportOnly, wssec.EventMessageRefused,
		wssec.EventBanned, wssec.EventRevoked, wssec.EventConfigWarning, wssec.EventHandshakeAccepted,
	}
	for i := range n {
		v := fmt.Sprintf("v%d", i)
		for _, k := range kinds {
			o.Observe(wssec.Event{Kind: k, Reason: v, Pattern: v, Action: v, Channel: v, Status: i % 2})
		}
		o.Observe(wssec.Event{Kind: wssec.EventKind(v)})
		o.MessageAccepted(v, "")
	}
	s := gather(t, reg)
	for k, vals := range s.labelValues() {
		limit := max + 1 // + "other"
		switch k {
		case hs + "/reason", msgs + "/reason":
			limit++ // "ok"
		case msgs + "/channel_rule":
			limit++ // "none"
		case closed + "/code", hs + "/outcome", byOrigin + "/outcome", msgs + "/outcome", chans + "/outcome", "wssec_label_overflows_total/label",
			"wssec_revocations_full_total/where",  // a fixed pair: table, store
			topOrigins + "/outcome",               // a fixed pair: refused, report_only
			"wssec_store_unavailable_total/check": // only the checks exported at 0: no store event here
			continue
		}
		if len(vals) > limit {
			t.Errorf("%s has %d values (limit %d): %v", k, len(vals), limit, sortedKeys(vals))
		}
		if !vals["other"] {
			t.Errorf("%s has no \"other\": %v", k, sortedKeys(vals))
		}
	}
	if s.series() > 400 {
		t.Errorf("%d series after %d distinct values", s.series(), n)
	}
	if v := s.value("wssec_label_overflows_total", "label", "message_reason"); v < n-max {
		t.Errorf("message_reason overflows = %v, want at least %d", v, n-max)
	}
}

// TestCardinality_UnacceptableValues: values that are not plain codes
// never become labels, even with room to spare.
func TestCardinality_UnacceptableValues(t *testing.T) {
	o, reg := newTestObserver(t)
	for _, v := range []string{
		"has space", `quote"`, "new\nline", "semi;colon", "é", "\x00", strings.Repeat("a", 129), "tab\t", "back\\slash", "a=b", "<svg>",
	} {
		o.Observe(wssec.Event{Kind: wssec.EventHandshakeRefused, Reason: v, Pattern: v})
		o.MessageAccepted(v, "")
	}
	s := gather(t, reg)
	s.check(t,
		w(hs, 11, "outcome", "refused", "reason", "other"),
		w(byOrigin, 11, "outcome", "refused", "origin_pattern", "other"),
		w(msgs, 11, "outcome", "accepted", "reason", "ok", "action", "other"),
		w("wssec_label_overflows_total", 11, "label", "handshake_reason"),
		w("wssec_label_overflows_total", 11, "label", "origin_pattern"),
		w("wssec_label_overflows_total", 11, "label", "action"),
	)
}

// TestObserver_Concurrent hammers one Observer from many goroutines (run
// with -race) and checks that no count is lost.
func TestObserver_Concurrent(t *testing.T) {
	o, reg := newTestObserver(t, WithMaxLabelValues(16))
	const goroutines, each = 16, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				v := fmt.Sprintf("r%d", (g*each+i)%40) // more values than the limit
				o.Observe(wssec.Event{Kind: wssec.EventHandshakeRefused, Reason: v, Status: 403})
				o.Observe(wssec.Event{Kind: wssec.EventHandshakeAccepted})
				o.Observe(wssec.Event{Kind: wssec.EventConnClosed, CloseCode: 1000 + i%20, Duration: time.Millisecond})
				o.MessageAccepted(v, "")
			}
		})
	}
	wg.Wait()
	const total = goroutines * each
	s := gather(t, reg)
	s.check(t,
		w(hs, total, "outcome", "refused"),
		w(hs, total, "outcome", "accepted"),
		w(msgs, total, "outcome", "accepted"),
		w(closed, total),
		w(active, 0),
		w(duration, total),
	)
	if vals := s.labelValues()[hs+"/reason"]; len(vals) != 16+2 { // 16 reasons, "other", "ok"
		t.Errorf("reasons: %v", sortedKeys(vals))
	}
}

func TestCloseCodeLabel(t *testing.T) {
	for code, want := range map[int]string{
		0: "other", 999: "other", 1000: "1000", 1001: "1001", 1008: "1008", 1015: "1015", 1016: "other",
		2999: "other", 3000: "other", 3999: "other", 4000: "4000", 4999: "4999", 5000: "other", -1: "other", 1 << 40: "other",
	} {
		if got := closeCodeLabel(code); got != want {
			t.Errorf("closeCodeLabel(%d) = %q, want %q", code, got, want)
		}
	}
}

// labelCases seed FuzzLabelSet and are checked by TestValidLabelValue.
var labelCases = map[string]bool{
	"origin_not_allowed":     true,
	"token_expired":          true,
	"https://*.example.com":  true,
	"http://[::1]:8080":      true,
	"tenant:{tenant}:orders": true,
	"chat.send":              true,
	"a":                      true,
	strings.Repeat("a", 128): true,
	strings.Repeat("a", 129): false,
	"":                       false,
	"has space":              false,
	`"`:                      false,
	"é":                      false,
	"a\nb":                   false,
	"a,b":                    false,
	"a=b":                    false,
	"100%":                   false,
}

func TestValidLabelValue(t *testing.T) {
	for v, want := range labelCases {
		if got := validLabelValue(v); got != want {
			t.Errorf("validLabelValue(%q) = %v, want %v", v, got, want)
		}
	}
}

// FuzzLabelSet: whatever goes in, what comes out is "other" or the input
// itself, acceptable, and the set never grows past its bound.
func FuzzLabelSet(f *testing.F) {
	for v := range labelCases {
		f.Add(v)
	}
	overflows := 0
	s := newLabelSet(4, func() { overflows++ })
	f.Fuzz(func(t *testing.T, v string) {
		got := s.intern(v)
		if got != other && (got != v || !validLabelValue(got)) {
			t.Fatalf("intern(%q) = %q", v, got)
		}
		if k := s.known(v); k != got && got != other {
			t.Fatalf("known(%q) = %q after intern gave %q", v, k, got)
		}
		if m := s.vals.snap.Load(); m != nil && len(*m) > 4 {
			t.Fatalf("the set holds %d values, bound 4", len(*m))
		}
	})
}

// The per-message path: a known action and rule take no lock and
// allocate nothing.
func BenchmarkMessageAccepted(b *testing.B) {
	o, _ := newTestObserver(b, WithActions("publish"))
	o.MessageAccepted("publish", orderRule.Pattern)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.MessageAccepted("publish", orderRule.Pattern)
		}
	})
}

// TestMessageAccepted_NoAllocation: counting an accepted message of a
// known action and channel rule allocates nothing.
func TestMessageAccepted_NoAllocation(t *testing.T) {
	o, reg := newTestObserver(t, WithActions("publish"))
	o.MessageAccepted("publish", orderRule.Pattern)
	o.MessageAccepted("publish", "")
	if n := testing.AllocsPerRun(1000, func() {
		o.MessageAccepted("publish", orderRule.Pattern)
		o.MessageAccepted("publish", "")
	}); n != 0 {
		t.Errorf("MessageAccepted allocates %v times per call pair", n)
	}
	gather(t, reg).check(t,
		w(msgs, 1002, "outcome", "accepted", "action", "publish", "channel_rule", orderRule.Pattern),
		w(msgs, 1002, "outcome", "accepted", "action", "publish", "channel_rule", "none"),
	)
}

func BenchmarkObserveRefusedMessage(b *testing.B) {
	o, _ := newTestObserver(b, WithActions("publish"))
	e := wssec.Event{Kind: wssec.EventMessageRefused, Reason: "forbidden", Action: "publish", Channel: "c", Pattern: "tenant:{tenant}:orders"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.Observe(e)
		}
	})
}
