package wssec

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/gorilla/websocket"
	"github.com/wssec/wssec/internal/nbwrite"
	"github.com/wssec/wssec/internal/strictjson"
)

// Close codes wssec sends (RFC 6455 §7.4.1).
const (
	CloseNormal        = websocket.CloseNormalClosure           // 1000
	CloseGoingAway     = websocket.CloseGoingAway               // 1001: server shutdown, idle
	CloseInvalidData   = websocket.CloseInvalidFramePayloadData // 1007: text frame not UTF-8
	ClosePolicy        = websocket.ClosePolicyViolation         // 1008: token expired or revoked, too many denials, max age
	CloseTooBig        = websocket.CloseMessageTooBig           // 1009
	CloseInternalError = websocket.CloseInternalServerErr       // 1011
	CloseTryAgainLater = websocket.CloseTryAgainLater           // 1013: slow consumer, rate abuse, store unavailable
)

// CloseError is returned by ReadMessage and Send once the connection is
// closed, with the code and reason of the close, whichever side sent it.
// It matches ErrClosed with errors.Is, and, when the server closed for a
// refusal that has a sentinel, that sentinel too: ErrMessageInvalid (1007,
// a text frame that is not valid UTF-8), ErrMessageTooBig (1009),
// ErrRateLimited (1013, a message or ping flood), ErrSlowConsumer (1013,
// the client did not read what the server sent), ErrTokenExpired (1008,
// the token expired and the client did not re-authenticate), ErrRevoked
// (1008, the token or its subject was revoked), ErrStoreUnavailable (1013,
// the store could not say whether a just-upgraded socket's token was
// revoked), ErrBanned (1008 "banned", the client IP or subject was
// banned). Closes for Disconnect, WithEvictOldest and the maximum age
// match ErrClosed only.
type CloseError struct {
	Code   int
	Reason string
	// Remote reports whether the peer closed first.
	Remote bool

	cause error // the sentinel of the refusal the server closed for, or nil
}

func (e *CloseError) Error() string {
	who := "server"
	if e.Remote {
		who = "client"
	}
	return fmt.Sprintf("wssec: connection closed by %s: %d %s", who, e.Code, e.Reason)
}

// Unwrap makes errors.Is(err, ErrClosed) true.
func (e *CloseError) Unwrap() error { return ErrClosed }

// Is makes errors.Is(err, sentinel) true for the sentinel of the refusal
// the server closed for (see CloseError).
func (e *CloseError) Is(target error) bool { return e.cause != nil && target == e.cause }

// closeGrace bounds how long a close may wait on a peer that does not read.
const closeGrace = time.Second

// Conn is a secured WebSocket connection. ReadMessage returns only
// messages that passed every guard. Every frame the server sends (Send,
// error frames, pongs, pings, the close frame) goes through one write
// owner: a frame is written on the caller's goroutine when nothing is
// queued and nobody is writing, with a write that never waits for the
// client; what the socket cannot take at once is queued and written by a
// drainer goroutine that exists only while frames are queued. An idle
// Conn has no goroutine of its own: pings, the idle timeout, the maximum
// age and the token's expiry run from one timer. ReadMessage must be
// called from one goroutine at a time (it serialises concurrent callers);
// Send and Close are safe from any number of goroutines.
type Conn struct {
	g      *Guard
	ws     *websocket.Conn
	hs     *handshake
	ctx    context.Context
	cancel context.CancelFunc
	opened time.Time // g.now() at the upgrade, for the closed event
	born   time.Time // time.Now() at the upgrade: the timers' origin

	principal atomic.Pointer[Principal]

	nc  net.Conn        // the hijacked socket, under gorilla's reasonConn
	raw syscall.RawConn // its non-blocking write path; nil: every frame goes through a drainer

	done chan struct{} // closed by Close
	gone chan struct{} // closed when the teardown finished and the socket is closed

	closeOnce sync.Once
	closeErr  atomic.Pointer[CloseError]

	// The write owner. wmu is held only to look at or change these
	// fields, never across a write that can wait.
	wmu       sync.Mutex
	wbusy     bool          // a goroutine owns the socket for writing (a caller, the drainer or the teardown)
	wq        [][]byte      // frames waiting, in order; wbusy whenever non-empty; allocated when first needed
	wstop     bool          // the teardown started: no frame is accepted any more
	wclosing  time.Time     // set by the teardown: the drainer's deadline from then on
	wfailed   bool          // a write failed: nothing more is written
	closeSent bool          // a close frame was accepted (wssec's or gorilla's)
	widle     chan struct{} // closed when wbusy clears, for a teardown that waits

	// One timer per connection runs pings, the maximum age and the
	// token's expiry warning and close; the deadlines are offsets from
	// born, 0 when unset. tmu guards them.
	tmu      sync.Mutex
	timer    *time.Timer
	tstopped bool
	nextPing time.Duration
	ageAt    time.Duration
	warnAt   time.Duration
	expireAt time.Duration

	// readSem is the read lock (a channel, so the teardown can wait for
	// a reader with a bound). The fields below belong to its holder;
	// gorilla runs onPing inside NextReader, so onPing holds it too.
	readSem chan struct{}
	buf     []byte // reused read buffer, while small
	env     strictjson.Envelope
	probe   strictjson.Envelope // the id and action salvaged from a refused message
	tat     int64               // message-rate state (GCRA) of data frames
	pingTat int64               // message-rate state (GCRA) of pings
	limited int                 // rate-limited messages and pings since the last accepted message
	denials atomic.Int64        // refused messages (Deny may run on any goroutine)
}

func (g *Guard) newConn(ws *websocket.Conn, hs *handshake) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	ctx = context.WithValue(ctx, principalKey{}, hs.principal)
	c := &Conn{
		g:       g,
		ws:      ws,
		hs:      hs,
		ctx:     ctx,
		cancel:  cancel,
		opened:  g.now(),
		born:    time.Now(),
		done:    make(chan struct{}),
		gone:    make(chan struct{}),
		readSem: make(chan struct{}, 1),
	}
	c.principal.Store(hs.principal)
	// Everything a close needs is in place before c is registered: from
	// then on any scan of the Guard's sockets (Disconnect, a ban, a
	// revocation, Close) may close it, from another goroutine.
	c.nc = ws.NetConn()
	rc, _ := c.nc.(*reasonConn)
	if rc != nil {
		c.nc = rc.Conn
	}
	c.raw = nbwrite.Raw(c.nc)
	// The wire limit stops a frame whose header declares too much before
	// any of it is read (gorilla's close frame then gets its reason from
	// reasonConn); the bounded reader in ReadMessage also caps the
	// decompressed size.
	ws.SetReadLimit(g.cfg.maxMessageSize)
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(g.cfg.idleTimeout))
	})
	ws.SetPingHandler(c.onPing)

	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		cancel()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseGoingAway, "server shutdown"), time.Now().Add(closeGrace))
		ws.Close()
		return nil
	}
	if rc != nil {
		// From here on gorilla's own writes (its close frames) go
		// through the write owner too.
		rc.c = c
	}
	g.conns[c] = struct{}{}
	g.wg.Add(1)
	g.mu.Unlock()
	c.startTimer() // after a close that came first, a no-op
	return c
}

// Context returns a context that carries the Principal and is cancelled
// when the connection closes.
func (c *Conn) Context() context.Context { return c.ctx }

// Principal returns the connection's current principal.
func (c *Conn) Principal() *Principal { return c.principal.Load() }

// Subprotocol returns the subprotocol the server selected, or "": for an
// application that lists several in WithSubprotocols and speaks whichever
// the client chose.
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// RemoteIP returns the client IP the guards used (after trusted proxies),
// for the application's own logs: r.RemoteAddr behind a proxy is the
// proxy's.
func (c *Conn) RemoteIP() string { return c.hs.ip.String() }

// Done is closed as soon as the connection starts closing, whichever side
// closed it: before Context is cancelled, which waits for the close
// frame and the socket. It is for a goroutine of the application (one
// that feeds Send) that should stop at once.
func (c *Conn) Done() <-chan struct{} { return c.done }

// onPing answers a client ping with a pong, but counts pings against the
// message rate so a ping flood cannot buy free work. gorilla calls it
// inside NextReader, so it runs under the read lock.
func (c *Conn) onPing(data string) error {
	ok, _ := c.g.lim.msgRate.Allow(&c.pingTat, c.g.now().UnixNano())
	if !ok {
		c.limited++
		if c.limited >= c.g.cfg.denialLimit {
			c.record(EventMessageRefused, Event{Reason: "ping_flood", CloseCode: CloseTryAgainLater, Err: ErrRateLimited})
			c.closeFor(ErrRateLimited, CloseTryAgainLater, "ping flood")
		}
		return nil
	}
	_ = c.out(controlFrame(websocket.PongMessage, []byte(data)), false)
	return nil
}

// ReadMessage returns the next message that passed every guard: size cap,
// UTF-8, message rate, strict envelope, registered action, payload schema
// and validator tags, channel rules and the Policy. Refused messages are
// answered with an error frame and never returned; repeated refusals close
// the connection. It returns a *CloseError once the connection is closed
// (also when ctx is Context(), which the close cancels), or ctx.Err() if
// ctx ends while it waits (the connection is then closed with 1001 "read
// abandoned": a read cannot be abandoned half way). A ctx that has already
// ended returns ctx.Err() at once and leaves the connection open.
func (c *Conn) ReadMessage(ctx context.Context) (*Message, error) {
	c.readSem <- struct{}{}
	defer func() { <-c.readSem }()
	// A closed connection reports its close even when ctx (typically
	// Context(), cancelled by the teardown) has ended too.
	if err := c.closedErr(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err // nothing was read: the connection stays open
	}
	// abandoned is the close this read makes if ctx ends while it waits.
	// Closing (rather than only moving the read deadline, which readOne
	// resets) unblocks the read whatever the timing, and tells the close
	// caused by ctx apart from any other.
	var abandoned *CloseError
	// The connection's own context ends only when the connection closes,
	// which unblocks the read anyway: watching it would cost allocations
	// on every call for nothing.
	if ctx.Done() != nil && ctx != c.ctx {
		abandoned = &CloseError{Code: CloseGoingAway, Reason: "read abandoned"}
		stop := context.AfterFunc(ctx, func() {
			c.closeWithErr(abandoned)
			_ = c.ws.SetReadDeadline(time.Now())
		})
		defer stop()
	}
	for {
		if ce := c.closeErr.Load(); ce != nil {
			if ce == abandoned {
				return nil, ctx.Err()
			}
			return nil, ce
		}
		m, err := c.readOne()
		if err != nil {
			if ce := c.closeErr.Load(); ce != nil && ce == abandoned {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if m != nil {
			return m, nil
		}
	}
}

// readOne reads one frame and runs the guards. It returns (nil, nil) for a
// message that was refused or answered internally.
func (c *Conn) readOne() (*Message, error) {
	g := c.g
	if err := c.ws.SetReadDeadline(time.Now().Add(g.cfg.idleTimeout)); err != nil {
		return nil, c.fail(err)
	}
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return nil, c.fail(err)
	}
	// Bounded read: also caps what a compressed frame inflates to.
	c.buf, err = readBounded(c.buf, r, g.cfg.maxMessageSize)
	if err != nil {
		return nil, c.fail(err)
	}
	if int64(len(c.buf)) > g.cfg.maxMessageSize {
		c.buf = nil
		c.closeFor(ErrMessageTooBig, CloseTooBig, "message too big")
		c.record(EventMessageRefused, Event{Reason: "message_too_big", CloseCode: CloseTooBig, Err: ErrMessageTooBig})
		return nil, c.closedErr()
	}
	m, err := c.admitMessage(mt, c.buf)
	if cap(c.buf) > keptReadBuffer {
		c.buf = nil // admitMessage copied what it keeps; an idle socket holds no large buffer
	}
	return m, err
}

// keptReadBuffer is the largest read buffer a Conn keeps between messages.
const keptReadBuffer = 4 << 10

// readBounded reads r to its end into b[:0], but never more than limit+1
// bytes, so the caller sees an oversized message as len > limit. The
// buffer grows by doubling and never past limit+1: an attacker's frame,
// whatever it inflates to, costs at most limit+1 bytes of buffer.
func readBounded(b []byte, r io.Reader, limit int64) ([]byte, error) {
	b = b[:0]
	for int64(len(b)) <= limit {
		if len(b) == cap(b) {
			nc := min(max(2*int64(cap(b)), 512), limit+1)
			nb := make([]byte, len(b), nc)
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// admitMessage runs the message guards on one complete frame: message rate,
// frame type, strict envelope (which also checks UTF-8), registered
// action and payload schema, channel rules, Policy. It returns (nil, nil)
// for a message that was refused or answered internally.
func (c *Conn) admitMessage(mt int, data []byte) (*Message, error) {
	g := c.g
	// Message rate, before any parsing.
	if ok, _ := g.lim.msgRate.Allow(&c.tat, g.now().UnixNano()); !ok {
		if mt == websocket.TextMessage && !utf8.Valid(data) {
			// Invalid UTF-8 fails the connection whatever the rate
			// (strictjson.Parse checks it on the accepting path).
			c.closeFor(ErrMessageInvalid, CloseInvalidData, "invalid utf-8")
			c.record(EventMessageRefused, Event{Reason: "invalid_utf8", CloseCode: CloseInvalidData, Err: ErrMessageInvalid})
			return nil, c.closedErr()
		}
		if g.cfg.reportOnly[GuardMessageRate] {
			c.record(EventReportOnly, Event{Reason: "rate_limited", Err: ErrRateLimited})
		} else {
			c.limited++
			if c.limited >= g.cfg.denialLimit {
				c.record(EventMessageRefused, Event{Reason: "rate_abuse", CloseCode: CloseTryAgainLater, Err: ErrRateLimited})
				c.closeFor(ErrRateLimited, CloseTryAgainLater, "message rate exceeded")
				return nil, c.closedErr()
			}
			// Echo the id, so a client waiting on it learns its request
			// was dropped; finding it is one linear look at the frame.
			strictjson.Salvage(data, g.msg.limits, &c.probe)
			c.deny(c.probe.ID, "rate_limited", "rate limit exceeded", Event{Reason: "rate_limited"}, false)
			return nil, nil
		}
	}
	c.limited = 0

	if mt != websocket.TextMessage && !g.cfg.binary {
		strictjson.Salvage(data, g.msg.limits, &c.probe)
		c.deny(c.probe.ID, strictjson.CodeInvalidMessage, "binary frames are not accepted", Event{Reason: "binary_frame"}, true)
		return nil, c.closedErr()
	}

	mr := g.msg
	env := &c.env
	if err := strictjson.Parse(data, mr.limits, mr.schemaFor, env); err != nil {
		if err == strictjson.ErrInvalidUTF8 && mt == websocket.TextMessage {
			// RFC 6455 §8.1: a text frame that is not UTF-8 fails the
			// connection (gorilla does not check this).
			c.closeFor(ErrMessageInvalid, CloseInvalidData, "invalid utf-8")
			c.record(EventMessageRefused, Event{Reason: "invalid_utf8", CloseCode: CloseInvalidData, Err: ErrMessageInvalid})
			return nil, c.closedErr()
		}
		var ee *strictjson.Error
		if !errors.As(err, &ee) {
			ee = strictjson.ErrInvalidJSON
		}
		// Keep the error-frame contract: a well-formed message whose
		// action is not registered is unknown_action whatever else it
		// holds, and the client's id is echoed whenever the frame held
		// one well-formed id. (Refusals are bounded by the rate and
		// denial limits, so this second look costs little.)
		id, action := env.ID, env.Action
		reason := ee.Code
		if ee != strictjson.ErrUnknownAction {
			// The event tells a broken envelope from a payload that does
			// not fit its schema (the client sees invalid_message for both):
			// a frame that passes as an envelope with no schema checked
			// failed only in its payload.
			reason = reasonInvalidEnvelope
			if strictjson.Parse(data, mr.limits, nil, &c.probe) == nil {
				reason = reasonInvalidPayload
			}
			ee = strictjson.Refine(data, mr.limits, mr.schemaFor, ee, &c.probe)
			id, action = c.probe.ID, c.probe.Action
			if ee == strictjson.ErrUnknownAction {
				reason = ee.Code
			}
		}
		c.deny(id, ee.Code, ee.Reason, Event{Reason: reason, Detail: ee.Reason, Action: safeAction(action)}, true)
		return nil, c.closedErr()
	}
	reg := mr.actions[string(env.Action)] // Parse accepted only registered actions
	action := reg.name                    // the registered name: no allocation
	if action == actionAuth {
		c.reauth(env.ID, env.Payload)
		return nil, c.closedErr()
	}
	if action == actionPing {
		c.enqueue(pongFrame(env.ID))
		return nil, nil
	}
	// Every message names its channel unless its action is channel-free,
	// and carries the scopes its action requires: nothing passes the
	// channel rules by leaving the channel out.
	if len(env.Channel) == 0 && !reg.channelFree {
		ev := Event{Reason: "invalid_message", Detail: "channel required", Action: action, Err: ErrMessageInvalid}
		if !g.cfg.reportOnly[GuardChannel] {
			c.deny(env.ID, strictjson.CodeInvalidMessage, "channel required", ev, true)
			return nil, c.closedErr()
		}
		c.record(EventReportOnly, ev)
	}
	if len(reg.scopes) > 0 {
		if why := authorizeAction(reg, c.Principal()); why != "" {
			ev := Event{Reason: "forbidden", Detail: why, Action: action, Channel: string(env.Channel), Err: ErrForbidden}
			if !g.cfg.reportOnly[GuardChannel] {
				c.deny(env.ID, "forbidden", "forbidden", ev, true)
				return nil, c.closedErr()
			}
			c.record(EventReportOnly, ev)
		}
	}
	// One allocation holds the Message and its decoded payload value (a
	// *T into it becomes Data).
	m, val := reg.newMessage()
	m.Action = action
	// One more holds the channel, the id and the payload, copied out of
	// the reused read buffer, then the arena where the payload's decoded
	// strings are stored. The arena is reachable only through those
	// strings, never written again: Payload (capacity-capped, so an append
	// reallocates) does not overlap it, and editing Payload in place
	// cannot change Data.
	lc, li, lp := len(env.Channel), len(env.ID), len(env.Payload)
	var arena []byte
	if n := lc + li + lp + reg.arenaLen(lp); n > 0 {
		b := make([]byte, 0, n)
		b = append(append(append(b, env.Channel...), env.ID...), env.Payload...)
		if lc > 0 {
			m.Channel = unsafe.String(&b[0], lc)
		}
		if li > 0 {
			m.ID = unsafe.String(&b[lc], li)
		}
		if env.Payload != nil {
			m.Payload = json.RawMessage(b[lc+li : lc+li+lp : lc+li+lp])
		}
		arena = b[lc+li+lp : lc+li+lp : n]
	}
	ev := Event{Action: action, Channel: m.Channel}
	if reason := mr.decodeInto(reg, env.Checked(), arena, val); reason != "" {
		ev.Reason, ev.Detail = reasonInvalidPayload, reason
		c.deny(env.ID, strictjson.CodeInvalidMessage, reason, ev, true)
		return nil, c.closedErr()
	}
	m.Data = val.Interface()

	p := c.Principal()
	if m.Channel != "" {
		rule, why := mr.authorizeChannel(m.Channel, action, p)
		ev.Pattern = rule
		if why != "" {
			ev.Reason, ev.Detail, ev.Err = "forbidden", why, ErrForbidden
			if !g.cfg.reportOnly[GuardChannel] {
				c.deny(env.ID, "forbidden", "forbidden", ev, true)
				return nil, c.closedErr()
			}
			c.record(EventReportOnly, ev)
		}
	}
	if mr.policy != nil {
		if err := mr.policy(c.ctx, p, m); err != nil {
			ev.Reason, ev.Detail, ev.Err = "forbidden", "policy: "+err.Error(), fmt.Errorf("%w: policy: %w", ErrForbidden, err)
			if !g.cfg.reportOnly[GuardPolicy] {
				c.deny(env.ID, "forbidden", "forbidden", ev, true)
				return nil, c.closedErr()
			}
			c.record(EventReportOnly, ev)
		}
	}
	for _, o := range g.msgObs {
		o.MessageAccepted(m.Action, ev.Pattern)
	}
	return m, nil
}

// Deny refuses a message that passed the guards but that the application
// finds unacceptable, the way the guards refuse: the client receives an
// error frame with code ("invalid_message" or "forbidden"; anything else
// is sent as "forbidden") and msg, echoing the message's id; a
// message_refused event is logged; and the refusal counts toward
// WithDenialLimit, so repeated offences close the socket with 1008. msg
// reaches the client: keep it short and free of internal detail. Safe to
// call from any goroutine.
func (c *Conn) Deny(m *Message, code, msg string) {
	if code != "invalid_message" {
		code = "forbidden"
	}
	ev := Event{Reason: "app_" + code, Detail: truncate(msg, 200)}
	var id []byte
	if m != nil {
		ev.Action, ev.Channel = m.Action, m.Channel
		id = []byte(m.ID)
	}
	c.deny(id, code, truncate(msg, 200), ev, true)
}

// safeAction returns a parsed action for logs ("" if it was not parsed).
func safeAction(a []byte) string {
	if len(a) > strictjson.DefaultMaxActionLen {
		return ""
	}
	return string(a)
}

// deny answers a refused message with an error frame, logs it, and closes
// the connection with 1008 when counted refusals reach the denial limit.
func (c *Conn) deny(id []byte, code, msg string, ev Event, count bool) {
	if ev.Err == nil {
		ev.Err = codeError(code)
	}
	// Record first, answer second: once the client reads the error frame,
	// the event is out and any ban it earned is in place.
	c.record(EventMessageRefused, ev)
	if c.g.bans != nil {
		sub := ""
		if p := c.Principal(); p != nil {
			sub = p.Subject
		}
		c.g.recordRefusal(c.ctx, banMessage, clientKey(c.hs.ip), sub)
	}
	c.enqueue(errorFrame(id, code, msg))
	if !count {
		return
	}
	if c.denials.Add(1) == int64(c.g.cfg.denialLimit) {
		c.record(EventMessageRefused, Event{Reason: "denial_limit", CloseCode: ClosePolicy})
		c.closeWith(ClosePolicy, "too many refused messages", false)
	}
}

// codeError is the sentinel of an error frame's code, for the refusal
// event's Err.
func codeError(code string) error {
	switch code {
	case "invalid_message":
		return ErrMessageInvalid
	case "unknown_action":
		return ErrUnknownAction
	case "rate_limited":
		return ErrRateLimited
	}
	return ErrForbidden
}

// record emits ev as an event of kind about this connection: a refusal
// (EventMessageRefused), or one a report-only guard let through
// (EventReportOnly).
func (c *Conn) record(kind EventKind, ev Event) {
	ev.Kind = kind
	ev.RemoteIP = c.hs.ip
	if p := c.Principal(); p != nil {
		ev.Subject = p.Subject
	}
	c.g.emit(c.ctx, ev)
}

// fail maps a read error to the connection's close.
func (c *Conn) fail(err error) error {
	if ce := c.closedErr(); ce != nil {
		return ce
	}
	var wce *websocket.CloseError
	switch {
	case errors.As(err, &wce):
		c.closeWith(wce.Code, wce.Text, true) // 1006 "unexpected EOF": gorilla's name for a lost peer
	case errors.Is(err, websocket.ErrReadLimit):
		c.record(EventMessageRefused, Event{Reason: "message_too_big", CloseCode: CloseTooBig, Err: ErrMessageTooBig})
		c.closeFor(ErrMessageTooBig, CloseTooBig, "message too big")
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.closeWith(CloseGoingAway, "idle timeout", false)
		} else if peerLost(err) {
			c.closeWith(websocket.CloseAbnormalClosure, "connection lost", true)
		} else {
			// A protocol error (bad frame, bad close code, reserved bits…):
			// gorilla has already sent its close frame.
			c.record(EventMessageRefused, Event{Reason: "protocol_error", Detail: truncate(err.Error(), 200), CloseCode: websocket.CloseProtocolError})
			c.closeWith(websocket.CloseProtocolError, "protocol error", true)
		}
	}
	return c.closedErr()
}

// peerLost reports whether a read error is the transport ending (EOF, a
// reset, a TLS or socket failure) rather than a frame that broke RFC 6455.
// gorilla reports protocol violations as plain errors after sending its
// 1002; every error from the socket itself is a *net.OpError (TLS alerts
// included), which is never the client's protocol fault.
func peerLost(err error) bool {
	var oe *net.OpError
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &oe)
}

func (c *Conn) closedErr() error {
	if ce := c.closeErr.Load(); ce != nil {
		return ce
	}
	return nil
}

// Send marshals v to JSON and sends it as one text frame. It never
// blocks on the network: the frame is written at once when the socket
// takes it, and otherwise queued in order behind what is already waiting.
// When the queue is full (WithSendQueue), or a queued frame cannot be
// written within the write timeout (WithWriteTimeout), the client is too
// slow and the connection is closed with 1013; Send then returns the
// *CloseError.
func (c *Conn) Send(ctx context.Context, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.closedErr(); err != nil {
		return err
	}
	fb := framePool.Get().(*frameBuf)
	fb.b.Reset()
	fb.b.Write(headerRoom[:])
	if err := fb.enc.Encode(v); err != nil {
		framePool.Put(fb)
		return fmt.Errorf("wssec: send: %w", err)
	}
	b := fb.b.Bytes()
	b = b[:len(b)-1] // the Encoder's newline
	err := c.out(frameInPlace(b, websocket.TextMessage), true)
	if fb.b.Cap() <= maxPooledFrame {
		framePool.Put(fb)
	}
	return err
}

// frameBuf is a pooled buffer and the JSON encoder writing into it.
type frameBuf struct {
	b   bytes.Buffer
	enc *json.Encoder
}

var framePool = sync.Pool{New: func() any {
	fb := new(frameBuf)
	fb.enc = json.NewEncoder(&fb.b)
	return fb
}}

// maxPooledFrame is the largest frame buffer kept for reuse.
const maxPooledFrame = 64 << 10

// headerRoom is the space a frame's payload leaves in front of it for the
// largest header (RFC 6455 §5.2: 2 bytes + 8 of extended length).
var headerRoom [maxHeader]byte

const maxHeader = 10

// frameInPlace writes the header of an unmasked final frame of type op in
// front of b[maxHeader:] and returns the frame, a suffix of b.
func frameInPlace(b []byte, op int) []byte {
	n := len(b) - maxHeader
	var f []byte
	switch {
	case n < 126:
		f = b[maxHeader-2:]
		f[1] = byte(n)
	case n <= 0xffff:
		f = b[maxHeader-4:]
		f[1] = 126
		binary.BigEndian.PutUint16(f[2:4], uint16(n))
	default:
		f = b
		f[1] = 127
		binary.BigEndian.PutUint64(f[2:10], uint64(n))
	}
	f[0] = 0x80 | byte(op)
	return f
}

// textFrame returns payload as a text frame.
func textFrame(payload []byte) []byte {
	b := make([]byte, maxHeader+len(payload))
	copy(b[maxHeader:], payload)
	return frameInPlace(b, websocket.TextMessage)
}

// controlFrame returns a control frame (payload at most 125 bytes).
func controlFrame(op int, payload []byte) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	b := make([]byte, 2+len(payload))
	b[0], b[1] = 0x80|byte(op), byte(len(payload))
	copy(b[2:], payload)
	return b
}

var pingFrame = controlFrame(websocket.PingMessage, nil)

// enqueue sends an internal text frame (error frames, pong and auth
// answers, the expiry warning); it reports whether it was accepted.
func (c *Conn) enqueue(payload []byte) bool {
	return c.out(textFrame(payload), false) == nil
}

// out sends one complete frame through the write owner. If nobody owns
// the socket, the caller does: it writes without waiting, and hands
// whatever the socket did not take at once to a drainer goroutine. If
// somebody does, the frame joins the queue (copied when borrowed: the
// caller reuses f). A full queue closes the connection with 1013. The
// error is the connection's close, or ErrSlowConsumer.
func (c *Conn) out(f []byte, borrowed bool) error {
	c.wmu.Lock()
	if c.wstop || c.wfailed {
		c.wmu.Unlock()
		return c.closedErrOr(ErrClosed)
	}
	if isCloseFrame(f) {
		c.closeSent = true
	}
	if c.wbusy {
		if len(c.wq) >= c.g.cfg.sendQueue {
			c.wmu.Unlock()
			c.slowConsumer()
			return c.closedErrOr(ErrSlowConsumer)
		}
		if borrowed {
			f = bytes.Clone(f)
		}
		if c.wq == nil {
			c.wq = make([][]byte, 0, min(c.g.cfg.sendQueue, 8))
		}
		c.wq = append(c.wq, f)
		c.wmu.Unlock()
		return nil
	}
	c.wbusy = true
	c.wmu.Unlock()
	return c.writeNow(f, borrowed)
}

// writeNow runs on the goroutine that took ownership in out: it writes f,
// then whatever was queued meanwhile, each with one write that does not
// wait, and gives the rest to a drainer the moment the socket is full.
func (c *Conn) writeNow(f []byte, borrowed bool) error {
	for {
		n, err := 0, nbwrite.ErrWouldBlock
		if c.raw != nil {
			n, err = nbwrite.Try(c.raw, f)
		}
		if err != nil && err != nbwrite.ErrWouldBlock {
			c.wmu.Lock()
			c.wfailed = true
			c.wq = nil
			c.releaseLocked()
			c.wmu.Unlock()
			c.writeFailed(err)
			return c.closedErrOr(ErrClosed)
		}
		if n < len(f) {
			rest := f[n:]
			if borrowed {
				rest = bytes.Clone(rest)
			}
			c.wmu.Lock()
			c.wq = append(c.wq, nil)
			copy(c.wq[1:], c.wq)
			c.wq[0] = rest
			c.wmu.Unlock()
			go c.drain()
			return nil
		}
		c.wmu.Lock()
		if len(c.wq) == 0 {
			c.releaseLocked()
			c.wmu.Unlock()
			return nil
		}
		f, borrowed = c.popLocked(), false
		c.wmu.Unlock()
	}
}

// popLocked takes the first queued frame.
func (c *Conn) popLocked() []byte {
	f := c.wq[0]
	c.wq[0] = nil
	c.wq = c.wq[1:]
	if len(c.wq) == 0 {
		c.wq = nil // an idle socket holds no queue
	}
	return f
}

// releaseLocked gives up the ownership of the socket.
func (c *Conn) releaseLocked() {
	c.wbusy = false
	if c.widle != nil {
		close(c.widle)
		c.widle = nil
	}
}

// drain owns the socket until the queue is empty, writing each frame with
// the write timeout as its deadline (the close's deadline once the
// teardown started). It runs on a goroutine of its own, started by
// writeNow, or on the teardown's.
func (c *Conn) drain() {
	for {
		c.wmu.Lock()
		if len(c.wq) == 0 || c.wfailed {
			c.wq = nil
			if c.wclosing.IsZero() {
				// The next owner writes without a deadline, and a past
				// one would make its non-blocking write fail.
				_ = c.nc.SetWriteDeadline(time.Time{})
			}
			c.releaseLocked()
			c.wmu.Unlock()
			return
		}
		f := c.popLocked()
		// The deadline is set under wmu, so the teardown's (set under
		// wmu too) is never overwritten by a longer one.
		dl := c.wclosing
		if dl.IsZero() {
			dl = time.Now().Add(c.g.cfg.writeTimeout)
		}
		err := c.nc.SetWriteDeadline(dl)
		c.wmu.Unlock()
		if err == nil {
			_, err = c.nc.Write(f)
		}
		if err != nil {
			c.wmu.Lock()
			c.wfailed = true
			c.wmu.Unlock()
			c.writeFailed(err)
		}
	}
}

// writeFailed closes the connection after a failed write: with 1013 when
// the client did not take a frame within the write timeout, otherwise as
// a lost connection. During the teardown it changes nothing.
func (c *Conn) writeFailed(err error) {
	if c.closedErr() != nil {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.slowConsumer()
		return
	}
	c.closeWith(websocket.CloseAbnormalClosure, "write failed", false)
}

// slowConsumer closes the connection with 1013 and logs it, once.
func (c *Conn) slowConsumer() {
	if c.closedErr() != nil {
		return
	}
	c.g.emit(c.ctx, Event{Kind: EventMessageRefused, Reason: "slow_consumer", RemoteIP: c.hs.ip, CloseCode: CloseTryAgainLater, Err: ErrSlowConsumer})
	c.closeFor(ErrSlowConsumer, CloseTryAgainLater, "slow consumer")
}

func (c *Conn) closedErrOr(err error) error {
	if ce := c.closeErr.Load(); ce != nil {
		return ce
	}
	return err
}

// isCloseFrame reports whether f starts a close frame.
func isCloseFrame(f []byte) bool {
	return len(f) > 0 && f[0]&0x0f == websocket.CloseMessage
}

// startTimer arms the connection's one timer: pings, maximum age, and the
// token's expiry warning and close.
func (c *Conn) startTimer() {
	g := c.g
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if c.tstopped {
		return // closed before it was armed
	}
	c.nextPing = g.cfg.pingInterval
	c.ageAt = g.cfg.maxConnAge
	if p := c.Principal(); p != nil {
		c.setExpiryLocked(p.ExpiresAt)
	}
	c.timer = time.AfterFunc(c.nextDueLocked(), c.onTimer)
}

// setExpiryLocked places the expiry warning and close for exp (none for a
// zero exp), measured on the Guard's clock.
func (c *Conn) setExpiryLocked(exp time.Time) {
	c.warnAt, c.expireAt = 0, 0
	if exp.IsZero() {
		return
	}
	g := c.g
	now := time.Since(c.born)
	c.expireAt = max(now+exp.Add(g.cfg.clockSkew).Sub(g.now()), 1)
	if w := g.cfg.expiryWarning; w > 0 {
		c.warnAt = max(now+exp.Add(-w).Sub(g.now()), 1)
	}
}

// rearm moves the token deadline after a re-authentication.
func (c *Conn) rearm(exp time.Time) {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if c.tstopped {
		return
	}
	c.setExpiryLocked(exp)
	c.timer.Reset(c.nextDueLocked())
}

// nextDueLocked returns how long until the earliest deadline.
func (c *Conn) nextDueLocked() time.Duration {
	next := min(c.nextPing, c.ageAt)
	for _, d := range [...]time.Duration{c.warnAt, c.expireAt} {
		if d > 0 && d < next {
			next = d
		}
	}
	return max(next-time.Since(c.born), 0)
}

// onTimer runs on the timer's own goroutine, for as long as it takes.
func (c *Conn) onTimer() {
	g := c.g
	c.tmu.Lock()
	if c.tstopped {
		c.tmu.Unlock()
		return
	}
	now := time.Since(c.born)
	age := c.ageAt <= now
	expire := c.expireAt > 0 && c.expireAt <= now
	warn := c.warnAt > 0 && c.warnAt <= now
	ping := c.nextPing <= now
	if expire {
		c.expireAt = 0
	}
	if warn {
		c.warnAt = 0
	}
	if ping {
		c.nextPing = now + g.cfg.pingInterval
	}
	if !age && !expire {
		c.timer.Reset(c.nextDueLocked())
	}
	c.tmu.Unlock()
	if ping {
		_ = c.out(pingFrame, false)
	}
	if warn {
		if p := c.Principal(); p != nil {
			c.enqueue(expiringFrame(p.ExpiresAt.Sub(g.now())))
		}
	}
	if expire {
		ev := Event{Kind: EventMessageRefused, Reason: "token_expired", RemoteIP: c.hs.ip, CloseCode: ClosePolicy, Err: ErrTokenExpired}
		if p := c.Principal(); p != nil {
			ev.Subject = p.Subject
		}
		g.emit(c.ctx, ev)
		c.closeFor(ErrTokenExpired, ClosePolicy, "token expired")
	}
	if age {
		c.closeWith(ClosePolicy, "maximum connection age", false)
	}
}

func (c *Conn) stopTimer() {
	c.tmu.Lock()
	c.tstopped = true
	if c.timer != nil { // nil when the close came before startTimer
		c.timer.Stop()
	}
	c.tmu.Unlock()
}

// Close closes the connection with code and reason (truncated to the 123
// bytes a close frame holds). It is idempotent and safe to call
// concurrently with every other method; it does not wait for the close
// frame to be written (Wait does). It returns nil once the connection is
// closing, whether this call or an earlier one closed it, and
// ErrInvalidCloseCode for a code a server may not send; the connection is
// then closed with 1000.
func (c *Conn) Close(code int, reason string) error {
	if !sendableCode(code) {
		c.closeWith(CloseNormal, reason, false)
		return fmt.Errorf("%w: %d", ErrInvalidCloseCode, code)
	}
	c.closeWith(code, reason, false)
	return nil
}

// sendableCode reports whether a server may send code in a close frame.
func sendableCode(code int) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code < 1000 || code > 1014:
		return false
	}
	return code != 1004 && code != websocket.CloseNoStatusReceived && code != websocket.CloseAbnormalClosure
}

func (c *Conn) closeWith(code int, reason string, remote bool) {
	c.closeWithErr(&CloseError{Code: code, Reason: closeReason(reason), Remote: remote})
}

// closeFor closes the connection from the server's side for a refusal
// whose sentinel is cause: the CloseError matches it (nil: ErrClosed only).
func (c *Conn) closeFor(cause error, code int, reason string) {
	c.closeWithErr(&CloseError{Code: code, Reason: closeReason(reason), cause: cause})
}

// closeReason truncates reason to the 123 bytes a close frame holds,
// on a UTF-8 boundary.
func closeReason(reason string) string {
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return reason
}

// closeWithErr records ce as the connection's close, if it is the first,
// and starts the teardown.
func (c *Conn) closeWithErr(ce *CloseError) {
	c.closeOnce.Do(func() {
		c.closeErr.Store(ce)
		close(c.done)
		go c.teardown()
	})
}

// teardown runs once, on a goroutine of its own, after the close. It
// flushes what was accepted before the close (a handler's last Sends, the
// error frame of the refusal that ended the connection), then the close
// frame on a local close, all within closeGrace; then it closes the
// socket, releases the slot and logs the close.
func (c *Conn) teardown() {
	ce := c.closeErr.Load()
	c.stopTimer()
	c.wmu.Lock()
	c.wstop = true
	c.wclosing = time.Now().Add(closeGrace)
	// A drainer blocked with the write timeout gives up within the grace.
	_ = c.nc.SetWriteDeadline(c.wclosing)
	if !ce.Remote && !c.closeSent && !c.wfailed {
		code := ce.Code
		if !sendableCode(code) {
			code = CloseNormal
		}
		c.wq = append(c.wq, controlFrame(websocket.CloseMessage, websocket.FormatCloseMessage(code, ce.Reason)))
		c.closeSent = true
	}
	var idle chan struct{}
	if c.wbusy {
		idle = make(chan struct{})
		c.widle = idle
	} else {
		c.wbusy = true
	}
	c.wmu.Unlock()
	if idle != nil {
		<-idle // bounded: every write from now on has the close's deadline
	} else {
		c.drain()
	}
	c.wmu.Lock()
	linger := !ce.Remote && c.closeSent && !c.wfailed
	c.wmu.Unlock()
	if linger {
		// Wait (within closeGrace) for the client's answer before
		// closing: closing a socket over unread data resets the
		// connection, and the client may then never read our close
		// frame (a browser reports 1006 instead of 1009).
		c.lingerForClose()
	}
	c.ws.Close()
	c.cancel()
	c.hs.lease.release()
	g := c.g
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	// Reason is a stable code (a metrics label); the close frame's text,
	// which the client chooses when it closes first, is only Detail.
	reason := "closed_by_server"
	switch {
	case ce.Remote && ce.Code == websocket.CloseAbnormalClosure:
		reason = "closed_by_peer" // EOF or reset, no close frame: instability, not abuse
	case ce.Remote:
		reason = "closed_by_client"
	}
	ev := Event{Kind: EventConnClosed, Reason: reason, Detail: ce.Reason, RemoteIP: c.hs.ip, CloseCode: ce.Code, Duration: g.now().Sub(c.opened)}
	if p := c.Principal(); p != nil {
		ev.Subject = p.Subject
	}
	g.emit(context.Background(), ev)
	close(c.gone)
	g.wg.Done()
}

// lingerForClose discards what the client still sends until it closes
// the connection or closeGrace passes, reading the socket directly: after
// a read-limit or protocol error gorilla's reader cannot be used again. A
// reader still inside ReadMessage is unblocked by the read deadline and
// waited for (bounded by closeGrace too), so there is never more than one
// reader.
func (c *Conn) lingerForClose() {
	if c.nc.SetReadDeadline(time.Now().Add(closeGrace)) != nil {
		return
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case c.readSem <- struct{}{}:
	case <-t.C:
		return // a reader is stuck in application code: give up
	}
	defer func() { <-c.readSem }()
	_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, lingerMaxBytes))
}

// lingerMaxBytes bounds what lingerForClose reads from a client that keeps
// sending after the close.
const lingerMaxBytes = 1 << 20

// Wait blocks until the connection is fully torn down (socket closed, slot
// released) or ctx ends: for a program that must know the connection's
// quota slot is free again, such as one that reconnects the same subject
// under a tight WithConnLimits.
func (c *Conn) Wait(ctx context.Context) error {
	select {
	case <-c.gone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reasonWriter is the ResponseWriter Upgrade hands to gorilla: its
// Hijack returns the connection as a reasonConn.
type reasonWriter struct{ http.ResponseWriter }

func (w reasonWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &reasonConn{Conn: nc}, brw, nil
}

// Unwrap gives http.ResponseController the writer underneath.
func (w reasonWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// reasonConn is the socket under gorilla. Once the Conn is attached (c),
// what gorilla writes itself (the close frames it answers a close or a
// protocol error with) goes through the Conn's write owner like every
// other frame, and its write deadlines are ignored: the owner sets its
// own. When a frame's header declares more than the read limit, gorilla
// sends its own close frame — 1009 with no reason — before wssec sees the
// error; reasonConn sends that one frame with the reason wssec's own 1009
// closes carry (wssec never writes that exact frame: its closes always
// have a reason).
type reasonConn struct {
	net.Conn
	c *Conn // set by newConn, on the goroutine that upgraded, before any other use
}

var (
	bareTooBig      = websocket.FormatCloseMessage(CloseTooBig, "")
	bareTooBigFrame = append([]byte{0x80 | websocket.CloseMessage, byte(len(bareTooBig))}, bareTooBig...)
	tooBigReason    = websocket.FormatCloseMessage(CloseTooBig, "message too big")
	tooBigFrameWhy  = append([]byte{0x80 | websocket.CloseMessage, byte(len(tooBigReason))}, tooBigReason...)
)

func (rc *reasonConn) Write(p []byte) (int, error) {
	f := p
	if len(p) == len(bareTooBigFrame) && string(p) == string(bareTooBigFrame) {
		f = tooBigFrameWhy
	}
	if rc.c == nil {
		if _, err := rc.Conn.Write(f); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if err := rc.c.out(f, true); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (rc *reasonConn) SetWriteDeadline(t time.Time) error {
	if rc.c != nil {
		return nil // the write owner sets its own deadlines
	}
	return rc.Conn.SetWriteDeadline(t)
}

func (rc *reasonConn) SetDeadline(t time.Time) error {
	if rc.c != nil {
		return rc.Conn.SetReadDeadline(t)
	}
	return rc.Conn.SetDeadline(t)
}

// errorFrame builds {"action":"error","id":…,"error":{"code":…,"message":…}}.
func errorFrame(id []byte, code, msg string) []byte {
	b := make([]byte, 0, 48+len(id)+len(code)+len(msg))
	b = append(b, `{"action":"error"`...)
	if len(id) > 0 {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"error":{"code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	return append(b, "}}"...)
}

func pongFrame(id []byte) []byte {
	b := make([]byte, 0, 24+len(id))
	b = append(b, `{"action":"pong"`...)
	if len(id) > 0 {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it (HTML-safe: <, > and & escaped; invalid UTF-8 as U+FFFD;
// U+2028 and U+2029 escaped), without its reflection.
func appendJSONString[S string | []byte](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		}
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
