package wssec

// "See every attack": every kind of refusal, driven over real sockets, must
// reach the Observer as an Event (Kind and Reason) and the slog JSON log as
// a line with the same "event" and "reason" — and no token, ticket or
// message payload may reach the log.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// evMarker is in the payload of every message the test sends; it must
// never reach a log line or an event.
const evMarker = "pm-7Qx2z"

// evWant is one event a refusal must produce.
type evWant struct {
	kind   EventKind
	reason string
}

// evEnv collects what the cases create: the secrets they used and every
// log and recorder, for the final check.
type evEnv struct {
	mu      sync.Mutex
	secrets []string
	logs    []*logBuffer
	recs    []*recorder
	f       *fixture // the current case's fixture
}

// secret registers s as a string that must never be logged.
func (e *evEnv) secret(s string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, s)
	return s
}

// token mints and registers a token.
func (e *evEnv) token(t *testing.T, c claims) string { return e.secret(mint(t, c)) }

func (e *evEnv) keep(f *fixture) *fixture {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.logs = append(e.logs, f.logs)
	e.recs = append(e.recs, f.events)
	e.f = f
	return f
}

// fixture is newFixture with plain ws:// and the test key first.
func (e *evEnv) fixture(t *testing.T, serve func(context.Context, *Conn), opts ...Option) *fixture {
	return e.keep(newFixture(t, serve, append([]Option{WithInsecureTransport(), WithHMACKey(testKey)}, opts...)...))
}

// harness is newConnHarness (the Conn tests' actions, channel rule and
// policy; every accepted message acknowledged).
func (e *evEnv) harness(t *testing.T, opts ...Option) *connHarness {
	h := newConnHarness(t, opts...)
	e.keep(h.fixture)
	return h
}

// client opens a socket on h as alice@acme with scope, with a registered
// token.
func (e *evEnv) client(t *testing.T, h *connHarness, scope string) *testClient {
	t.Helper()
	tok := e.token(t, claims{sub: "alice", tenant: "acme", scope: scope})
	ws, status, err := h.dial(h.headers(tok))
	if err != nil {
		t.Fatalf("dial: %d %v", status, err)
	}
	return &testClient{t: t, ws: ws}
}

// refused asserts a handshake refusal with status.
func (e *evEnv) refused(t *testing.T, h http.Header, status int, reason string) attempt {
	t.Helper()
	a := e.f.try(h)
	wantRefused(t, e.f, a, status, reason)
	return a
}

// evFailStore is a SharedStore that cannot decide anything: rates and
// quotas fall back to the Guard's own, credentials are refused.
type evFailStore struct{}

var errUnreachable = errors.New("store unreachable")

func (evFailStore) Allow(context.Context, string, rate.Limit, int, time.Time) (bool, time.Duration, error) {
	return false, 0, errUnreachable
}

func (evFailStore) Acquire(context.Context, []Slot) (func(), error) { return nil, errUnreachable }

func (evFailStore) AllowAcquire(context.Context, string, rate.Limit, int, time.Time, []Slot) (func(), error) {
	return nil, errUnreachable
}
func (evFailStore) Revoke(context.Context, Revocation) error { return errUnreachable }
func (evFailStore) Revoked(context.Context, string, string, time.Time) (bool, error) {
	return false, errUnreachable
}
func (evFailStore) Ban(context.Context, string, time.Duration) error { return errUnreachable }
func (evFailStore) Banned(context.Context, string) (time.Duration, bool, error) {
	return 0, false, errUnreachable
}
func (evFailStore) Once(context.Context, string, time.Duration) (bool, error) {
	return false, errUnreachable
}
func (evFailStore) PutTicket(context.Context, string, []byte, time.Duration) error {
	return errUnreachable
}
func (evFailStore) TakeTicket(context.Context, string) ([]byte, bool, error) {
	return nil, false, errUnreachable
}
func (evFailStore) Subscribe(context.Context, func(Revocation)) error { return nil }
func (evFailStore) Announce(context.Context, SessionNotice) error     { return errUnreachable }
func (evFailStore) SubscribeSessions(context.Context, func(SessionNotice)) error {
	return nil
}

// evRateFailStore is a plain Store that cannot decide.
type evRateFailStore struct{}

func (evRateFailStore) Allow(context.Context, string, rate.Limit, int, time.Time) (bool, time.Duration, error) {
	return false, 0, errUnreachable
}

func (evRateFailStore) Acquire(context.Context, []Slot) (func(), error) { return nil, errUnreachable }

// evLogged reports whether l holds a JSON line with event kind and reason.
func evLogged(t *testing.T, l *logBuffer, w evWant) bool {
	for _, rec := range logRecords(t, l) {
		if rec["event"] == string(w.kind) && rec["reason"] == w.reason {
			return true
		}
	}
	return false
}

// TestEvents_EveryRefusal drives each kind of refusal over a real socket and
// checks that the Observer saw the Event and the JSON log has its line. At
// the end, no token, ticket or payload marker used anywhere in the test is
// in any log or event.
func TestEvents_EveryRefusal(t *testing.T) {
	e := &evEnv{}
	marker := e.secret(evMarker)
	handshake := func(reason string) []evWant { return []evWant{{EventHandshakeRefused, reason}} }
	message := func(reason string) []evWant { return []evWant{{EventMessageRefused, reason}} }

	cases := []struct {
		name  string
		want  []evWant
		drive func(t *testing.T)
		// knownBug, when set, names a reported defect: the wire behaviour is
		// still asserted, and the case is skipped (not passed) while its
		// events are missing.
		knownBug string
	}{
		// --- Handshake refusals: plain HTTP answers, before any upgrade.
		{name: "transport_insecure (426)", want: handshake("transport_insecure"), drive: func(t *testing.T) {
			e.keep(newFixture(t, nil, WithHMACKey(testKey)))
			e.refused(t, bearer(e.f.origin, e.token(t, claims{})), 426, "transport_insecure")
		}},
		{name: "forwarded_malformed (400, trusted proxy)", want: handshake("forwarded_malformed"), drive: func(t *testing.T) {
			e.fixture(t, nil, WithTrustedProxies("127.0.0.1/32"))
			h := bearer(e.f.origin, e.token(t, claims{}))
			h.Set("X-Forwarded-For", "203.0.113.9, not-an-address")
			e.refused(t, h, 400, "forwarded_malformed")
		}},
		{name: "origin_missing (403)", want: handshake("origin_missing"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			e.refused(t, bearer("", e.token(t, claims{})), 403, "origin_missing")
		}},
		{name: "origin_null (403)", want: handshake("origin_null"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			e.refused(t, bearer("null", e.token(t, claims{})), 403, "origin_null")
		}},
		{name: "host_not_allowed (403)", want: handshake("host_not_allowed"), drive: func(t *testing.T) {
			e.fixture(t, nil, WithHosts("app.example.test:8080"))
			h := bearer("http://rebind.attacker.example:8080", e.token(t, claims{}))
			h.Set("Host", "rebind.attacker.example:8080")
			e.refused(t, h, 403, "host_not_allowed")
		}},
		{name: "origin_not_allowed (403)", want: handshake("origin_not_allowed"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			e.refused(t, bearer("https://attacker.example", e.token(t, claims{})), 403, "origin_not_allowed")
		}},
		{name: "handshake_rate (429)", want: handshake("handshake_rate"), drive: func(t *testing.T) {
			clk := newFakeClock()
			e.fixture(t, nil, WithHandshakeRate(1, 1), WithClock(clk.now))
			tok := e.token(t, claims{iat: clk.now(), exp: clk.now().Add(time.Minute)})
			wantAccepted(t, e.f, e.f.try(bearer(e.f.origin, tok)))
			wantRetryAfter(t, e.refused(t, bearer(e.f.origin, tok), 429, "handshake_rate"))
		}},
		{name: "quota_ip (429)", want: handshake("quota_ip"), drive: func(t *testing.T) {
			e.fixture(t, nil, WithConnLimits(1, 8, 100))
			wantAccepted(t, e.f, e.f.try(bearer(e.f.origin, e.token(t, claims{sub: "alice"}))))
			e.refused(t, bearer(e.f.origin, e.token(t, claims{sub: "bob"})), 429, "quota_ip")
		}},
		{name: "quota_subject (429)", want: handshake("quota_subject"), drive: func(t *testing.T) {
			e.fixture(t, nil, WithConnLimits(32, 1, 100))
			tok := e.token(t, claims{sub: "alice"})
			wantAccepted(t, e.f, e.f.try(bearer(e.f.origin, tok)))
			e.refused(t, bearer(e.f.origin, tok), 429, "quota_subject")
		}},
		{name: "capacity (503)", want: handshake("capacity"), drive: func(t *testing.T) {
			e.fixture(t, nil, WithConnLimits(32, 8, 1))
			wantAccepted(t, e.f, e.f.try(bearer(e.f.origin, e.token(t, claims{sub: "alice"}))))
			e.refused(t, bearer(e.f.origin, e.token(t, claims{sub: "bob"})), 503, "capacity")
		}},
		{name: "store_error (503, revocation fails closed)", want: []evWant{
			{EventHandshakeRefused, "store_error"}, {EventStoreUnavailable, "revocation"}, {EventStoreUnavailable, "rate"},
		}, drive: func(t *testing.T) {
			e.fixture(t, nil, WithStore(evFailStore{}))
			e.refused(t, bearer(e.f.origin, e.token(t, claims{})), 503, "store_error")
		}},
		{name: "store_unavailable (rates and quotas fall back to local)", want: []evWant{
			{EventStoreUnavailable, "rate"}, {EventStoreUnavailable, "quota"},
		}, drive: func(t *testing.T) {
			e.fixture(t, nil, WithStore(evRateFailStore{}), WithConnLimits(1, 8, 100))
			wantAccepted(t, e.f, e.f.try(bearer(e.f.origin, e.token(t, claims{sub: "alice"}))))
			// The local per-IP quota of 1 still holds while the store is down.
			e.refused(t, bearer(e.f.origin, e.token(t, claims{sub: "bob"})), 429, "quota_ip")
		}},
		{name: "token_missing (401)", want: handshake("token_missing"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			e.refused(t, hdr("Origin", e.f.origin), 401, "token_missing")
		}},
		{name: "token_malformed (401)", want: handshake("token_malformed"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			e.refused(t, bearer(e.f.origin, e.secret("not-a-jwt-"+evMarker)), 401, "token_malformed")
		}},
		{name: "token_expired (401)", want: handshake("token_expired"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			now := time.Now()
			e.refused(t, bearer(e.f.origin, e.token(t, claims{iat: now.Add(-10 * time.Minute), exp: now.Add(-5 * time.Minute)})), 401, "token_expired")
		}},
		{name: "token_alg (401)", want: handshake("token_alg"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			tok := e.secret(handJWT(t, map[string]any{"alg": "none"}, goodClaims(), hs256(testKey)))
			e.refused(t, bearer(e.f.origin, tok), 401, "token_alg")
		}},
		{name: "token_signature (401)", want: handshake("token_signature"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			tok := e.secret(handJWT(t, map[string]any{"alg": "HS256"}, goodClaims(), hs256([]byte("not-the-key-not-the-key-not-the-"))))
			e.refused(t, bearer(e.f.origin, tok), 401, "token_signature")
		}},
		{name: "token_header (401)", want: handshake("token_header"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			tok := e.secret(handJWT(t, map[string]any{"alg": "HS256", "jku": "https://attacker.example/jwks"}, goodClaims(), hs256(testKey)))
			e.refused(t, bearer(e.f.origin, tok), 401, "token_header")
		}},
		{name: "token_claims (401)", want: handshake("token_claims"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			e.refused(t, bearer(e.f.origin, e.token(t, claims{noExp: true})), 401, "token_claims")
		}},
		{name: "token_not_yet_valid (401)", want: handshake("token_not_yet_valid"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			now := time.Now()
			e.refused(t, bearer(e.f.origin, e.token(t, claims{nbf: now.Add(5 * time.Minute), exp: now.Add(10 * time.Minute)})), 401, "token_not_yet_valid")
		}},
		{name: "token_lifetime (401)", want: handshake("token_lifetime"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			e.refused(t, bearer(e.f.origin, e.token(t, claims{exp: time.Now().Add(time.Hour)})), 401, "token_lifetime")
		}},
		{name: "token_too_large (401)", want: handshake("token_too_large"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			tok := e.token(t, claims{extra: map[string]any{"pad": strings.Repeat(evMarker, 1200)}})
			e.refused(t, bearer(e.f.origin, tok), 401, "token_too_large")
		}},
		{name: "token_issuer and token_audience (401)", want: []evWant{{EventHandshakeRefused, "token_issuer"}, {EventHandshakeRefused, "token_audience"}}, drive: func(t *testing.T) {
			e.fixture(t, nil, WithIssuer("https://auth.example.com"), WithAudience("wssec-api"))
			e.refused(t, bearer(e.f.origin, e.token(t, claims{iss: "https://evil.example", aud: []string{"wssec-api"}})), 401, "token_issuer")
			e.refused(t, bearer(e.f.origin, e.token(t, claims{iss: "https://auth.example.com", aud: []string{"other"}})), 401, "token_audience")
		}},
		{name: "token_revoked (401)", want: []evWant{{EventRevoked, "subject_revoked"}, {EventHandshakeRefused, "token_revoked"}}, drive: func(t *testing.T) {
			e.fixture(t, nil)
			tok := e.token(t, claims{sub: "alice", iat: time.Now().Add(-2 * time.Second)})
			if err := e.f.g.Revoke(context.Background(), "alice"); err != nil {
				t.Fatal(err)
			}
			e.refused(t, bearer(e.f.origin, tok), 401, "token_revoked")
		}},
		{name: "token_replay (401)", want: handshake("token_replay"), drive: func(t *testing.T) {
			e.fixture(t, nil, WithSingleUseTokens(0))
			tok := e.token(t, claims{jti: "once-" + evMarker})
			wantAccepted(t, e.f, e.f.try(bearer(e.f.origin, tok)))
			e.refused(t, bearer(e.f.origin, tok), 401, "token_replay")
		}},
		{name: "replay_cache_full (503, fail closed)", want: handshake("replay_cache_full"), drive: func(t *testing.T) {
			e.fixture(t, nil, WithSingleUseTokens(1))
			wantAccepted(t, e.f, e.f.try(bearer(e.f.origin, e.token(t, claims{jti: "first"}))))
			e.refused(t, bearer(e.f.origin, e.token(t, claims{jti: "second"})), 503, "replay_cache_full")
		}},
		{name: "ticket_invalid (401)", want: handshake("ticket_invalid"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			tk, err := e.f.g.IssueTicket(context.Background(), &Principal{Subject: "dave", ExpiresAt: time.Now().Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			e.secret(tk)
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			for i, want := range []int{101, 401} { // a ticket is single use
				ws, resp, _ := d.Dial(e.f.url+"?ticket="+tk, hdr("Origin", e.f.origin))
				if ws != nil {
					t.Cleanup(func() { ws.Close() })
				}
				if resp == nil || resp.StatusCode != want {
					t.Fatalf("redemption %d: %v; want %d", i+1, resp, want)
				}
			}
		}},
		{name: "authenticator (401)", want: handshake("authenticator"), drive: func(t *testing.T) {
			e.keep(newFixture(t, nil, WithInsecureTransport(), WithAuthenticator(func(r *http.Request) (*Principal, error) {
				return nil, errors.New("unknown session")
			})))
			e.refused(t, hdr("Origin", e.f.origin, "Cookie", "sid="+e.secret("session-"+evMarker)), 401, "authenticator")
		}},
		{name: "banned (429)", want: []evWant{{EventBanned, "token"}, {EventHandshakeRefused, "banned"}}, drive: func(t *testing.T) {
			e.fixture(t, nil, WithBanPolicy(BanPolicy{Threshold: 2, Window: time.Minute, Duration: time.Minute}))
			for range 2 {
				e.refused(t, bearer(e.f.origin, e.secret("x.y."+evMarker)), 401, "token_malformed")
			}
			wantRetryAfter(t, e.refused(t, bearer(e.f.origin, e.token(t, claims{})), 429, "banned"))
		}},

		{name: "shutting_down (503)", want: handshake("shutting_down"), drive: func(t *testing.T) {
			e.fixture(t, nil)
			if err := e.f.g.Close(); err != nil {
				t.Fatal(err)
			}
			a := e.f.try(bearer(e.f.origin, e.token(t, claims{})))
			if a.conn != nil || a.status != http.StatusServiceUnavailable {
				t.Fatalf("handshake after Close: %d; want 503", a.status)
			}
		}},
		{name: "report_only (origin let through)", want: []evWant{{EventReportOnly, "origin_not_allowed"}}, drive: func(t *testing.T) {
			e.fixture(t, nil, WithReportOnly(GuardOrigin))
			wantAccepted(t, e.f, e.f.try(bearer("https://attacker.example", e.token(t, claims{}))))
		}},

		// --- Message refusals on a live socket.
		{name: "message_too_big (1009)", want: message("message_too_big"), drive: func(t *testing.T) {
			h := e.harness(t, WithMaxMessageSize(256))
			c := e.client(t, h, "")
			c.sendText(`{"action":"publish","id":"big","payload":{"body":"` + strings.Repeat(evMarker, 40) + `"}}`)
			c.expectClose(CloseTooBig)
		}},
		{name: "invalid_utf8 (1007)", want: message("invalid_utf8"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "")
			c.sendText("{\"action\":\"say\",\"id\":\"u\",\"payload\":{\"text\":\"" + evMarker + "\xff\"}}")
			c.expectClose(CloseInvalidData)
		}},
		{name: "binary_frame", want: message("binary_frame"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "")
			c.send(websocket.BinaryMessage, []byte(`{"action":"say","id":"b","payload":{"text":"`+evMarker+`"}}`))
			c.expectError("invalid_message", "b")
		}},
		{name: "rate_limited", want: message("rate_limited"), drive: func(t *testing.T) {
			frozen := time.Now()
			c := e.client(t, e.harness(t, WithMessageRate(1, 1), WithClock(func() time.Time { return frozen })), "orders:write")
			for i := range 2 {
				c.sendText(`{"action":"publish","channel":"tenant:acme:orders","id":"r` + string(rune('0'+i)) + `","payload":{"body":"` + evMarker + `"}}`)
			}
			c.expectFrame(wireFrame{Action: "ack", ID: "r0"})
			c.expectError("rate_limited", "r1")
		}},
		{name: "rate_abuse (1013)", want: message("rate_abuse"), drive: func(t *testing.T) {
			frozen := time.Now()
			c := e.client(t, e.harness(t, WithMessageRate(1, 1), WithDenialLimit(2), WithClock(func() time.Time { return frozen })), "orders:write")
			for range 3 {
				c.sendText(`{"action":"publish","channel":"tenant:acme:orders","payload":{"body":"` + evMarker + `"}}`)
			}
			c.expectFrame(wireFrame{Action: "ack"})
			c.expectError("rate_limited", "")
			c.expectClose(CloseTryAgainLater)
		}},
		{name: "invalid_payload", want: message("invalid_payload"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "")
			c.sendText(`{"action":"say","id":"v","payload":{"text":"` + evMarker + `-too-long"}}`)
			c.expectError("invalid_message", "v")
			c.sendText(`{"action":"say","id":"u","payload":{"text":"x","` + evMarker + `":1}}`)
			c.expectError("invalid_message", "u")
		}},
		{name: "invalid_envelope", want: message("invalid_envelope"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "")
			c.sendText(`{"action":"say","id":"j","payload":{"text":"` + evMarker)
			c.expectError("invalid_message", "j")
			c.sendText(`{"action":"say","id":"k","payload":{"text":"x"},"` + evMarker + `":1}`)
			c.expectError("invalid_message", "k")
		}},
		{name: "unknown_action", want: message("unknown_action"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "")
			c.sendText(`{"action":"drop_tables","id":"ua","payload":{"x":"` + evMarker + `"}}`)
			c.expectError("unknown_action", "ua")
		}},
		{name: "forbidden (channel)", want: message("forbidden"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "orders:read")
			c.sendText(`{"action":"publish","channel":"tenant:acme:orders","id":"fc","payload":{"body":"` + evMarker + `"}}`)
			c.expectError("forbidden", "fc")
			c.sendText(`{"action":"subscribe","channel":"tenant:globex:orders","id":"ft"}`)
			c.expectError("forbidden", "ft")
			eventually(t, "the channel refusal event", func() bool {
				ev, ok := e.f.events.last(EventMessageRefused)
				return ok && ev.Reason == "forbidden" && ev.Detail == "no channel rule matches"
			})
		}},
		{name: "forbidden (policy)", want: message("forbidden"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "")
			c.sendText(`{"action":"say","id":"fp","payload":{"text":"deny"}}`)
			c.expectError("forbidden", "fp")
			c.noSecrets()
			eventually(t, "the policy refusal event", func() bool {
				ev, ok := e.f.events.last(EventMessageRefused)
				return ok && ev.Reason == "forbidden" && strings.HasPrefix(ev.Detail, "policy: ")
			})
		}},
		{name: "denial_limit (1008)", want: message("denial_limit"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t, WithDenialLimit(2)), "")
			for _, id := range []string{"d1", "d2"} {
				c.sendText(`{"action":"nope","id":"` + id + `","payload":{"x":"` + evMarker + `"}}`)
				c.expectError("unknown_action", id)
			}
			c.expectClose(ClosePolicy)
		}},
		{name: "slow_consumer (1013)", want: message("slow_consumer"), drive: func(t *testing.T) {
			big := strings.Repeat("x", 4096)
			e.fixture(t, func(ctx context.Context, c *Conn) {
				for range 20000 { // bounded; the socket buffers fill long before
					if c.Send(ctx, map[string]string{"b": big}) != nil {
						return
					}
				}
			}, WithSendQueue(1))
			if _, status, err := e.f.dial(e.f.headers(e.token(t, claims{}))); err != nil {
				t.Fatalf("dial: %d %v", status, err)
			} // and never read
			eventually(t, "the 1013 close", func() bool { return closedWith(e.f.events, CloseTryAgainLater, "slow consumer") })
		}},
		{name: "token_expired on a live socket (1008)", want: message("token_expired"), drive: func(t *testing.T) {
			exp := time.Now().Truncate(time.Second).Add(2 * time.Second)
			clk := &fakeClock{t: exp.Add(-300 * time.Millisecond)}
			e.fixture(t, nil, WithClock(clk.now), WithClockSkew(0), WithExpiryWarning(0))
			ws, status, err := e.f.dial(e.f.headers(e.token(t, claims{iat: exp.Add(-time.Minute), exp: exp})))
			if err != nil {
				t.Fatalf("dial: %d %v", status, err)
			}
			if code := closeCode(t, ws); code != ClosePolicy {
				t.Fatalf("close %d; want 1008", code)
			}
		}},
		{name: "re-auth refused: another subject", want: message("reauth_subject"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "")
			mallory := e.token(t, claims{sub: "mallory", tenant: "acme"})
			c.sendText(`{"action":"auth","id":"ra","payload":{"token":"` + mallory + `"}}`)
			c.expectFrame(wireFrame{Action: "error", ID: "ra", Error: &wireError{Code: "forbidden", Message: "re-authentication refused"}})
		}},
		{name: "re-auth refused: bad token", want: message("token_signature"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "")
			forged := e.secret(handJWT(t, map[string]any{"alg": "HS256"}, map[string]any{"sub": "alice", "tenant": "acme", "exp": time.Now().Add(time.Minute).Unix()}, hs256([]byte("not-the-key-not-the-key-not-the-"))))
			c.sendText(`{"action":"auth","id":"rb","payload":{"token":"` + forged + `"}}`)
			c.expectError("forbidden", "rb")
		}},
		{name: "re-auth refused: no token", want: message("reauth_invalid"), drive: func(t *testing.T) {
			c := e.client(t, e.harness(t), "")
			c.sendText(`{"action":"auth","id":"rc","payload":{"token":""}}`)
			c.expectError("forbidden", "rc")
		}},
		{name: "ping_flood (1013)", want: message("ping_flood"), drive: func(t *testing.T) {
			e.fixture(t, nil) // 20 messages/s, burst 40, denial limit 5
			ws, status, err := e.f.dial(e.f.headers(e.token(t, claims{})))
			if err != nil {
				t.Fatalf("dial: %d %v", status, err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range 1000 {
					if ws.WriteControl(websocket.PingMessage, []byte(evMarker), time.Now().Add(time.Second)) != nil {
						return
					}
				}
			}()
			if code := closeCode(t, ws); code != CloseTryAgainLater {
				t.Fatalf("close %d; want 1013", code)
			}
			<-done
			eventually(t, "conn_closed 1013", func() bool { return closedWith(e.f.events, CloseTryAgainLater, "ping flood") })
		}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.f = nil
			tc.drive(t)
			f := e.f
			if f == nil {
				t.Fatal("the case made no fixture")
			}
			if tc.knownBug != "" {
				deadline := time.Now().Add(500 * time.Millisecond)
				for _, w := range tc.want {
					for !f.events.has(w.kind, w.reason) && time.Now().Before(deadline) {
						time.Sleep(10 * time.Millisecond)
					}
					if !f.events.has(w.kind, w.reason) {
						t.Skipf("known bug: %s (no %s/%s event)", tc.knownBug, w.kind, w.reason)
					}
				}
			}
			for _, w := range tc.want {
				eventually(t, string(w.kind)+"/"+w.reason+" observed", func() bool { return f.events.has(w.kind, w.reason) })
				eventually(t, string(w.kind)+"/"+w.reason+" logged", func() bool { return evLogged(t, f.logs, w) })
			}
		})
	}

	// Nothing secret in any log line or event of any case. The fixtures
	// are closed by now, so their last events (conn_closed) are in.
	if len(e.logs) == 0 {
		t.Fatal("no logs captured")
	}
	for i, l := range e.logs {
		out := l.String()
		for _, s := range e.secrets {
			if strings.Contains(out, s) {
				t.Errorf("log %d holds a secret (%.40q…):\n%s", i, s, out)
			}
		}
		for _, rec := range logRecords(t, l) {
			b, _ := json.Marshal(rec)
			if strings.Contains(string(b), marker) {
				t.Errorf("a log record holds the payload marker: %s", b)
			}
		}
	}
	for _, r := range e.recs {
		for _, ev := range r.all() {
			for _, s := range e.secrets {
				if strings.Contains(ev.Detail, s) || strings.Contains(ev.Origin, s) || strings.Contains(ev.Subject, s) ||
					strings.Contains(ev.Channel, s) || strings.Contains(ev.Action, s) || strings.Contains(ev.Reason, s) {
					t.Errorf("an event holds a secret: %+v", ev)
				}
			}
		}
	}
}
