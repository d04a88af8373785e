package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec"
)

// Timing of the notices feed.
const (
	// pingEvery is how long the feed waits for a message before it pings
	// the subscription; a ping unanswered within the Store's timeout ends
	// the subscription, so a silently dead connection is noticed within
	// pingEvery plus the timeout.
	pingEvery = time.Second
	// minBackoff and maxBackoff bound the wait between attempts to
	// subscribe again: it starts at minBackoff and doubles up to
	// maxBackoff while attempts keep failing.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
	// fullRetry is how often a mirror that had to refuse an entry is
	// reloaded, until the live entries fit again.
	fullRetry = 2 * time.Second
)

// Subscribe calls fn with every revocation any Store sharing the prefix
// records, and with the zero Revocation each time the notices feed has
// been (re)subscribed and its snapshot (re)loaded, the first time
// included: revocations may have been missed meanwhile, so every live
// socket should be checked again. Ban notices are not passed to fn. fn is
// called from the feed goroutine, one call at a time, and must not block
// for long (Close waits for it).
//
// The feed is one goroutine that belongs to the Store: it starts with
// the first call to Subscribe, Revoked or Banned and ends when the Store
// is closed, retrying with a backoff (100 ms doubling to 2 s) whenever
// the subscription breaks. ctx bounds only the callback: fn is not
// called once ctx is done, and a later Subscribe may then register
// another fn; while ctx is live a second Subscribe fails with
// ErrSubscribed.
//
// Subscribe returns once the first attempt to subscribe and load has
// ended, or after the Store's timeout. It returns nil even when Redis is
// down: the feed keeps trying, and Revoked and Banned fail until it
// succeeds.
func (s *Store) Subscribe(ctx context.Context, fn func(wssec.Revocation)) error {
	if fn == nil {
		return errors.New("redisstore: subscribe: nil callback")
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fail("subscribe", err)
	}
	s.feedMu.Lock()
	if s.fn != nil && s.fnCtx.Err() == nil {
		s.feedMu.Unlock()
		return ErrSubscribed
	}
	s.fn, s.fnCtx = fn, ctx
	s.feedMu.Unlock()
	return s.awaitFeed(ctx, "subscribe")
}

// awaitFeed starts the feed if it is not running and, until its first
// attempt has ended, waits for that (up to the Store's timeout).
func (s *Store) awaitFeed(ctx context.Context, op string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if !s.feedStarted {
		s.feedStarted = true
		s.wg.Add(1)
		go s.runFeed()
	}
	s.mu.Unlock()
	select {
	case <-s.firstTry:
		return nil
	default:
	}
	t := time.NewTimer(s.cfg.timeout)
	defer t.Stop()
	select {
	case <-s.firstTry:
	case <-t.C:
	case <-ctx.Done():
		return fail(op, ctx.Err())
	case <-s.ctx.Done():
		return ErrClosed
	}
	return nil
}

// runFeed is the feed goroutine: it subscribes, loads the mirror and
// follows the channel until the subscription breaks, then tries again
// after a backoff, until Close.
func (s *Store) runFeed() {
	defer s.wg.Done()
	backoff := minBackoff
	for {
		loaded := s.session()
		s.mirror.setUp(false)
		s.firstOnce.Do(func() { close(s.firstTry) })
		if loaded {
			backoff = minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !loaded {
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// session runs one subscription until it breaks or the Store closes. It
// reports whether the mirror was loaded during it.
func (s *Store) session() (loaded bool) {
	if s.ctx.Err() != nil {
		return false
	}
	sctx, cancel := s.opCtx(s.ctx)
	ps := s.client.Subscribe(sctx, s.keys.notices) // a failure shows in the first receive
	cancel()
	s.feedMu.Lock()
	if s.ctx.Err() != nil { // Close ran meanwhile and could not see ps
		s.feedMu.Unlock()
		_ = ps.Close()
		return false
	}
	s.ps = ps
	s.feedMu.Unlock()
	defer func() {
		s.feedMu.Lock()
		s.ps = nil
		s.feedMu.Unlock()
		_ = ps.Close()
	}()

	pinged := false // a ping is outstanding
	var lastLoad time.Time
	for s.ctx.Err() == nil {
		if loaded && s.mirror.full() && time.Since(lastLoad) >= fullRetry {
			if s.resync() != nil {
				return loaded
			}
			lastLoad = time.Now()
		}
		wait := pingEvery
		if pinged {
			wait = s.cfg.timeout
		}
		rctx, cancel := context.WithTimeout(s.ctx, wait+s.cfg.timeout)
		msg, err := ps.ReceiveTimeout(rctx, wait)
		cancel()
		if err != nil {
			if pinged || !isTimeout(err) {
				return loaded
			}
			pctx, cancel := s.opCtx(s.ctx)
			err = ps.Ping(pctx)
			cancel()
			if err != nil {
				return loaded
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.keys.notices {
				if s.resync() != nil {
					return loaded
				}
				loaded, lastLoad = true, time.Now()
			}
		case *redis.Message:
			if m.Channel == s.keys.notices {
				s.handle(m.Payload)
			}
		}
	}
	return loaded
}

// isTimeout reports whether err is a receive timeout (no message yet).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// resync loads the snapshot of live revocations and bans into the mirror,
// marks it up and tells the subscriber to check every socket again.
func (s *Store) resync() error {
	ctx, cancel := s.opCtx(s.ctx)
	defer cancel()
	res, err := s.run(ctx, s.sc.snapshot, []string{s.keys.revs, s.keys.revIB, s.keys.bans}, s.cfg.mirrorCapacity).Slice()
	if err != nil {
		return err
	}
	revs, bans, err := parseSnapshot(res)
	if err != nil {
		return err
	}
	s.mirror.replace(revs, bans, len(revs) > s.cfg.mirrorCapacity, len(bans) > s.cfg.mirrorCapacity, s.now())
	s.firstOnce.Do(func() { close(s.firstTry) })
	s.dispatch(wssec.Revocation{})
	return nil
}

// parseSnapshot reads the snapshot script's reply.
func parseSnapshot(res []any) (revs, bans []notice, err error) {
	if len(res) != 2 {
		return nil, nil, fmt.Errorf("snapshot: unexpected reply of %d elements", len(res))
	}
	flat, ok := res[0].([]any)
	if !ok || len(flat)%3 != 0 {
		return nil, nil, errors.New("snapshot: malformed revocations")
	}
	for i := 0; i < len(flat); i += 3 {
		member, _ := flat[i].(string)
		ib, _ := flat[i+2].(string)
		ttl, err := toInt64(flat[i+1])
		if err != nil {
			return nil, nil, fmt.Errorf("snapshot: %w", err)
		}
		kind, id, _ := strings.Cut(member, ":")
		n := notice{Kind: kind, ID: id, TTL: ttl}
		if kind == kindSubject {
			us := maxMicros // an IssuedBefore that went missing revokes every token
			if v, err := toInt64(ib); err == nil {
				us = v
			}
			n.IB = &us
		}
		if n.TTL < 1 || n.validate() != nil {
			continue // expired in flight, or not ours
		}
		revs = append(revs, n)
	}
	flat, ok = res[1].([]any)
	if !ok || len(flat)%2 != 0 {
		return nil, nil, errors.New("snapshot: malformed bans")
	}
	for i := 0; i < len(flat); i += 2 {
		key, _ := flat[i].(string)
		ttl, err := toInt64(flat[i+1])
		if err != nil {
			return nil, nil, fmt.Errorf("snapshot: %w", err)
		}
		n := notice{Kind: kindBan, ID: key, TTL: ttl}
		if n.validate() != nil {
			continue
		}
		bans = append(bans, n)
	}
	return revs, bans, nil
}

// handle applies one message of the notices channel.
func (s *Store) handle(payload string) {
	n, err := decodeNotice(payload)
	if err != nil {
		s.badNotices.Add(1)
		return
	}
	switch n.Kind {
	case kindSession:
		if sn, ok := sessionNotice(n.ID, n.R, n.O); ok {
			s.dispatchSession(sn)
		}
		return
	case kindBan:
		s.mirror.apply(n, s.now())
		if sn, ok := sessionNotice(n.ID, "banned", false); ok {
			s.dispatchSession(sn)
		}
		return
	}
	s.mirror.apply(n, s.now())
	s.dispatch(n.revocation())
}

// dispatchSession passes n to the session subscriber, if any and its
// context is live.
func (s *Store) dispatchSession(n wssec.SessionNotice) {
	s.feedMu.Lock()
	fn, ctx := s.sfn, s.sfnCtx
	s.feedMu.Unlock()
	if fn != nil && ctx.Err() == nil {
		fn(n)
	}
}

// SubscribeSessions calls fn with every session notice any Store sharing
// the prefix announces (Announce) and with one for every ban recorded
// (Ban), naming the banned subject or client IP with Reason "banned",
// so that every instance closes its own sockets of that party. It shares
// Subscribe's feed goroutine, and its rules: fn is called one call at a
// time and must not block for long; it is not called once ctx is done;
// while ctx is live a second SubscribeSessions fails with ErrSubscribed.
// Notices sent while the feed is down are not replayed (a ban still
// holds through the mirror; a disconnect is lost for that instance).
func (s *Store) SubscribeSessions(ctx context.Context, fn func(wssec.SessionNotice)) error {
	if fn == nil {
		return errors.New("redisstore: subscribe sessions: nil callback")
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fail("subscribe sessions", err)
	}
	s.feedMu.Lock()
	if s.sfn != nil && s.sfnCtx.Err() == nil {
		s.feedMu.Unlock()
		return ErrSubscribed
	}
	s.sfn, s.sfnCtx = fn, ctx
	s.feedMu.Unlock()
	return s.awaitFeed(ctx, "subscribe sessions")
}

// Announce publishes n on the notices channel, so that every Store
// sharing the prefix, this one included, passes it to its
// SubscribeSessions callback. Nothing is stored: an instance whose feed
// is down meanwhile does not see it. n must name a Subject or an IP, and
// its Reason is cut to 123 bytes.
func (s *Store) Announce(ctx context.Context, n wssec.SessionNotice) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	var key string
	switch {
	case n.Subject != "":
		key = "sub:" + n.Subject
	case n.IP.IsValid():
		key = "ip:" + n.IP.String()
	default:
		return errors.New("redisstore: announce: the notice names neither a subject nor an IP")
	}
	if !validID(key) {
		return fmt.Errorf("redisstore: announce: subject longer than %d bytes or not UTF-8", maxIDLen)
	}
	reason := n.Reason
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	for reason != "" && !utf8.ValidString(reason) {
		reason = reason[:len(reason)-1]
	}
	msg := encodeNotice(notice{Kind: kindSession, ID: key, TTL: 1, R: reason, O: n.Oldest})
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	s.roundTrips.Add(1)
	if err := s.client.Publish(octx, s.keys.notices, msg).Err(); err != nil {
		return wrap(ctx, "announce", err)
	}
	return nil
}

// dispatch passes rev to the subscriber, if any and its context is live.
func (s *Store) dispatch(rev wssec.Revocation) {
	s.feedMu.Lock()
	fn, ctx := s.fn, s.fnCtx
	s.feedMu.Unlock()
	if fn != nil && ctx.Err() == nil {
		fn(rev)
	}
}
