package redisstore

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec"
)

// Sentinel errors. Every error the Store returns starts with "redisstore:"
// and wraps the cause, so errors.Is works on these and on the go-redis and
// context errors beneath them.
var (
	// ErrUnavailable: Redis could not be reached or did not answer in time
	// (connection refused or lost, timeout, a server that is loading or a
	// cluster that is down), or the revocation feed is down. The caller
	// decides whether to fail closed or fall back.
	ErrUnavailable = errors.New("redisstore: Redis unavailable")
	// ErrFeedDown: Revoked or Banned was asked while the notices
	// subscription is not established and reloaded, so the local mirror
	// may have missed something. It is always joined with ErrUnavailable.
	ErrFeedDown = errors.New("redisstore: revocation feed down")
	// ErrMirrorFull: a local mirror holds WithMirrorCapacity live entries
	// and had to refuse a new one; Revoked (or Banned) fails until a reload
	// fits again rather than answer from an incomplete mirror. Revoked's
	// error also wraps wssec.ErrRevocationsFull, so the Guard reports an
	// EventRevocationsFull.
	ErrMirrorFull = errors.New("redisstore: mirror full")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("redisstore: store closed")
	// ErrConfig is wrapped by every configuration error New returns.
	ErrConfig = errors.New("redisstore: invalid configuration")
	// ErrSubscribed: Subscribe was called while an earlier subscription's
	// context is still live.
	ErrSubscribed = errors.New("redisstore: already subscribed")
)

// opError is an operation's failure. Its text starts with "redisstore:";
// errors.Is and errors.As see every error in errs.
type opError struct {
	msg  string
	errs []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.errs }

// fail reports a failure of operation op that is not Redis's doing, such
// as a malformed reply.
func fail(op string, err error) error {
	return &opError{msg: "redisstore: " + op + ": " + err.Error(), errs: []error{err}}
}

// wrap turns err, from the Redis call of operation op, into the Store's
// error. parent is the caller's context: when it is done the error is the
// caller's doing and is not marked unavailable.
func wrap(parent context.Context, op string, err error) error {
	if parent.Err() == nil && unavailable(err) {
		return &opError{
			msg:  "redisstore: " + op + ": unavailable: " + err.Error(),
			errs: []error{ErrUnavailable, err},
		}
	}
	return fail(op, err)
}

// feedDown is the error of Revoked and Banned while the feed is down.
func feedDown(op string) error {
	return &opError{
		msg:  "redisstore: " + op + ": revocation feed down",
		errs: []error{ErrFeedDown, ErrUnavailable},
	}
}

// mirrorFull is the error of Revoked and Banned while their mirror has
// refused an entry.
func mirrorFull(op string) error {
	errs := []error{ErrMirrorFull}
	if op == "revoked" {
		errs = append(errs, wssec.ErrRevocationsFull)
	}
	return &opError{msg: "redisstore: " + op + ": mirror full", errs: errs}
}

// unavailable reports whether err means Redis could not serve the request
// (as opposed to refusing it, such as a script error).
func unavailable(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true // network errors, timeouts, a closed pool
	}
	msg := rerr.Error()
	for _, p := range []string{"LOADING", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "BUSY", "READONLY"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
