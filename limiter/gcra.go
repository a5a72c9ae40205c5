package limiter

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// gcra is the Generic Cell Rate Algorithm for one quota. A key's whole state
// is its theoretical arrival time (TAT): the instant its bucket would be full
// again. A request at now is allowed when max(TAT, now)+interval lies at most
// tolerance (= burst × interval) past now. All times are int64 nanoseconds on
// a monotonic clock, so wall-clock jumps cannot change a decision.
type gcra struct {
	interval  int64 // nanoseconds per token; 0 means rate.Inf
	tolerance int64 // burst × interval
	burst     int
	inv       float64 // 1/interval, to divide without a slow integer division
}

func newGCRA(r rate.Limit, burst int) (gcra, error) {
	switch {
	case burst < 1:
		return gcra{}, invalidf("burst %d must be at least 1", burst)
	case math.IsNaN(float64(r)) || r <= 0:
		return gcra{}, invalidf("rate %v must be positive", r)
	case r == rate.Inf:
		return gcra{burst: burst}, nil
	}
	iv := float64(time.Second) / float64(r)
	// A quarter of int64 leaves room for now+tolerance+interval to never
	// overflow over centuries of uptime.
	if iv*float64(burst) > math.MaxInt64/4 {
		return gcra{}, invalidf("rate %v with burst %d: refill window too long", r, burst)
	}
	interval := max(int64(iv), 1)
	return gcra{interval: interval, tolerance: interval * int64(burst), burst: burst, inv: 1 / float64(interval)}, nil
}

// admit is one GCRA step for a request at now against a key whose stored
// TAT is tat: it reports whether the request passes and the TAT to store if
// it does. A denial stores nothing, so denied requests cost the key no quota.
// It is split from decision so the lock-free retry loop stays small.
func (g *gcra) admit(tat, now int64) (int64, bool) {
	newTat := max(tat, now) + g.interval
	return newTat, newTat-now <= g.tolerance
}

// decision describes the outcome of admit at now, given the key's TAT after
// it (the new TAT if allowed, the unchanged one if not).
func (g *gcra) decision(tat, now int64, allowed bool) Decision {
	if !allowed {
		return Decision{
			RetryAfter: time.Duration(tat + g.interval - g.tolerance - now),
			ResetAfter: time.Duration(tat - now),
			Reason:     RequestRate,
			Limit:      g.burst,
			Window:     time.Duration(g.tolerance),
		}
	}
	return Decision{
		Allowed:    true,
		Remaining:  g.tokens(now + g.tolerance - tat),
		ResetAfter: time.Duration(tat - now),
		Limit:      g.burst,
		Window:     time.Duration(g.tolerance),
	}
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
