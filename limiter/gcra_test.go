package limiter

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// refBucket is the reference model: a plain token bucket holding up to
// burst tokens, refilled continuously, with tokens counted in nanoseconds
// of refill (one token = interval ns) so it is exact in integers. GCRA is
// an equivalent formulation; the tests check the equivalence step by step.
type refBucket struct {
	interval, capacity int64 // ns per token, ns for a full bucket
	level, last        int64
}

func newRef(interval int64, burst int) *refBucket {
	return &refBucket{interval: interval, capacity: interval * int64(burst), level: interval * int64(burst)}
}

func (b *refBucket) allow(now int64) Decision {
	if now > b.last {
		b.level = min(b.capacity, b.level+(now-b.last))
		b.last = now
	}
	burst := int(b.capacity / b.interval)
	if b.level >= b.interval {
		b.level -= b.interval
		return Decision{Allowed: true, Remaining: int(b.level / b.interval), ResetAfter: time.Duration(b.capacity - b.level), Limit: burst, Window: time.Duration(b.capacity)}
	}
	return Decision{RetryAfter: time.Duration(b.interval - b.level), ResetAfter: time.Duration(b.capacity - b.level), Reason: RequestRate, Limit: burst, Window: time.Duration(b.capacity)}
}

// fakeClock is the injected limiter clock.
type fakeClock struct{ now int64 }

func (c *fakeClock) read() int64             { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now += int64(d) }

func newTestKeyed(t testing.TB, r rate.Limit, burst int, opts ...KeyedOption) (*Keyed, *fakeClock) {
	t.Helper()
	k, err := NewKeyed(r, burst, opts...)
	require.NoError(t, err)
	clk := &fakeClock{now: int64(time.Hour)}
	k.clock = clk.read
	return k, clk
}

func TestKeyedExactSequence(t *testing.T) {
	k, clk := newTestKeyed(t, 1, 3) // 1/s, burst 3
	allow := func(rem int, reset time.Duration) Decision {
		return Decision{Allowed: true, Remaining: rem, ResetAfter: reset, Limit: 3, Window: 3 * time.Second}
	}
	deny := func(retry, reset time.Duration) Decision {
		return Decision{RetryAfter: retry, ResetAfter: reset, Reason: RequestRate, Limit: 3, Window: 3 * time.Second}
	}
	steps := []struct {
		at   time.Duration // since the previous step
		want Decision
	}{
		{0, allow(2, 1*time.Second)},
		{0, allow(1, 2*time.Second)},
		{0, allow(0, 3*time.Second)},
		{0, deny(1*time.Second, 3*time.Second)},
		{400 * time.Millisecond, deny(600*time.Millisecond, 2600*time.Millisecond)},
		{600 * time.Millisecond, allow(0, 3*time.Second)},
		{2500 * time.Millisecond, allow(1, 1500*time.Millisecond)},
		{10 * time.Second, allow(2, 1*time.Second)},
	}
	for i, s := range steps {
		clk.advance(s.at)
		require.Equal(t, s.want, k.Allow("a"), "step %d", i)
	}
	// Another key was never touched.
	require.Equal(t, allow(2, time.Second), k.Allow("b"))
}

// checkAgainstReference drives a Keyed and the reference model with the
// same arrivals and requires identical decisions.
func checkAgainstReference(t *testing.T, r rate.Limit, burst int, gaps []time.Duration) {
	t.Helper()
	k, clk := newTestKeyed(t, r, burst)
	ref := newRef(k.g.interval, burst)
	ref.last = clk.now
	for i, gap := range gaps {
		clk.advance(gap)
		want := ref.allow(clk.now)
		got := k.Allow("key")
		require.Equal(t, want, got, "arrival %d at +%v (rate %v burst %d)", i, gap, r, burst)
	}
}

func TestKeyedMatchesReference(t *testing.T) {
	gaps := []time.Duration{0, 0, 0, 0, 0, 10 * time.Millisecond, 90 * time.Millisecond, 1, 99 * time.Millisecond,
		0, time.Second, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3 * time.Millisecond, 250 * time.Millisecond}
	for _, tc := range []struct {
		r     rate.Limit
		burst int
	}{{10, 1}, {10, 5}, {100, 10}, {0.5, 2}, {1000, 1}, {3, 7}} {
		checkAgainstReference(t, tc.r, tc.burst, gaps)
	}
}

func FuzzGCRA(f *testing.F) {
	f.Add(uint16(10), uint8(5), []byte{0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 3, 1})
	f.Add(uint16(1), uint8(1), []byte{255, 255, 0, 1, 0, 0, 17})
	f.Add(uint16(60000), uint8(200), []byte{})
	f.Fuzz(func(t *testing.T, r uint16, burst uint8, data []byte) {
		if r == 0 || burst == 0 || rate.Limit(r) > MaxRate {
			return
		}
		var gaps []time.Duration
		for len(data) >= 2 {
			// Quadratic spread: mostly bursts, some long pauses.
			v := int64(binary.LittleEndian.Uint16(data))
			gaps = append(gaps, time.Duration(v*v))
			data = data[2:]
		}
		checkAgainstReference(t, rate.Limit(r), int(burst), gaps)
	})
}

func TestKeyedClockBackwardsAdmitsNoMore(t *testing.T) {
	k, clk := newTestKeyed(t, 1, 2)
	require.True(t, k.Allow("a").Allowed)
	require.True(t, k.Allow("a").Allowed)
	require.False(t, k.Allow("a").Allowed)
	// A reading from the past (a racing goroutine's older now) must never
	// find quota that the present does not have.
	clk.advance(-time.Hour)
	for range 10 {
		require.False(t, k.Allow("a").Allowed)
	}
	clk.advance(time.Hour + time.Second)
	require.True(t, k.Allow("a").Allowed)
	require.False(t, k.Allow("a").Allowed)
}

func TestKeyedClockIsMonotonic(t *testing.T) {
	// epoch has a monotonic reading, so time.Since never consults the wall
	// clock: stripping it from a copy shows what a wall-clock limiter would do.
	require.NotEqual(t, epoch.String(), epoch.Round(0).String(), "epoch must carry a monotonic reading")
	a := monotonicNow()
	b := monotonicNow()
	require.GreaterOrEqual(t, b, a)
}

func TestNewKeyedValidates(t *testing.T) {
	for _, tc := range []struct {
		r     rate.Limit
		burst int
		opts  []KeyedOption
	}{
		{0, 1, nil}, {-1, 1, nil}, {1, 0, nil}, {1, -3, nil},
		{1e-15, 1 << 20, nil},
		{MaxRate * 1.0001, 1, nil}, {5e8, 1, nil}, {1, MaxBurst + 1, nil},
		{1, 1, []KeyedOption{WithCapacity(0)}},
		{1, 1, []KeyedOption{WithCapacity(maxCapacity + 1)}},
		{1, 1, []KeyedOption{WithIPv6Prefix(0)}},
		{1, 1, []KeyedOption{WithIPv6Prefix(129)}},
		{1, 1, []KeyedOption{nil}},
	} {
		_, err := NewKeyed(tc.r, tc.burst, tc.opts...)
		require.ErrorIs(t, err, errInvalid, "rate %v burst %d", tc.r, tc.burst)
	}
	k, err := NewKeyed(rate.Inf, 4)
	require.NoError(t, err)
	for range 100 {
		require.Equal(t, Decision{Allowed: true, Remaining: 4, Limit: 4}, k.Allow("x"))
	}
}

func FuzzTokens(f *testing.F) {
	f.Add(int64(1), int64(0))
	f.Add(int64(3), int64(8))
	f.Add(int64(1_000_000_007), int64(999_999_999_999))
	f.Add(int64(7), int64(1<<52+5))
	f.Fuzz(func(t *testing.T, interval, x int64) {
		if interval < 1 || x < 0 || interval > 1<<40 {
			return
		}
		g := gcra{interval: interval, inv: 1 / float64(interval)}
		require.Equal(t, int(x/interval), g.tokens(x), "%d / %d", x, interval)
	})
}
