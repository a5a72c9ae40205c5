package redisstore

import (
	"math"
	"sync/atomic"
)

// breaker stops a dead Redis from costing every decision a full timeout.
// After threshold consecutive failures it opens for cooldown, during which
// decisions skip Redis; then exactly one decision probes it. A success from
// any decision closes it. Its state is three atomics: no lock is held
// across a round trip.
type breaker struct {
	threshold int32 // 0 disables the breaker
	cooldown  int64 // nanoseconds

	failures  atomic.Int32
	openUntil atomic.Int64 // monotonic nanoseconds; 0 while closed
	probing   atomic.Bool
}

// admit reports whether a decision may ask Redis and whether it is the
// probe of an open breaker, which must then report back.
func (b *breaker) admit(now func() int64) (ok, probe bool) {
	if b.threshold == 0 {
		return true, false
	}
	until := b.openUntil.Load()
	if until == 0 {
		return true, false
	}
	if now() < until || !b.probing.CompareAndSwap(false, true) {
		return false, false
	}
	return true, true
}

func (b *breaker) success(probe bool) {
	if b.threshold == 0 {
		return
	}
	// Loads first: on the hot path the breaker is closed and writing would
	// bounce its cache line between cores for nothing.
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
	if b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
	}
	if probe {
		b.probing.Store(false)
	}
}

func (b *breaker) failure(probe bool, now int64) {
	if b.threshold == 0 {
		return
	}
	if probe {
		// Reopen before releasing the probe so no other decision sees an
		// expired deadline with no probe in flight and piles on.
		b.openUntil.Store(b.until(now))
		b.probing.Store(false)
		return
	}
	if b.failures.Add(1) >= b.threshold && b.openUntil.Load() == 0 {
		b.openUntil.Store(b.until(now))
	}
}

// until is the end of a cooldown starting at now, saturating so that a
// cooldown of "forever" (math.MaxInt64) does not wrap into the past, and
// never 0, which means closed.
func (b *breaker) until(now int64) int64 {
	if now > math.MaxInt64-b.cooldown {
		return math.MaxInt64
	}
	return max(now+b.cooldown, 1)
}

// abandon releases a probe whose caller gave up before Redis answered; the
// next decision probes instead.
func (b *breaker) abandon(probe bool) {
	if probe {
		b.probing.Store(false)
	}
}

func (b *breaker) isOpen(now int64) bool {
	until := b.openUntil.Load()
	return until != 0 && now < until
}
