// Package limiter implements rate limiting with GCRA, the generic cell rate
// algorithm, for per-connection message rates ([GCRA]) and for bounded
// per-key handshake rates ([Table]).
//
// # GCRA in brief
//
// A token bucket holds up to burst tokens, gains one token every interval
// (1/rate) and spends one per event. GCRA keeps the same behaviour in a single
// number per key instead of a (tokens, last update) pair: the theoretical
// arrival time, TAT. TAT is the instant at which the bucket would be full
// again if nothing else happened. An event at time now is admitted when, after
// charging it, the bucket would not be "over-full":
//
//	next := max(TAT, now) + interval   // TAT once this event is charged
//	if next-now > burst*interval {     // more than burst tokens owed: refuse
//		wait next - burst*interval - now
//	} else {
//		TAT = next
//	}
//
// A TAT at or before now is the same as a brand-new key (a full bucket), so
// state that has gone stale carries no information and may be forgotten.
// That property is what makes the bounded [Table] safe: evicting an expired
// entry loses nothing.
//
// # Time
//
// Every call takes now as int64 nanoseconds from a clock the caller owns
// (time.Now().UnixNano(), or an offset on a monotonic clock; tests pass a
// plain counter), so limits can be tested without sleeping. A clock that
// steps backwards only ever makes the limiter stricter for a while, never
// more lenient. Values of now within ±2^62 ns (until about year 2116 for
// Unix nanoseconds) are free of overflow.
package limiter
