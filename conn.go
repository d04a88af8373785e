package wssec

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/gorilla/websocket"
	"github.com/wssec/wssec/internal/envelope"
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
type CloseError struct {
	Code   int
	Reason string
	// Remote reports whether the peer closed first.
	Remote bool
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

// closeGrace bounds how long a close may wait on a peer that does not read.
const closeGrace = time.Second

// Conn is a secured WebSocket connection. ReadMessage returns only
// messages that passed every guard; Send queues JSON for the single writer
// goroutine the Conn owns. ReadMessage must be called from one goroutine at
// a time (it serialises concurrent callers); Send and Close are safe from
// any number of goroutines.
type Conn struct {
	g      *Guard
	ws     *websocket.Conn
	hs     *handshake
	ctx    context.Context
	cancel context.CancelFunc
	opened time.Time

	principal atomic.Pointer[Principal]

	send chan []byte   // bounded queue drained by the writer
	done chan struct{} // closed by Close
	gone chan struct{} // closed when the writer finished and the socket is closed

	deadline chan time.Time // a re-authentication's new expiry, for the writer

	closeOnce sync.Once
	closeErr  atomic.Pointer[CloseError]

	readMu  sync.Mutex // one reader at a time; guards the fields below
	buf     []byte     // reused read buffer, while small
	env     envelope.Envelope
	probe   envelope.Envelope // the id and action salvaged from a refused message
	tat     int64             // message-rate state (GCRA)
	limited int               // rate-limited messages since the last accepted one
	pingTat atomic.Int64
	denials atomic.Int64 // refused messages (Deny may run on any goroutine)
}

func (g *Guard) newConn(ws *websocket.Conn, hs *handshake) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	ctx = context.WithValue(ctx, principalKey{}, hs.principal)
	c := &Conn{
		g:      g,
		ws:     ws,
		hs:     hs,
		ctx:    ctx,
		cancel: cancel,
		opened: g.now(),
		send:   make(chan []byte, g.cfg.sendQueue),
		done:   make(chan struct{}),
		gone:   make(chan struct{}),

		deadline: make(chan time.Time, 1),
	}
	c.principal.Store(hs.principal)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		cancel()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseGoingAway, "server shutdown"), time.Now().Add(closeGrace))
		ws.Close()
		return nil
	}
	g.conns[c] = struct{}{}
	g.wg.Add(1)
	g.mu.Unlock()

	// The wire limit stops a frame whose header declares too much before
	// any of it is read (gorilla's close frame then gets its reason from
	// reasonConn); the bounded reader in ReadMessage also caps the
	// decompressed size.
	ws.SetReadLimit(g.cfg.maxMessageSize)
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(g.cfg.idleTimeout))
	})
	ws.SetPingHandler(c.onPing)
	go c.writer()
	return c
}

// Context returns a context that carries the Principal and is cancelled
// when the connection closes.
func (c *Conn) Context() context.Context { return c.ctx }

// Principal returns the connection's current principal.
func (c *Conn) Principal() *Principal { return c.principal.Load() }

// Subprotocol returns the subprotocol the server selected, or "".
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// RemoteIP returns the client IP the guards used (after trusted proxies).
func (c *Conn) RemoteIP() string { return c.hs.ip.String() }

// Done is closed when the connection has been closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// onPing answers a client ping with a pong, but counts pings against the
// message rate so a ping flood cannot buy free work.
func (c *Conn) onPing(data string) error {
	tat := c.pingTat.Load()
	ok, _ := c.g.lim.msgRate.Allow(&tat, c.g.now().UnixNano())
	c.pingTat.Store(tat) // the reader goroutine is the only writer
	if !ok {
		c.limited++
		if c.limited >= c.g.cfg.denialLimit {
			c.refused(Event{Reason: "ping_flood", CloseCode: CloseTryAgainLater})
			c.closeWith(CloseTryAgainLater, "ping flood", false)
		}
		return nil
	}
	err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.g.cfg.writeTimeout))
	if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	}
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
	c.readMu.Lock()
	defer c.readMu.Unlock()
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
		c.closeWith(CloseTooBig, "message too big", false)
		c.refused(Event{Reason: "message_too_big", CloseCode: CloseTooBig})
		return nil, c.closedErr()
	}
	m, err := c.admit(mt, c.buf)
	if cap(c.buf) > keptReadBuffer {
		c.buf = nil // admit copied what it keeps; an idle socket holds no large buffer
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

// admit runs the message guards on one complete frame: message rate,
// frame type, strict envelope (which also checks UTF-8), registered
// action and payload schema, channel rules, Policy. It returns (nil, nil)
// for a message that was refused or answered internally.
func (c *Conn) admit(mt int, data []byte) (*Message, error) {
	g := c.g
	// Message rate, before any parsing.
	if ok, _ := g.lim.msgRate.Allow(&c.tat, g.now().UnixNano()); !ok {
		if mt == websocket.TextMessage && !utf8.Valid(data) {
			// Invalid UTF-8 fails the connection whatever the rate
			// (envelope.Parse checks it on the accepting path).
			c.closeWith(CloseInvalidData, "invalid utf-8", false)
			c.refused(Event{Reason: "invalid_utf8", CloseCode: CloseInvalidData})
			return nil, c.closedErr()
		}
		if g.cfg.reportOnly[GuardMessageRate] {
			c.reportOnly(Event{Reason: "rate_limited"})
		} else {
			c.limited++
			if c.limited >= g.cfg.denialLimit {
				c.refused(Event{Reason: "rate_abuse", CloseCode: CloseTryAgainLater})
				c.closeWith(CloseTryAgainLater, "message rate exceeded", false)
				return nil, c.closedErr()
			}
			// Echo the id, so a client waiting on it learns its request
			// was dropped; finding it is one linear look at the frame.
			envelope.Salvage(data, g.msg.limits, &c.probe)
			c.deny(c.probe.ID, "rate_limited", "rate limit exceeded", Event{Reason: "rate_limited"}, false)
			return nil, nil
		}
	}
	c.limited = 0

	if mt != websocket.TextMessage && !g.cfg.binary {
		envelope.Salvage(data, g.msg.limits, &c.probe)
		c.deny(c.probe.ID, envelope.CodeInvalidMessage, "binary frames are not accepted", Event{Reason: "binary_frame"}, true)
		return nil, c.closedErr()
	}

	mr := g.msg
	env := &c.env
	if err := envelope.Parse(data, mr.limits, mr.schemaFor, env); err != nil {
		if err == envelope.ErrInvalidUTF8 && mt == websocket.TextMessage {
			// RFC 6455 §8.1: a text frame that is not UTF-8 fails the
			// connection (gorilla does not check this).
			c.closeWith(CloseInvalidData, "invalid utf-8", false)
			c.refused(Event{Reason: "invalid_utf8", CloseCode: CloseInvalidData})
			return nil, c.closedErr()
		}
		var ee *envelope.Error
		if !errors.As(err, &ee) {
			ee = envelope.ErrInvalidJSON
		}
		// Keep the error-frame contract: a well-formed message whose
		// action is not registered is unknown_action whatever else it
		// holds, and the client's id is echoed whenever the frame held
		// one well-formed id. (Refusals are bounded by the rate and
		// denial limits, so this second look costs little.)
		id, action := env.ID, env.Action
		reason := ee.Code
		if ee != envelope.ErrUnknownAction {
			// The event tells a broken envelope from a payload that does
			// not fit its schema (the client sees invalid_message for both):
			// a frame that passes as an envelope with no schema checked
			// failed only in its payload.
			reason = reasonInvalidEnvelope
			if envelope.Parse(data, mr.limits, nil, &c.probe) == nil {
				reason = reasonInvalidPayload
			}
			ee = envelope.Refine(data, mr.limits, mr.schemaFor, ee, &c.probe)
			id, action = c.probe.ID, c.probe.Action
			if ee == envelope.ErrUnknownAction {
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
		ev := Event{Reason: "invalid_message", Detail: "channel required", Action: action}
		if !g.cfg.reportOnly[GuardChannel] {
			c.deny(env.ID, envelope.CodeInvalidMessage, "channel required", ev, true)
			return nil, c.closedErr()
		}
		c.reportOnly(ev)
	}
	if len(reg.scopes) > 0 {
		if why := authorizeAction(reg, c.Principal()); why != "" {
			ev := Event{Reason: "forbidden", Detail: why, Action: action, Channel: string(env.Channel)}
			if !g.cfg.reportOnly[GuardChannel] {
				c.deny(env.ID, "forbidden", "forbidden", ev, true)
				return nil, c.closedErr()
			}
			c.reportOnly(ev)
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
	if reason := mr.decodeInto(reg, m.Payload, arena, val); reason != "" {
		ev.Reason, ev.Detail = reasonInvalidPayload, reason
		c.deny(env.ID, envelope.CodeInvalidMessage, reason, ev, true)
		return nil, c.closedErr()
	}
	m.Data = val.Interface()

	p := c.Principal()
	if m.Channel != "" {
		rule, why := mr.authorizeChannel(m.Channel, action, p)
		ev.Pattern = rule
		if why != "" {
			ev.Reason, ev.Detail = "forbidden", why
			if !g.cfg.reportOnly[GuardChannel] {
				c.deny(env.ID, "forbidden", "forbidden", ev, true)
				return nil, c.closedErr()
			}
			c.reportOnly(ev)
		}
	}
	if mr.policy != nil {
		if err := mr.policy(c.ctx, p, m); err != nil {
			ev.Reason, ev.Detail = "forbidden", "policy: "+err.Error()
			if !g.cfg.reportOnly[GuardPolicy] {
				c.deny(env.ID, "forbidden", "forbidden", ev, true)
				return nil, c.closedErr()
			}
			c.reportOnly(ev)
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
	if len(a) > envelope.DefaultMaxActionLen {
		return ""
	}
	return string(a)
}

// deny answers a refused message with an error frame, logs it, and closes
// the connection with 1008 when counted refusals reach the denial limit.
func (c *Conn) deny(id []byte, code, msg string, ev Event, count bool) {
	// Record first, answer second: once the client reads the error frame,
	// the event is out and any ban it earned is in place.
	c.refused(ev)
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
		c.refused(Event{Reason: "denial_limit", CloseCode: ClosePolicy})
		c.closeWith(ClosePolicy, "too many refused messages", false)
	}
}

// reportOnly records a refusal that a report-only guard let through.
func (c *Conn) reportOnly(ev Event) {
	ev.Kind = EventReportOnly
	ev.RemoteIP = c.hs.ip
	if p := c.Principal(); p != nil {
		ev.Subject = p.Subject
	}
	c.g.emit(c.ctx, ev)
}

func (c *Conn) refused(ev Event) {
	ev.Kind = EventMessageRefused
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
		c.refused(Event{Reason: "message_too_big", CloseCode: CloseTooBig})
		c.closeWith(CloseTooBig, "message too big", false)
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.closeWith(CloseGoingAway, "idle timeout", false)
		} else if peerLost(err) {
			c.closeWith(websocket.CloseAbnormalClosure, "connection lost", true)
		} else {
			// A protocol error (bad frame, bad close code, reserved bits…):
			// gorilla has already sent its close frame.
			c.refused(Event{Reason: "protocol_error", Detail: truncate(err.Error(), 200), CloseCode: websocket.CloseProtocolError})
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

// Send marshals v to JSON once and queues it for the writer. It never
// blocks on the network: when the queue is full the client is too slow,
// and the connection is closed with 1013.
func (c *Conn) Send(ctx context.Context, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.closedErr(); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wssec: send: %w", err)
	}
	if !c.enqueue(b) {
		if ce := c.closedErr(); ce != nil {
			return ce
		}
		return ErrSlowConsumer
	}
	return nil
}

// enqueue queues a frame without blocking; a full queue closes the
// connection with 1013.
func (c *Conn) enqueue(b []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.send <- b:
		return true
	default:
		c.g.emit(c.ctx, Event{Kind: EventMessageRefused, Reason: "slow_consumer", RemoteIP: c.hs.ip, CloseCode: CloseTryAgainLater})
		c.closeWith(CloseTryAgainLater, "slow consumer", false)
		return false
	}
}

// Close closes the connection with code and reason (truncated to the 123
// bytes a close frame holds). It is idempotent and safe to call
// concurrently with every other method; it does not wait for the close
// frame to be written.
func (c *Conn) Close(code int, reason string) error {
	c.closeWith(code, reason, false)
	return nil
}

func (c *Conn) closeWith(code int, reason string, remote bool) {
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	c.closeWithErr(&CloseError{Code: code, Reason: reason, Remote: remote})
}

// closeWithErr records ce as the connection's close, if it is the first.
func (c *Conn) closeWithErr(ce *CloseError) {
	c.closeOnce.Do(func() {
		c.closeErr.Store(ce)
		close(c.done)
		// Unblock a writer stuck on a peer that does not read.
		_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(closeGrace))
	})
}

// writer is the only goroutine that writes data frames. It also pings,
// enforces the maximum connection age and the token's expiry, and tears
// the connection down.
func (c *Conn) writer() {
	g := c.g
	var pending []byte // a frame taken from the queue after the close
	defer func() { c.teardown(pending) }()
	ping := time.NewTicker(g.cfg.pingInterval)
	defer ping.Stop()
	age := time.NewTimer(g.cfg.maxConnAge)
	defer age.Stop()
	var exp expiryTimers
	defer exp.stop()
	if p := c.Principal(); p != nil {
		exp.set(g, p.ExpiresAt)
	}
	for {
		select {
		case b := <-c.send:
			select {
			case <-c.done:
				// Closed meanwhile: the teardown flushes b within the
				// close's grace period rather than the write timeout.
				pending = b
				return
			default:
			}
			if err := c.write(b); err != nil {
				c.closeWith(websocket.CloseAbnormalClosure, "write failed", false)
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(g.cfg.writeTimeout)); err != nil {
				c.closeWith(websocket.CloseAbnormalClosure, "ping failed", false)
			}
		case <-age.C:
			c.closeWith(ClosePolicy, "maximum connection age", false)
		case t := <-c.deadline: // re-authenticated
			exp.set(g, t)
		case <-exp.warnC():
			if p := c.Principal(); p != nil {
				c.enqueue(expiringFrame(p.ExpiresAt.Sub(g.now())))
			}
		case <-exp.expireC():
			c.g.emit(c.ctx, Event{Kind: EventMessageRefused, Reason: "token_expired", RemoteIP: c.hs.ip, Subject: c.Principal().Subject, CloseCode: ClosePolicy})
			c.closeWith(ClosePolicy, "token expired", false)
		case <-c.done:
			return
		}
	}
}

func (c *Conn) write(b []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.g.cfg.writeTimeout)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// teardown runs once, on the writer goroutine, after Close. On a local
// close it first flushes what was queued before the close (pending, then
// the queue), so that a handler's last Sends and the error frame of the
// refusal that ended the connection reach the client before the close
// frame; all of it within closeGrace.
func (c *Conn) teardown(pending []byte) {
	ce := c.closeErr.Load()
	if !ce.Remote {
		if c.ws.SetWriteDeadline(time.Now().Add(closeGrace)) == nil {
			c.flush(pending)
		}
		code := ce.Code
		if code == websocket.CloseAbnormalClosure || code == websocket.CloseNoStatusReceived || code == 0 {
			code = CloseNormal
		}
		err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ce.Reason), time.Now().Add(closeGrace))
		if err == nil || errors.Is(err, websocket.ErrCloseSent) { // gorilla sent the 1009 (reasonConn)
			// Wait (within closeGrace) for the client's answer before
			// closing: closing a socket over unread data resets the
			// connection, and the client may then never read our close
			// frame (a browser reports 1006 instead of 1009).
			c.lingerForClose()
		}
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

// flush writes pending and the frames queued now, stopping at the first
// write error; the caller has set the write deadline.
func (c *Conn) flush(pending []byte) {
	if pending != nil {
		if c.ws.WriteMessage(websocket.TextMessage, pending) != nil {
			return
		}
	}
	for {
		select {
		case b := <-c.send:
			if c.ws.WriteMessage(websocket.TextMessage, b) != nil {
				return
			}
		default:
			return
		}
	}
}

// lingerForClose discards what the client still sends until it closes
// the connection or closeGrace passes, reading the socket directly: after
// a read-limit or protocol error gorilla's reader cannot be used again. A
// reader still inside ReadMessage is unblocked by the read deadline and
// waited for (bounded by closeGrace too), so there is never more than one
// reader.
func (c *Conn) lingerForClose() {
	deadline := time.Now().Add(closeGrace)
	nc := c.ws.NetConn()
	if nc.SetReadDeadline(deadline) != nil {
		return
	}
	for !c.readMu.TryLock() {
		if time.Now().After(deadline) {
			return // a reader is stuck in application code: give up
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer c.readMu.Unlock()
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, lingerMaxBytes))
}

// lingerMaxBytes bounds what lingerForClose reads from a client that keeps
// sending after the close.
const lingerMaxBytes = 1 << 20

// Wait blocks until the connection is fully torn down (socket closed, slot
// released) or ctx ends.
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
	return reasonConn{nc}, brw, nil
}

// Unwrap gives http.ResponseController the writer underneath.
func (w reasonWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// reasonConn is the socket under gorilla. When a frame's header declares
// more than the read limit, gorilla sends its own close frame — 1009 with
// no reason — before wssec sees the error; reasonConn writes that one
// frame with the reason wssec's own 1009 closes carry. Every other write
// passes through unchanged (wssec never writes that exact frame: its
// closes always have a reason).
type reasonConn struct{ net.Conn }

var (
	bareTooBig      = websocket.FormatCloseMessage(CloseTooBig, "")
	bareTooBigFrame = append([]byte{0x80 | websocket.CloseMessage, byte(len(bareTooBig))}, bareTooBig...)
	tooBigReason    = websocket.FormatCloseMessage(CloseTooBig, "message too big")
	tooBigFrameWhy  = append([]byte{0x80 | websocket.CloseMessage, byte(len(tooBigReason))}, tooBigReason...)
)

func (c reasonConn) Write(p []byte) (int, error) {
	if len(p) == len(bareTooBigFrame) && string(p) == string(bareTooBigFrame) {
		if _, err := c.Conn.Write(tooBigFrameWhy); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// errorFrame builds {"action":"error","id":…,"error":{"code":…,"message":…}}.
func errorFrame(id []byte, code, msg string) []byte {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	f := struct {
		Action string `json:"action"`
		ID     string `json:"id,omitempty"`
		Error  body   `json:"error"`
	}{Action: actionError, ID: string(id), Error: body{code, msg}}
	b, _ := json.Marshal(f)
	return b
}

func pongFrame(id []byte) []byte {
	f := struct {
		Action string `json:"action"`
		ID     string `json:"id,omitempty"`
	}{Action: actionPong, ID: string(id)}
	b, _ := json.Marshal(f)
	return b
}
