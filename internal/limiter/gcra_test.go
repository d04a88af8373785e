package limiter

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// base is an arbitrary clock origin far from zero, like Unix nanoseconds.
const base = int64(1_750_000_000) * int64(time.Second)

func TestGCRABurstThenRefill(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		burst    int
		interval time.Duration
	}{
		{"1/s burst 1", 1, 1, time.Second},
		{"1/s burst 3", 1, 3, time.Second},
		{"5/s burst 20", 5, 20, 200 * time.Millisecond},
		{"20/s burst 40", 20, 40, 50 * time.Millisecond},
		{"3/s burst 2 (rounded interval)", 3, 2, 333333333},
		{"2/3 per s burst 4", 2.0 / 3, 4, 1500 * time.Millisecond},
		{"1e6/s burst 10", 1e6, 10, time.Microsecond},
	}
	for _, tc := range tests {
		for _, start := range []int64{0, base} {
			t.Run(tc.name, func(t *testing.T) {
				g := NewGCRA(tc.rate, tc.burst)
				if g.Interval() != tc.interval || g.Burst() != tc.burst {
					t.Fatalf("Interval, Burst = %v, %d; want %v, %d", g.Interval(), g.Burst(), tc.interval, tc.burst)
				}
				var tat int64
				now := start
				for i := range tc.burst {
					if ok, d := g.Allow(&tat, now); !ok || d != 0 {
						t.Fatalf("event %d of the burst: Allow = %v, %v; want true, 0", i+1, ok, d)
					}
				}
				// The bucket is empty: refused until exactly one interval has passed.
				for range 3 {
					ok, d := g.Allow(&tat, now)
					if ok || d != tc.interval {
						t.Fatalf("after burst: Allow = %v, %v; want false, %v", ok, d, tc.interval)
					}
				}
				if ok, d := g.Allow(&tat, now+int64(tc.interval)-1); ok || d != 1 {
					t.Fatalf("1 ns early: Allow = %v, %v; want false, 1ns", ok, d)
				}
				now += int64(tc.interval)
				if ok, _ := g.Allow(&tat, now); !ok {
					t.Fatal("after one interval: refused, want admitted")
				}
				if ok, d := g.Allow(&tat, now); ok || d != tc.interval {
					t.Fatalf("second event after one interval: Allow = %v, %v; want false, %v", ok, d, tc.interval)
				}
				// Half an interval later the wait has halved.
				half := int64(tc.interval) / 2
				if ok, d := g.Allow(&tat, now+half); ok || int64(d) != int64(tc.interval)-half {
					t.Fatalf("half an interval later: Allow = %v, %v; want false, %v", ok, d, int64(tc.interval)-half)
				}
				// After a long idle period the bucket is full again, not fuller.
				now += 1000 * int64(tc.interval)
				admitted := 0
				for range tc.burst + 5 {
					if ok, _ := g.Allow(&tat, now); ok {
						admitted++
					}
				}
				if admitted != tc.burst {
					t.Fatalf("after idling: %d admitted at once, want %d", admitted, tc.burst)
				}
			})
		}
	}
}

func TestGCRARetryAfterIsExact(t *testing.T) {
	// Waiting exactly retryAfter always succeeds; 1 ns less never does.
	g := NewGCRA(7, 3)
	var tat int64
	now := base
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10_000; i++ {
		ok, d := g.Allow(&tat, now)
		if ok {
			if d != 0 {
				t.Fatalf("admitted with retryAfter %v", d)
			}
		} else {
			if d <= 0 {
				t.Fatalf("refused with retryAfter %v, want > 0", d)
			}
			saved := tat
			if ok, _ := g.Allow(&tat, now+int64(d)-1); ok {
				t.Fatalf("admitted 1 ns before retryAfter %v", d)
			}
			if tat != saved {
				t.Fatal("a refusal changed the state")
			}
			if ok, _ := g.Allow(&tat, now+int64(d)); !ok {
				t.Fatalf("refused at now+retryAfter (%v)", d)
			}
			tat = saved // undo, carry on from the refusal
		}
		now += rng.Int64N(int64(200 * time.Millisecond))
	}
}

// bucket is a reference token bucket in integer nanoseconds: level is the
// credit in ns, one event costs one interval, the bucket holds burst
// intervals and starts full.
type bucket struct {
	interval, capacity, level, last int64
}

func (b *bucket) allow(now int64) bool {
	b.level = min(b.capacity, b.level+(now-b.last))
	b.last = now
	if b.level >= b.interval {
		b.level -= b.interval
		return true
	}
	return false
}

func TestGCRAMatchesTokenBucket(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{1, 1}, {5, 20}, {20, 40}, {3, 2}, {1000, 1}, {0.1, 7}} {
		g := NewGCRA(tc.rate, tc.burst)
		ref := bucket{interval: g.interval, capacity: g.window, level: g.window, last: base}
		var tat int64
		now := base
		rng := rand.New(rand.NewPCG(uint64(tc.burst), 9))
		admitted := 0
		for i := 0; i < 100_000; i++ {
			// Mostly bursts, sometimes pauses of up to a few bursts' length.
			if rng.IntN(10) == 0 {
				now += rng.Int64N(3 * g.window)
			} else {
				now += rng.Int64N(g.interval)
			}
			want := ref.allow(now)
			got, _ := g.Allow(&tat, now)
			if got != want {
				t.Fatalf("rate %v burst %d, event %d at +%dns: GCRA %v, token bucket %v", tc.rate, tc.burst, i, now-base, got, want)
			}
			if got {
				admitted++
			}
		}
		if admitted == 0 || admitted == 100_000 {
			t.Fatalf("rate %v burst %d: degenerate test, %d admitted", tc.rate, tc.burst, admitted)
		}
	}
}

func TestGCRASustainedRate(t *testing.T) {
	// Offered 10x the rate for 100 s: burst + 100 s * rate are admitted.
	g := NewGCRA(5, 20)
	var tat int64
	admitted := 0
	for now := base; now <= base+int64(100*time.Second); now += int64(20 * time.Millisecond) {
		if ok, _ := g.Allow(&tat, now); ok {
			admitted++
		}
	}
	if want := 20 + 5*100; admitted != want {
		t.Fatalf("%d admitted, want %d", admitted, want)
	}
}

func TestGCRASpecialConfigurations(t *testing.T) {
	t.Run("unlimited", func(t *testing.T) {
		for _, burst := range []int{-1, 0, 1, 100} {
			g := NewGCRA(math.Inf(1), burst)
			var tat int64
			for i := range 1000 {
				if ok, d := g.Allow(&tat, base); !ok || d != 0 {
					t.Fatalf("burst %d, event %d: Allow = %v, %v; want true, 0", burst, i, ok, d)
				}
			}
			if tat != 0 {
				t.Fatalf("unlimited GCRA changed the state to %d", tat)
			}
		}
	})
	refuseAll := map[string]GCRA{
		"zero value": {},
		"rate 0":     NewGCRA(0, 10),
		"rate < 0":   NewGCRA(-1, 10),
		"rate NaN":   NewGCRA(math.NaN(), 10),
		"rate -Inf":  NewGCRA(math.Inf(-1), 10),
		"burst 0":    NewGCRA(10, 0),
		"burst < 0":  NewGCRA(10, -5),
	}
	for name, g := range refuseAll {
		t.Run(name, func(t *testing.T) {
			var tat int64
			for _, now := range []int64{0, base, math.MaxInt64 / 4} {
				if ok, d := g.Allow(&tat, now); ok || d != Never {
					t.Fatalf("Allow = %v, %v; want false, Never", ok, d)
				}
			}
		})
	}
}

func TestGCRAExtremeParameters(t *testing.T) {
	t.Run("very high rate", func(t *testing.T) {
		g := NewGCRA(1e12, 1)
		if g.Interval() != 1 {
			t.Fatalf("interval %v, want 1ns", g.Interval())
		}
	})
	t.Run("very low rate is capped, not overflowed", func(t *testing.T) {
		g := NewGCRA(1e-300, 5)
		if g.interval != maxSpan || g.window != maxSpan {
			t.Fatalf("interval, window = %d, %d; want both %d", g.interval, g.window, maxSpan)
		}
		var tat int64
		if ok, _ := g.Allow(&tat, base); !ok {
			t.Fatal("first event refused")
		}
		ok, d := g.Allow(&tat, base)
		if ok || d <= 0 {
			t.Fatalf("second event: Allow = %v, %v; want false, > 0", ok, d)
		}
	})
	t.Run("huge burst is capped, not overflowed", func(t *testing.T) {
		g := NewGCRA(1, math.MaxInt)
		if g.window != maxSpan {
			t.Fatalf("window %d, want %d", g.window, maxSpan)
		}
		var tat int64
		for range 1000 {
			if ok, _ := g.Allow(&tat, base); !ok {
				t.Fatal("refused inside a huge burst")
			}
		}
	})
	t.Run("clock going backwards is stricter, never overflows", func(t *testing.T) {
		g := NewGCRA(1, 2)
		var tat int64
		g.Allow(&tat, base)
		ok, d := g.Allow(&tat, base-int64(time.Hour))
		if ok || d != time.Hour {
			t.Fatalf("Allow an hour in the past = %v, %v; want false, 1h", ok, d)
		}
	})
}

func TestGCRAAllowDoesNotAllocate(t *testing.T) {
	g := NewGCRA(20, 40)
	var tat int64
	now := base
	if n := testing.AllocsPerRun(1000, func() {
		now += int64(time.Millisecond)
		g.Allow(&tat, now)
	}); n != 0 {
		t.Fatalf("GCRA.Allow: %v allocs per call, want 0", n)
	}
}

// TestRateInf_Unlimited stops the regression where rate.Inf, which is
// math.MaxFloat64 rather than +Inf, built a 1 ns GCRA: a second event at
// the same instant was refused although rate.Inf promises no limit.
func TestRateInf_Unlimited(t *testing.T) {
	for _, burst := range []int{1, 2, 20} {
		g := NewGCRA(float64(rate.Inf), burst)
		var tat int64
		for i := range 1000 {
			if ok, d := g.Allow(&tat, base); !ok || d != 0 {
				t.Fatalf("burst %d, event %d at one instant: Allow = %v, %v; want true, 0", burst, i, ok, d)
			}
		}
		tb := mustTable(t, 16, g)
		for i := range 1000 {
			if ok, _ := tb.Allow(seqKey(0), base); !ok {
				t.Fatalf("table, burst %d, event %d at one instant refused", burst, i)
			}
		}
	}
}
