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

// ipBanned reports whether the client key is banned, in this instance or,
// with a SharedStore, by any instance, and for how long yet. When the
// store cannot answer, this instance's own bans decide, and err is the
// store's error.
func (g *Guard) ipBanned(ctx context.Context, key netip.Addr) (banned bool, wait time.Duration, err error) {
	now := g.now()
	if end, ok := g.bans.ips.Get(key, now.UnixNano()); ok {
		return true, time.Duration(end - now.UnixNano()), nil
	}
	return g.sharedBanned(ctx, banKeyIP(key))
}

// subjectBanned is ipBanned for a subject.
func (g *Guard) subjectBanned(ctx context.Context, sub string) (banned bool, wait time.Duration, err error) {
	if sub == "" {
		return false, 0, nil
	}
	now := g.now()
	if end, ok := g.bans.subjects.Get(sub, now.UnixNano()); ok {
		return true, time.Duration(end - now.UnixNano()), nil
	}
	return g.sharedBanned(ctx, banKeySubject(sub))
}

func (g *Guard) sharedBanned(ctx context.Context, key string) (banned bool, wait time.Duration, err error) {
	if g.shared == nil {
		return false, 0, nil
	}
	left, banned, err := g.shared.Banned(ctx, key)
	if err != nil {
		return false, 0, err
	}
	return banned, left, nil
}

func banKeyIP(key netip.Addr) string  { return "ip:" + key.String() }
func banKeySubject(sub string) string { return "sub:" + sub }

// record counts one refusal of class for the client key and the subject,
// and bans whichever crossed the threshold. Both bans are in place (and
// shared) before either closes a socket: a client that reads its
// "banned" close frame and reconnects from another address finds its
// subject already banned.
func (g *Guard) recordRefusal(ctx context.Context, class banClass, key netip.Addr, sub string) {
	b := g.bans
	if b == nil || class == banNone {
		return
	}
	now := g.now()
	n := now.UnixNano()
	end := now.Add(b.pol.Duration).UnixNano()
	var closes [2]*SessionNotice
	if key.IsValid() {
		if ok, _ := b.byIP[class].Allow(limiter.KeyFromAddr(key), n); !ok {
			ev := Event{Kind: EventBanned, Reason: banClassNames[class], RemoteIP: key}
			closes[0], _ = g.noteBan(ctx, b.ips.Add(key, end, end, n), banKeyIP(key), b.pol.Duration, ev)
		}
	}
	if sub != "" {
		if ok, _ := b.bySub[class].Allow(limiter.KeyFromString(sub), n); !ok {
			ev := Event{Kind: EventBanned, Reason: banClassNames[class], Subject: sub}
			closes[1], _ = g.noteBan(ctx, b.subjects.Add(sub, end, end, n), banKeySubject(sub), b.pol.Duration, ev)
		}
	}
	for _, sn := range closes {
		if sn != nil {
			g.closeSessions(ctx, *sn, "banned")
		}
	}
}

// placeBan reports a ban placed in this instance (err is the local ban
// list's answer), shares it with every instance through a SharedStore
// (each of which closes its own sockets) and closes the banned party's
// live sockets here with 1008 "banned".
func (g *Guard) placeBan(ctx context.Context, err error, key string, d time.Duration, ev Event) error {
	sn, err := g.noteBan(ctx, err, key, d, ev)
	if sn != nil {
		g.closeSessions(ctx, *sn, "banned")
	}
	return err
}

// noteBan is placeBan without the closing: it shares and reports the ban
// and returns the notice whose sessions are to close (nil when none are:
// the list was full, or bans are report-only).
func (g *Guard) noteBan(ctx context.Context, err error, key string, d time.Duration, ev Event) (*SessionNotice, error) {
	var serr error
	if g.shared != nil && (err == nil || err == ttlcache.ErrExists) {
		if serr = g.shared.Ban(ctx, key, d); serr != nil {
			g.storeFailed(ctx, storeCheckBan, serr, ev)
		}
	}
	switch {
	case err == nil:
		// Reported before the sockets close: once a client reads its
		// "banned" close frame, the ban's event is out.
		ev.Detail = fmt.Sprintf("banned for %s", d)
		g.emit(ctx, ev)
	case err == ttlcache.ErrExists: // already banned
	default:
		ev.Kind, ev.Detail = EventConfigWarning, "ban list full: "+err.Error()
		g.emit(ctx, ev)
		return nil, fmt.Errorf("wssec: ban: list full (%w)", ErrCapacity)
	}
	var sn *SessionNotice
	if !g.cfg.reportOnly[GuardBan] {
		// A ban ends the party's sessions here at once; with a
		// SharedStore every other instance closes its own on the ban's
		// notice (SubscribeSessions).
		sn = &SessionNotice{Subject: ev.Subject, IP: ev.RemoteIP, Reason: "banned"}
	}
	if serr != nil {
		return sn, fmt.Errorf("wssec: ban: not shared with other instances: %w", serr)
	}
	return sn, nil
}

// BanSubject bans subject for d, as an automatic ban does: its live
// sockets close with 1008 "banned" (on every instance with a
// SharedStore), and its handshakes (429) and re-authentications are
// refused until the ban ends. A longer ban already in place is kept.
// It needs WithBanPolicy, whose Capacity bounds the ban list; d must be
// positive. It returns an error when the list is full (matching
// ErrCapacity; nothing is recorded) or the store could not share the ban
// (it then holds in this instance).
func (g *Guard) BanSubject(ctx context.Context, subject string, d time.Duration) error {
	if subject == "" || len(subject) > maxSubjectLen {
		return fmt.Errorf("wssec: ban: invalid subject")
	}
	return g.banByAPI(ctx, d, func(end, now int64) (string, Event, error) {
		return banKeySubject(subject), Event{Kind: EventBanned, Reason: "api", Subject: subject}, extendBan(g.bans.subjects, subject, end, now)
	})
}

// BanIP is BanSubject for a client IP (an IPv6 address bans its /64, the
// key of every per-client limit): every socket from it closes and its
// handshakes get 429 before any other work. ip is taken as the Guard
// takes a client's address: an IPv4-mapped IPv6 address bans the IPv4
// address, and an IPv6 zone (fe80::1%eth0) is dropped. The zero Addr and
// an unspecified address (0.0.0.0, ::) are an error.
func (g *Guard) BanIP(ctx context.Context, ip netip.Addr, d time.Duration) error {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || ip.IsUnspecified() {
		return fmt.Errorf("wssec: ban: invalid IP")
	}
	key := clientKey(ip)
	return g.banByAPI(ctx, d, func(end, now int64) (string, Event, error) {
		return banKeyIP(key), Event{Kind: EventBanned, Reason: "api", RemoteIP: key}, extendBan(g.bans.ips, key, end, now)
	})
}

// extendBan bans k until end in c, lengthening a shorter ban in place;
// a ban that already lasts as long answers ttlcache.ErrExists.
func extendBan[K comparable](c *ttlcache.Cache[K, int64], k K, end, now int64) error {
	if cur, ok := c.Get(k, now); ok {
		if cur >= end {
			return ttlcache.ErrExists
		}
		c.Delete(k)
	}
	return c.Add(k, end, end, now)
}

func (g *Guard) banByAPI(ctx context.Context, d time.Duration, add func(end, now int64) (string, Event, error)) error {
	if g.bans == nil {
		return fmt.Errorf("wssec: ban: bans are off (WithBanPolicy)")
	}
	if d <= 0 {
		return fmt.Errorf("wssec: ban: duration %s is not positive", d)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := g.now()
	key, ev, err := add(now.Add(d).UnixNano(), now.UnixNano())
	return g.placeBan(ctx, err, key, d, ev)
}

// banCheck runs the handshake's ban steps for a client key and a
// subject (either may be empty) and applies their verdicts, returning the
// refusal, if any: the same checks for an upgraded socket, an in-band
// re-authentication and a live socket after a gap in the store's feed.
func (g *Guard) banCheck(ctx context.Context, key netip.Addr, sub string, ev Event) *refusal {
	if g.bans == nil {
		return nil
	}
	if key.IsValid() {
		v := g.checkIPBan(ctx, key)
		if ref := g.apply(ctx, &v, &ev); ref != nil {
			return ref
		}
	}
	if sub != "" {
		v := g.checkSubjectBan(ctx, sub)
		return g.apply(ctx, &v, &ev)
	}
	return nil
}

// banRefusal is the answer to a banned client.
func banRefusal(wait time.Duration) *refusal {
	ref := refuse(429, "banned", "too many refused attempts; retry later", errBanRefusal{}, nil)
	ref.retryAfter = max(1, int(math.Ceil(wait.Seconds())))
	return ref
}
