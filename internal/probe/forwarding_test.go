package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// capServer holds sockets under two limits: perIP a client address
// (refused with 429) and total in all (refused with 503). With trustXFF
// the client address is taken from a client-sent X-Forwarded-For, the
// mistake the forwarding check is after.
type capServer struct {
	perIP, total int
	trustXFF     bool
	// dropAtTotal closes the connection without an answer instead of the
	// 503, the way a server out of file descriptors or a proxy that resets
	// might.
	dropAtTotal bool
	// onSpoofed, when set, sees every request carrying X-Forwarded-For
	// (n counts them from 1) before the limits and may end it there:
	// drop closes the connection without an answer, hold answers nothing
	// until the client has gone.
	onSpoofed func(n int) spoofAction

	up websocket.Upgrader
	wg sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	open    map[string]int
	all     int
	spoofed int
}

type spoofAction int

const (
	serve spoofAction = iota
	drop
	hold
)

// hangUp closes the request's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		c.Close()
	}
}

func (s *capServer) start(t *testing.T) string {
	t.Helper()
	s.open = map[string]int{}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); s.wg.Wait() })
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func (s *capServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, _, _ := net.SplitHostPort(r.RemoteAddr)
	xff := r.Header.Get("X-Forwarded-For")
	if xff != "" && s.trustXFF {
		key = strings.TrimSpace(strings.Split(xff, ",")[0])
	}
	s.mu.Lock()
	if xff != "" {
		s.spoofed++
		if s.onSpoofed != nil {
			switch s.onSpoofed(s.spoofed) {
			case hold:
				s.mu.Unlock()
				<-r.Context().Done()
				return
			case drop:
				s.mu.Unlock()
				hangUp(w)
				return
			}
		}
	}
	switch {
	case s.open[key] >= s.perIP:
		s.mu.Unlock()
		http.Error(w, "too many sockets from your address", http.StatusTooManyRequests)
		return
	case s.all >= s.total && s.dropAtTotal:
		s.mu.Unlock()
		hangUp(w)
		return
	case s.all >= s.total:
		s.mu.Unlock()
		http.Error(w, "server full", http.StatusServiceUnavailable)
		return
	}
	s.open[key]++
	s.all++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open[key]--
		s.all--
		s.mu.Unlock()
	}()
	s.wg.Add(1) // before the upgrade: Close waits for a request only until it is hijacked
	defer s.wg.Done()
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

func runForwarding(t *testing.T, ctx context.Context, url string) Finding {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{URL: url, MaxSockets: 16, Skip: []string{"transport", "origin", "token", "messages", "lifetime"}})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := r.Find("forwarding", "client-address")
	if !ok {
		t.Fatalf("forwarding/client-address not reported: %+v", r.Findings)
	}
	t.Logf("%s: %s", f.Verdict, f.Evidence)
	return f
}

var (
	bitesAfter = regexp.MustCompile(`bites after (\d+) sockets`)
	openedWith = regexp.MustCompile(`but (\d+) opened with`)
)

func evidenceNumber(t *testing.T, re *regexp.Regexp, evidence string) int {
	t.Helper()
	m := re.FindStringSubmatch(evidence)
	if m == nil {
		t.Fatalf("evidence %q does not match %s", evidence, re)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestProxySpoof_PerIPLimitBehindTotalCap: a per-address limit of 4 that
// believes X-Forwarded-For, behind a total cap of 10. The spoofed fill is
// refused too, but by the total cap, after more sockets than one address
// may hold: a fail, whose evidence names both refusals.
func TestProxySpoof_PerIPLimitBehindTotalCap(t *testing.T) {
	s := &capServer{perIP: 4, total: 10, trustXFF: true}
	f := runForwarding(t, context.Background(), s.start(t))
	if f.Verdict != Fail {
		t.Fatalf("verdict %s (%s), want fail", f.Verdict, f.Evidence)
	}
	for _, e := range []string{`429 "too many sockets from your address"`, "X-Forwarded-For", `another limit refused (503 "server full")`, "believes the client"} {
		if !strings.Contains(f.Evidence, e) {
			t.Errorf("evidence %q lacks %q", f.Evidence, e)
		}
	}
	// A socket the probe just closed may still be counted: 3 or 4 from
	// one address, 9 or 10 with spoofed ones.
	plain, spoofed := evidenceNumber(t, bitesAfter, f.Evidence), evidenceNumber(t, openedWith, f.Evidence)
	if plain < 3 || plain > 4 || spoofed < 9 || spoofed > 10 {
		t.Errorf("evidence %q: %d plain and %d spoofed, want 3–4 and 9–10", f.Evidence, plain, spoofed)
	}
}

// TestProxySpoof_SpoofedFillNotRefusedByStatus: a pass needs the spoofed
// fill refused with an HTTP status after no more sockets than one address
// holds. A spoofed fill cut short by a network error or by the budget
// before that shows nothing (n/a); one that got past the per-address
// limit first is a fail however it ended.
func TestProxySpoof_SpoofedFillNotRefusedByStatus(t *testing.T) {
	at3 := func(a spoofAction) func(int) spoofAction {
		return func(n int) spoofAction {
			if n == 3 {
				return a
			}
			return serve
		}
	}
	for _, tc := range []struct {
		name     string
		srv      *capServer
		cancelAt int // the spoofed request at which the run's context ends
		want     Verdict
		evidence string
	}{
		{"honest per-address limit", &capServer{perIP: 4, total: 10}, 0,
			// 3 or 4: a socket the probe just closed may still be counted.
			Pass, ` with a different X-Forwarded-For, Forwarded, X-Real-IP, True-Client-IP, CF-Connecting-IP on each (429 "too many sockets from your address")`},
		{"network error before the limit", &capServer{perIP: 4, total: 10, trustXFF: true, onSpoofed: at3(drop)}, 0,
			NA, "socket 3 failed without an HTTP answer (unexpected EOF)"},
		{"budget spent before the limit", &capServer{perIP: 4, total: 10, trustXFF: true}, 3,
			NA, "the budget was spent after 2 with a different X-Forwarded-For"},
		{"network error after the limit", &capServer{perIP: 4, total: 10, trustXFF: true, dropAtTotal: true}, 0,
			Fail, "with a different client-sent X-Forwarded-For on each before socket 11 failed without an HTTP answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelAt > 0 {
				tc.srv.onSpoofed = func(n int) spoofAction {
					if n == tc.cancelAt {
						cancel()
						return hold
					}
					return serve
				}
			}
			f := runForwarding(t, ctx, tc.srv.start(t))
			if f.Verdict != tc.want || !strings.Contains(f.Evidence, tc.evidence) {
				t.Fatalf("%s (%s), want %s with %q", f.Verdict, f.Evidence, tc.want, tc.evidence)
			}
		})
	}
}
