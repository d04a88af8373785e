package probe

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// spoofHeaders are the client-sent headers that choose an address.
var spoofHeaders = []string{"X-Forwarded-For", "Forwarded", "X-Real-IP", "True-Client-IP", "CF-Connecting-IP"}

// spoofAddr is the i-th made-up client address (documentation ranges).
func spoofAddr(i int) string {
	if i < 250 {
		return fmt.Sprintf("198.51.100.%d", i+1)
	}
	return fmt.Sprintf("203.0.113.%d", i%250+1)
}

func spoofHeader(name string, i int) http.Header {
	a := spoofAddr(i)
	h := http.Header{"X-Forwarded-Proto": {"https"}}
	switch name {
	case "Forwarded":
		h.Set(name, "for="+a+";proto=https")
	default:
		h.Set(name, a)
	}
	return h
}

func spoofAll(i int) http.Header {
	h := http.Header{}
	for _, name := range spoofHeaders {
		for k, v := range spoofHeader(name, i) {
			h[k] = v
		}
	}
	return h
}

// filled is how a run of sockets from one source ended.
type filled struct {
	open   int    // sockets upgraded before the run ended
	status int    // the HTTP status that refused the next socket; 0 when none did
	reason string // why the run ended, for evidence; "" when MaxSockets were all upgraded
	budget bool   // the budget ran out before the run ended by itself
}

// refused reports whether the run ended with an HTTP refusal, the only
// end that says something about the endpoint's limits.
func (f filled) refused() bool { return f.status != 0 }

// fill opens sockets one after the other, holding each, until one is
// refused, a handshake fails, the budget is spent or MaxSockets are open;
// then closes them all.
func (p *prober) fill(ctx context.Context, header func(i int) http.Header) filled {
	var open []*wsConn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < p.cfg.MaxSockets; i++ {
		if ctx.Err() != nil {
			return filled{open: len(open), reason: "budget spent", budget: true}
		}
		spec := p.legit()
		if n := len(p.cfg.MoreTokens); n > 0 && spec.token != "" {
			if k := i % (n + 1); k > 0 {
				spec.token = p.cfg.MoreTokens[k-1]
			}
		}
		if header != nil {
			spec.header = header(i)
		}
		c, err := p.handshake(ctx, spec)
		if err != nil {
			if ctx.Err() != nil {
				return filled{open: len(open), reason: "budget spent", budget: true}
			}
			return filled{open: len(open), reason: err.Error()}
		}
		if !c.upgraded() {
			return filled{open: len(open), status: c.status, reason: c.statusText()}
		}
		open = append(open, c)
	}
	return filled{open: len(open)}
}

// fillSlack is how many more sockets a spoofed fill may open than the
// plain one and still count as held by the same limit. One: a fill starts
// right after the probe closed a socket (Run's first handshake, or
// recovered's), which the endpoint may not yet have seen close, so the
// plain fill can come up one short; and a handshake rate limit refills
// while a fill runs, by an amount that varies with scheduling. The price
// is that a per-address limit of N that believes the client, behind a
// total cap of N+1, is not caught.
const fillSlack = 1

// moved reports whether a fill with spoofed headers got past the limit
// that refused the plain fill: more than fillSlack sockets beyond it,
// however the spoofed fill then ended.
func moved(plain, spoofed filled) bool {
	return spoofed.open > plain.open+fillSlack
}

// recovered waits until a plain legitimate handshake upgrades again
// (limits released after closing the sockets), 30 s at most.
func (p *prober) recovered(ctx context.Context) bool {
	end := time.Now().Add(p.remaining(30 * time.Second))
	for time.Now().Before(end) {
		c, err := p.handshake(ctx, p.legit())
		if err == nil {
			c.Close()
			if c.upgraded() {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
	return false
}

// checkForwarding: the endpoint's own per-IP limit, reached from one
// address without and then with a different spoofed address on every
// socket. It passes only when the spoofed fill is refused by an HTTP
// status after no more sockets than the plain one (within fillSlack): a
// limit that bites only without the spoofed headers, or only later (a
// total cap behind a per-address limit that believes the client), is a
// fail; a spoofed fill cut short by the budget or a network error says
// nothing and is n/a.
func (p *prober) checkForwarding(ctx context.Context) {
	const g, check = "forwarding", "client-address"
	plain := p.fill(ctx, nil)
	if plain.reason == "" {
		p.add(g, check, NA, "no refusal within %d sockets from one address (-max-sockets): no per-address limit to test spoofing against", p.cfg.MaxSockets)
		return
	}
	if plain.budget {
		p.add(g, check, NA, "budget spent after %d sockets from one address, before any refusal", plain.open)
		return
	}
	if !p.recovered(ctx) {
		p.add(g, check, NA, "refused after %d sockets (%s), and still refused 30 s after closing them", plain.open, plain.reason)
		return
	}
	spoofed := p.fill(ctx, spoofAll)
	all := strings.Join(spoofHeaders, ", ")
	if !moved(plain, spoofed) {
		switch {
		case spoofed.budget:
			p.add(g, check, NA, "from one address the limit bites after %d sockets (%s); the budget was spent after %d with a different %s on each, before any refusal",
				plain.open, plain.reason, spoofed.open, all)
		case spoofed.reason == "":
			p.add(g, check, NA, "from one address the limit bites after %d sockets (%s); all %d opened with a different %s on each, too few more to tell (raise -max-sockets)",
				plain.open, plain.reason, spoofed.open, all)
		case !spoofed.refused():
			p.add(g, check, NA, "from one address the limit bites after %d sockets (%s); with a different %s on each, socket %d failed without an HTTP answer (%s)",
				plain.open, plain.reason, all, spoofed.open+1, spoofed.reason)
		default:
			note := ""
			if p.cfg.Token != "" && len(p.cfg.MoreTokens) == 0 {
				note = " (one user's token: a per-user limit may be what bites; give tokens of other users with -token-file)"
			}
			p.add(g, check, Pass, "from one address the limit bites after %d sockets (%s) and still after %d with a different %s on each (%s)%s",
				plain.open, plain.reason, spoofed.open, all, spoofed.reason, note)
		}
		return
	}
	// Which header moved the client's address?
	var guilty []string
	for _, name := range spoofHeaders {
		if !p.recovered(ctx) {
			break
		}
		if f := p.fill(ctx, func(i int) http.Header { return spoofHeader(name, i) }); moved(plain, f) {
			guilty = append(guilty, name)
		}
	}
	which := strings.Join(guilty, ", ")
	if which == "" {
		which = "the headers together: " + all
	}
	var later string
	switch {
	case spoofed.reason == "":
	case spoofed.budget:
		later = " before the budget was spent"
	case spoofed.refused():
		later = fmt.Sprintf(" before another limit refused (%s)", spoofed.reason)
	default:
		later = fmt.Sprintf(" before socket %d failed without an HTTP answer (%s)", spoofed.open+1, spoofed.reason)
	}
	p.add(g, check, Fail, "from one address the limit bites after %d sockets (%s), but %d opened with a different client-sent %s on each%s: the endpoint believes the client about its address",
		plain.open, plain.reason, spoofed.open, which, later)
}
