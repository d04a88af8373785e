package wssec

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/wssec/wssec/internal/limiter"
	"github.com/wssec/wssec/internal/ttlcache"
)

// BanPolicy bans a client IP or a subject that keeps being refused:
// Threshold refusals of one class (bad tokens, bad origins, rate and quota
// refusals, refused messages) within Window ban it for Duration. A banned
// client IP gets 429 before any other work (no origin parsing, no token
// decoding, no signature check); a banned subject gets 429 right after its
// token is verified. Capacity bounds how many clients are tracked and how
// many can be banned at once (default 65 536 each); when the ban list is
// full a new ban is not recorded, and an event says so.
type BanPolicy struct {
	Threshold int
	Window    time.Duration
	Duration  time.Duration
	Capacity  int
}

// WithBanPolicy turns automatic bans on. Default: off. Threshold, Window
// and Duration must be positive.
func WithBanPolicy(p BanPolicy) Option {
	return optionFunc(func(c *config) { c.ban = &p })
}

// banClass groups refusal reasons: a ban counts refusals of one class.
type banClass uint8

const (
	banNone banClass = iota
	banToken
	banOrigin
	banRate
	banMessage
	numBanClasses
)

var banClassNames = [numBanClasses]string{"", "token", "origin", "rate", "message"}

// classify maps a handshake refusal reason to its ban class.
func classify(reason string) banClass {
	switch {
	case strings.HasPrefix(reason, "token_"), strings.HasPrefix(reason, "ticket_"), reason == "authenticator":
		return banToken
	case strings.HasPrefix(reason, "origin_"):
		return banOrigin
	case reason == "handshake_rate", strings.HasPrefix(reason, "quota_"):
		return banRate
	}
	return banNone
}

// bans counts refusals per client and keeps the ban lists. Counting uses
// GCRA tables (a bucket of Threshold-1 refusals refilled over Window): the
// refusal that finds the bucket empty places the ban.
type bans struct {
	pol      BanPolicy
	byIP     [numBanClasses]*limiter.Table
	bySub    [numBanClasses]*limiter.Table
	ips      *ttlcache.Cache[netip.Addr, int64] // value: ban end, unix ns
	subjects *ttlcache.Cache[string, int64]
}

func newBans(p BanPolicy) (*bans, error) {
	if p.Capacity <= 0 {
		p.Capacity = 1 << 16
	}
	b := &bans{
		pol:      p,
		ips:      ttlcache.New[netip.Addr, int64](p.Capacity),
		subjects: ttlcache.New[string, int64](p.Capacity),
	}
	// A bucket of Threshold-1 refusals: the Threshold-th finds it empty and
	// places the ban (a threshold of 1 bans at the first refusal).
	g := limiter.NewGCRA(float64(p.Threshold)/p.Window.Seconds(), p.Threshold-1)
	for c := banToken; c < numBanClasses; c++ {
		var err error
		if b.byIP[c], err = limiter.NewTable(p.Capacity, g); err != nil {
			return nil, err
		}
		if b.bySub[c], err = limiter.NewTable(p.Capacity, g); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func validateBanPolicy(p *BanPolicy) []string {
	var bad []string
	if p.Threshold <= 0 {
		bad = append(bad, "Threshold must be positive")
	}
	if p.Window <= 0 {
		bad = append(bad, "Window must be positive")
	}
	if p.Duration <= 0 {
		bad = append(bad, "Duration must be positive")
	}
	return bad
}

// banned reports whether the client key is banned and for how long yet.
func (b *bans) ipBanned(key netip.Addr, now time.Time) (bool, time.Duration) {
	end, ok := b.ips.Get(key, now.UnixNano())
	if !ok {
		return false, 0
	}
	return true, time.Duration(end - now.UnixNano())
}

func (b *bans) subjectBanned(sub string, now time.Time) (bool, time.Duration) {
	if sub == "" {
		return false, 0
	}
	end, ok := b.subjects.Get(sub, now.UnixNano())
	if !ok {
		return false, 0
	}
	return true, time.Duration(end - now.UnixNano())
}

// record counts one refusal of class for the client key and the subject,
// and bans whichever crossed the threshold.
func (g *Guard) recordRefusal(ctx context.Context, class banClass, key netip.Addr, sub string) {
	b := g.bans
	if b == nil || class == banNone {
		return
	}
	now := g.now()
	n := now.UnixNano()
	end := now.Add(b.pol.Duration).UnixNano()
	if key.IsValid() {
		if ok, _ := b.byIP[class].Allow(limiter.KeyFromAddr(key), n); !ok {
			g.placeBan(ctx, b.ips.Add(key, end, end, n), Event{Kind: EventBanned, Reason: banClassNames[class], RemoteIP: key})
		}
	}
	if sub != "" {
		if ok, _ := b.bySub[class].Allow(limiter.KeyFromString(sub), n); !ok {
			g.placeBan(ctx, b.subjects.Add(sub, end, end, n), Event{Kind: EventBanned, Reason: banClassNames[class], Subject: sub})
		}
	}
}

func (g *Guard) placeBan(ctx context.Context, err error, ev Event) {
	switch {
	case err == nil:
		ev.Detail = fmt.Sprintf("banned for %s", g.bans.pol.Duration)
		g.emit(ctx, ev)
	case err == ttlcache.ErrExists: // already banned
	default:
		ev.Kind, ev.Detail = EventConfigWarning, "ban list full: "+err.Error()
		g.emit(ctx, ev)
	}
}

// banRefusal is the answer to a banned client.
func banRefusal(wait time.Duration) *refusal {
	ref := refuse(429, "banned", "too many refused attempts; retry later", ErrRateLimited, nil)
	ref.retryAfter = max(1, int(math.Ceil(wait.Seconds())))
	return ref
}

// GuardName names a guard that WithReportOnly can switch to report-only.
type GuardName string

// Guards that can run report-only. Token verification cannot: a client
// whose token failed has no principal to let through.
const (
	GuardTransport     GuardName = "transport"
	GuardOrigin        GuardName = "origin"
	GuardHandshakeRate GuardName = "handshake_rate"
	GuardQuota         GuardName = "quota"
	GuardBan           GuardName = "ban"
	GuardMessageRate   GuardName = "message_rate"
	GuardChannel       GuardName = "channel"
	GuardPolicy        GuardName = "policy"
)

var reportOnlyGuards = []GuardName{GuardTransport, GuardOrigin, GuardHandshakeRate, GuardQuota, GuardBan, GuardMessageRate, GuardChannel, GuardPolicy}

// WithReportOnly makes the named guards log and count what they would
// refuse (an EventReportOnly event, logged as "report_only") but let it
// through, so wssec can be rolled out on a live service without breaking
// clients. Default: every guard enforces. Repeated calls add guards; an
// unknown name, or the token guard, is a configuration error.
func WithReportOnly(guards ...GuardName) Option {
	return optionFunc(func(c *config) {
		if c.reportOnly == nil {
			c.reportOnly = make(map[GuardName]bool)
		}
		for _, gn := range guards {
			c.reportOnly[gn] = true
		}
	})
}

// enforce returns ref, unless its guard is report-only: then it records
// the would-be refusal and returns nil.
func (g *Guard) enforce(ctx context.Context, guard GuardName, ref *refusal, ev Event) *refusal {
	if ref == nil || !g.cfg.reportOnly[guard] {
		return ref
	}
	ev.Kind, ev.Reason, ev.Status = EventReportOnly, ref.reason, ref.status
	ev.Detail = ref.err.Error()
	g.emit(ctx, ev)
	return nil
}
