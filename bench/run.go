package bench

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Op performs one unit of work (a round trip, a handshake).
type Op func() error

// Pool is a fixed set of workers, each with its own Op (and typically its
// own socket), ready to run. Setting a pool up is not timed; Count and
// For are.
type Pool struct {
	ops     []Op
	cleanup []func()
}

// NewPool builds workers workers with newOp; if one fails, the ones built
// so far are cleaned up.
func NewPool(workers int, newOp func(i int) (Op, func(), error)) (*Pool, error) {
	p := &Pool{}
	for i := 0; i < workers; i++ {
		op, done, err := newOp(i)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.ops = append(p.ops, op)
		if done != nil {
			p.cleanup = append(p.cleanup, done)
		}
	}
	return p, nil
}

// Count runs exactly n ops in total, spread over the workers, and returns
// the first error.
func (p *Pool) Count(n int) error {
	var next atomic.Int64
	limit := int64(n)
	_, err := p.run(func(op Op) (int64, error) {
		var done int64
		for next.Add(1) <= limit {
			if err := op(); err != nil {
				next.Store(limit) // stop the others
				return done, err
			}
			done++
		}
		return done, nil
	})
	return err
}

// For runs ops on every worker until d has passed (or one fails) and
// returns how many completed and the time they took.
func (p *Pool) For(d time.Duration) (int64, time.Duration, error) {
	var stop atomic.Bool
	start := time.Now()
	deadline := start.Add(d)
	n, err := p.run(func(op Op) (int64, error) {
		var done int64
		for !stop.Load() && time.Now().Before(deadline) {
			if err := op(); err != nil {
				stop.Store(true)
				return done, err
			}
			done++
		}
		return done, nil
	})
	return n, time.Since(start), err
}

// run runs body once per worker, concurrently, and sums the counts.
func (p *Pool) run(body func(Op) (int64, error)) (int64, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	var sum int64
	for _, op := range p.ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := body(op)
			mu.Lock()
			sum += n
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return sum, first
}

// Close runs every worker's cleanup.
func (p *Pool) Close() {
	for _, f := range p.cleanup {
		f()
	}
	p.cleanup = nil
}

// EchoPool opens one client socket per worker to s; each op is a round
// trip.
func EchoPool(ctx context.Context, s Target, header http.Header, workers int) (*Pool, error) {
	return NewPool(workers, func(int) (Op, func(), error) {
		c, err := Dial(ctx, s, header)
		if err != nil {
			return nil, nil, err
		}
		return c.RoundTrip, func() { c.Close() }, nil
	})
}

// HandshakeWorkers is how many clients handshake concurrently: enough to
// keep two cores busy through the network round trips.
const HandshakeWorkers = 8

// HandshakePool builds workers whose op opens a socket to s and closes it.
func HandshakePool(ctx context.Context, s Target, header http.Header, workers int) (*Pool, error) {
	return NewPool(workers, func(int) (Op, func(), error) {
		d := Dialer(s.Addr)
		return func() error {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			return Handshake(ctx, d, s, header)
		}, nil, nil
	})
}

// FreshHandshakePool is HandshakePool with a token of its own for every
// handshake, taken from supply: an Authorization header with it, and
// origin. The op fails with ErrSupplyExhausted when supply runs out.
func FreshHandshakePool(ctx context.Context, s Target, origin string, supply *TokenSupply, workers int) (*Pool, error) {
	return NewPool(workers, func(int) (Op, func(), error) {
		d := Dialer(s.Addr)
		return func() error {
			tok, err := supply.Take()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			return Handshake(ctx, d, s, ProtectedHeader(origin, "Bearer "+tok))
		}, nil, nil
	})
}

// RefusedPool builds workers whose op makes a handshake that s must
// refuse with status.
func RefusedPool(ctx context.Context, s Target, header http.Header, status, workers int) (*Pool, error) {
	if status < 400 {
		return nil, errors.New("bench: a refusal status is 4xx or 5xx")
	}
	return NewPool(workers, func(int) (Op, func(), error) {
		d := Dialer(s.Addr)
		return func() error {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			return Refused(ctx, d, s, header, status)
		}, nil, nil
	})
}
