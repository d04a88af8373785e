package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts. Every script reads the server clock (TIME) rather than
// the caller's, so instances with skewed clocks agree; Redis 7 replicates
// a script's effects, so a script may read TIME and then write. Numbers
// handed to redis.call go through fmt (%.0f) so that no version of Redis
// writes them in exponent notation.

// luaPrelude defines now_us, now_ms and fmt for every script.
const luaPrelude = `
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now_us / 1000)
local function fmt(n) return string.format('%.0f', n) end
`

// gateLua is the GCRA and the connection quota check in one decision.
//
//	KEYS[1..r]  the rate key (r = ARGV[1], 0 or 1)
//	KEYS[r+1..] the pools
//	ARGV[1] r; ARGV[2] emission interval (µs); ARGV[3] burst window (µs)
//	ARGV[4] lease TTL (ms); ARGV[5] lease id; ARGV[6..] each pool's Max
//
// It returns {0, 0} when admitted (the rate charged and, when there are
// pools, one member <lease id>/<i> added to pool i), {1, wait µs} when the
// rate refuses (nothing changed) and {2, i} when pool i is full (the rate,
// if any, was charged: Allow and then Acquire).
const gateLua = luaPrelude + `
local r = tonumber(ARGV[1])
if r == 1 then
  local iv = tonumber(ARGV[2])
  local win = tonumber(ARGV[3])
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
  local nxt = math.max(tat, now_us) + iv
  local wait = nxt - win - now_us
  if wait > 0 then return {1, fmt(wait)} end
  redis.call('SET', KEYS[1], fmt(nxt), 'PX', fmt(math.ceil((nxt - now_us) / 1000)))
end
local n = #KEYS - r
if n == 0 then return {0, 0} end
local ttl = tonumber(ARGV[4])
for i = 1, n do
  local k = KEYS[r + i]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', fmt(now_ms))
  if redis.call('ZCARD', k) >= tonumber(ARGV[5 + i]) then return {2, i} end
end
for i = 1, n do
  local k = KEYS[r + i]
  redis.call('ZADD', k, fmt(now_ms + ttl), ARGV[5] .. '/' .. i)
  redis.call('PEXPIRE', k, fmt(2 * ttl))
end
return {0, 0}
`

// renewLua re-scores held leases to now+TTL, re-adding any that Redis
// lost (a restart without persistence), so the pools count the live
// connections again.
//
//	KEYS    the pools of the batch
//	ARGV[1] lease TTL (ms); then pairs: index into KEYS, member
const renewLua = luaPrelude + `
local ttl = tonumber(ARGV[1])
local exp = fmt(now_ms + ttl)
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[tonumber(ARGV[i])], exp, ARGV[i + 1])
end
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], fmt(2 * ttl))
end
return 0
`

// releaseLua removes member ARGV[i] from pool KEYS[i].
const releaseLua = `
for i = 1, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[i])
end
return 0
`

// revokeLua records a revocation and announces it, atomically.
//
//	KEYS[1] the revocations zset (member "s:<subject>" or "t:<token id>",
//	        score: expiry, server ms)
//	KEYS[2] the hash of IssuedBefore (µs) by subject member
//	ARGV[1] member; ARGV[2] TTL (ms); ARGV[3] IssuedBefore (µs) or ''
//	ARGV[4] the notices channel; ARGV[5] the notice
//
// The expiry only grows; a subject's IssuedBefore only grows while its
// entry lives (a later revocation covers every token an earlier one did).
const revokeLua = luaPrelude + `
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', fmt(now_ms), 'LIMIT', 0, 128)
for _, m in ipairs(old) do
  redis.call('HDEL', KEYS[2], m)
  redis.call('ZREM', KEYS[1], m)
end
local exp = now_ms + tonumber(ARGV[2])
if ARGV[3] ~= '' then
  local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
  local ib = redis.call('HGET', KEYS[2], ARGV[1])
  if (not cur) or tonumber(cur) <= now_ms or (not ib) or tonumber(ib) < tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  end
end
redis.call('ZADD', KEYS[1], 'GT', fmt(exp), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local keep = tonumber(last[2]) - now_ms
redis.call('PEXPIRE', KEYS[1], fmt(keep))
redis.call('PEXPIRE', KEYS[2], fmt(keep))
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 0
`

// banLua records a ban and announces it, atomically.
//
//	KEYS[1] the bans zset (member: the banned key, score: expiry, server ms)
//	ARGV[1] member; ARGV[2] TTL (ms); ARGV[3] channel; ARGV[4] notice
const banLua = luaPrelude + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(now_ms))
redis.call('ZADD', KEYS[1], 'GT', fmt(now_ms + tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], fmt(tonumber(last[2]) - now_ms))
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 0
`

// snapshotLua drops expired revocations and bans and returns the live
// ones, at most ARGV[1]+1 of each (one more than fits tells the caller
// that the mirror would overflow):
//
//	{ {member, ttl ms, IssuedBefore µs or '', ...}, {member, ttl ms, ...} }
const snapshotLua = luaPrelude + `
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', fmt(now_ms))
for _, m in ipairs(old) do redis.call('HDEL', KEYS[2], m) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(now_ms))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', fmt(now_ms))
local cap = tonumber(ARGV[1])
local revs = {}
local live = redis.call('ZRANGE', KEYS[1], 0, cap, 'WITHSCORES')
for i = 1, #live, 2 do
  local m = live[i]
  local ib = ''
  if string.sub(m, 1, 2) == 's:' then ib = redis.call('HGET', KEYS[2], m) or '' end
  revs[#revs + 1] = m
  revs[#revs + 1] = fmt(tonumber(live[i + 1]) - now_ms)
  revs[#revs + 1] = ib
end
local bans = {}
live = redis.call('ZRANGE', KEYS[3], 0, cap, 'WITHSCORES')
for i = 1, #live, 2 do
  bans[#bans + 1] = live[i]
  bans[#bans + 1] = fmt(tonumber(live[i + 1]) - now_ms)
end
return {revs, bans}
`

// scripts holds the Store's compiled scripts. They live in the Store, not
// in package variables, because a redis.Script caches its digest.
type scripts struct {
	gate, renew, release, revoke, ban, snapshot *redis.Script
}

func newScripts() scripts {
	return scripts{
		gate:     redis.NewScript(gateLua),
		renew:    redis.NewScript(renewLua),
		release:  redis.NewScript(releaseLua),
		revoke:   redis.NewScript(revokeLua),
		ban:      redis.NewScript(banLua),
		snapshot: redis.NewScript(snapshotLua),
	}
}
