package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Once records key for ttl (SET NX PX) and reports whether it was absent:
// true the first time, false on every later call, from any Store sharing
// the prefix, until ttl has passed. ttl must be positive.
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, fmt.Errorf("redisstore: once: ttl %s is not positive", ttl)
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	s.roundTrips.Add(1)
	first, err = s.client.SetNX(octx, s.keys.once(key), "1", time.Duration(ms(ttl))*time.Millisecond).Result()
	if err != nil {
		return false, wrap(ctx, "once", err)
	}
	return first, nil
}

// PutTicket stores a one-time ticket's data for ttl. The ticket id is a
// credential: it is stored only as its SHA-256, and never appears in an
// error. ttl must be positive.
func (s *Store) PutTicket(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("redisstore: put ticket: ttl %s is not positive", ttl)
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	s.roundTrips.Add(1)
	if err := s.client.Set(octx, s.keys.ticket(id), data, time.Duration(ms(ttl))*time.Millisecond).Err(); err != nil {
		return wrap(ctx, "put ticket", err)
	}
	return nil
}

// TakeTicket returns a ticket's data and deletes it in one command
// (GETDEL), so a ticket is redeemed at most once across every Store
// sharing the prefix; ok is false when it is unknown, used or expired.
func (s *Store) TakeTicket(ctx context.Context, id string) (data []byte, ok bool, err error) {
	if err := s.checkOpen(); err != nil {
		return nil, false, err
	}
	octx, cancel := s.opCtx(ctx)
	defer cancel()
	s.roundTrips.Add(1)
	data, err = s.client.GetDel(octx, s.keys.ticket(id)).Bytes()
	switch {
	case err == nil:
		return data, true, nil
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	}
	return nil, false, wrap(ctx, "take ticket", err)
}
