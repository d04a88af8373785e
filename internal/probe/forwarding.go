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
	open   int    // sockets upgraded before the first refusal
	reason string // the refusal, or "" when MaxSockets were all upgraded
}

// fill opens sockets one after the other, holding each, until one is
// refused or MaxSockets are open; then closes them all.
func (p *prober) fill(ctx context.Context, header func(i int) http.Header) filled {
	var open []*wsConn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < p.cfg.MaxSockets; i++ {
		if ctx.Err() != nil {
			return filled{open: len(open), reason: "budget spent"}
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
			return filled{open: len(open), reason: err.Error()}
		}
		if !c.upgraded() {
			return filled{open: len(open), reason: c.statusText()}
		}
		open = append(open, c)
	}
	return filled{open: len(open)}
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
// socket. A limit that bites only without the spoofed headers is a fail.
func (p *prober) checkForwarding(ctx context.Context) {
	const g, check = "forwarding", "client-address"
	plain := p.fill(ctx, nil)
	if plain.reason == "" {
		p.add(g, check, NA, "no refusal within %d sockets from one address (-max-sockets): no per-address limit to test spoofing against", p.cfg.MaxSockets)
		return
	}
	if plain.reason == "budget spent" {
		p.add(g, check, NA, "budget spent")
		return
	}
	if !p.recovered(ctx) {
		p.add(g, check, NA, "refused after %d sockets (%s), and still refused 30 s after closing them", plain.open, plain.reason)
		return
	}
	spoofed := p.fill(ctx, spoofAll)
	if spoofed.reason != "" {
		note := ""
		if p.cfg.Token != "" && len(p.cfg.MoreTokens) == 0 {
			note = " (one user's token: a per-user limit may be what bites; give tokens of other users with -token-file)"
		}
		p.add(g, check, Pass, "from one address the limit bites after %d sockets (%s) and still after %d with a different %s on each (%s)%s",
			plain.open, plain.reason, spoofed.open, strings.Join(spoofHeaders, ", "), spoofed.reason, note)
		return
	}
	// Which header moved the client's address?
	var guilty []string
	for _, name := range spoofHeaders {
		if !p.recovered(ctx) {
			break
		}
		if f := p.fill(ctx, func(i int) http.Header { return spoofHeader(name, i) }); f.reason == "" {
			guilty = append(guilty, name)
		}
	}
	which := strings.Join(guilty, ", ")
	if which == "" {
		which = "the headers together: " + strings.Join(spoofHeaders, ", ")
	}
	p.add(g, check, Fail, "from one address the limit bites after %d sockets (%s), but %d opened with a different client-sent %s on each: the endpoint believes the client about its address",
		plain.open, plain.reason, p.cfg.MaxSockets, which)
}
