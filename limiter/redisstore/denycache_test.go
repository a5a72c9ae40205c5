package redisstore

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDenyCacheSkipsRedis: once Redis denies a key, further requests for it
// cost no round trip until its RetryAfter has passed, and then go to Redis
// again and are admitted.
func TestDenyCacheSkipsRedis(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	const r = 5 // 200ms emission interval
	l := newTestLimiter(t, c, r, 1, WithDenyCache(128))
	ctx := context.Background()
	d, err := l.AllowContext(ctx, "attacker")
	require.NoError(t, err)
	require.True(t, d.Allowed)

	sent := time.Now()
	d, err = l.AllowContext(ctx, "attacker")
	require.NoError(t, err)
	require.False(t, d.Allowed)
	retry := d.RetryAfter
	require.Positive(t, retry)
	base := l.Stats()
	require.Zero(t, base.CacheHits)

	// Until RetryAfter has passed since the denied request was sent, every
	// request is answered locally.
	var cached int
	for time.Since(sent) < retry*3/4 && cached < 10000 {
		d, err := l.AllowContext(ctx, "attacker")
		require.NoError(t, err)
		require.False(t, d.Allowed)
		require.LessOrEqual(t, d.RetryAfter, retry)
		require.Positive(t, d.RetryAfter)
		cached++
	}
	require.Positive(t, cached, "machine too slow for this test")
	st := l.Stats()
	require.Equal(t, base.RoundTrips, st.RoundTrips, "an over-limit key must cost no round trip")
	require.Equal(t, uint64(cached), st.CacheHits)
	require.Equal(t, base.Denied+uint64(cached), st.Denied)

	// Other keys are unaffected.
	d, err = l.AllowContext(ctx, "someone-else")
	require.NoError(t, err)
	require.True(t, d.Allowed)

	// After RetryAfter the key goes back to Redis, which admits it.
	require.Eventually(t, func() bool {
		d, err := l.AllowContext(ctx, "attacker")
		return err == nil && d.Allowed
	}, 5*time.Second, time.Millisecond)
	require.Greater(t, l.Stats().RoundTrips, base.RoundTrips+1)
}

func TestWithoutDenyCacheEveryDecisionIsARoundTrip(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	l := newTestLimiter(t, c, 1.0/60, 1)
	require.NoError(t, gcraScript.Load(context.Background(), c).Err())
	for range 20 {
		_, err := l.AllowContext(context.Background(), "attacker")
		require.NoError(t, err)
	}
	st := l.Stats()
	require.Equal(t, uint64(20), st.RoundTrips)
	require.Equal(t, uint64(19), st.Denied)
	require.Zero(t, st.CacheHits)
	require.Zero(t, st.DenyCacheSize)
}

func TestDenyCacheUnit(t *testing.T) {
	c := newDenyCache(5)
	require.Equal(t, 8, c.capacity())
	h := c.hash("a")
	_, _, ok := c.lookup(h, 0)
	require.False(t, ok)
	c.insert(h, 0, 100, 300)
	retry, reset, ok := c.lookup(h, 50)
	require.True(t, ok)
	require.Equal(t, int64(100), retry)
	require.Equal(t, int64(300), reset)
	_, _, ok = c.lookup(h, 100)
	require.False(t, ok, "expires at retryAt")
	h2 := c.hash("b")
	c.insert(h2, 0, 0, 10)
	_, _, ok = c.lookup(h2, 0)
	require.False(t, ok, "an already expired entry is not stored")
	require.NotEqual(t, uint64(0), c.hash(""), "0 marks an empty slot")
}

// FuzzDenyCache runs random insert/lookup sequences against a map and
// checks the promise that keeps the cache safe: a hit is always the latest
// unexpired entry for that key, never a denial the map does not have.
// Misses are allowed (eviction only costs a round trip).
func FuzzDenyCache(f *testing.F) {
	f.Add([]byte{0, 1, 10, 1, 1, 5, 2, 3, 7})
	f.Add([]byte{0, 0, 255, 0, 1, 255, 0, 2, 255, 0, 3, 255, 0, 4, 255, 1, 0, 0})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, ops []byte) {
		c := newDenyCache(8)
		type entry struct{ retry, reset int64 }
		want := map[uint64]entry{}
		var now int64
		for len(ops) >= 3 {
			op, k, v := ops[0], ops[1]%12, int64(ops[2])
			ops = ops[3:]
			var kb [8]byte
			binary.LittleEndian.PutUint64(kb[:], uint64(k))
			h := c.hash(string(kb[:]))
			switch op % 3 {
			case 0:
				c.insert(h, now, now+v, now+2*v)
				if v > 0 {
					want[h] = entry{now + v, now + 2*v}
				}
			case 1:
				retry, reset, ok := c.lookup(h, now)
				w, live := want[h]
				live = live && w.retry > now
				if ok {
					require.True(t, live, "hit for a key not denied")
					require.Equal(t, w.retry, retry)
					require.Equal(t, w.reset, reset)
				}
			case 2:
				now += v
			}
		}
	})
}

func TestBreaker(t *testing.T) {
	var clock int64
	now := func() int64 { return clock }
	b := breaker{threshold: 2, cooldown: 100}

	ok, probe := b.admit(now)
	require.True(t, ok)
	require.False(t, probe)
	b.failure(false, clock)
	require.False(t, b.isOpen(clock))
	b.success(false)
	b.failure(false, clock)
	require.False(t, b.isOpen(clock), "a success resets the count")
	b.failure(false, clock)
	require.True(t, b.isOpen(clock))

	ok, _ = b.admit(now)
	require.False(t, ok, "open: skip Redis")
	clock = 100
	ok, probe = b.admit(now)
	require.True(t, ok)
	require.True(t, probe)
	ok, _ = b.admit(now)
	require.False(t, ok, "one probe at a time")
	b.failure(true, clock)
	require.True(t, b.isOpen(clock), "a failed probe reopens")
	ok, _ = b.admit(now)
	require.False(t, ok)

	clock = 200
	_, probe = b.admit(now)
	require.True(t, probe)
	b.abandon(probe)
	_, probe = b.admit(now)
	require.True(t, probe, "an abandoned probe lets the next decision probe")
	b.success(probe)
	require.False(t, b.isOpen(clock))
	ok, probe = b.admit(now)
	require.True(t, ok)
	require.False(t, probe)

	off := breaker{}
	for range 10 {
		off.failure(false, 0)
	}
	ok, _ = off.admit(now)
	require.True(t, ok, "threshold 0 disables the breaker")
}

// TestBreakerHugeCooldown: a cooldown meant as "practically forever" must
// keep the breaker open, not wrap around to an instant in the past.
func TestBreakerHugeCooldown(t *testing.T) {
	clock := int64(1000)
	now := func() int64 { return clock }
	b := breaker{threshold: 1, cooldown: math.MaxInt64}
	b.failure(false, clock)
	require.True(t, b.isOpen(clock))
	ok, _ := b.admit(now)
	require.False(t, ok, "open: skip Redis")

	clock = 2000
	b.openUntil.Store(1) // as if the cooldown had passed
	ok, probe := b.admit(now)
	require.True(t, ok)
	require.True(t, probe)
	b.failure(probe, clock)
	require.True(t, b.isOpen(clock), "a failed probe reopens")
	ok, _ = b.admit(now)
	require.False(t, ok)
}
