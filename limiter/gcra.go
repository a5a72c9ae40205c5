package limiter

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// The bounds every rate limit in garrison accepts, in process (Keyed) and in
// Redis (limiter/redisstore) alike, so a limit that is valid for one is
// valid for the other and both enforce it the same way.
const (
	// MaxRate is the highest finite rate accepted: an emission interval of
	// 100 µs. The Redis store counts time in whole microseconds, so its
	// one rounding of the interval then changes the rate by at most 0.5 %;
	// a faster per-key limit would be enforced visibly wrong. rate.Inf is
	// accepted too and admits everything.
	MaxRate rate.Limit = 10_000
	// MaxBurst is the largest burst accepted.
	MaxBurst = 1_000_000_000
	// MaxWindow bounds burst/rate, the time to refill a whole burst (about
	// 35.7 years, 2⁵⁰ µs): the Redis store's Lua numbers are exact below
	// 2⁵³ µs, and the in-process arithmetic never overflows with it.
	MaxWindow = time.Duration(1<<50) * time.Microsecond
)

// CheckRate reports whether a rate r with bursts of burst is within the
// bounds garrison's limiters enforce exactly: r in (0, MaxRate] or
// rate.Inf, burst in [1, MaxBurst], and burst/r at most MaxWindow. The
// error names the bound that failed. NewKeyed and redisstore.New call it,
// so both accept exactly the same limits.
func CheckRate(r rate.Limit, burst int) error {
	switch {
	case burst < 1 || burst > MaxBurst:
		return invalidf("burst %d must be in [1, %d]", burst, MaxBurst)
	case math.IsNaN(float64(r)) || r <= 0:
		return invalidf("rate %v must be positive", float64(r))
	case r == rate.Inf:
		return nil
	case r > MaxRate:
		return invalidf("rate %v per second is above MaxRate (%v): use rate.Inf for no limit", float64(r), float64(MaxRate))
	case float64(burst)/float64(r) > MaxWindow.Seconds():
		return invalidf("rate %v with burst %d: refilling the burst takes longer than MaxWindow (%v)", float64(r), burst, MaxWindow)
	}
	return nil
}

// gcra is the Generic Cell Rate Algorithm for one quota. A key's whole state
// is its theoretical arrival time (TAT): the instant its bucket would be full
// again. A request for n tokens at now is allowed when max(TAT, now) +
// n×interval lies at most tolerance (= burst × interval) past now. All times
// are int64 nanoseconds on a monotonic clock, so wall-clock jumps cannot
// change a decision.
type gcra struct {
	interval  int64 // nanoseconds per token; 0 means rate.Inf
	tolerance int64 // burst × interval
	burst     int
	inv       float64 // 1/interval, to divide without a slow integer division
}

// newGCRA builds the arithmetic for r and burst. It accepts rates up to one
// token per microsecond, for the Listener's accept rates; Keyed applies the
// narrower CheckRate first. The interval is rounded to the nearest
// nanosecond, an error below 0.05 % at that rate.
func newGCRA(r rate.Limit, burst int) (gcra, error) {
	switch {
	case burst < 1 || burst > MaxBurst:
		return gcra{}, invalidf("burst %d must be in [1, %d]", burst, MaxBurst)
	case math.IsNaN(float64(r)) || r <= 0:
		return gcra{}, invalidf("rate %v must be positive", float64(r))
	case r == rate.Inf:
		return gcra{burst: burst}, nil
	case r > 1e6:
		return gcra{}, invalidf("rate %v per second is above one per microsecond: use rate.Inf for no limit", float64(r))
	}
	iv := math.Round(float64(time.Second) / float64(r))
	if iv*float64(burst) > float64(MaxWindow) {
		return gcra{}, invalidf("rate %v with burst %d: refilling the burst takes longer than %v", float64(r), burst, MaxWindow)
	}
	interval := int64(iv)
	return gcra{interval: interval, tolerance: interval * int64(burst), burst: burst, inv: 1 / float64(interval)}, nil
}

// admit is one GCRA step for one token at now against a key whose stored
// TAT is tat: it reports whether the request passes and the TAT to store if
// it does. A denial stores nothing, so denied requests cost the key no
// quota. It is split from fill so the lock-free retry loop stays small.
func (g *gcra) admit(tat, now int64) (int64, bool) { return g.admitCost(tat, now, g.interval) }

// admitCost is admit for a request costing cost (n × interval).
func (g *gcra) admitCost(tat, now, cost int64) (int64, bool) {
	newTat := max(tat, now) + cost
	return newTat, newTat-now <= g.tolerance
}

// fill sets the fields of d, a zero Decision, for a request costing cost,
// given the key's TAT after the step (the new TAT if allowed, the unchanged
// one if not). It writes through a pointer because Decision
// has more fields than the compiler keeps in registers: a function
// returning one by value makes its caller store the result, copy it with
// wide loads that cannot be forwarded from the narrow stores (a stall of
// several nanoseconds on the hot path) and load it again to return it. A
// caller whose named result is d, filled in place, pays plain stores and
// loads (a local d is copied to the result the same stalling way).
func (g *gcra) fill(d *Decision, tat, now, cost int64, allowed bool) {
	d.Limit = g.burst
	d.Window = time.Duration(g.tolerance)
	if !allowed {
		d.RetryAfter = time.Duration(max(tat, now) + cost - g.tolerance - now)
		d.ResetAfter = time.Duration(max(tat-now, 0))
		d.Reason = RequestRate
		return
	}
	d.Allowed = true
	d.Remaining = g.tokens(now + g.tolerance - tat)
	d.ResetAfter = time.Duration(tat - now)
}

// tokens returns x / g.interval for 0 <= x <= g.tolerance. A 64-bit integer
// division is a large part of a decision's cost, so it multiplies by the
// reciprocal and corrects the rounding, which is off by at most one while
// x is exact in a float64.
func (g *gcra) tokens(x int64) int {
	if x >= 1<<52 {
		return int(x / g.interval)
	}
	q := int64(float64(x) * g.inv)
	if q*g.interval > x {
		q--
	} else if (q+1)*g.interval <= x {
		q++
	}
	return int(q)
}
