package prommetrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wssec/wssec"
	"golang.org/x/time/rate"
)

// These tests run a real Guard behind a loopback server, drive it with
// real clients and assert what a scrape of the registry shows.

const (
	hs       = "wssec_handshakes_total"
	byOrigin = "wssec_handshakes_by_origin_total"
	msgs     = "wssec_messages_total"
	chans    = "wssec_channel_refusals_total"
	closed   = "wssec_connections_closed_total"
	active   = "wssec_connections_active"
	duration = "wssec_connection_duration_seconds"
)

// TestMetrics_ScriptedTraffic runs a known mix of good and bad traffic and
// asserts every counter it should move, exactly.
func TestMetrics_ScriptedTraffic(t *testing.T) {
	f := newFixture(t, []Option{WithActions("publish")}, nil, wssec.WithMaxMessageSize(1024))
	good := func(sub string) string { return mint(t, sub, "acme", "orders:read orders:write") }

	// Three accepted handshakes: two from the server's origin, one
	// matching the wildcard pattern.
	a := f.mustDial(f.origin, good("alice"))
	b := f.mustDial(f.origin, mint(t, "bob", "acme", "orders:read")) // cannot write orders
	c := f.mustDial("https://app.example.com", good("carol"))

	// Two refused origins and one refused token.
	for _, o := range []string{"https://evil.test", "http://127.0.0.1:1"} {
		if _, status := f.dial(o, good("mallory")); status != http.StatusForbidden {
			t.Fatalf("dial from %s: status %d, want 403", o, status)
		}
	}
	if _, status := f.dial(f.origin, ""); status != http.StatusUnauthorized {
		t.Fatalf("dial without token: status %d, want 401", status)
	}

	// Four accepted messages (three from alice, one from carol).
	for i := range 3 {
		if got := roundTrip(t, a, fmt.Sprintf(`{"action":"publish","channel":"tenant:acme:orders","id":"%d","payload":{"text":"hi"}}`, i)); !strings.Contains(got, `"ok"`) {
			t.Fatalf("publish %d: %s", i, got)
		}
	}
	if got := roundTrip(t, c, `{"action":"publish","channel":"tenant:acme:orders","id":"3","payload":{"text":"hi"}}`); !strings.Contains(got, `"ok"`) {
		t.Fatalf("carol's publish: %s", got)
	}
	// Two forbidden: another tenant's channel (no rule matches), and a
	// matching rule without the write scope.
	if got := roundTrip(t, a, `{"action":"publish","channel":"tenant:globex:orders","id":"4","payload":{"text":"hi"}}`); !strings.Contains(got, "forbidden") {
		t.Fatalf("cross-tenant publish: %s", got)
	}
	if got := roundTrip(t, b, `{"action":"publish","channel":"tenant:acme:orders","id":"5","payload":{"text":"hi"}}`); !strings.Contains(got, "forbidden") {
		t.Fatalf("publish without scope: %s", got)
	}
	// A re-authentication and a revocation.
	if got := roundTrip(t, a, `{"action":"auth","id":"r","payload":{"token":"`+good("alice")+`"}}`); strings.Contains(got, "error") {
		t.Fatalf("reauth: %s", got)
	}
	if err := f.g.Revoke(context.Background(), "nobody"); err != nil {
		t.Fatal(err)
	}

	// Three closes: normal, an application code, and too big.
	closeWith(t, a, websocket.CloseNormalClosure)
	closeWith(t, b, 4001)
	c.WriteMessage(websocket.TextMessage, []byte(`{"action":"publish","payload":{"text":"`+strings.Repeat("x", 2048)+`"}}`))
	var ce *websocket.CloseError
	if err := drain(c); !asCloseError(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized message: %v, want close 1009", err)
	}

	// The 1009 close and its refusal are emitted on two goroutines: wait
	// for both.
	s := eventually(t, f.reg, "three closed connections", func(s scrape) bool {
		return s.value(closed) == 3 && s.value(active) == 0 && s.value(msgs, "outcome", "refused") == 3
	})
	s.check(t,
		w(hs, 3, "outcome", "accepted", "reason", "ok"),
		w(hs, 2, "outcome", "refused", "reason", "origin_not_allowed"),
		w(hs, 1, "outcome", "refused", "reason", "token_missing"),
		w(hs, 3, "outcome", "refused"),
		w(hs, 0, "outcome", "report_only"),
		w(byOrigin, 2, "outcome", "accepted", "origin_pattern", f.origin),
		w(byOrigin, 1, "outcome", "accepted", "origin_pattern", wildcardOrigin),
		w(byOrigin, 2, "outcome", "refused", "origin_pattern", "other"),
		w(byOrigin, 1, "outcome", "refused", "origin_pattern", f.origin), // the token refusal
		w(msgs, 4, "outcome", "accepted", "reason", "ok", "action", "publish"),
		w(msgs, 4, "outcome", "accepted"),
		w(msgs, 2, "outcome", "refused", "reason", "forbidden", "action", "publish"),
		w(msgs, 1, "outcome", "refused", "reason", "message_too_big", "action", "other"),
		w(msgs, 3, "outcome", "refused"),
		// Accepted traffic by channel rule, the baseline of per-channel
		// anomalies; refusals carry the rule too.
		w(msgs, 4, "outcome", "accepted", "action", "publish", "channel_rule", orderRule.Pattern),
		w(msgs, 1, "outcome", "refused", "reason", "forbidden", "channel_rule", orderRule.Pattern),
		w(msgs, 1, "outcome", "refused", "reason", "forbidden", "channel_rule", "other"),
		w(msgs, 1, "outcome", "refused", "reason", "message_too_big", "channel_rule", "none"),
		w(chans, 1, "outcome", "refused", "channel_rule", orderRule.Pattern),
		w(chans, 1, "outcome", "refused", "channel_rule", "other"),
		w(closed, 1, "code", "1000"),
		w(closed, 1, "code", "4001"),
		w(closed, 1, "code", "1009"),
		w(active, 0),
		w(duration, 3),
		w("wssec_reauthentications_total", 1),
		w("wssec_revocations_total", 1, "reason", "subject_revoked"),
		w("wssec_config_warnings_total", 1, "reason", "insecure_transport"),
		w("wssec_send_queue_drops_total", 0),
		w("wssec_bans_total", 0),
		w("wssec_label_overflows_total", 0),
		w("wssec_events_total", 3, "kind", "handshake_accepted"),
		w("wssec_events_total", 3, "kind", "handshake_refused"),
		w("wssec_events_total", 3, "kind", "conn_closed"),
	)
	// Nothing attacker-chosen became a label value.
	for k, vals := range s.labelValues() {
		for v := range vals {
			if strings.Contains(v, "evil") || strings.Contains(v, "globex") || strings.Contains(v, "mallory") || strings.Contains(v, "bye") {
				t.Errorf("%s has the client-chosen value %q", k, v)
			}
		}
	}
}

func asCloseError(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	*ce = e
	return ok
}

// TestCardinality_Flood sends 10 000 handshakes with distinct bogus
// Origins and 12 000 messages to distinct bogus channels and actions on
// one open socket: the counters move by exactly that much, and no label
// gains a value other than "other".
func TestCardinality_Flood(t *testing.T) {
	const (
		handshakes = 10_000
		channels   = 10_000
		actions    = 2_000
	)
	f := newFixture(t, nil, nil,
		wssec.WithHandshakeRate(rate.Limit(1e9), 1<<30),
		wssec.WithConnLimits(1<<20, 1<<20, 1<<20),
		wssec.WithMessageRate(rate.Limit(1e9), 1<<30),
		wssec.WithDenialLimit(1<<30),
	)
	tok := mint(t, "alice", "acme", "orders:read orders:write")

	// One of everything the flood will send more of.
	c := f.mustDial(f.origin, tok)
	if _, status := f.dial("https://evil.test", tok); status != http.StatusForbidden {
		t.Fatalf("bogus origin: status %d, want 403", status)
	}
	roundTrip(t, c, `{"action":"publish","channel":"tenant:acme:orders","payload":{"text":"hi"}}`)
	roundTrip(t, c, `{"action":"publish","channel":"bogus","payload":{"text":"hi"}}`)
	roundTrip(t, c, `{"action":"bogus","payload":{}}`)
	// A refusal's error frame is queued before its event is emitted: wait.
	before := eventually(t, f.reg, "the first refusals", func(s scrape) bool {
		return s.value(msgs, "outcome", "refused") == 2 && s.value(msgs, "outcome", "accepted") == 1
	})
	beforeLabels := before.labelValues()

	// The handshake flood: plain HTTP requests carrying the upgrade
	// headers (the guard path is the same; no socket is ever opened).
	start := time.Now()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for wk := range 16 {
		wg.Go(func() {
			for i := wk; i < handshakes; i += 16 {
				if err := bogusHandshake(client, f.srv.URL+"/ws", bogusOrigin(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d refused handshakes in %v", handshakes, time.Since(start))

	// The message flood, on the socket opened above, in batches smaller
	// than the send queue: the client reads each batch's error frames
	// before it sends the next, as a well-behaved client would.
	start = time.Now()
	const batch = 32
	for i := 0; i < channels+actions; i += batch {
		n := min(batch, channels+actions-i)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for j := i; j < i+n; j++ {
			var m string
			if j < channels {
				m = fmt.Sprintf(`{"action":"publish","channel":"Bogus:%d:{x}/*<svg>'","payload":{"text":"hi"}}`, j)
			} else {
				m = fmt.Sprintf(`{"action":"act_%d","channel":"x%d"}`, j, j)
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatalf("message %d: %v", j, err)
			}
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for j := range n {
			_, b, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("answer %d: %v", i+j, err)
			}
			if !strings.Contains(string(b), `"error"`) {
				t.Fatalf("answer %d: %s, want an error frame", i+j, b)
			}
		}
	}
	t.Logf("%d refused messages in %v", channels+actions, time.Since(start))
	// The socket is still usable.
	if got := roundTrip(t, c, `{"action":"publish","channel":"tenant:acme:orders","payload":{"text":"hi"}}`); !strings.Contains(got, `"ok"`) {
		t.Fatalf("publish after the flood: %s", got)
	}

	after := gather(t, f.reg)
	for k, vals := range after.labelValues() {
		for v := range vals {
			// The flood's unparseable Origins (every fourth) repeat as
			// the fixed host value "invalid": the one series it may add.
			if !beforeLabels[k][v] && v != "other" && !(k == topOrigins+"/origin_host" && v == hostInvalid) {
				t.Errorf("%s gained the value %q (had %v)", k, v, sortedKeys(beforeLabels[k]))
			}
		}
	}
	if b, a := before.series(), after.series(); a > b+1 {
		t.Errorf("series: %d before the flood, %d after", b, a)
	}
	delta := func(name string, pairs ...string) float64 {
		return after.value(name, pairs...) - before.value(name, pairs...)
	}
	for _, d := range []struct {
		name  string
		pairs []string
		want  float64
	}{
		{hs, []string{"outcome", "refused", "reason", "origin_not_allowed"}, handshakes},
		{hs, nil, handshakes},
		{byOrigin, []string{"outcome", "refused", "origin_pattern", "other"}, handshakes},
		{msgs, []string{"outcome", "refused", "reason", "forbidden", "action", "publish"}, channels},
		{msgs, []string{"outcome", "refused", "reason", "unknown_action", "action", "other"}, actions},
		{msgs, []string{"outcome", "accepted", "action", "publish"}, 1},
		{chans, []string{"outcome", "refused", "channel_rule", "other"}, channels},
		{"wssec_label_overflows_total", nil, 0},
	} {
		if got := delta(d.name, d.pairs...); got != d.want {
			t.Errorf("%s%v grew by %v, want %v", d.name, d.pairs, got, d.want)
		}
	}
	closeWith(t, c, websocket.CloseNormalClosure)
}

// bogusOrigin returns the i-th distinct Origin of the flood: hosts that
// parse and hosts that do not, in mixed case and with odd bytes.
func bogusOrigin(i int) string {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("https://evil-%d.test", i)
	case 1:
		return fmt.Sprintf("HTTPS://Evil-%d.Example.COM.attacker.test:%d", i, 1+i%65535)
	case 2:
		return fmt.Sprintf("http://%d.%d.%d.%d:8080", 10+i%200, i%256, (i/256)%256, i%7)
	default:
		return fmt.Sprintf("chrome-extension://{\"x\":%d}/'<svg>", i)
	}
}

// bogusHandshake sends one upgrade request and expects a 403.
func bogusHandshake(client *http.Client, url, origin string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Origin", origin)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		return fmt.Errorf("origin %q: status %d, want 403", origin, resp.StatusCode)
	}
	return nil
}

// TestMetrics_ReportOnly counts what report-only guards let through, and
// counts the handshake and the message as accepted too.
func TestMetrics_ReportOnly(t *testing.T) {
	f := newFixture(t, []Option{WithActions("publish")}, nil, wssec.WithReportOnly(wssec.GuardOrigin, wssec.GuardChannel))
	c := f.mustDial("https://evil.test", mint(t, "alice", "acme", "orders:write"))
	if got := roundTrip(t, c, `{"action":"publish","channel":"elsewhere","id":"1","payload":{"text":"hi"}}`); !strings.Contains(got, `"ok"`) {
		t.Fatalf("report-only publish: %s", got)
	}
	s := gather(t, f.reg)
	s.check(t,
		w(hs, 1, "outcome", "report_only", "reason", "origin_not_allowed"),
		w(byOrigin, 1, "outcome", "report_only", "origin_pattern", "other"),
		w(byOrigin, 1, "outcome", "accepted", "origin_pattern", "other"),
		w(msgs, 1, "outcome", "report_only", "reason", "forbidden", "action", "publish"),
		w(msgs, 1, "outcome", "accepted", "reason", "ok", "action", "publish"),
		w(chans, 1, "outcome", "report_only", "channel_rule", "other"),
		w(msgs, 0, "outcome", "refused"),
		w("wssec_config_warnings_total", 2, "reason", "report_only"),
		// Upgrade emits it before the handler runs, so before the echo.
		w(hs, 1, "outcome", "accepted", "reason", "ok"),
	)
	closeWith(t, c, websocket.CloseNormalClosure)
}

// TestMetrics_Bans counts a ban and the refusals of the banned client:
// with a threshold of 2, the second bad origin places the ban, and every
// later handshake from that address, good or bad, is refused "banned".
func TestMetrics_Bans(t *testing.T) {
	f := newFixture(t, nil, nil, wssec.WithBanPolicy(wssec.BanPolicy{Threshold: 2, Window: time.Minute, Duration: time.Minute}))
	tok := mint(t, "alice", "acme", "")
	for i, want := range []int{403, 403, 429, 429} {
		if _, status := f.dial("https://evil.test", tok); status != want {
			t.Fatalf("bad origin %d: status %d, want %d", i, status, want)
		}
	}
	if _, status := f.dial(f.origin, tok); status != http.StatusTooManyRequests {
		t.Fatalf("banned client with a good origin: status %d, want 429", status)
	}
	gather(t, f.reg).check(t,
		w("wssec_bans_total", 1, "class", "origin"),
		w("wssec_bans_total", 1),
		w(hs, 2, "outcome", "refused", "reason", "origin_not_allowed"),
		w(hs, 3, "outcome", "refused", "reason", "banned"),
		w(hs, 0, "outcome", "accepted"),
		w("wssec_events_total", 1, "kind", "banned"),
	)
}

// TestMetrics_SendQueueDrop counts a client that stops reading while the
// server sends: its queue fills and it is closed with 1013.
func TestMetrics_SendQueueDrop(t *testing.T) {
	big := strings.Repeat("x", 4096)
	f := newFixture(t, nil, func(ctx context.Context, c *wssec.Conn) {
		for c.Send(ctx, map[string]string{"action": "flood", "data": big}) == nil {
		}
	}, wssec.WithSendQueue(1))
	c := f.mustDial(f.origin, mint(t, "alice", "acme", ""))
	s := eventually(t, f.reg, "a send-queue drop and its close", func(s scrape) bool {
		return s.value(closed, "code", "1013") == 1
	})
	s.check(t,
		w("wssec_send_queue_drops_total", 1),
		w(msgs, 1, "outcome", "refused", "reason", "slow_consumer"),
		w(active, 0),
	)
	c.Close()
}

// TestMetrics_RevocationsFullAndDisconnects: a revocation that does not
// fit the Guard's table is counted in revocations_full_total{where=
// "table"}, and sockets closed by eviction and by Guard.Disconnect in
// disconnects_total by reason.
func TestMetrics_RevocationsFullAndDisconnects(t *testing.T) {
	f := newFixture(t, nil, nil, wssec.WithRevocationCapacity(1), wssec.WithConnLimits(32, 1, 100), wssec.WithEvictOldest())
	gather(t, f.reg).check(t, w("wssec_revocations_full_total", 0, "where", "table"), w("wssec_revocations_full_total", 0, "where", "store"))
	ctx := context.Background()
	tok := mint(t, "alice", "acme", "orders:read")
	first := f.mustDial(f.origin, tok)
	second := f.mustDial(f.origin, tok) // evicts the first
	if err := drain(first); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("the evicted socket: %v, want close 1008", err)
	}
	// A round trip proves the second socket is registered with the Guard:
	// a Disconnect racing a handshake still in flight may miss it (its doc
	// says so), and that race is not what this test counts.
	if got := roundTrip(t, second, `{"action":"ping","id":"p"}`); !strings.Contains(got, "pong") {
		t.Fatalf("ping on the second socket: %s, want a pong", got)
	}
	if err := f.g.Disconnect(ctx, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if err := drain(second); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("the disconnected socket: %v, want close 1008", err)
	}
	// The second revocation does not fit a table of one.
	for _, sub := range []string{"nobody", "nobody-else"} {
		if err := f.g.Revoke(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	gather(t, f.reg).check(t,
		w("wssec_revocations_full_total", 1, "where", "table"),
		w("wssec_disconnects_total", 1, "reason", "session_replaced"),
		w("wssec_disconnects_total", 1, "reason", "disconnect"),
	)
}
