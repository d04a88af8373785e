package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wssec/wssec"
)

// Store is a wssec.SharedStore kept in Redis, so that every instance of a
// service enforces one set of limits, revocations, bans, replay caches and
// tickets. Build one with New and give it to wssec.WithStore; Close it
// after the Guard.
//
// A Store is safe for concurrent use. It does not own the client: Close
// stops the Store's own goroutines and leaves the client open.
type Store struct {
	client   redis.UniversalClient
	cfg      config
	keys     keys
	sc       scripts
	instance string           // random; names this Store's leases
	now      func() time.Time // the local clock of the mirrors

	// ctx is done once Close has begun; it bounds all background work.
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the renewer and the feed
	closeOnce sync.Once

	roundTrips atomic.Uint64
	badNotices atomic.Uint64
	leaseSeq   atomic.Uint64

	mu          sync.Mutex // guards the fields below
	closed      bool
	renewing    bool // the renewer goroutine was started
	feedStarted bool
	leases      map[uint64]*lease

	// renewMu is held while a renewal batch is chosen and sent, so that a
	// release can wait out a batch that may still name its lease.
	renewMu sync.Mutex

	feedMu sync.Mutex // guards the fields below
	ps     *redis.PubSub
	fn     func(wssec.Revocation)
	fnCtx  context.Context
	sfn    func(wssec.SessionNotice)
	sfnCtx context.Context

	// firstTry is closed when the feed's first attempt to subscribe and
	// load the mirror has ended, successfully or not.
	firstTry  chan struct{}
	firstOnce sync.Once

	mirror *mirror
}

var _ wssec.SharedStore = (*Store)(nil)

// New returns a Store that keeps its state in Redis through client, which
// may be a *redis.Client, a *redis.ClusterClient or a failover client. It
// validates the options and reports every problem at once (each wraps
// ErrConfig). New does not talk to Redis and starts no goroutine, so a
// service starts even while Redis is down: the renewer starts with the
// first lease, and the notices feed with the first call to Subscribe,
// Revoked or Banned.
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	errs := cfg.validate()
	if client == nil {
		errs = append(errs, fmt.Errorf("%w: nil client", ErrConfig))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("redisstore: instance id: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		client:   client,
		cfg:      cfg,
		keys:     newKeys(cfg.prefix),
		sc:       newScripts(),
		instance: hex.EncodeToString(id[:]),
		now:      time.Now,
		ctx:      ctx,
		cancel:   cancel,
		leases:   make(map[uint64]*lease),
		firstTry: make(chan struct{}),
		mirror:   newMirror(cfg.mirrorCapacity),
	}, nil
}

// Close stops every goroutine the Store started (the lease renewer and the
// notices feed) and waits for them; later operations fail with ErrClosed.
// Close stops renewing leases without releasing them: the slots free
// themselves after the lease TTL, exactly as for an instance that crashed.
// Release functions returned earlier still work. Close is idempotent and
// always returns nil; it does not close the client.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.feedMu.Lock()
		if s.ps != nil {
			_ = s.ps.Close() // interrupts a blocked receive
		}
		s.feedMu.Unlock()
		s.wg.Wait()
		s.mirror.setUp(false)
	})
	return nil
}

// RoundTrips returns how many commands and scripts this Store has sent to
// Redis (each one round trip; a script that had to be loaded counts twice).
// The notices subscription's own traffic (subscribe, pings) is not
// counted. It serves benchmarks: round trips per handshake, per message.
func (s *Store) RoundTrips() uint64 { return s.roundTrips.Load() }

// BadNotices returns how many messages on the notices channel were
// malformed and ignored.
func (s *Store) BadNotices() uint64 { return s.badNotices.Load() }

// checkOpen returns ErrClosed once Close has begun.
func (s *Store) checkOpen() error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

// run sends one script, falling back to EVAL when Redis does not have it
// cached (after a restart, or the first time).
func (s *Store) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	s.roundTrips.Add(1)
	cmd := sc.EvalSha(ctx, s.client, keys, args...)
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		s.roundTrips.Add(1)
		cmd = sc.Eval(ctx, s.client, keys, args...)
	}
	return cmd
}

// opCtx bounds one operation by the configured timeout.
func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.timeout)
}

// keys names everything the Store keeps in Redis. Every key starts with
// "<prefix>{<prefix>}:", so all of them share the hash tag {<prefix>} and
// sit on one Redis Cluster slot.
type keys struct {
	base    string // "<prefix>{<prefix>}:"
	notices string // the pub/sub channel
	revs    string // zset of revocations by expiry
	revIB   string // hash of IssuedBefore by subject member
	bans    string // zset of bans by expiry
}

func newKeys(prefix string) keys {
	base := prefix + "{" + prefix + "}:"
	return keys{
		base:    base,
		notices: base + "notices",
		revs:    base + "revs",
		revIB:   base + "revs:ib",
		bans:    base + "bans",
	}
}

func (k keys) rate(key string) string { return k.base + "rate:" + key }
func (k keys) pool(key string) string { return k.base + "pool:" + key }
func (k keys) once(key string) string { return k.base + "once:" + key }

// ticket names a ticket by the SHA-256 of its id, so that the id, a
// bearer credential, is never stored, logged by Redis or echoed in an
// error.
func (k keys) ticket(id string) string {
	h := sha256.Sum256([]byte(id))
	return k.base + "ticket:" + hex.EncodeToString(h[:])
}

// maxTTL caps every TTL the Store sends, so that server-side arithmetic
// (Lua numbers are doubles) stays exact. Longer TTLs are shortened to it.
const maxTTL = 100 * 365 * 24 * time.Hour

// ms converts a positive duration to whole milliseconds (at most maxTTL),
// rounding up so that nothing expires early.
func ms(d time.Duration) int64 {
	d = min(d, maxTTL)
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// toInt64 reads an integer from a script reply element.
func toInt64(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("unexpected reply element %T", v)
}
