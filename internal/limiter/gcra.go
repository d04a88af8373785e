package limiter

import (
	"math"
	"time"
)

// Never is the retryAfter that [GCRA.Allow] and [Table.Allow] report when no
// event will ever be admitted (a GCRA built from a non-positive rate or a
// burst below 1, or the zero GCRA).
const Never = time.Duration(math.MaxInt64)

// maxSpan caps the emission interval and the burst window (interval*burst)
// at 2^60 ns, about 36.5 years, so that TAT arithmetic cannot overflow for
// any now within ±2^62.
const maxSpan = int64(1) << 60

// GCRA is the immutable configuration of a generic cell rate algorithm
// limiter: a token bucket of burst tokens refilled at a fixed rate, evaluated
// against one int64 theoretical arrival time (TAT) per limited subject.
//
// A GCRA is a small value; copy it freely. It holds no state, so one GCRA may
// serve any number of subjects and goroutines at once: the state lives in the
// int64 passed to [GCRA.Allow], which the caller owns and protects.
//
// The zero GCRA refuses every event, like the zero rate.Limiter.
type GCRA struct {
	// interval is the emission interval (time to earn one token) in ns;
	// 0 only for the unlimited and the refuse-all configurations.
	interval int64
	// window is burst*interval in ns: how far ahead of now the TAT may be
	// after charging an event.
	window int64
	// unlimited marks rate = +Inf: every event is admitted.
	unlimited bool
}

// NewGCRA returns a GCRA that admits bursts of up to burst events and
// sustains ratePerSec events per second: from a fresh state exactly burst
// immediate events are admitted, then one more every 1/ratePerSec.
//
// The emission interval 1/ratePerSec is rounded to the nearest nanosecond
// (at least 1 ns), and the interval and the burst window interval*burst are
// each capped at about 36 years.
//
// A ratePerSec of math.MaxFloat64 or more — golang.org/x/time/rate's
// rate.Inf, which is math.MaxFloat64, and +Inf — admits every event
// whatever burst is. A ratePerSec that is zero, negative or NaN, or a
// burst below 1, yields a GCRA that refuses every event (fail closed);
// callers validate their configuration first.
func NewGCRA(ratePerSec float64, burst int) GCRA {
	if ratePerSec >= math.MaxFloat64 {
		return GCRA{unlimited: true}
	}
	if !(ratePerSec > 0) || burst < 1 {
		return GCRA{}
	}
	iv := math.Round(1e9 / ratePerSec)
	interval := maxSpan
	if iv < float64(maxSpan) {
		interval = max(int64(iv), 1)
	}
	window := maxSpan
	if int64(burst) <= maxSpan/interval {
		window = int64(burst) * interval
	}
	return GCRA{interval: interval, window: window}
}

// Allow charges one event at time now (ns) against the TAT stored in *tat and
// reports whether it is admitted. On admission *tat is advanced; on refusal
// it is left unchanged and retryAfter is the exact time (> 0) after which the
// next Allow would succeed, so that Allow(tat, now+retryAfter) is admitted if
// nothing else was charged meanwhile. Callers that need whole seconds (an
// HTTP Retry-After header) should round retryAfter up. For a GCRA that
// refuses everything, retryAfter is [Never].
//
// A fresh state is any value ≤ now; 0 serves for any clock that starts at
// or after zero, such as Unix nanoseconds. Allow does not synchronise: the
// caller serialises calls on the same *tat (one goroutine, or its own lock).
func (g GCRA) Allow(tat *int64, now int64) (ok bool, retryAfter time.Duration) {
	if g.interval == 0 {
		return g.fixed()
	}
	next := max(*tat, now) + g.interval
	if wait := next - g.window - now; wait > 0 {
		return false, time.Duration(wait)
	}
	*tat = next
	return true, 0
}

// fixed answers for the configurations that ignore state: unlimited or
// refuse-all.
func (g GCRA) fixed() (bool, time.Duration) {
	if g.unlimited {
		return true, 0
	}
	return false, Never
}

// Interval returns the emission interval, the time to earn one token (0 for
// an unlimited or refuse-all GCRA).
func (g GCRA) Interval() time.Duration { return time.Duration(g.interval) }

// Burst returns the number of events admitted at once from a fresh state (0
// for an unlimited or refuse-all GCRA).
func (g GCRA) Burst() int {
	if g.interval == 0 {
		return 0
	}
	return int(g.window / g.interval)
}
