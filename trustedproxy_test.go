package wssec

// Regression tests for issue 12: a client behind a trusted proxy must not
// choose its own address, scheme or host. The real-proxy versions of the
// spoofing tests (nginx and HAProxy as child processes) are in
// proxy_test.go; these drive the Guard directly, with the loopback peer
// 127.0.0.1 playing the trusted proxy.

import (
	"net/http"
	"strings"
	"testing"
)

// TestProxySpoof_ForwardedBesideXFF: a proxy that writes X-Forwarded-For
// passes the client's own Forwarded header through. It must not choose
// the address that limits, bans and tickets key on.
func TestProxySpoof_ForwardedBesideXFF(t *testing.T) {
	f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithConnLimits(1, 8, 100), WithTrustedProxies("127.0.0.1/32"))
	tok := mint(t, claims{})
	h := bearer(f.origin, tok)
	h.Set("X-Forwarded-For", "203.0.113.1") // what the proxy wrote
	h.Set("Forwarded", "for=6.6.6.6;proto=https")
	c := wantAccepted(t, f, f.try(h))
	if got := c.RemoteIP(); got != "203.0.113.1" {
		t.Fatalf("RemoteIP %q; want 203.0.113.1 from X-Forwarded-For, not the client's Forwarded", got)
	}
	for _, spoof := range []string{"for=6.6.6.7", `for="[2001:db8::66]"`, "for=6.6.6.8;proto=https"} {
		h.Set("Forwarded", spoof)
		wantRefused(t, f, f.try(h), 429, "quota_ip")
	}
	h.Del("Forwarded")
	h.Set("X-Real-IP", "6.6.6.9")
	wantRefused(t, f, f.try(h), 429, "quota_ip")
}

// TestProxySpoof_ForwardedProtoOverPlainListener: a client-sent
// "Forwarded: proto=https" through a proxy's plain-HTTP listener (which
// wrote X-Forwarded-Proto: http) must not pass the TLS requirement.
func TestProxySpoof_ForwardedProtoOverPlainListener(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey), WithTrustedProxies("127.0.0.1/32"))
	for _, spoof := range []http.Header{
		hdr("X-Forwarded-For", "203.0.113.1", "X-Forwarded-Proto", "http", "Forwarded", "for=203.0.113.1;proto=https"),
		hdr("X-Forwarded-For", "203.0.113.1", "Forwarded", "for=203.0.113.1;proto=https"),
		hdr("Forwarded", "proto=https"),
	} {
		h := bearer("https://"+f.host(), mint(t, claims{}))
		for k, v := range spoof {
			h[k] = v
		}
		wantRefused(t, f, f.try(h), 426, "transport_insecure")
	}
	ev, _ := f.events.last(EventHandshakeRefused)
	if !strings.Contains(ev.Detail, "ignored Forwarded") {
		t.Fatalf("426 detail %q does not say Forwarded was ignored", ev.Detail)
	}
}

// TestForwardedFault_400Not426: a forwarding-header fault from a trusted
// proxy is a 400 with its own reason, never the misleading "TLS required".
func TestForwardedFault_400Not426(t *testing.T) {
	t.Run("X-Forwarded-For", func(t *testing.T) {
		f := newFixture(t, nil, WithHMACKey(testKey), WithTrustedProxies("127.0.0.1/32"))
		h := bearer("https://"+f.host(), mint(t, claims{}))
		h.Set("X-Forwarded-For", "not-an-address")
		h.Set("X-Forwarded-Proto", "https")
		wantRefused(t, f, f.try(h), 400, "forwarded_malformed")
	})
	t.Run("Forwarded without for=", func(t *testing.T) {
		f := newFixture(t, nil, WithHMACKey(testKey), WithTrustedProxies("127.0.0.1/32"), WithClientIPHeader("Forwarded"))
		h := bearer("https://"+f.host(), mint(t, claims{}))
		h.Set("Forwarded", "proto=https")
		wantRefused(t, f, f.try(h), 400, "forwarded_malformed")
	})
	t.Run("X-Forwarded-Proto not a scheme", func(t *testing.T) {
		f := newFixture(t, nil, WithHMACKey(testKey), WithTrustedProxies("127.0.0.1/32"))
		h := bearer("https://"+f.host(), mint(t, claims{}))
		h.Set("X-Forwarded-For", "203.0.113.1")
		h.Set("X-Forwarded-Proto", "gopher")
		wantRefused(t, f, f.try(h), 400, "forwarded_malformed")
	})
}

// TestTransport_426HintsMissingTrustedProxies: a client that did use
// wss:// through a proxy the Guard does not trust gets 426; the log says
// forwarding headers arrived from an untrusted peer.
func TestTransport_426HintsMissingTrustedProxies(t *testing.T) {
	f := newFixture(t, nil, WithHMACKey(testKey))
	h := bearer("https://"+f.host(), mint(t, claims{}))
	h.Set("X-Forwarded-For", "203.0.113.1")
	h.Set("X-Forwarded-Proto", "https")
	wantRefused(t, f, f.try(h), 426, "transport_insecure")
	ev, _ := f.events.last(EventHandshakeRefused)
	if !strings.Contains(ev.Detail, "WithTrustedProxies") || !strings.Contains(ev.Detail, "X-Forwarded-Proto") {
		t.Fatalf("426 detail %q; want a hint naming the headers and WithTrustedProxies", ev.Detail)
	}
	if strings.Contains(ev.Detail, "203.0.113.1") {
		t.Fatalf("426 detail %q echoes a header value", ev.Detail)
	}
	if rec := lastLogged(t, f.logs, EventHandshakeRefused); !strings.Contains(rec["detail"].(string), "WithTrustedProxies") {
		t.Fatalf("logged detail %v", rec["detail"])
	}

	// No forwarding headers: no hint.
	wantRefused(t, f, f.try(bearer("https://"+f.host(), mint(t, claims{}))), 426, "transport_insecure")
	if ev, _ := f.events.last(EventHandshakeRefused); strings.Contains(ev.Detail, "WithTrustedProxies") {
		t.Fatalf("426 detail %q hints without forwarding headers", ev.Detail)
	}
}

// TestTrustedProxies_RefusesEverything: trusting every address lets every
// client choose its address and scheme; New refuses it, and warns for
// ranges that hold public addresses.
func TestTrustedProxies_RefusesEverything(t *testing.T) {
	for _, all := range []string{"0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96", "1.2.3.4/0"} {
		ce := wantConfigError(t, "WithTrustedProxies", WithAnonymous(), WithTrustedProxies("10.0.0.0/8", all))
		if !strings.Contains(ce.Reason, "every") {
			t.Errorf("%s: reason %q", all, ce.Reason)
		}
	}
	var rec recorder
	g, err := New(quiet(), WithAnonymous(), WithObserver(&rec), WithTrustedProxies("10.0.0.0/8", "fd00::/8", "127.0.0.1", "203.0.113.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	var warned []string
	for _, e := range rec.all() {
		if e.Kind == EventConfigWarning && e.Reason == "trusted_proxies_public" {
			warned = append(warned, e.Detail)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "203.0.113.0/24") {
		t.Fatalf("public-range warnings %q; want one for 203.0.113.0/24", warned)
	}
}

func TestWithClientIPHeader_Config(t *testing.T) {
	for _, name := range []string{"", "X-Client-IP", "X-Forwarded-Proto", "X Real IP"} {
		wantConfigError(t, "WithClientIPHeader", WithAnonymous(), WithTrustedProxies("127.0.0.1"), WithClientIPHeader(name))
	}
	for _, name := range []string{"x-forwarded-for", "Forwarded", "X-Real-IP", "cf-connecting-ip", "True-Client-IP", "Fastly-Client-IP"} {
		g, err := New(quiet(), WithAnonymous(), WithTrustedProxies("127.0.0.1"), WithClientIPHeader(name))
		if err != nil {
			t.Fatalf("WithClientIPHeader(%q): %v", name, err)
		}
		g.Close()
	}
}

// TestClientIPHeader_OnlyTheConfiguredOne: with each header chosen, the
// address comes from it and every other forwarding header is ignored.
func TestClientIPHeader_OnlyTheConfiguredOne(t *testing.T) {
	all := hdr("X-Forwarded-For", "203.0.113.1", "Forwarded", `for="[2001:db8::2]";proto=http`,
		"X-Real-IP", "203.0.113.3", "CF-Connecting-IP", "203.0.113.4", "X-Forwarded-Proto", "http")
	for name, want := range map[string]string{
		"X-Forwarded-For": "203.0.113.1", "Forwarded": "2001:db8::2", "X-Real-IP": "203.0.113.3", "CF-Connecting-IP": "203.0.113.4",
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithTrustedProxies("127.0.0.1/32"), WithClientIPHeader(name))
			h := bearer(f.origin, mint(t, claims{}))
			for k, v := range all {
				h[k] = v
			}
			if got := wantAccepted(t, f, f.try(h)).RemoteIP(); got != want {
				t.Fatalf("RemoteIP %q; want %s", got, want)
			}
		})
	}
}

// TestDNSRebinding_SameOriginOverPlainTransport: a page on the attacker's
// name, re-pointed at a plain ws:// service, sends a Host and an Origin
// that agree. Same-origin alone would admit it.
func TestDNSRebinding_SameOriginOverPlainTransport(t *testing.T) {
	tok := mint(t, claims{})
	rebound := func(f *fixture, name string) http.Header {
		_, port, _ := strings.Cut(f.host(), ":")
		h := bearer("http://"+name+":"+port, tok)
		h.Set("Host", name+":"+port)
		return h
	}
	named := func(name string) http.Header {
		h := bearer("http://"+name, tok)
		h.Set("Host", name)
		return h
	}
	t.Run("DNS name refused", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
		a := f.try(rebound(f, "rebind.attacker.example"))
		wantRefused(t, f, a, 403, "host_not_allowed")
		if strings.Contains(a.body, "attacker") {
			t.Fatalf("refusal body %q echoes the Host", a.body)
		}
		wantRefused(t, f, f.try(named("rebind.attacker.example:8080")), 403, "host_not_allowed")
		wantRefused(t, f, f.try(named("127.0.0.1.nip.io:8080")), 403, "host_not_allowed")
	})
	t.Run("IP literal and localhost accepted", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey))
		wantAccepted(t, f, f.try(bearer(f.origin, tok))) // 127.0.0.1:port
		wantAccepted(t, f, f.try(rebound(f, "localhost")))
		wantAccepted(t, f, f.try(rebound(f, "LocalHost")))
		wantAccepted(t, f, f.try(named("[::1]:8080")))
	})
	t.Run("WithHosts admits the listed names only", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithHosts("dev.example.test:8080"))
		wantAccepted(t, f, f.try(named("dev.example.test:8080")))
		wantRefused(t, f, f.try(named("dev.example.test:8081")), 403, "host_not_allowed")
		wantRefused(t, f, f.try(named("rebind.attacker.example:8080")), 403, "host_not_allowed")
		// Once WithHosts is set, IP literals need listing too.
		wantRefused(t, f, f.try(bearer(f.origin, tok)), 403, "host_not_allowed")
	})
	t.Run("an allowlisted Origin is unchanged", func(t *testing.T) {
		f := newFixture(t, nil, WithInsecureTransport(), WithHMACKey(testKey), WithOrigins("http://app.example.test:8080"))
		h := bearer("http://app.example.test:8080", tok)
		h.Set("Host", "app.example.test:8080")
		wantAccepted(t, f, f.try(h))
	})
}

// TestDNSRebinding_WithHostsOverTLS: WithHosts checks Host over TLS too;
// without it, TLS alone is unchanged (the certificate names the service).
func TestDNSRebinding_WithHostsOverTLS(t *testing.T) {
	tok := mint(t, claims{})
	f, d := startFixture(t, true, nil, WithHMACKey(testKey), WithHosts("app.example.test"))
	h := bearer("https://app.example.test", tok)
	h.Set("Host", "app.example.test")
	wantAccepted(t, f, f.tryWith(d, h))
	h = bearer("https://rebind.attacker.example", tok)
	h.Set("Host", "rebind.attacker.example")
	wantRefused(t, f, f.tryWith(d, h), 403, "host_not_allowed")
	h.Set("Host", "app.example.test:8443")
	h.Set("Origin", "https://app.example.test:8443")
	wantRefused(t, f, f.tryWith(d, h), 403, "host_not_allowed")

	f2, d2 := startFixture(t, true, nil, WithHMACKey(testKey))
	h = bearer("https://rebind.attacker.example", tok)
	h.Set("Host", "rebind.attacker.example")
	wantAccepted(t, f2, f2.tryWith(d2, h))
}

func TestWithHosts_Config(t *testing.T) {
	wantConfigError(t, "WithHosts", WithAnonymous(), WithHosts())
	for _, bad := range []string{"", "*", "example.com/", "example.com.", "ftp://example.com", "example.com:0", "2001:db8::1"} {
		wantConfigError(t, "WithHosts", WithAnonymous(), WithHosts("ok.example", bad))
	}
}
