package wssec

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// channelPatternCases are the compileRule table, and seeds of
// FuzzChannelMatch.
var channelPatternCases = []struct {
	pattern string
	ok      bool
}{
	{"tenant:{tenant}:orders", true},
	{"tenant:{tenant}:*", true},
	{"user:{sub}:inbox", true},
	{"room:{*}", true},
	{"room:{*}:{*}", true},
	{"tenant:{tenant}:user:{sub}", true},
	{"*", true},
	{"news", true},
	{"a.b-c_d:e!f~", true},
	{strings.Repeat("a:", 15) + "a", true}, // 16 segments
	{strings.Repeat("a:", 16) + "a", false},
	{"", false},
	{":", false},
	{"tenant:", false},        // trailing colon
	{":tenant", false},        // leading colon
	{"tenant::orders", false}, // empty segment
	{"a:*:b", false},          // "*" only last
	{"*:a", false},
	{"a:**", false},
	{"a:b*", false},
	{"a:{tenant}x", false},
	{"a:{tenant", false},
	{"a:{x}", false},
	{"a:{}", false},
	{"a:{TENANT}", false},
	{"a b", false},
	{"a:\tb", false},
	{"café", false},
	{"a:\x7f", false},
}

func TestCompileRule(t *testing.T) {
	for _, tc := range channelPatternCases {
		_, err := compileRule(ChannelRule{Pattern: tc.pattern})
		if (err == nil) != tc.ok {
			t.Errorf("compileRule(%q): %v, want ok=%v", tc.pattern, err, tc.ok)
		}
	}
}

// channelMatchCases: pattern, channel, principal's tenant and subject.
var channelMatchCases = []struct {
	pattern, channel, tenant, sub string
	want                          bool
}{
	{"tenant:{tenant}:*", "tenant:acme:orders", "acme", "alice", true},
	{"tenant:{tenant}:*", "tenant:acme:orders:eu", "acme", "alice", true},
	{"tenant:{tenant}:*", "tenant:acme", "acme", "alice", false},    // * needs a segment
	{"tenant:{tenant}:*", "tenant:acme:", "acme", "alice", false},   // trailing colon
	{"tenant:{tenant}:*", "tenant:acme::x", "acme", "alice", false}, // empty segment
	{"tenant:{tenant}:*", "tenant:acme:x:", "acme", "alice", false},
	{"tenant:{tenant}:*", "tenant:globex:orders", "acme", "alice", false},
	{"tenant:{tenant}:*", "tenant:ACME:orders", "acme", "alice", false},
	{"tenant:{tenant}:*", "tenant:acmeX:orders", "acme", "alice", false},
	{"tenant:{tenant}:*", "tenant::orders", "", "alice", false}, // no tenant
	{"tenant:{tenant}:*", "tenant:acme:orders", "", "alice", false},
	{"tenant:{tenant}:*", "tenant:acme:orders", "acme:orders", "alice", false}, // a tenant with a colon
	{"tenant:{tenant}:*", "tenant:acme:orders:x", "acme:orders", "alice", false},
	{"tenant:{tenant}:orders", "tenant:acme:orders", "acme", "", true},
	{"tenant:{tenant}:orders", "tenant:acme:orders:x", "acme", "", false},
	{"tenant:{tenant}:orders", "tenant:acme:order", "acme", "", false},
	{"tenant:{tenant}:orders", "x:tenant:acme:orders", "acme", "", false},
	{"user:{sub}:inbox", "user:alice:inbox", "", "alice", true},
	{"user:{sub}:inbox", "user:bob:inbox", "", "alice", false},
	{"user:{sub}:inbox", "user::inbox", "", "", false},
	{"user:{sub}:inbox", "user:alice:inbox", "", "", false},
	{"tenant:{tenant}:user:{sub}", "tenant:acme:user:alice", "acme", "alice", true},
	{"tenant:{tenant}:user:{sub}", "tenant:acme:user:bob", "acme", "alice", false},
	{"tenant:{tenant}:user:{sub}", "tenant:globex:user:alice", "acme", "alice", false},
	{"room:{*}", "room:lobby", "", "", true},
	{"room:{*}", "room:lobby:x", "", "", false},
	{"room:{*}", "room:", "", "", false},
	{"room:{*}", "room", "", "", false},
	{"room:{*}:{*}", "room:a:b", "", "", true},
	{"*", "a", "", "", true},
	{"*", "a:b:c", "", "", true},
	{"*", "", "", "", false},
	{"*", ":", "", "", false},
	{"*", "a:", "", "", false},
	{"news", "news", "", "", true},
	{"news", "new", "", "", false},
	{"news", "newsx", "", "", false},
	{"news", "news:x", "", "", false},
	{"news", "", "", "", false},
}

func TestChannelMatch(t *testing.T) {
	for _, tc := range channelMatchCases {
		cr, err := compileRule(ChannelRule{Pattern: tc.pattern})
		if err != nil {
			t.Fatalf("compileRule(%q): %v", tc.pattern, err)
		}
		p := &Principal{Tenant: tc.tenant, Subject: tc.sub}
		if got := cr.match(tc.channel, p); got != tc.want {
			t.Errorf("%q matching %q for tenant %q sub %q: %v, want %v", tc.pattern, tc.channel, tc.tenant, tc.sub, got, tc.want)
		}
		if got := refMatch(tc.pattern, tc.channel, p); got != tc.want {
			t.Errorf("reference matcher disagrees with the table on %q / %q", tc.pattern, tc.channel)
		}
	}
}

// TestChannelMatch_NilPrincipal: no principal matches no {tenant} or
// {sub} segment, but literal patterns still match.
func TestChannelMatch_NilPrincipal(t *testing.T) {
	for _, tc := range []struct {
		pattern, channel string
		want             bool
	}{
		{"tenant:{tenant}:orders", "tenant::orders", false},
		{"tenant:{tenant}:orders", "tenant:x:orders", false},
		{"user:{sub}", "user:x", false},
		{"public:*", "public:x", true},
	} {
		cr, err := compileRule(ChannelRule{Pattern: tc.pattern})
		if err != nil {
			t.Fatal(err)
		}
		if got := cr.match(tc.channel, nil); got != tc.want {
			t.Errorf("%q / %q with no principal: %v", tc.pattern, tc.channel, got)
		}
	}
}

// TestChannelMatch_NoAlloc: matching is on the message path.
func TestChannelMatch_NoAlloc(t *testing.T) {
	cr, err := compileRule(ChannelRule{Pattern: "tenant:{tenant}:user:{sub}:*"})
	if err != nil {
		t.Fatal(err)
	}
	p := &Principal{Tenant: "acme", Subject: "alice"}
	if n := testing.AllocsPerRun(100, func() { cr.match("tenant:acme:user:alice:a:b", p) }); n != 0 {
		t.Fatalf("match allocates %v times", n)
	}
}

// refMatch is an independent, obviously correct matcher: split both on
// ":" and compare segment by segment.
func refMatch(pattern, channel string, p *Principal) bool {
	ps := strings.Split(pattern, ":")
	cs := strings.Split(channel, ":")
	for _, c := range cs {
		if c == "" {
			return false
		}
	}
	for i, seg := range ps {
		if seg == "*" && i == len(ps)-1 {
			return len(cs) > i
		}
		if i >= len(cs) {
			return false
		}
		switch seg {
		case "{tenant}":
			if p == nil || p.Tenant == "" || cs[i] != p.Tenant {
				return false
			}
		case "{sub}":
			if p == nil || p.Subject == "" || cs[i] != p.Subject {
				return false
			}
		case "{*}":
		default:
			if cs[i] != seg {
				return false
			}
		}
	}
	return len(cs) == len(ps)
}

func TestAuthorizeChannel(t *testing.T) {
	rules := []ChannelRule{
		{Pattern: "tenant:{tenant}:orders", Read: "orders:read", Write: "orders:write"},
		{Pattern: "tenant:{tenant}:*", Read: "tenant:read"}, // writes need no scope
		{Pattern: "public:*"},
		{Pattern: "public:locked", Read: "never"}, // shadowed by public:*
	}
	mr := &messageRules{}
	for _, r := range rules {
		cr, err := compileRule(r)
		if err != nil {
			t.Fatal(err)
		}
		mr.rules = append(mr.rules, cr)
	}
	acme := func(scopes ...string) *Principal {
		return &Principal{Subject: "alice", Tenant: "acme", Scopes: scopes}
	}
	for _, tc := range []struct {
		channel, action string
		p               *Principal
		allowed         bool
	}{
		{"tenant:acme:orders", "subscribe", acme("orders:read"), true},
		{"tenant:acme:orders", "unsubscribe", acme("orders:read"), true},
		{"tenant:acme:orders", "subscribe", acme("orders:write"), false},
		{"tenant:acme:orders", "publish", acme("orders:read"), false},
		{"tenant:acme:orders", "publish", acme("orders:write"), true},
		{"tenant:acme:orders", "delete", acme("orders:write"), true},  // any non-read action needs Write
		{"tenant:acme:orders", "publish", acme("tenant:read"), false}, // first matching rule decides
		{"tenant:globex:orders", "subscribe", acme("orders:read", "tenant:read"), false},
		{"tenant:acme:chat", "subscribe", acme("tenant:read"), true},
		{"tenant:acme:chat", "subscribe", acme(), false},
		{"tenant:acme:chat", "publish", acme(), true}, // empty Write scope
		{"public:news", "subscribe", nil, true},
		{"public:locked", "subscribe", acme(), true},
		{"private:x", "subscribe", acme("orders:read", "orders:write", "tenant:read"), false},
		{"tenant:acme:orders", "subscribe", nil, false},
		{"tenant:acme:orders", "subscribe", &Principal{Subject: "alice", Scopes: []string{"orders:read"}}, false},
	} {
		_, why := mr.authorizeChannel(tc.channel, tc.action, tc.p)
		if (why == "") != tc.allowed {
			t.Errorf("%s on %q by %+v: %q, want allowed=%v", tc.action, tc.channel, tc.p, why, tc.allowed)
		}
	}
	// No rules: every channel is denied.
	if _, why := (&messageRules{}).authorizeChannel("public:x", "subscribe", acme()); why == "" {
		t.Error("a channel was allowed without any rule")
	}
}

// TestNew_RefusesBadChannelPatterns: every bad pattern is a configuration
// error from New, reported together.
func TestNew_RefusesBadChannelPatterns(t *testing.T) {
	var rules []ChannelRule
	var bad []string
	for _, tc := range channelPatternCases {
		rules = append(rules, ChannelRule{Pattern: tc.pattern, Read: "r"})
		if !tc.ok {
			bad = append(bad, tc.pattern)
		}
	}
	_, err := New(WithHMACKey(testKey), WithLogger(slog.New(slog.DiscardHandler)), WithChannelRules(rules...))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("New: %v, want ErrConfig", err)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Option != "WithChannelRules" {
		t.Fatalf("not a WithChannelRules ConfigError: %v", err)
	}
	if n := strings.Count(err.Error(), "WithChannelRules("); n != len(bad) {
		t.Fatalf("%d pattern errors, want %d:\n%v", n, len(bad), err)
	}
	for _, tc := range channelPatternCases {
		if !tc.ok {
			continue
		}
		g, err := New(WithHMACKey(testKey), WithLogger(slog.New(slog.DiscardHandler)), WithChannelRules(ChannelRule{Pattern: tc.pattern}))
		if err != nil {
			t.Errorf("New with %q: %v", tc.pattern, err)
			continue
		}
		g.Close()
	}
}

func TestPrincipalFrom(t *testing.T) {
	if _, ok := PrincipalFrom(context.Background()); ok {
		t.Fatal("a principal in an empty context")
	}
	if _, ok := PrincipalFrom(context.WithValue(context.Background(), principalKey{}, (*Principal)(nil))); ok {
		t.Fatal("a nil principal reported")
	}
	p := &Principal{Subject: "alice", Scopes: []string{"a"}, Roles: []string{"admin"}}
	got, ok := PrincipalFrom(context.WithValue(context.Background(), principalKey{}, p))
	if !ok || got != p || !got.HasScope("a") || got.HasScope("b") || !got.HasRole("admin") || got.HasRole("a") {
		t.Fatalf("PrincipalFrom: %+v %v", got, ok)
	}
	var nilP *Principal
	if nilP.HasScope("a") || nilP.HasRole("a") {
		t.Fatal("a nil principal holds a scope")
	}
}

// FuzzChannelMatch checks compiled patterns against the reference
// matcher: no panic, the same answer, and a match implies that the
// {tenant} (and {sub}) segment equals the principal's.
func FuzzChannelMatch(f *testing.F) {
	for _, tc := range channelMatchCases {
		f.Add(tc.pattern, tc.channel, tc.tenant, tc.sub)
	}
	for _, tc := range channelPatternCases {
		f.Add(tc.pattern, "tenant:acme:orders", "acme", "alice")
	}
	f.Fuzz(func(t *testing.T, pattern, channel, tenant, sub string) {
		cr, err := compileRule(ChannelRule{Pattern: pattern})
		if err != nil {
			return
		}
		p := &Principal{Tenant: tenant, Subject: sub}
		got := cr.match(channel, p)
		if want := refMatch(pattern, channel, p); got != want {
			t.Fatalf("%q matching %q (tenant %q, sub %q): %v, reference %v", pattern, channel, tenant, sub, got, want)
		}
		if !got {
			return
		}
		cs := strings.Split(channel, ":")
		for i, s := range cr.segs {
			switch s.kind {
			case segTenant:
				if tenant == "" || cs[i] != tenant {
					t.Fatalf("%q matched %q: segment %d is %q, tenant %q", pattern, channel, i, cs[i], tenant)
				}
			case segSubject:
				if sub == "" || cs[i] != sub {
					t.Fatalf("%q matched %q: segment %d is %q, subject %q", pattern, channel, i, cs[i], sub)
				}
			}
		}
		for _, s := range cr.segs {
			if (s.kind == segTenant || s.kind == segSubject) && cr.match(channel, nil) {
				t.Fatalf("%q matched %q with no principal", pattern, channel)
			}
		}
	})
}
