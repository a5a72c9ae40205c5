package redisstore

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/limiter"
)

// TestWrongTypeDoesNotOpenBreaker reproduces finding 2 with WRONGTYPE: an
// attacker who makes its own key fail (a key of another type under the
// prefix) used to open the breaker, and FailOpen then admitted every key,
// including the attacker's exhausted one. Now the error decides only the
// failing key, and the breaker stays closed.
func TestWrongTypeDoesNotOpenBreaker(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	prefix := uniquePrefix(t)
	l, err := New(c, rateOf(1.0/60), 2, WithPrefix(prefix), WithTimeout(5*time.Second),
		WithFailPolicy(FailOpen), WithCircuitBreaker(3, time.Hour))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.LPush(ctx, prefix+"poisoned", "x").Err())
	t.Cleanup(func() { _ = c.Del(context.Background(), prefix+"poisoned").Err() })

	admitted := 0
	for range 100 {
		d, err := l.AllowContext(ctx, "poisoned")
		require.ErrorIs(t, err, ErrKeyFailed)
		require.NotErrorIs(t, err, ErrUnavailable)
		require.True(t, d.Allowed, "FailOpen decides the failing key")
		d, err = l.AllowContext(ctx, "attacker")
		require.NoError(t, err)
		if d.Allowed {
			admitted++
		}
	}
	require.Equal(t, 2, admitted, "the exhausted key must still be decided by Redis")
	st := l.Stats()
	require.False(t, st.BreakerOpen)
	require.Equal(t, uint64(100), st.KeyErrors)
	require.Zero(t, st.Errors)
	require.Equal(t, st.Allowed+st.Denied+st.Failed, uint64(200))
}

// TestOOMDoesNotOpenBreaker reproduces finding 2 with a Redis out of memory
// (maxmemory reached under noeviction): the writes of admitted requests
// fail, denials (which write nothing) still work. The attacker's fresh keys
// fail with OOM; that must not open the breaker and admit its exhausted
// key. It uses a private redis-server, since it changes maxmemory.
func TestOOMDoesNotOpenBreaker(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.addr)
	l, err := New(c, rateOf(1.0/60), 2, WithPrefix(uniquePrefix(t)), WithTimeout(5*time.Second),
		WithFailPolicy(FailOpen), WithCircuitBreaker(3, time.Hour))
	require.NoError(t, err)
	ctx := context.Background()
	admitted := 0
	for range 2 {
		d, err := l.AllowContext(ctx, "attacker")
		require.NoError(t, err)
		require.True(t, d.Allowed)
		admitted++
	}
	require.NoError(t, c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	require.NoError(t, c.ConfigSet(ctx, "maxmemory", "1").Err())

	sawOOM := false
	for i := range 100 {
		_, err := l.AllowContext(ctx, "fresh-"+strconv.Itoa(i))
		require.ErrorIs(t, err, ErrKeyFailed)
		sawOOM = sawOOM || strings.Contains(err.Error(), "OOM")
		d, err := l.AllowContext(ctx, "attacker")
		require.NoError(t, err)
		if d.Allowed {
			admitted++
		}
	}
	require.True(t, sawOOM, "the test must reproduce an out-of-memory reply")
	require.Equal(t, 2, admitted)
	st := l.Stats()
	require.False(t, st.BreakerOpen)
	require.Equal(t, uint64(100), st.KeyErrors)
	require.Zero(t, st.Errors)
}

// TestLongKeysAreHashed reproduces finding 6: a 1 MiB key was stored raw.
// Keys over WithMaxKeyLen are stored as their SHA-256, share nothing with
// other keys, and still share one budget across instances.
func TestLongKeysAreHashed(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	prefix := uniquePrefix(t)
	l := newTestLimiter(t, c, 1.0/60, 1, WithPrefix(prefix))
	other := newTestLimiter(t, c, 1.0/60, 1, WithPrefix(prefix))
	ctx := context.Background()
	huge := strings.Repeat("k", 1<<20)
	d, err := l.AllowContext(ctx, huge)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	d, err = other.AllowContext(ctx, huge)
	require.NoError(t, err)
	require.False(t, d.Allowed, "another instance must share the hashed key's budget")
	d, err = l.AllowContext(ctx, huge+"x")
	require.NoError(t, err)
	require.True(t, d.Allowed, "a different long key has its own budget")
	// A raw key that spells a hashed one is hashed too, so it cannot reach
	// the long key's budget.
	spelled := storedKey(huge, DefaultMaxKeyLen)
	d, err = l.AllowContext(ctx, spelled)
	require.NoError(t, err)
	require.True(t, d.Allowed)

	keys, err := c.Keys(ctx, prefix+"*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 3)
	for _, k := range keys {
		require.LessOrEqual(t, len(k), len(prefix)+len(hashedKeyMark)+43)
	}
	short := strings.Repeat("s", DefaultMaxKeyLen)
	require.Equal(t, short, storedKey(short, DefaultMaxKeyLen))
	require.NotEqual(t, short+"s", storedKey(short+"s", DefaultMaxKeyLen))
	_, err = New(c, 1, 1, WithMaxKeyLen(10))
	require.ErrorIs(t, err, ErrInvalidOption)
}

func TestUnhealthyClassification(t *testing.T) {
	require.True(t, unhealthy(context.DeadlineExceeded))
	for _, msg := range []string{"LOADING Redis is loading", "BUSY Redis is busy running a script", "MASTERDOWN x", "READONLY x", "CLUSTERDOWN x"} {
		require.True(t, unhealthy(redisErr(msg)), msg)
	}
	for _, msg := range []string{"OOM command not allowed", "WRONGTYPE Operation against a key", "ERR Error running script"} {
		require.False(t, unhealthy(redisErr(msg)), msg)
	}
}

// redisErr is an error reply, as go-redis reports one.
type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

// TestBoundsMatchLimiter reproduces finding 5: the in-process limiter and
// the store accept exactly the same rates and bursts.
func TestBoundsMatchLimiter(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	for _, tc := range []struct {
		r     rate.Limit
		burst int
	}{
		{1, 1}, {MaxRate, 1}, {MaxRate * 1.001, 1}, {5e8, 1}, {1e6, 1}, {rate.Inf, 1},
		{1, limiter.MaxBurst}, {1, limiter.MaxBurst + 1}, {1e-9, 1}, {1e-6, 1}, {0, 1}, {1, 0},
		{rate.Limit(math.NaN()), 1}, {-1, 1},
	} {
		_, kerr := limiter.NewKeyed(tc.r, tc.burst, limiter.WithCapacity(8))
		_, serr := New(c, tc.r, tc.burst)
		require.Equal(t, kerr == nil, serr == nil, "rate %v burst %d: limiter %v, redisstore %v", tc.r, tc.burst, kerr, serr)
		require.Equal(t, kerr == nil, limiter.CheckRate(tc.r, tc.burst) == nil)
	}
}
