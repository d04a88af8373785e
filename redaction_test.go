package wssec

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRedaction_JWKSQueryNeverLogged: a JWKS URL's query (often an API
// key) once reached New's error and the jwks_refresh_failed events,
// because net/http's *url.Error repeats the whole URL. No event, log line
// or error may carry it.
func TestRedaction_JWKSQueryNeverLogged(t *testing.T) {
	const secret = "sk_live_9f2Qe7"
	noSecret := func(t *testing.T, what, s string) {
		t.Helper()
		if strings.Contains(s, secret) || strings.Contains(s, "api_key") {
			t.Fatalf("%s carries the URL's query: %s", what, s)
		}
	}
	t.Run("New, transport error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL + "/jwks?api_key=" + secret
		srv.Close() // connection refused: a *url.Error from net/http
		_, err := New(WithJWKS(url), WithInsecureTransport())
		if err == nil {
			t.Fatal("New accepted an unreachable JWKS")
		}
		noSecret(t, "New's error", err.Error())
		if !strings.Contains(err.Error(), "/jwks") {
			t.Fatalf("the error no longer says which URL failed: %v", err)
		}
	})
	t.Run("New, refused redirect", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://localhost:1/elsewhere?api_key="+secret+"&x=1", http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		_, err := New(WithJWKS(srv.URL+"/jwks?api_key="+secret), WithInsecureTransport())
		if err == nil {
			t.Fatal("New followed a cross-host redirect")
		}
		noSecret(t, "New's error", err.Error())
	})
	t.Run("refresh failure event and log", func(t *testing.T) {
		js := newJWKSServer(t)
		js.addKey(t, "k1")
		logs, events := &logBuffer{}, &recorder{}
		g, err := New(WithJWKS(js.srv.URL+"/jwks?api_key="+secret), WithInsecureTransport(),
			WithLogger(slog.New(slog.NewJSONHandler(logs, nil))), WithObserver(events))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { g.Close() })
		js.srv.CloseClientConnections()
		js.srv.Close() // the next fetch fails in net/http
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = g.ver.dyn.f.Refresh(ctx)
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Refresh: %v, want a fetch error", err)
		}
		noSecret(t, "the refresh error", err.Error())
		eventually(t, "a jwks_refresh_failed event", func() bool { return events.has(EventConfigWarning, "jwks_refresh_failed") })
		events.mu.Lock()
		for _, e := range events.events {
			noSecret(t, "event "+e.Reason, e.Detail+" "+e.Reason)
		}
		events.mu.Unlock()
		noSecret(t, "the log", logs.String())
		if !strings.Contains(logs.String(), "jwks_refresh_failed") {
			t.Fatalf("the failure was not logged: %s", logs.String())
		}
	})
}

func TestScrubURL(t *testing.T) {
	raw := "https://auth.example.com/jwks?api_key=s%2Fecret&v=2"
	for _, msg := range []string{
		`Get "` + raw + `": dial tcp: connection refused`,
		`Get "https://auth.example.com/jwks?api_key=s%2Fecret&v=2": EOF`,
		`query api_key=s%2Fecret&v=2 refused`,
	} {
		if got := scrubURL(msg, raw); strings.Contains(got, "ecret") {
			t.Errorf("scrubURL(%q) = %q", msg, got)
		}
	}
}
