package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// outcome is what the server did after a probe's frames.
type outcome struct {
	closed  bool // a close frame arrived
	code    int
	reason  string
	dropped bool // the socket ended without a close frame
	open    bool // still open at the deadline
	msgs    int
	bytes   int64 // message sizes (inflated when compressed)
	largest int64
	pongs   int
	pings   int
	first   time.Duration // time to the first ping or close
	sample  string        // the start of the first message
	err     error         // a protocol error reading the server's frames
}

func (o outcome) String() string {
	s := o.end()
	if o.msgs > 0 {
		s += fmt.Sprintf("; %d message(s) back (%s, largest %s)", o.msgs, size(o.bytes), size(o.largest))
	}
	return s
}

// end says how the socket ended, or that it did not.
func (o outcome) end() string {
	var s string
	switch {
	case o.closed:
		s = fmt.Sprintf("closed with %d", o.code)
		if o.reason != "" {
			s += fmt.Sprintf(" %q", o.reason)
		}
	case o.dropped:
		s = "connection dropped without a close frame"
	case o.err != nil:
		s = "unreadable reply: " + o.err.Error()
	default:
		s = "still open, no close"
	}
	return s
}

func (o outcome) ended() bool { return o.closed || o.dropped }

// size formats a byte count.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// await reads the server's frames until it closes, the socket ends, or
// the deadline passes. It answers a close with a close; it stops early
// once a ping arrives when stopAtPing is set, and after a whole message
// when until (if not nil) says so.
func (c *wsConn) await(deadline time.Time, stopAtPing bool, until ...func(outcome) bool) outcome {
	var o outcome
	start := time.Now()
	var msg int64
	var compressed bool
	var cbuf []byte
	for {
		f, err := c.next(deadline)
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				o.open = true
			case errors.Is(err, errFrameTooBig), errors.Is(err, errBadLength), errors.Is(err, errShortControl):
				o.err = err
			default:
				o.dropped = true
				o.first = time.Since(start)
			}
			return o
		}
		switch f.op {
		case opClose:
			cp, err := parseClose(f.data)
			if err != nil {
				o.err = err
			}
			o.closed, o.code, o.reason = true, cp.code, cp.reason
			o.first = time.Since(start)
			_ = c.send(frame{fin: true, op: opClose, data: f.data[:min(len(f.data), 2)]}, time.Second)
			return o
		case opPing:
			o.pings++
			if o.pings == 1 {
				o.first = time.Since(start)
			}
			_ = c.send(frame{fin: true, op: opPong, data: f.data}, time.Second)
			if stopAtPing {
				return o
			}
		case opPong:
			o.pongs++
		case opText, opBinary, opContinuation:
			if f.op != opContinuation {
				msg, compressed, cbuf = 0, f.rsv&0x4 != 0 && c.deflate, cbuf[:0]
				if o.sample == "" {
					o.sample = string(f.data[:min(len(f.data), 60)])
				}
			}
			if compressed {
				if len(cbuf) < 4<<20 {
					cbuf = append(cbuf, f.data...)
				}
			} else {
				msg += int64(len(f.data))
			}
			if f.fin {
				if compressed {
					n, err := inflatedSize(cbuf, 256<<20)
					if err != nil {
						o.err = err
					}
					msg = n
				}
				o.msgs++
				o.bytes += msg
				o.largest = max(o.largest, msg)
				if len(until) > 0 && until[0](o) {
					o.open = true
					return o
				}
			}
		}
	}
}

// waitFor is how long a check waits for the server's answer.
const waitFor = 5 * time.Second

// padded is a JSON text message of exactly n bytes (n >= 12).
func padded(n int64, fill byte) []byte {
	b := make([]byte, n)
	copy(b, `{"pad":"`)
	for i := int64(8); i < n-2; i++ {
		b[i] = fill
	}
	copy(b[n-2:], `"}`)
	return b
}

// checkMessages: oversized frame, compression bomb, fragment flood,
// invalid UTF-8, oversized control frame, message flood.
func (p *prober) checkMessages(ctx context.Context) {
	const g = "messages"
	open := func(deflate bool) (*wsConn, bool) {
		spec := p.legit()
		spec.deflate = deflate
		c, err := p.attempt(ctx, spec)
		if err != nil || !c.upgraded() {
			why := "refused"
			if err != nil {
				why = err.Error()
			} else {
				why = c.statusText()
			}
			p.add(g, "-", NA, "the legitimate handshake failed: %s", why)
			return nil, false
		}
		return c, true
	}
	wait := func() time.Time { return time.Now().Add(p.remaining(waitFor)) }

	// Oversized frame.
	if c, ok := open(false); ok {
		n := p.cfg.MaxMessage + 1024
		_ = c.send(frame{fin: true, op: opText, data: padded(n, 'a')}, 10*time.Second)
		o := c.await(wait(), false, func(o outcome) bool { return o.largest >= n/2 })
		c.Close()
		switch {
		case o.largest >= n/2:
			p.add(g, "oversized", Fail, "a %s message was accepted and answered with %s: no size cap at -max-message %s", size(n), size(o.largest), size(p.cfg.MaxMessage))
		case o.ended():
			p.add(g, "oversized", Pass, "a %s message: %s", size(n), o)
		default:
			p.add(g, "oversized", Fail, "a %s message: %s (no refusal)", size(n), o)
		}
	}

	// Compression bomb.
	if c, ok := open(true); ok {
		if !c.deflate {
			p.add(g, "compression-bomb", NA, "permessage-deflate not negotiated (offered; the server declined)")
		} else {
			n := max(16<<20, 4*p.cfg.MaxMessage)
			z, err := deflateMessage(padded(n, '0'))
			if err != nil {
				p.add(g, "compression-bomb", NA, "%v", err)
			} else {
				_ = c.send(frame{fin: true, rsv: 0x4, op: opText, data: z}, 10*time.Second)
				o := c.await(wait(), false, func(o outcome) bool { return o.largest >= n/2 })
				switch {
				case o.largest >= n/2:
					p.add(g, "compression-bomb", Fail, "%s inflating to %s was accepted and answered with %s: no cap on the inflated size", size(int64(len(z))), size(n), size(o.largest))
				case o.ended():
					p.add(g, "compression-bomb", Pass, "%s inflating to %s: %s", size(int64(len(z))), size(n), o)
				default:
					p.add(g, "compression-bomb", Fail, "%s inflating to %s: %s (no refusal)", size(int64(len(z))), size(n), o)
				}
			}
		}
		c.Close()
	}

	// Fragment flood: one text message that never ends, in 64-byte pieces.
	if c, ok := open(false); ok {
		total := 4 * p.cfg.MaxMessage
		const piece = 64
		var buf []byte
		buf = appendFrame(buf, frame{op: opText, data: []byte(`{"pad":"`)}, true, newMask())
		chunk := bytes.Repeat([]byte("a"), piece)
		var sent int64
		frames := 0
		var werr error
		for sent < total && ctx.Err() == nil {
			buf = appendFrame(buf, frame{op: opContinuation, data: chunk}, true, newMask())
			sent += piece
			frames++
			if len(buf) >= 64<<10 {
				if werr = c.write(buf, 5*time.Second); werr != nil {
					break
				}
				buf = buf[:0]
			}
		}
		if werr == nil && len(buf) > 0 {
			werr = c.write(buf, 5*time.Second)
		}
		o := c.await(wait(), false)
		c.Close()
		if o.ended() {
			p.add(g, "fragment-flood", Pass, "%s (%d fragments of %d B sent of %d)", o, frames, piece, total/piece)
		} else {
			p.add(g, "fragment-flood", Fail, "%d fragments (%s) of one unfinished message accepted: %s", frames, size(sent), o)
		}
	}

	// Invalid UTF-8 in a text message (RFC 6455 section 8.1: fail the connection).
	if c, ok := open(false); ok {
		bad := []byte(`{"action":"ping","id":"` + "\xff\xfe\xc3\x28" + `"}`)
		_ = c.send(frame{fin: true, op: opText, data: bad}, 5*time.Second)
		o := c.await(wait(), false, func(o outcome) bool { return strings.Contains(o.sample, "\xff\xfe") })
		c.Close()
		switch {
		case o.ended():
			p.add(g, "invalid-utf8", Pass, "a text message with bytes ff fe c3 28: %s", o)
		case strings.Contains(o.sample, "\xff\xfe"):
			p.add(g, "invalid-utf8", Fail, "a text message with bytes ff fe c3 28 was echoed back: %s", o)
		default:
			p.add(g, "invalid-utf8", Fail, "a text message with bytes ff fe c3 28: %s (RFC 6455 8.1 requires failing the connection)", o)
		}
	}

	// A control frame over 125 bytes (RFC 6455 section 5.5).
	if c, ok := open(false); ok {
		_ = c.send(frame{fin: true, op: opPing, data: bytes.Repeat([]byte("p"), 126)}, 5*time.Second)
		o := c.await(wait(), false)
		c.Close()
		switch {
		case o.ended():
			p.add(g, "control-126", Pass, "a 126-byte ping: %s", o)
		case o.pongs > 0:
			p.add(g, "control-126", Fail, "a 126-byte ping was answered with a pong: %s", o)
		default:
			p.add(g, "control-126", Fail, "a 126-byte ping: %s", o)
		}
	}

	// Message flood, read while it is sent.
	if c, ok := open(false); ok {
		got := make(chan outcome, 1)
		end := time.Now().Add(p.remaining(30 * time.Second))
		go func() { got <- c.await(end, false) }()
		var buf []byte
		sent := 0
		for sent < p.cfg.FloodCount && ctx.Err() == nil {
			buf = appendFrame(buf, frame{fin: true, op: opText, data: []byte(p.cfg.Message)}, true, newMask())
			sent++
			if len(buf) >= 32<<10 || sent == p.cfg.FloodCount {
				if err := c.write(buf, 5*time.Second); err != nil {
					break
				}
				buf = buf[:0]
			}
		}
		// Give the server waitFor after the last message, then stop reading.
		o := c.stopReading(got, time.Now().Add(p.remaining(waitFor)))
		c.Close()
		if o.ended() {
			p.add(g, "message-flood", Pass, "%d messages sent: %s", sent, o)
		} else {
			p.add(g, "message-flood", Fail, "%d messages sent in a burst: %s", sent, o)
		}
	}
}

// stopReading waits for the outcome of an await running on another
// goroutine, and from stop on keeps moving the socket's read deadline into
// the past until that await returns.
func (c *wsConn) stopReading(got <-chan outcome, stop time.Time) outcome {
	timer := time.NewTimer(time.Until(stop))
	defer timer.Stop()
	for {
		select {
		case o := <-got:
			return o
		case <-timer.C:
			c.stopAt.Store(time.Now().UnixNano())
			_ = c.nc.SetReadDeadline(time.Now())
			timer.Reset(20 * time.Millisecond)
		}
	}
}
