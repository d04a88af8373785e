package prommetrics

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/wssec/wssec"
)

const topOrigins = "wssec_refused_origins_total"

// originHostCases seed FuzzOriginHost and are checked by TestOriginHost.
var originHostCases = map[string]string{
	"https://evil.example":                 "evil.example",
	"HTTPS://Evil.EXAMPLE:8443":            "evil.example",
	"http://evil.example:80":               "evil.example",
	"http://[::1]:8080":                    "::1",
	"http://[0:0:0:0:0:0:0:1]":             "::1",
	"http://127.0.0.1:9":                   "127.0.0.1",
	"https://xn--bcher-kva.example":        "xn--bcher-kva.example",
	"null":                                 hostNull,
	"":                                     hostInvalid,
	"evil.example":                         hostInvalid, // no scheme
	"chrome-extension://abcdef":            hostInvalid,
	"https://evil.example/path":            hostInvalid,
	"https://user@evil.example":            hostInvalid,
	"https://evil.example:99999":           hostInvalid,
	"https://bücher.example":               hostInvalid,
	"https://a\"b.example":                 hostInvalid,
	"https://evil.example\n# HELP x":       hostInvalid,
	"https://" + strings.Repeat("a.", 100): hostInvalid,
	"https://" + strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + ".example": hostInvalid, // over 128 bytes
}

func TestOriginHost(t *testing.T) {
	for in, want := range originHostCases {
		if got := originHost(in); got != want {
			t.Errorf("originHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzOriginHost: whatever the header holds, the label is a sentinel or
// a short, lowercase, exposition-safe host.
func FuzzOriginHost(f *testing.F) {
	for in := range originHostCases {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := originHost(in)
		if got == hostNull || got == hostInvalid {
			return
		}
		if !validLabelValue(got) || strings.ToLower(got) != got || strings.ContainsAny(got, "/{}*") {
			t.Fatalf("originHost(%q) = %q", in, got)
		}
		if again := originHost("https://" + strings.Trim(got, "[]")); got != again && !strings.Contains(got, ":") {
			t.Fatalf("originHost is not stable: %q -> %q -> %q", in, got, again)
		}
	})
}

// TestCardinality_TopRefusedOrigins: 10 000 distinct refused Origins,
// mixed with two origins that keep coming back (in varying spellings of
// the same host), all over real sockets: while the flood runs, no scrape
// shows more than K+1 origin_host series per outcome; afterwards the two
// returning hosts are the two largest series, in order, within the
// space-saving error bound, and the series sum to the exact number of
// origin refusals. Hostile header values never break the exposition.
func TestCardinality_TopRefusedOrigins(t *testing.T) {
	const (
		k        = DefaultTopOrigins
		distinct = 10_000
		first    = 3000
		second   = 2000
		workers  = 16
	)
	f := newFixture(t, nil, nil)
	var origins []string
	for i := range distinct {
		origins = append(origins, distinctOrigin(i))
	}
	for i := range first {
		origins = append(origins, []string{"https://first.attacker.example", "HTTPS://First.Attacker.Example:8443", "http://first.attacker.example"}[i%3])
	}
	for i := range second {
		origins = append(origins, []string{"https://second.attacker.example", "https://SECOND.attacker.example:444"}[i%2])
	}
	r := rand.New(rand.NewPCG(17, 17))
	r.Shuffle(len(origins), func(i, j int) { origins[i], origins[j] = origins[j], origins[i] })

	// A scraper watches the bound while the flood runs.
	stop := make(chan struct{})
	var scrapes, worst atomic.Int64
	var scraper sync.WaitGroup
	scraper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := originSeries(t, f.reg, outcomeRefused)
			if int64(n) > worst.Load() {
				worst.Store(int64(n))
			}
			scrapes.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	})

	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for wk := range workers {
		wg.Go(func() {
			for i := wk; i < len(origins); i += workers {
				if err := bogusHandshake(client, f.srv.URL+"/ws", origins[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	scraper.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Hostile values the HTTP client would not send, as the exporter sees
	// them from a Guard (emit truncates the Origin to 256 bytes).
	hostile := []string{"https://a\nb.example", "https://x.example\x00", "https://" + strings.Repeat("é", 100), "{}\"\\", "null", "null"}
	for _, h := range hostile {
		f.obs.Observe(wssec.Event{Kind: wssec.EventHandshakeRefused, Reason: "origin_not_allowed", Status: 403, Origin: h})
	}
	total := len(origins) + len(hostile)

	t.Logf("%d scrapes during the flood, at most %d refused origin_host series", scrapes.Load(), worst.Load())
	if w := worst.Load(); w > k+1 {
		t.Errorf("a scrape showed %d origin_host series, bound K+1 = %d", w, k+1)
	}
	s := gather(t, f.reg)
	if n := originSeries(t, f.reg, outcomeRefused); n > k+1 {
		t.Errorf("%d origin_host series after the flood, bound %d", n, k+1)
	}
	if got := s.value(topOrigins, "outcome", outcomeRefused); got != float64(total) {
		t.Errorf("origin_host series sum to %v, want %d refusals", got, total)
	}
	if got := s.value(hs, "outcome", "refused", "reason", "origin_not_allowed"); got != float64(total) {
		t.Errorf("handshakes refused for origin: %v, want %d", got, total)
	}

	type hv struct {
		host string
		v    float64
	}
	var named []hv
	for _, m := range s[topOrigins].GetMetric() {
		var host, outcome string
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "origin_host":
				host = lp.GetValue()
			case "outcome":
				outcome = lp.GetValue()
			}
		}
		if outcome == outcomeRefused && host != other && host != hostInvalid {
			named = append(named, hv{host, m.GetCounter().GetValue()})
		}
	}
	slices.SortFunc(named, func(a, b hv) int { return int(b.v - a.v) })
	t.Logf("named hosts: %v", named)
	if len(named) < 2 || named[0].host != "first.attacker.example" || named[1].host != "second.attacker.example" {
		t.Fatalf("top two hosts: %v, want first.attacker.example then second.attacker.example", named)
	}
	bound := float64(total/k + 1)
	for i, want := range []float64{first, second} {
		if v := named[i].v; v > want || v < want-bound {
			t.Errorf("%s = %v, true count %v, error bound %v", named[i].host, v, want, bound)
		}
	}

	// The exposition stays parseable and carries none of the raw values.
	var buf bytes.Buffer
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	text := buf.String()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := parser.TextToMetricFamilies(strings.NewReader(text)); err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	for _, bad := range []string{"flood.example", "é", `\"`, "\x00"} {
		if strings.Contains(text, bad) {
			t.Errorf("exposition holds %q", bad)
		}
	}
}

// distinctOrigin returns the i-th distinct Origin of the flood: a
// different host every time, in mixed spellings.
func distinctOrigin(i int) string {
	switch i % 3 {
	case 0:
		return fmt.Sprintf("https://h%d.flood.example", i)
	case 1:
		return fmt.Sprintf("HTTPS://H%d.Flood.Example:%d", i, 1+i%65535)
	default:
		return fmt.Sprintf("http://10.%d.%d.%d:8080", i%256, (i/256)%256, i%7)
	}
}

// originSeries counts the origin_host series of one outcome in a scrape.
func originSeries(t testing.TB, g prometheus.Gatherer, outcome string) int {
	s := gather(t, g)
	n := 0
	for _, m := range s[topOrigins].GetMetric() {
		if hasLabels(m, []string{"outcome", outcome}) {
			n++
		}
	}
	return n
}

// TestTopOrigins_ReportOnly: with the origin guard in report-only mode,
// the hosts it would have refused are counted under report_only.
func TestTopOrigins_ReportOnly(t *testing.T) {
	o, reg := newTestObserver(t)
	for range 3 {
		o.Observe(wssec.Event{Kind: wssec.EventReportOnly, Reason: "origin_not_allowed", Status: 403, Origin: "https://partner.example"})
	}
	o.Observe(wssec.Event{Kind: wssec.EventHandshakeRefused, Reason: "token_expired", Status: 401, Origin: "https://ignored.example"})
	gather(t, reg).check(t,
		w(topOrigins, 2, "outcome", "report_only", "origin_host", "partner.example"),
		w(topOrigins, 1, "outcome", "report_only", "origin_host", "other"),
		w(topOrigins, 0, "outcome", "refused"),
	)
}

func TestWithTopOrigins_Bounds(t *testing.T) {
	for _, k := range []int{0, -1, 101} {
		if _, err := New(prometheus.NewRegistry(), WithTopOrigins(k)); err == nil || !strings.Contains(err.Error(), "WithTopOrigins") {
			t.Errorf("WithTopOrigins(%d): %v", k, err)
		}
	}
	if _, err := New(prometheus.NewRegistry(), WithTopOrigins(100)); err != nil {
		t.Error(err)
	}
}
