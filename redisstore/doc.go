// Package redisstore keeps the state of a wssec Guard in Redis, so that
// every instance of a service behind a load balancer enforces one set of
// limits: handshake rates, connection quotas, revocations, bans, the
// single-use token cache and one-time tickets. Its Store implements
// wssec.SharedStore on github.com/redis/go-redis/v9.
//
//	rdb := redis.NewClient(&redis.Options{
//		Addr:                  "redis:6379",
//		ContextTimeoutEnabled: true, // let the Store's timeout reach the socket
//	})
//	defer rdb.Close()
//	st, err := redisstore.New(rdb, redisstore.WithPrefix("chat"))
//	if err != nil { … }
//	defer st.Close()
//	g, err := wssec.New(wssec.WithStore(st), …)
//
// It needs Redis 6.2 or later, or Valkey (scripts use ZADD GT; tickets
// use GETDEL), and is tested against Redis 7, on a single node and on a
// three-node Redis Cluster (TestRedisCluster).
//
// # How the state is kept
//
// Every decision that must be atomic is one Lua script, and every script
// reads the Redis server's clock (TIME), never the caller's, so instances
// whose clocks disagree still agree on every limit.
//
//   - Rates: a GCRA per limited key, one string holding the theoretical
//     arrival time in server microseconds, expiring when the bucket would
//     be full again. From a fresh state exactly burst events are admitted,
//     then one more every 1/rate, as with the in-memory limiter.
//   - Connection quotas: each pool is a sorted set of leases scored by
//     their expiry. A lease id is the Store's random instance id and a
//     counter. The Store renews its leases every lease TTL/3 (in batches of
//     500); an instance that crashes stops renewing, so its slots free
//     themselves within the lease TTL. A renewal puts back a lease that
//     Redis lost (a restart without persistence), so the pools count the
//     live connections again within TTL/3. AllowAcquire decides the rate
//     and the quota in one script, one round trip.
//   - Revocations and bans: sorted sets scored by expiry (and a hash of
//     each subject's IssuedBefore), changed and published on the notices
//     channel in one script. Every Store follows the channel and keeps a
//     local mirror, so Revoked and Banned need no round trip. A ban also
//     reaches every Guard's session feed (SubscribeSessions), which
//     closes the banned party's sockets.
//   - Session notices (Announce: Guard.Disconnect, and eviction of the
//     oldest socket under wssec.WithEvictOldest) are a bare PUBLISH on
//     the same channel; nothing is stored.
//   - The single-use cache is SET NX PX; tickets are SET PX and GETDEL,
//     keyed by the SHA-256 of the ticket id.
//
// # Key layout
//
// With the prefix p (WithPrefix, default "wssec") every key and the
// channel start with "p{p}:":
//
//	p{p}:rate:<key>     GCRA state (string, µs)
//	p{p}:pool:<key>     connection pool (zset: lease → expiry ms)
//	p{p}:revs           revocations (zset: "s:<subject>" | "t:<token id>" → expiry ms)
//	p{p}:revs:ib        IssuedBefore by subject revocation (hash, µs)
//	p{p}:bans           bans (zset: key → expiry ms)
//	p{p}:once:<key>     single-use cache
//	p{p}:ticket:<hex>   one-time tickets, by SHA-256 of the id
//	p{p}:notices        the pub/sub channel of revocations, bans and session notices
//
// All keys of one Store share the Redis Cluster hash tag {p}, so the
// scripts that touch a rate key and several pools at once stay on one
// slot. This pins a Store's state to one shard of a cluster; the state is
// small (a few keys per client IP and subject, expiring on their own), so
// one shard holds it easily. Services that need to spread out use
// several prefixes.
//
// # When Redis fails
//
// Every operation runs under WithTimeout (default 500 ms) and returns an
// error that starts with "redisstore:" and wraps ErrUnavailable when Redis
// could not be reached; the next call tries again, so recovery needs no
// restart. The Guard decides what an error means (see
// wssec.SharedStore): rates, quotas and bans fall back to its in-memory
// limits, while revocation checks, the single-use cache and tickets fail
// closed.
//
// Revoked and Banned answer from the mirror only while the feed is
// healthy: subscribed to the channel and with the snapshot of live
// revocations and bans loaded after the subscription was confirmed. The
// feed pings an idle subscription every second, so it notices a dead
// connection; from then until it has subscribed and reloaded again,
// Revoked and Banned fail with ErrFeedDown (and ErrUnavailable), and
// Subscribe's callback gets the zero Revocation after each reload. A
// mirror that would have to hold more than WithMirrorCapacity live entries
// does not forget any: it fails with ErrMirrorFull until the entries fit.
//
// New neither talks to Redis nor starts a goroutine, so a service starts
// while Redis is down. Close stops the renewer and the feed; it does not
// release held leases (they expire after the lease TTL) and does not close
// the client.
//
// # Security considerations
//
// Whoever can write to the Store's keys or publish on its channel can
// revoke, ban, take connection slots or reset rate limits: give wssec its
// own Redis user (ACLs limited to the prefix's keys and channel) and use
// TLS to reach Redis over any network you do not control. A forged or
// malformed notice can only add a revocation or a ban, or close sockets,
// never lift a revocation or a ban; malformed notices are ignored and
// counted (BadNotices).
//
// Ticket ids are bearer credentials: Redis sees only their SHA-256, and
// no error names them. Set the client's ContextTimeoutEnabled (or read and
// write timeouts no longer than WithTimeout) so that a Redis that hangs
// cannot hold a handshake longer than the timeout.
package redisstore
