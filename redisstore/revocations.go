package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wssec/wssec"
)

// Revoke records rev for rev.TTL and publishes it on the notices channel
// in the same script, so that every Store sharing the prefix (this one
// included) learns of it through its feed. A revocation with a TokenID
// revokes that token (Subject is then ignored); otherwise Subject names
// the subject whose tokens issued at or before IssuedBefore are revoked.
// While one lives, a later revocation of the same subject only moves
// IssuedBefore forward, and a revocation's expiry only grows. TTL must be
// positive; TTLs beyond 100 years are shortened to it, and IssuedBefore
// is kept to the microsecond, rounded up. The local mirror is updated at
// once, so this Store's Revoked sees the revocation when Revoke returns.
func (s *Store) Revoke(ctx context.Context, rev wssec.Revocation) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if rev.TTL <= 0 {
		return fmt.Errorf("redisstore: revoke: TTL %s is not positive", rev.TTL)
	}
	var n notice
	ib := ""
	switch {
	case rev.TokenID != "":
		n = notice{Kind: kindToken, ID: rev.TokenID}
	case rev.Subject != "":
		us := issuedBeforeMicros(rev.IssuedBefore)
		n = notice{Kind: kindSubject, ID: rev.Subject, IB: &us}
		ib = strconv.FormatInt(us, 10)
	default:
		return errors.New("redisstore: revoke: the revocation names neither a subject nor a token id")
	}
	if !validID(n.ID) {
		return fmt.Errorf("redisstore: revoke: subject or token id longer than %d bytes or not UTF-8", maxIDLen)
	}
	n.TTL = ms(rev.TTL)
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	err := s.run(octx, s.sc.revoke, []string{s.keys.revs, s.keys.revIB},
		n.Kind+":"+n.ID, n.TTL, ib, s.keys.notices, encodeNotice(n)).Err()
	if err != nil {
		return wrap(ctx, "revoke", err)
	}
	s.mirror.apply(n, s.now())
	return nil
}

// Revoked reports whether a token of subject, with id tokenID (may be
// empty) and issued at issuedAt (zero when unknown), is revoked. It is
// answered from the local mirror, without a round trip. The mirror is
// valid only while the notices feed is subscribed and its snapshot
// loaded: otherwise Revoked fails with an error wrapping ErrFeedDown and
// ErrUnavailable (the Guard then fails closed). The first call starts the
// feed if Subscribe has not, and waits for it up to the Store's timeout.
// When the revocation mirror has had to refuse an entry it fails with
// ErrMirrorFull until a reload fits.
func (s *Store) Revoked(ctx context.Context, subject, tokenID string, issuedAt time.Time) (bool, error) {
	if err := s.awaitFeed(ctx, "revoked"); err != nil {
		return false, err
	}
	return s.mirror.revoked(subject, tokenID, issuedAt, s.now())
}

// Ban bans key ("ip:<addr>" or "sub:<subject>") for ttl: it is recorded
// and published on the notices channel in one script, and the local
// mirror is updated at once. A ban's expiry only grows: a shorter later
// ban does not shorten it. ttl must be positive; ttls beyond 100 years are
// shortened to it. Ban notices update every Store's mirror but are not
// passed to Subscribe's callback.
func (s *Store) Ban(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("redisstore: ban: ttl %s is not positive", ttl)
	}
	if !validID(key) {
		return fmt.Errorf("redisstore: ban: key empty, longer than %d bytes or not UTF-8", maxIDLen)
	}
	n := notice{Kind: kindBan, ID: key, TTL: ms(ttl)}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	err := s.run(octx, s.sc.ban, []string{s.keys.bans}, key, n.TTL, s.keys.notices, encodeNotice(n)).Err()
	if err != nil {
		return wrap(ctx, "ban", err)
	}
	s.mirror.apply(n, s.now())
	return nil
}

// Banned reports whether key is banned and for how long yet, from the
// local mirror, like Revoked: while the feed is down it fails with an
// error wrapping ErrFeedDown and ErrUnavailable (the Guard then uses its
// own bans), and with ErrMirrorFull while the ban mirror has had to refuse
// an entry.
func (s *Store) Banned(ctx context.Context, key string) (remaining time.Duration, banned bool, err error) {
	if err := s.awaitFeed(ctx, "banned"); err != nil {
		return 0, false, err
	}
	return s.mirror.banned(key, s.now())
}
