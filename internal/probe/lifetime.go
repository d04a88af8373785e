package probe

import (
	"context"
	"errors"
	"net"
	"time"
)

// checkIdle: an idle socket should get pings or a close within -idle.
func (p *prober) checkIdle(ctx context.Context) {
	const g, check = "lifetime", "idle"
	if p.cfg.Idle <= 0 {
		p.add(g, check, NA, "skipped (-idle 0)")
		return
	}
	c, err := p.attempt(ctx, p.legit())
	if err != nil || !c.upgraded() {
		p.add(g, check, NA, "the legitimate handshake failed")
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.stopAt.Store(time.Now().UnixNano()); _ = c.nc.SetReadDeadline(time.Now()) })
	defer stop()
	end := time.Now().Add(p.cfg.Idle)
	o := c.await(end, true)
	secs := o.first.Round(100 * time.Millisecond)
	switch {
	case o.pings > 0:
		p.add(g, check, Pass, "pinged after %s of silence", secs)
	case o.closed:
		p.add(g, check, Pass, "closed with %d after %s idle", o.code, secs)
	case o.dropped:
		p.add(g, check, Pass, "dropped without a close frame after %s idle", secs)
	case time.Now().Before(end.Add(-time.Second)):
		p.add(g, check, NA, "the budget ended before -idle %s", p.cfg.Idle)
	default:
		p.add(g, check, Fail, "no ping and no close in %s of silence: idle sockets live on (set -idle above the server's ping interval)", p.cfg.Idle)
	}
}

// checkSlowRead: the probe sends -message over and over and reads
// nothing, with small socket buffers. A server that keeps reading and
// queues its replies without bound will, once the probe reads, send back
// far more than kernel buffers hold; a bounded one stops reading
// (backpressure) or closes.
func (p *prober) checkSlowRead(ctx context.Context) {
	const g, check = "lifetime", "slow-reader"
	spec := p.legit()
	spec.rcvBuf = 4 << 10
	c, err := p.attempt(ctx, spec)
	if err != nil || !c.upgraded() {
		p.add(g, check, NA, "the legitimate handshake failed")
		return
	}
	defer c.Close()
	var batch []byte
	mask := newMask()
	for len(batch) < 64<<10 {
		batch = appendFrame(batch, frame{fin: true, op: opText, data: []byte(p.cfg.Message)}, true, mask)
	}
	var written int64
	blocked, ended := false, false
	stopWriting := time.Now().Add(p.remaining(60 * time.Second))
	for written < p.cfg.SlowReadBytes && ctx.Err() == nil && time.Now().Before(stopWriting) {
		if err := c.write(batch, 3*time.Second); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				blocked = true
			} else {
				ended = true
			}
			break
		}
		written += int64(len(batch))
	}
	_ = c.nc.SetWriteDeadline(time.Time{})

	// Now read what comes back, until 3 s pass with nothing.
	var back int64
	var last outcome
	for ctx.Err() == nil {
		last = c.await(time.Now().Add(p.remaining(3*time.Second)), false)
		back += last.bytes
		if !last.open || last.msgs == 0 {
			break
		}
	}
	switch {
	case blocked:
		p.add(g, check, Pass, "stopped reading after %s written while the probe read nothing (backpressure); %s came back once read", size(written), size(back))
	case ended || last.ended():
		how := "the socket ended"
		if last.ended() {
			how = last.end()
		}
		p.add(g, check, Pass, "after %s written while the probe read nothing: %s; %s came back", size(written), how, size(back))
	case back > p.cfg.SlowReadBytes/2:
		p.add(g, check, Fail, "accepted %s while the probe read nothing, then sent %s back: replies are buffered without bound", size(written), size(back))
	case back < written/16:
		p.add(g, check, NA, "only %s came back for %s of -message: too little to judge (give a -message the endpoint answers)", size(back), size(written))
	default:
		p.add(g, check, Pass, "%s came back for %s written while the probe read nothing", size(back), size(written))
	}
}
