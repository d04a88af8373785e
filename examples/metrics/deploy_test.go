package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wssec/wssec/prommetrics"
)

// The operations artefacts under deploy/ are checked against what this
// example really exports: every metric the dashboard queries is on a live
// scrape, every metric the rules use is one prommetrics defines, and
// promtool accepts the rules, their unit tests and every dashboard query.

const (
	rulesFile     = "../../deploy/prometheus/wssec-rules.yml"
	rulesTestFile = "../../deploy/prometheus/wssec-rules_test.yml"
	dashboardFile = "../../deploy/grafana/wssec-dashboard.json"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// queries returns every PromQL expression of the dashboard, by where it
// stands.
func (d *dashboard) queries() map[string]string {
	out := map[string]string{}
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			out[fmt.Sprintf("panel %q target %d", p.Title, i)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			if s, ok := q["query"].(string); ok {
				out["variable "+v.Name] = s
			}
		}
	}
	return out
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

var (
	selectorRE    = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)
	labelValuesRE = regexp.MustCompile(`label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	// ruleMetricRE finds the exporter's metric names in the rules: names
	// that follow a ':' are recording rules and are skipped.
	ruleMetricRE = regexp.MustCompile(`(^|[^:a-zA-Z0-9_])(wssec_[a-z0-9_]+)`)
)

// metricNames returns the metric names an expression selects. Every
// selector in the shipped queries carries braces (a job filter at least).
func metricNames(expr string) []string {
	var out []string
	for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1])
	}
	for _, m := range labelValuesRE.FindAllStringSubmatch(expr, -1) {
		out = append(out, m[1])
	}
	return out
}

// scrapeFamilies drives the example with the traffic each dashboard panel
// shows (an accepted socket and message, a cross-site handshake, refused
// messages with and without a channel, a normal close and a reset) and
// returns the metric families of a real scrape of its /metrics.
func scrapeFamilies(t *testing.T) map[string]string {
	t.Helper()
	key := []byte("0123456789abcdef0123456789abcdef")
	g, handler, err := newServer(key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer g.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tok, err := devToken(key, "visitor")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	d := websocket.Dialer{Subprotocols: []string{"wssec.v1", "bearer." + tok}, HandshakeTimeout: 5 * time.Second}
	dial := func(origin string) (*websocket.Conn, int) {
		c, resp, err := d.Dial(url, http.Header{"Origin": {origin}})
		status := 0
		if resp != nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		if err != nil {
			return nil, status
		}
		return c, status
	}
	for range 2 {
		if _, status := dial("https://evil.example"); status != http.StatusForbidden {
			t.Fatalf("cross-site dial: %d, want 403", status)
		}
	}
	c, status := dial(srv.URL)
	if c == nil {
		t.Fatalf("dial: %d", status)
	}
	for _, m := range []string{
		`{"action":"say","id":"1","payload":{"text":"hello"}}`,           // accepted
		`{"action":"say","id":"2","payload":{"text":""}}`,                // invalid_payload
		`{"action":"say","id":"3","channel":"x","payload":{"text":"x"}}`, // forbidden, names a channel
		`{"action":"nope","id":"4"}`,                                     // unknown_action
	} {
		c.WriteMessage(websocket.TextMessage, []byte(m))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("answer to %s: %v", m, err)
		}
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
	}
	c.Close()
	// A second socket that the client resets: a 1006 close.
	if c, status = dial(srv.URL); c == nil {
		t.Fatalf("dial: %d", status)
	}
	if tc, ok := c.NetConn().(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()

	var families map[string]string
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		families = map[string]string{}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		text := ""
		for sc.Scan() {
			line := sc.Text()
			text += line + "\n"
			if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
				families[f[2]] = f[3]
			}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if strings.Contains(text, `wssec_connections_closed_total{code="1006"} 1`) && strings.Contains(text, "wssec_connections_active 0") {
			return families
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scrape never showed both closes:\n%s", text)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exported reports whether name is a series of one of the families: the
// family itself, or a histogram's _bucket, _sum or _count.
func exported(families map[string]string, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && families[base] == "histogram" {
			return true
		}
	}
	return false
}

// TestDashboard_QueriesUseExportedMetrics: every query of the Grafana
// dashboard selects at least one metric, and every metric it selects is on
// a real scrape of this example: no recording rule, no name prommetrics
// does not export. It also checks that the dashboard covers each
// monitoring item of the problem statement.
func TestDashboard_QueriesUseExportedMetrics(t *testing.T) {
	d := loadDashboard(t)
	families := scrapeFamilies(t)
	queries := d.queries()
	if len(queries) < 6 {
		t.Fatalf("only %d queries in the dashboard", len(queries))
	}
	for where, expr := range queries {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s selects no metric: %s", where, expr)
		}
		for _, n := range names {
			if strings.Contains(n, ":") {
				t.Errorf("%s uses the recording rule %s: the dashboard must work without the rules", where, n)
			} else if !exported(families, n) {
				t.Errorf("%s uses %s, which a scrape of examples/metrics does not have (families: %v)", where, n, slices.Sorted(mapKeys(families)))
			}
		}
	}
	// One panel (at least) per monitoring item: a query that selects the
	// metric and, where label is set, names that label (split or filter by
	// it), so a panel on the metric without the label does not count.
	for _, want := range []struct{ item, metric, label string }{
		{"authentication failure rate", "wssec_handshakes_total", ""},
		{"top origins by connection attempts", "wssec_handshakes_by_origin_total", ""},
		{"top refused origins", "wssec_refused_origins_total", ""},
		{"messages rejected by schema or policy", "wssec_messages_total", ""},
		{"session duration", "wssec_connection_duration_seconds_bucket", ""},
		{"abnormal disconnect spikes", "wssec_connections_closed_total", ""},
		{"per-channel publish/subscribe, refused", "wssec_channel_refusals_total", "channel_rule"},
		{"per-channel publish/subscribe, accepted", "wssec_messages_total", "channel_rule"},
	} {
		if !covers(queries, want.metric, want.label) {
			t.Errorf("no panel for %s (%s by %q)", want.item, want.metric, want.label)
		}
	}
}

// covers reports whether one of the queries selects metric and, when
// label is not empty, names label as a word.
func covers(queries map[string]string, metric, label string) bool {
	labelRE := regexp.MustCompile(`\b` + regexp.QuoteMeta(label) + `\b`)
	for _, expr := range queries {
		if slices.Contains(metricNames(expr), metric) && (label == "" || labelRE.MatchString(expr)) {
			return true
		}
	}
	return false
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// recordingRegisterer keeps the collectors registered on it.
type recordingRegisterer struct{ cs []prometheus.Collector }

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.cs = append(r.cs, c)
	return nil
}
func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *recordingRegisterer) Unregister(prometheus.Collector) bool    { return false }

// TestRules_UseExportedMetrics: every metric name the Prometheus rules
// use is one prommetrics defines (the rules also watch series, such as
// bans, that a quiet example never exports).
func TestRules_UseExportedMetrics(t *testing.T) {
	var reg recordingRegisterer
	if _, err := prommetrics.New(&reg); err != nil {
		t.Fatal(err)
	}
	defined := map[string]string{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range reg.cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			defined[m[1]] = "counter"
			if strings.HasSuffix(m[1], "_seconds") {
				defined[m[1]] = "histogram"
			}
		}
	}
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ruleMetricRE.FindAllStringSubmatch(string(b), -1) {
		n++
		if !exported(defined, m[2]) {
			t.Errorf("the rules use %s, which prommetrics does not define", m[2])
		}
	}
	if n < 10 {
		t.Fatalf("found only %d metric references in %s", n, rulesFile)
	}
}

// promtool returns the path of promtool, or fails (CI) or skips (a laptop)
// when it is missing.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found on PATH (CI=true, so this fails instead of skipping): %v", err)
		}
		t.Skip("promtool not found on PATH; install it (apt-get install prometheus; Debian's package provides promtool)")
	}
	return p
}

// TestRules_Promtool runs promtool check rules and promtool test rules on
// the shipped rules, and checks every dashboard query's syntax by loading
// it into promtool as a recording rule.
func TestRules_Promtool(t *testing.T) {
	bin := promtool(t)
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", rulesFile)
	run("test", "rules", rulesTestFile)

	// Grafana's variables, replaced by values a recording rule accepts.
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$job", ".*")
	var sb strings.Builder
	sb.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	d := loadDashboard(t)
	i := 0
	for where, expr := range d.queries() {
		if strings.HasPrefix(expr, "label_values(") {
			continue // a Grafana function, not PromQL
		}
		q, _ := json.Marshal(vars.Replace(expr)) // a JSON string is a YAML string
		fmt.Fprintf(&sb, "      # %s\n      - record: dashboard:query_%d\n        expr: %s\n", strings.ReplaceAll(where, "\n", " "), i, q)
		i++
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(f, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", f)
}
