package wssec

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Sentinel errors. Every refusal wssec makes wraps one of them, so
// errors.Is works on what Upgrade returns, on the *CloseError that
// ReadMessage and Send return after the server closed for a refusal (see
// CloseError), and on Event.Err, which Observers see. A refused message
// is never returned by ReadMessage: its sentinel is in the Err of its
// EventMessageRefused.
var (
	// ErrInsecureTransport: the request did not arrive over TLS (directly or
	// as asserted by a trusted proxy) and WithInsecureTransport was not set.
	ErrInsecureTransport = errors.New("wssec: TLS required")
	// ErrBadForwarded: a trusted proxy sent a forwarding header (the one
	// WithClientIPHeader names) that could not be parsed, or that does not
	// name a usable client address or scheme. It is answered with 400,
	// never with 426.
	ErrBadForwarded = errors.New("wssec: malformed forwarding headers")
	// ErrOriginNotAllowed: the Origin header is missing, "null", malformed
	// or matches no allowed pattern.
	ErrOriginNotAllowed = errors.New("wssec: origin not allowed")
	// ErrHostNotAllowed: the Host header matches no WithHosts pattern, or
	// (without WithHosts) names a DNS name on a plain ws:// same-origin
	// handshake, which is how DNS rebinding reaches a local service.
	ErrHostNotAllowed = errors.New("wssec: host not allowed")
	// ErrRateLimited: the client exceeded a handshake or message rate, or
	// is banned (a ban's refusal matches ErrBanned too).
	ErrRateLimited = errors.New("wssec: rate limited")
	// ErrBanned: the client IP or the subject is banned (WithBanPolicy,
	// BanIP, BanSubject). A banned handshake (429) matches it and
	// ErrRateLimited; a socket closed by a ban (1008 "banned") matches it
	// and ErrClosed.
	ErrBanned = errors.New("wssec: banned")
	// ErrQuotaExceeded: the client IP or subject holds too many connections.
	ErrQuotaExceeded = errors.New("wssec: connection quota exceeded")
	// ErrCapacity: the Guard holds its total number of connections, or a
	// bounded table it must add to is full of live entries: the replay
	// cache of WithSingleUseTokens (the handshake gets 503), the ban list
	// (BanIP and BanSubject return it).
	ErrCapacity = errors.New("wssec: server at capacity")
	// ErrStoreUnavailable: the shared Store could not decide a check that
	// must not pass unchecked (revocation, replay, ticket), so the
	// handshake or re-authentication was refused.
	ErrStoreUnavailable = errors.New("wssec: store unavailable")
	// ErrTokenMissing: no credential was found in any configured source.
	ErrTokenMissing = errors.New("wssec: token missing")
	// ErrTokenInvalid: the credential is malformed, not signed by a trusted
	// key, uses a refused algorithm or header, or fails a claim check.
	ErrTokenInvalid = errors.New("wssec: token invalid")
	// ErrTokenExpired: the token's exp (plus the clock skew) has passed.
	ErrTokenExpired = errors.New("wssec: token expired")
	// ErrNotWebSocket: Upgrade was called for a request that is not a
	// WebSocket handshake.
	ErrNotWebSocket = errors.New("wssec: not a websocket handshake")
	// ErrClosed: the Guard or the Conn is closed.
	ErrClosed = errors.New("wssec: closed")
	// ErrConfig is wrapped by every configuration error New returns.
	ErrConfig = errors.New("wssec: invalid configuration")
	// ErrMessageInvalid: a client message is not an acceptable envelope
	// (not valid UTF-8 included: that closes the connection with 1007),
	// or its payload fails its schema, or Conn.Deny refused it with code
	// invalid_message: the error frame's code invalid_message.
	ErrMessageInvalid = errors.New("wssec: invalid message")
	// ErrUnknownAction: a client message names an action that is not
	// registered: the error frame's code unknown_action.
	ErrUnknownAction = errors.New("wssec: unknown action")
	// ErrForbidden: the channel rules, the action's RequireScope or the
	// Policy denied a message, or Conn.Deny did, or an in-band
	// re-authentication was refused (then wrapping the sentinel of the
	// check that refused it, such as ErrTokenExpired or
	// ErrStoreUnavailable): the error frame's code forbidden.
	ErrForbidden = errors.New("wssec: forbidden")
	// ErrMessageTooBig: a message exceeded WithMaxMessageSize, and the
	// connection was closed with 1009.
	ErrMessageTooBig = errors.New("wssec: message too big")
	// ErrSlowConsumer: the client did not read what the server sent (the
	// send queue was full, or a write timed out), and the connection was
	// closed with 1013.
	ErrSlowConsumer = errors.New("wssec: send queue full")
)

// errBanRefusal is a banned client's refusal: it reads as ErrBanned and
// matches ErrRateLimited as well, the sentinel bans had before ErrBanned.
type errBanRefusal struct{}

func (errBanRefusal) Error() string        { return ErrBanned.Error() }
func (errBanRefusal) Is(target error) bool { return target == ErrBanned || target == ErrRateLimited }

// ErrRevoked: the token or its subject was revoked.
var ErrRevoked = errors.New("wssec: token revoked")

// ErrRevocationsFull is wrapped by a SharedStore's error when its bounded
// copy of the revocations had to refuse one, so it cannot answer for every
// token: the Guard then refuses (fail closed) and emits
// EventRevocationsFull rather than EventStoreUnavailable.
var ErrRevocationsFull = errors.New("wssec: revocation table full")

// ErrInvalidCloseCode is returned by Close for a code a server may not
// send (RFC 6455 §7.4: 1004–1006, 1015, and anything outside 1000–4999).
var ErrInvalidCloseCode = errors.New("wssec: close code may not be sent; closed with 1000")

// ConfigError is one problem New found in the options. New returns every
// problem at once, joined with errors.Join; each one also matches ErrConfig.
type ConfigError struct {
	Option string // the option at fault, e.g. "WithOrigins"
	Value  string // the offending value, quoted where helpful; never a secret
	Reason string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("wssec: ")
	b.WriteString(e.Option)
	if e.Value != "" {
		b.WriteString("(")
		b.WriteString(e.Value)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Is makes errors.Is(err, ErrConfig) true for every ConfigError.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// refusal is a handshake refusal: the status and the one line the client
// reads, the stable reason code that logs and metrics carry, and the
// sentinel it wraps.
type refusal struct {
	status     int
	reason     string // stable, low-cardinality code: "origin_not_allowed", …
	msg        string // the one line the client reads; never a token
	err        error  // a sentinel, or a wrapped detail for the log
	retryAfter int    // seconds, for 429 and 503
	desc       string // error_description of a 401, when not the reason's (see describe)
	// guard is the guard that refused, when it can run report-only
	// (WithReportOnly); "" when it cannot.
	guard GuardName
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(status int, reason, msg string, sentinel error, detail error) *refusal {
	err := sentinel
	if detail != nil {
		err = fmt.Errorf("%w: %v", sentinel, detail)
	}
	return &refusal{status: status, reason: reason, msg: msg, err: err}
}

// write answers the client with a plain HTTP refusal. The body is one short
// line and never carries request data.
func (r *refusal) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	switch r.status {
	case http.StatusUnauthorized:
		if d := r.describe(); d != "" {
			h.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+d+`"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if r.retryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(r.retryAfter))
		}
	case http.StatusUpgradeRequired:
		h.Set("Connection", "close")
	}
	w.WriteHeader(r.status)
	_, _ = w.Write([]byte(r.msg + "\n"))
}
