package prommetrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/wssec/wssec"
)

// testKey is the HMAC key test tokens are signed with.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// jtiSeq makes every test token's jti unique.
var jtiSeq atomic.Int64

// mint signs a 5-minute HS256 token for sub in tenant with scope
// (space-separated; "" for none).
func mint(t testing.TB, sub, tenant, scope string) string {
	t.Helper()
	now := time.Now()
	b := jwt.NewBuilder().Subject(sub).IssuedAt(now).Expiration(now.Add(5*time.Minute)).
		JwtID(fmt.Sprintf("jti-%d", jtiSeq.Add(1))).Claim("tenant", tenant)
	if scope != "" {
		b = b.Claim("scope", scope)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), testKey))
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

// publish is the payload of the test "publish" action.
type publish struct {
	Text string `json:"text" validate:"required,max=100"`
}

// orderRule admits tenant:{tenant}:orders to principals of that tenant
// holding the orders scopes.
var orderRule = wssec.ChannelRule{Pattern: "tenant:{tenant}:orders", Read: "orders:read", Write: "orders:write"}

// wildcardOrigin is the second allowlist pattern of every fixture.
const wildcardOrigin = "https://*.example.com"

// fixture is a Guard behind an httptest server, observed by an Observer
// registered on its own registry.
type fixture struct {
	t      *testing.T
	reg    *prometheus.Registry
	obs    *Observer
	g      *wssec.Guard
	srv    *httptest.Server
	url    string // ws://…/ws
	origin string // the server's own origin, allowlisted
}

// echo answers every accepted message with {"action":"ok","id":…}.
func echo(ctx context.Context, c *wssec.Conn) {
	for {
		m, err := c.ReadMessage(ctx)
		if err != nil {
			return
		}
		c.Send(ctx, map[string]string{"action": "ok", "id": m.ID})
	}
}

// newFixture starts a plain-HTTP server whose /ws runs serve (echo when
// nil) behind a Guard built from a base configuration and opts.
func newFixture(t *testing.T, obsOpts []Option, serve func(context.Context, *wssec.Conn), opts ...wssec.Option) *fixture {
	t.Helper()
	f := &fixture{t: t, reg: prometheus.NewRegistry()}
	var err error
	if f.obs, err = New(f.reg, obsOpts...); err != nil {
		t.Fatalf("New: %v", err)
	}
	// The origin is known before the Guard is built: the listener is.
	f.srv = httptest.NewUnstartedServer(nil)
	f.origin = "http://" + f.srv.Listener.Addr().String()
	base := []wssec.Option{
		wssec.WithHMACKey(testKey),
		wssec.WithInsecureTransport(), // loopback only
		wssec.WithLogger(slog.New(slog.DiscardHandler)),
		wssec.WithObserver(f.obs),
		wssec.WithOrigins(f.origin, wildcardOrigin),
		wssec.WithAction[publish]("publish"),
		wssec.WithChannelRules(orderRule),
	}
	if f.g, err = wssec.New(append(base, opts...)...); err != nil {
		t.Fatalf("wssec.New: %v", err)
	}
	if serve == nil {
		serve = echo
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", f.g.Handler(serve))
	f.srv.Config.Handler = mux
	f.srv.Start()
	f.url = "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws"
	t.Cleanup(func() {
		f.g.Close()
		f.srv.Close()
	})
	return f
}

// dial opens a socket from origin with a bearer token (none when tok is
// ""); it returns the connection (nil on refusal) and the HTTP status.
func (f *fixture) dial(origin, tok string) (*websocket.Conn, int) {
	f.t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(f.url, h)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	if err != nil && c != nil {
		c.Close()
		c = nil
	}
	if c != nil {
		f.t.Cleanup(func() { c.Close() })
	}
	return c, status
}

// mustDial opens a socket that must be accepted.
func (f *fixture) mustDial(origin, tok string) *websocket.Conn {
	f.t.Helper()
	c, status := f.dial(origin, tok)
	if c == nil {
		f.t.Fatalf("dial from %s: status %d, want 101", origin, status)
	}
	return c
}

// roundTrip writes one text frame and reads one answer.
func roundTrip(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write %s: %v", msg, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read answer to %s: %v", msg, err)
	}
	return string(b)
}

// closeWith sends a close frame with code and waits for the server's.
func closeWith(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	msg := websocket.FormatCloseMessage(code, "bye")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("write close %d: %v", code, err)
	}
	drain(c)
}

// drain reads until the connection fails (typically on the close frame).
func drain(c *websocket.Conn) error {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
}

// scrape is one Gather of a registry, by family name.
type scrape map[string]*dto.MetricFamily

func gather(t testing.TB, g prometheus.Gatherer) scrape {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	s := make(scrape, len(mfs))
	for _, mf := range mfs {
		s[mf.GetName()] = mf
	}
	return s
}

// value returns the value of the series of family name whose labels
// include the given name/value pairs, summed over matching series:
// counters and gauges by value, histograms by sample count. A series
// that does not exist counts 0.
func (s scrape) value(name string, pairs ...string) float64 {
	mf := s[name]
	if mf == nil {
		return 0
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, pairs) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == pairs[i] && lp.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// labelValues returns, for every "family/label", the set of its values.
func (s scrape) labelValues() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for name, mf := range s {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				k := name + "/" + lp.GetName()
				if out[k] == nil {
					out[k] = map[string]bool{}
				}
				out[k][lp.GetValue()] = true
			}
		}
	}
	return out
}

// series counts the series of every family.
func (s scrape) series() int {
	n := 0
	for _, mf := range s {
		n += len(mf.GetMetric())
	}
	return n
}

// want is one expected value of a series.
type want struct {
	name  string
	pairs []string
	v     float64
}

func w(name string, v float64, pairs ...string) want { return want{name, pairs, v} }

// check compares the expectations with s and reports every mismatch.
func (s scrape) check(t *testing.T, wants ...want) {
	t.Helper()
	for _, x := range wants {
		if got := s.value(x.name, x.pairs...); got != x.v {
			t.Errorf("%s%v = %v, want %v", x.name, x.pairs, got, x.v)
		}
	}
}

// eventually polls cond on fresh scrapes until it holds or 5 s pass.
func eventually(t *testing.T, reg prometheus.Gatherer, what string, cond func(scrape) bool) scrape {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := gather(t, reg)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sortedKeys lists a set's members in order, for messages.
func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return slices.Clip(ks)
}
