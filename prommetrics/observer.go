package prommetrics

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wssec/wssec"
)

// Outcome label values.
const (
	outcomeAccepted   = "accepted"
	outcomeRefused    = "refused"
	outcomeReportOnly = "report_only"
)

// reasonOK is the reason of an accepted handshake or message.
const reasonOK = "ok"

// reasonSlowConsumer is the reason of a send-queue drop.
const reasonSlowConsumer = "slow_consumer"

// reasonOriginNotAllowed is the handshake reason whose Origin feeds
// wssec_refused_origins_total.
const reasonOriginNotAllowed = "origin_not_allowed"

// alertedStoreChecks are the store_unavailable checks, and
// warningJWKSRefresh the config warning, that deploy/prometheus alerts on.
var alertedStoreChecks = [...]string{"rate", "quota", "ban", "revocation", "replay", "ticket", "revocation_feed"}

const warningJWKSRefresh = "jwks_refresh_failed"

// ruleNone is the channel_rule of a message that named no channel (a
// channel-free action, or a refusal before the channel was known).
const ruleNone = "none"

// builtinActions are the actions wssec handles itself that can be refused
// (a failed re-authentication): known from the start.
var builtinActions = [...]string{"auth"}

// Observer exports wssec events as Prometheus metrics. It implements
// wssec.Observer and wssec.MessageObserver. Create one with New; it is safe
// for concurrent use, and its methods only update counters.
type Observer struct {
	events      *prometheus.CounterVec
	handshakes  *prometheus.CounterVec
	byOrigin    *prometheus.CounterVec
	active      prometheus.Gauge
	closed      *prometheus.CounterVec
	duration    prometheus.Histogram
	messages    *prometheus.CounterVec
	channels    *prometheus.CounterVec
	drops       prometheus.Counter
	bans        *prometheus.CounterVec
	revocations *prometheus.CounterVec
	reauth      prometheus.Counter
	warnings    *prometheus.CounterVec
	store       *prometheus.CounterVec
	overflows   *prometheus.CounterVec
	revFull     *prometheus.CounterVec
	disconnects *prometheus.CounterVec
	origins     *refusedOrigins

	// One bounded set per label fed from events.
	kinds, hsReasons, patterns, msgReasons, actions, rules, classes, revReasons, warnReasons, storeChecks *labelSet

	handshakeOK prometheus.Counter // handshakes_total{accepted, ok}
	// accepted caches messages_total{accepted, ok, action, channel_rule}
	// by admitted action and rule, so the per-message path neither locks
	// nor hashes labels nor allocates.
	accepted cowMap[acceptedKey, prometheus.Counter]
}

// acceptedKey is an accepted message's action and channel rule as
// wssec reports them.
type acceptedKey struct{ action, rule string }

var (
	_ wssec.Observer        = (*Observer)(nil)
	_ wssec.MessageObserver = (*Observer)(nil)
)

// New creates an Observer and registers its metrics on reg, which must not
// be nil (pass prometheus.DefaultRegisterer to use the global registry).
// It returns every configuration problem at once, or the registration
// error (for instance when another Observer with the same namespace is
// already registered on reg); on error nothing stays registered.
func New(reg prometheus.Registerer, opts ...Option) (*Observer, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	errs := c.validate()
	if reg == nil {
		errs = append(errs, errors.New("prommetrics: nil Registerer (pass prometheus.DefaultRegisterer explicitly to use the global registry)"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	ns := c.namespace
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help})
	}
	o := &Observer{
		events:      counterVec("events_total", "Security events, by kind.", "kind"),
		handshakes:  counterVec("handshakes_total", "WebSocket handshakes, by outcome (accepted, refused, report_only) and reason.", "outcome", "reason"),
		byOrigin:    counterVec("handshakes_by_origin_total", "WebSocket handshakes, by outcome and the allowlist pattern their Origin matched (other: none or unnamed).", "outcome", "origin_pattern"),
		active:      prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "connections_active", Help: "Open WebSocket connections: accepted handshakes minus closed connections."}),
		closed:      counterVec("connections_closed_total", "Closed WebSocket connections, by close code (1000-1015, 4000-4999, else other).", "code"),
		duration:    prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "connection_duration_seconds", Help: "Lifetime of closed WebSocket connections.", Buckets: c.buckets}),
		messages:    counterVec("messages_total", "WebSocket messages, by outcome (accepted, refused, report_only), reason, action and the channel rule that matched (none: no channel; other: no rule).", "outcome", "reason", "action", "channel_rule"),
		channels:    counterVec("channel_refusals_total", "Refused messages that named a channel, by outcome and the channel rule that matched (other: none).", "outcome", "channel_rule"),
		drops:       counter("send_queue_drops_total", "Connections closed because their send queue was full."),
		bans:        counterVec("bans_total", "Bans placed, by class.", "class"),
		revocations: counterVec("revocations_total", "Revocations, by reason.", "reason"),
		reauth:      counter("reauthentications_total", "Connections that re-authenticated with a fresh token."),
		warnings:    counterVec("config_warnings_total", "Configuration warnings, by reason.", "reason"),
		store:       counterVec("store_unavailable_total", "Times the shared Store could not decide, by check (rate, quota, ban: decided locally; revocation, replay, ticket: refused; rate limited to one a second per check), and revocation_feed: times the revocation feed came back after a gap.", "check"),
		overflows:   counterVec("label_overflows_total", "Label values counted as other because the label was full or the value unacceptable.", "label"),
		revFull:     counterVec("revocations_full_total", "Revocations that did not fit, so tokens were refused wholesale instead (fail closed), by where: table (the Guard's; every token issued up to the revocation refused until it lapses) or store (a shared store's mirror; every handshake refused, rate limited to one a second).", "where"),
		disconnects: counterVec("disconnects_total", "Times live sockets were closed without a revocation, by reason: disconnect (Guard.Disconnect), banned, session_replaced (WithEvictOldest).", "reason"),
		origins:     newRefusedOrigins(ns, c.topOrigins),
	}
	set := func(label string) *labelSet {
		ctr := o.overflows.WithLabelValues(label) // exported at 0, for alerting
		return newLabelSet(c.maxLabelValues, ctr.Inc)
	}
	o.kinds = set("kind")
	o.hsReasons = set("handshake_reason")
	o.patterns = set("origin_pattern")
	o.msgReasons = set("message_reason")
	o.actions = set("action")
	o.rules = set("channel_rule")
	o.classes = set("ban_class")
	o.revReasons = set("revocation_reason")
	o.warnReasons = set("warning_reason")
	o.storeChecks = set("store_check")
	for _, a := range builtinActions {
		o.actions.intern(a)
	}
	for _, a := range c.actions {
		o.actions.intern(a)
	}
	for _, where := range []string{"table", "store"} {
		o.revFull.WithLabelValues(where) // exported at 0, for alerting
	}
	// The series the shipped alerts watch with increase(), exported at 0
	// so that their first event is an increase too.
	for _, check := range alertedStoreChecks {
		o.store.WithLabelValues(o.storeChecks.intern(check))
	}
	o.warnings.WithLabelValues(o.warnReasons.intern(warningJWKSRefresh))
	o.handshakeOK = o.handshakes.WithLabelValues(outcomeAccepted, reasonOK)

	cs := []prometheus.Collector{
		o.events, o.handshakes, o.byOrigin, o.active, o.closed, o.duration, o.messages,
		o.channels, o.drops, o.bans, o.revocations, o.reauth, o.warnings, o.store, o.overflows,
		o.revFull, o.disconnects, o.origins,
	}
	for i, col := range cs {
		if err := reg.Register(col); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("prommetrics: register: %w", err)
		}
	}
	return o, nil
}

// Observe implements wssec.Observer: it counts e.
func (o *Observer) Observe(e wssec.Event) {
	o.events.WithLabelValues(o.kinds.intern(string(e.Kind))).Inc()
	switch e.Kind {
	case wssec.EventHandshakeAccepted:
		o.handshakeOK.Inc()
		o.byOrigin.WithLabelValues(outcomeAccepted, o.patterns.intern(e.Pattern)).Inc()
		o.active.Inc()
	case wssec.EventHandshakeRefused:
		o.handshake(outcomeRefused, e)
	case wssec.EventReportOnly:
		// Only handshake guards answer with an HTTP status.
		if e.Status != 0 {
			o.handshake(outcomeReportOnly, e)
		} else {
			o.message(outcomeReportOnly, e)
		}
	case wssec.EventMessageRefused:
		o.message(outcomeRefused, e)
		if e.Reason == reasonSlowConsumer {
			o.drops.Inc()
		}
	case wssec.EventConnClosed:
		o.active.Dec()
		o.closed.WithLabelValues(closeCodeLabel(e.CloseCode)).Inc()
		o.duration.Observe(max(0, e.Duration.Seconds()))
	case wssec.EventBanned:
		o.bans.WithLabelValues(o.classes.intern(e.Reason)).Inc()
	case wssec.EventRevoked:
		o.revocations.WithLabelValues(o.revReasons.intern(e.Reason)).Inc()
	case wssec.EventReauthenticated:
		o.reauth.Inc()
	case wssec.EventConfigWarning:
		o.warnings.WithLabelValues(o.warnReasons.intern(e.Reason)).Inc()
	case wssec.EventStoreUnavailable:
		o.store.WithLabelValues(o.storeChecks.intern(e.Reason)).Inc()
	case wssec.EventRevocationsFull:
		where := "table"
		if e.Reason == "store_full" {
			where = "store"
		}
		o.revFull.WithLabelValues(where).Inc()
	case wssec.EventDisconnected:
		o.disconnects.WithLabelValues(disconnectLabel(e.Reason)).Inc()
	}
}

func (o *Observer) handshake(outcome string, e wssec.Event) {
	o.handshakes.WithLabelValues(outcome, o.hsReasons.intern(e.Reason)).Inc()
	o.byOrigin.WithLabelValues(outcome, o.patterns.intern(e.Pattern)).Inc()
	if e.Reason == reasonOriginNotAllowed {
		i := 0
		if outcome == outcomeReportOnly {
			i = 1
		}
		o.origins.add(i, e.Origin)
	}
}

func (o *Observer) message(outcome string, e wssec.Event) {
	// A refused message's action may be one the client made up: it is a
	// label only once known, and never admits a new value.
	rule := ruleNone
	if e.Channel != "" {
		rule = o.rules.intern(e.Pattern)
		o.channels.WithLabelValues(outcome, rule).Inc()
	}
	o.messages.WithLabelValues(outcome, o.msgReasons.intern(e.Reason), o.actions.known(e.Action), rule).Inc()
}

// MessageAccepted implements wssec.MessageObserver: it counts a message
// ReadMessage returned, by action and channel rule ("" when the message
// named no channel). For an action and rule seen before it takes no lock
// and allocates nothing.
func (o *Observer) MessageAccepted(action, channelRule string) {
	if c, ok := o.accepted.load(acceptedKey{action, channelRule}); ok {
		c.Inc()
		return
	}
	o.acceptedCounter(action, channelRule).Inc()
}

// acceptedCounter admits action and channelRule as label values and, when
// both were admitted, caches their counter: the cache holds at most one
// entry per admitted pair.
func (o *Observer) acceptedCounter(action, channelRule string) prometheus.Counter {
	a := o.actions.intern(action)
	r := ruleNone
	if channelRule != "" {
		r = o.rules.intern(channelRule)
	}
	if a == other || r == other {
		return o.messages.WithLabelValues(outcomeAccepted, reasonOK, a, r)
	}
	c, _ := o.accepted.loadOrStore(acceptedKey{a, r}, func(int) bool { return true }, func() prometheus.Counter {
		return o.messages.WithLabelValues(outcomeAccepted, reasonOK, a, r)
	})
	return c
}

// disconnectLabel bounds the reason of an EventDisconnected to the
// known set.
func disconnectLabel(reason string) string {
	switch reason {
	case "disconnect", "banned", "session_replaced":
		return reason
	}
	return other
}

// closeCodeLabel names a close code: the registered range 1000-1015 and
// the private range 4000-4999 as themselves (at most 1016 values), any
// other code as "other".
func closeCodeLabel(code int) string {
	if (code >= 1000 && code <= 1015) || (code >= 4000 && code <= 4999) {
		return strconv.Itoa(code)
	}
	return other
}
