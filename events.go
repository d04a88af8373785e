package wssec

import (
	"context"
	"log/slog"
	"net/netip"
	"time"
)

// EventKind names a kind of security event. The set is closed and small,
// so it is safe to use as a metrics label.
type EventKind string

// Event kinds.
const (
	EventHandshakeRefused  EventKind = "handshake_refused"
	EventHandshakeAccepted EventKind = "handshake_accepted"
	EventMessageRefused    EventKind = "message_refused"
	// EventConnClosed: a connection ended (logged at INFO). Reason says
	// who ended it: "closed_by_server" (a guard, the handler, shutdown),
	// "closed_by_client" (the client sent a close frame; CloseCode is
	// its code) or "closed_by_peer" (the transport ended without a close
	// frame: EOF, a TCP reset, a proxy dropping the socket; CloseCode
	// 1006). A reset is ordinary client instability, never a protocol
	// error: only a frame that breaks RFC 6455 is a message_refused
	// "protocol_error" (close 1002).
	EventConnClosed      EventKind = "conn_closed"
	EventConfigWarning   EventKind = "config_warning"
	EventRevoked         EventKind = "revoked"
	EventReauthenticated EventKind = "reauthenticated"
	EventBanned          EventKind = "banned"
	EventReportOnly      EventKind = "report_only"
	// EventStoreUnavailable: the Store could not decide. Reason names the
	// check ("rate", "quota", "ban": decided with the instance's own
	// limits instead; "revocation", "replay", "ticket": refused, fail
	// closed). At most one a second per check while the store fails.
	// Reason "revocation_feed": a SharedStore's revocation feed came back
	// after a gap (or reloaded a full mirror) and every live socket was
	// checked again; revocations recorded meanwhile took effect late on
	// this instance. Once per reload, never for the first load.
	EventStoreUnavailable EventKind = "store_unavailable"
	// EventRevocationsFull: a revocation did not fit, and tokens are
	// refused wholesale instead of it being forgotten (fail closed).
	// Reason "table_full": the Guard's table (WithRevocationCapacity) was
	// full, so every token issued up to the revocation, of any subject,
	// is refused until it would have lapsed (Detail says until when).
	// Reason "store_full": a SharedStore's bounded copy refused one
	// (ErrRevocationsFull), so every handshake and re-authentication is
	// refused with 503 until it fits again; at most one a second.
	EventRevocationsFull EventKind = "revocations_full"
	// EventDisconnected: sockets were closed without revoking a token:
	// by Guard.Disconnect (Reason "disconnect"), by a ban (Reason
	// "banned") or by the per-subject quota evicting the oldest socket
	// (Reason "session_replaced").
	EventDisconnected EventKind = "disconnected"
)

// Reasons of a message_refused event whose error frame says
// invalid_message: the frame is not an acceptable envelope (not one strict
// JSON object, an unknown or duplicate top-level key, a malformed action,
// channel or id, too large or too deep), or its payload does not fit the
// action's schema (an unknown or missing field, a wrong type, a failed
// validate tag). A registered action's message without a channel keeps
// reason "invalid_message" (Detail "channel required").
const (
	reasonInvalidEnvelope = "invalid_envelope"
	reasonInvalidPayload  = "invalid_payload"
)

// reasonRevocationFeed is the reason of an EventStoreUnavailable that
// reports a gap in a SharedStore's revocation feed.
const reasonRevocationFeed = "revocation_feed"

// Event is one security-relevant occurrence. It never holds a token, a
// ticket or a message payload. Reason is a stable, low-cardinality code
// ("origin_not_allowed", "token_expired", …); Detail is a human-readable
// explanation for logs and may name request data (never secrets), so do
// not use it as a metrics label.
type Event struct {
	Kind     EventKind
	Reason   string
	Detail   string
	Status   int        // HTTP status of a handshake refusal, else 0
	RemoteIP netip.Addr // the client IP the guards used (after trusted proxies)
	Origin   string     // the Origin header as sent, truncated: never a metrics label
	// Pattern is a bounded label: the configured origin pattern a handshake
	// matched, or the channel rule a message matched; "" when none did.
	Pattern   string
	Subject   string
	Action    string
	Channel   string
	CloseCode int
	Duration  time.Duration // connection lifetime, on EventConnClosed
	Time      time.Time
	// Err is the error behind a refusal (EventHandshakeRefused,
	// EventMessageRefused, and EventReportOnly for the refusal a
	// report-only guard let through) or the Store's own error
	// (EventStoreUnavailable, and EventRevocationsFull with Reason
	// "store_full"); nil on other events, and on the two message_refused
	// events that refuse no message of their own: "denial_limit" (the
	// close that ends a run of refusals, each with its Err) and
	// "protocol_error" (a frame gorilla/websocket refused). On a refusal
	// it matches the refusal's sentinel with errors.Is:
	// ErrOriginNotAllowed, ErrTokenExpired, ErrRateLimited, ErrBanned, … for a
	// handshake; ErrMessageInvalid, ErrUnknownAction, ErrForbidden
	// (wrapping the Policy's own error when the Policy denied, and the
	// refusing check's sentinel when a re-authentication was refused),
	// ErrRateLimited, ErrMessageTooBig, ErrSlowConsumer or ErrTokenExpired
	// for a message or a connection.
	// Like Detail, its text may name request data: never use it as a
	// metrics label.
	Err error
}

// Observer receives every security event, for metrics or alerting.
// Observe is called synchronously on the connection's or request's
// goroutine, so it must be safe for concurrent use and must not block:
// hand slow work to a goroutine of your own. A refused handshake or
// message, a ban and a disconnect (Disconnect, a ban, an eviction) are
// observed before the client is answered: by the time a client reads its
// status, error frame or close frame, Observe has returned.
type Observer interface {
	Observe(Event)
}

// MessageObserver is an optional interface of an Observer: it is told of
// every message ReadMessage returns, by action and by the pattern of the
// channel rule that admitted it ("" when the message named no channel).
// Both come from the configuration (WithAction, WithChannelRules), a
// bounded set, and are never client input. Accepted messages are not
// Events (they are not security events, and the read path stays lean):
// MessageAccepted is called on the reading goroutine for every message,
// so it must be cheap, safe for concurrent use and must not block.
type MessageObserver interface {
	MessageAccepted(action, channelRule string)
}

// maxLoggedOrigin bounds how much of an attacker-controlled Origin header
// reaches logs and observers.
const maxLoggedOrigin = 256

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// emit sends e to the observers and the logger. Attribute keys are stable:
// event, reason, remote_ip, origin, subject, action, channel, close_code.
func (g *Guard) emit(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = g.now()
	}
	e.Origin = truncate(e.Origin, maxLoggedOrigin)
	for _, o := range g.cfg.observers {
		o.Observe(e)
	}
	level := slog.LevelWarn
	switch e.Kind {
	case EventHandshakeAccepted, EventConnClosed:
		level = slog.LevelInfo
	}
	if !g.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("event", string(e.Kind)))
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.Detail != "" {
		attrs = append(attrs, slog.String("detail", e.Detail))
	}
	if e.Status != 0 {
		attrs = append(attrs, slog.Int("status", e.Status))
	}
	if e.RemoteIP.IsValid() {
		attrs = append(attrs, slog.String("remote_ip", e.RemoteIP.String()))
	}
	if e.Origin != "" {
		attrs = append(attrs, slog.String("origin", e.Origin))
	}
	if e.Subject != "" {
		attrs = append(attrs, slog.String("subject", e.Subject))
	}
	if e.Action != "" {
		attrs = append(attrs, slog.String("action", e.Action))
	}
	if e.Channel != "" {
		attrs = append(attrs, slog.String("channel", e.Channel))
	}
	if e.CloseCode != 0 {
		attrs = append(attrs, slog.Int("close_code", e.CloseCode))
	}
	if e.Duration != 0 {
		attrs = append(attrs, slog.Duration("duration", e.Duration))
	}
	g.log.LogAttrs(ctx, level, "wssec "+string(e.Kind), attrs...)
}
