package redisstore

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/garrison-go/garrison/limiter"
)

func rateOf(r float64) rate.Limit { return rate.Limit(r) }

// model is the reference GCRA, written independently of the Lua script:
// integer microseconds, state is the TAT, a denial changes nothing.
type model struct {
	interval, tau, tat int64
	burst              int
}

func newModel(r float64, burst int) *model {
	iv := int64(math.Round(1e6 / r))
	return &model{interval: iv, tau: iv * int64(burst), burst: burst}
}

func (m *model) step(now int64) limiter.Decision {
	tat := max(m.tat, now)
	d := limiter.Decision{Limit: m.burst, Window: time.Duration(m.tau) * time.Microsecond}
	if tat+m.interval-now > m.tau {
		d.RetryAfter = time.Duration(tat+m.interval-m.tau-now) * time.Microsecond
		d.ResetAfter = time.Duration(tat-now) * time.Microsecond
		d.Reason = limiter.RequestRate
		return d
	}
	m.tat = tat + m.interval
	d.Allowed = true
	d.Remaining = int((now + m.tau - m.tat) / m.interval)
	d.ResetAfter = time.Duration(m.tat-now) * time.Microsecond
	return d
}

// requireDecision checks got against want computed at the start of a span
// of Redis time of length slack: the script ran somewhere inside it, so
// every duration is want's minus at most slack, and the rest is exact.
func requireDecision(t *testing.T, want, got limiter.Decision, slack time.Duration, msg string) {
	t.Helper()
	require.Equal(t, want.Allowed, got.Allowed, "%s: allowed", msg)
	require.Equal(t, want.Remaining, got.Remaining, "%s: remaining", msg)
	require.Equal(t, want.Reason, got.Reason, "%s: reason", msg)
	require.Equal(t, want.Limit, got.Limit, "%s: limit", msg)
	require.Equal(t, want.Window, got.Window, "%s: window", msg)
	require.LessOrEqual(t, got.RetryAfter, want.RetryAfter, "%s: retry after", msg)
	require.GreaterOrEqual(t, got.RetryAfter, max(want.RetryAfter-slack, 0), "%s: retry after", msg)
	require.LessOrEqual(t, got.ResetAfter, want.ResetAfter, "%s: reset after", msg)
	require.GreaterOrEqual(t, got.ResetAfter, want.ResetAfter-slack, "%s: reset after", msg)
}

func TestGCRASequenceMatchesModel(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	for _, tc := range []struct {
		r     float64
		burst int
	}{{1.0 / 60, 5}, {1, 1}, {0.5, 3}, {0.2, 10}} {
		t.Run(strconv.Itoa(tc.burst), func(t *testing.T) {
			// Every rate here has an emission interval far longer than the
			// sequence takes, so the Redis clock moving during it cannot
			// change a count, only shorten durations by at most the span.
			l := newTestLimiter(t, c, tc.r, tc.burst)
			require.NoError(t, gcraScript.Load(context.Background(), c).Err(), "so every call is one EVALSHA")
			m := newModel(tc.r, tc.burst)
			start := redisNow(t, c)
			var got []limiter.Decision
			for range tc.burst + 3 {
				d, err := l.AllowContext(context.Background(), "k")
				require.NoError(t, err)
				got = append(got, d)
			}
			slack := time.Duration(redisNow(t, c)-start) * time.Microsecond
			require.Less(t, slack, time.Duration(m.interval)*time.Microsecond/4, "machine too slow for this test")
			for i, d := range got {
				requireDecision(t, m.step(start), d, slack, "call "+strconv.Itoa(i))
			}
			st := l.Stats()
			require.Equal(t, uint64(tc.burst), st.Allowed)
			require.Equal(t, uint64(3), st.Denied)
			require.Equal(t, uint64(tc.burst+3), st.RoundTrips)
			require.Zero(t, st.Errors)
			require.Zero(t, st.FallbackDecisions)
		})
	}
}

// TestGCRAFromState drives the script from stored states, written relative
// to Redis' clock: it is how the test moves time without sleeping.
func TestGCRAFromState(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	// Interval 10s, tolerance 40s: every offset below is at least 1s from a
	// boundary, far more than the script's clock can move during a call.
	const r, burst = 0.1, 4
	interval := int64(10 * time.Second / time.Microsecond)
	for _, off := range []float64{-10, -0.5, 0, 0.5, 1.5, 2.5, 2.9, 3.1, 3.5, 10} {
		t.Run(strconv.FormatFloat(off, 'f', -1, 64), func(t *testing.T) {
			l := newTestLimiter(t, c, r, burst)
			key := l.opts.prefix + "k"
			start := redisNow(t, c)
			tat := start + int64(off*float64(interval))
			require.NoError(t, c.Set(context.Background(), key, tat, time.Minute).Err())
			d, err := l.AllowContext(context.Background(), "k")
			require.NoError(t, err)
			slack := time.Duration(redisNow(t, c)-start) * time.Microsecond
			require.Less(t, slack, 900*time.Millisecond, "machine too slow for this test")
			m := newModel(r, burst)
			m.tat = tat
			requireDecision(t, m.step(start), d, slack, "decision")
			// Newer Redis versions may write the number in exponent form;
			// either form reads back to the exact integer.
			storedF, err := c.Get(context.Background(), key).Float64()
			require.NoError(t, err)
			stored := int64(storedF)
			require.Equal(t, storedF, float64(stored))
			if d.Allowed {
				// The script's clock read lies in [start, start+slack].
				require.GreaterOrEqual(t, stored, max(tat, start)+interval, "TAT after admission")
				require.LessOrEqual(t, stored, max(tat, start+slack.Microseconds())+interval, "TAT after admission")
				ttl, err := c.PTTL(context.Background(), key).Result()
				require.NoError(t, err)
				// The expiry is ResetAfter rounded up to milliseconds, less
				// whatever time has passed since the script ran.
				sinceStart := time.Duration(redisNow(t, c)-start) * time.Microsecond
				require.LessOrEqual(t, ttl, d.ResetAfter+time.Millisecond, "expiry follows ResetAfter")
				require.GreaterOrEqual(t, ttl, d.ResetAfter-sinceStart-time.Millisecond, "expiry follows ResetAfter")
			} else {
				require.Equal(t, tat, stored, "a denial must not move the TAT")
			}
		})
	}
}

// TestStateExpires checks that Redis memory bounds itself: a key's expiry
// is the time until its bucket is full again, when forgetting it loses
// nothing.
func TestStateExpires(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	l := newTestLimiter(t, c, 1000, 3) // 1ms interval
	d, err := l.AllowContext(context.Background(), "k")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.LessOrEqual(t, d.ResetAfter, time.Millisecond)
	require.Eventually(t, func() bool {
		n, err := c.Exists(context.Background(), l.opts.prefix+"k").Result()
		return err == nil && n == 0
	}, 5*time.Second, 5*time.Millisecond, "state of a full bucket must expire")
}

func TestScriptReloadedAfterFlush(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	l := newTestLimiter(t, c, 1, 100)
	_, err := l.AllowContext(context.Background(), "k")
	require.NoError(t, err)
	require.NoError(t, c.ScriptFlush(context.Background()).Err())
	before := l.Stats().RoundTrips
	d, err := l.AllowContext(context.Background(), "k")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, before+2, l.Stats().RoundTrips, "NOSCRIPT then EVAL")
	_, err = l.AllowContext(context.Background(), "k")
	require.NoError(t, err)
	require.Equal(t, before+3, l.Stats().RoundTrips, "EVAL cached the script for EVALSHA")
}

// TestSharedBudget is the point of the package: instances on separate
// connections share one budget per key instead of each having their own.
func TestSharedBudget(t *testing.T) {
	addr := sharedAddr(t)
	prefix := uniquePrefix(t)
	const burst, perInstance = 20, 60
	var ls []*Limiter
	for range 3 {
		l, err := New(newClient(t, addr), rateOf(1.0/60), burst,
			WithPrefix(prefix), WithTimeout(5*time.Second), WithFailPolicy(FailClosed), WithCircuitBreaker(0, 0))
		require.NoError(t, err)
		ls = append(ls, l)
	}
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			var inner sync.WaitGroup
			for range 4 {
				inner.Go(func() {
					for range perInstance / 4 {
						_, err := l.AllowContext(context.Background(), "shared")
						require.NoError(t, err)
					}
				})
			}
			inner.Wait()
		})
	}
	wg.Wait()
	var allowed, denied uint64
	for _, l := range ls {
		st := l.Stats()
		allowed += st.Allowed
		denied += st.Denied
	}
	require.Equal(t, uint64(3*perInstance), allowed+denied)
	// One token refills per minute, so at most one more than the burst can
	// pass however long the test takes on a loaded machine.
	require.GreaterOrEqual(t, allowed, uint64(burst))
	require.LessOrEqual(t, allowed, uint64(burst+1), "three instances must share one budget, not have three")
}

func TestStressAccounting(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	const burst, keys, workers, calls = 5, 16, 8, 150
	l := newTestLimiter(t, c, 1.0/60, burst, WithDenyCache(64))
	// Without it the first calls would also cost a NOSCRIPT round trip, and
	// the count below would hold only when an earlier test loaded the script.
	require.NoError(t, gcraScript.Load(context.Background(), c).Err())
	var mu sync.Mutex
	allowedByKey := map[string]int{}
	var errs, decisions int
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				key := "k" + strconv.Itoa((w*calls+i)%keys)
				switch i % 50 {
				case 7:
					key = ""
				case 13:
					ctx, cancel = context.WithCancel(ctx)
					cancel()
				}
				d, err := l.AllowContext(ctx, key)
				cancel()
				mu.Lock()
				if err != nil {
					require.False(t, d.Allowed)
					errs++
				} else {
					decisions++
					if d.Allowed {
						allowedByKey[key]++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st := l.Stats()
	require.Equal(t, uint64(workers*calls), st.Allowed+st.Denied+st.Failed, "every call ends in exactly one state")
	require.Equal(t, uint64(errs), st.Failed)
	require.Equal(t, uint64(decisions), st.Allowed+st.Denied)
	var allowed int
	for k, n := range allowedByKey {
		require.GreaterOrEqual(t, n, burst, k)
		require.LessOrEqual(t, n, burst+1, k)
		allowed += n
	}
	require.Equal(t, uint64(allowed), st.Allowed)
	require.Positive(t, st.CacheHits)
	require.Equal(t, st.Allowed+st.Denied-st.CacheHits, st.RoundTrips, "one round trip per uncached decision")
}

func TestInfiniteRateSkipsRedis(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	l, err := New(c, rate.Inf, 7)
	require.NoError(t, err)
	d, err := l.AllowContext(context.Background(), "k")
	require.NoError(t, err)
	require.Equal(t, limiter.Decision{Allowed: true, Remaining: 7, Limit: 7}, d)
	require.Zero(t, l.Stats().RoundTrips)
}

func TestBadInput(t *testing.T) {
	good := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer good.Close()
	deaf := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer deaf.Close()
	keyed, err := limiter.NewKeyed(1, 1)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		c     redis.UniversalClient
		r     rate.Limit
		burst int
		opts  []Option
	}{
		"nil client":          {c: nil, r: 1, burst: 1},
		"typed nil client":    {c: (*redis.Client)(nil), r: 1, burst: 1},
		"typed nil cluster":   {c: (*redis.ClusterClient)(nil), r: 1, burst: 1},
		"deadline-deaf":       {c: deaf, r: 1, burst: 1},
		"zero rate":           {c: good, r: 0, burst: 1},
		"negative rate":       {c: good, r: -1, burst: 1},
		"NaN rate":            {c: good, r: rate.Limit(math.NaN()), burst: 1},
		"rate above max":      {c: good, r: MaxRate * 2, burst: 1},
		"zero burst":          {c: good, r: 1, burst: 0},
		"negative burst":      {c: good, r: 1, burst: -3},
		"window too long":     {c: good, r: 1e-6, burst: math.MaxInt},
		"tiny rate":           {c: good, r: 1e-300, burst: 1},
		"denormal rate":       {c: good, r: rate.Limit(math.SmallestNonzeroFloat64), burst: 1},
		"nil option":          {c: good, r: 1, burst: 1, opts: []Option{nil}},
		"zero timeout":        {c: good, r: 1, burst: 1, opts: []Option{WithTimeout(0)}},
		"unknown policy":      {c: good, r: 1, burst: 1, opts: []Option{WithFailPolicy(FailClosed + 1)}},
		"nil fallback":        {c: good, r: 1, burst: 1, opts: []Option{WithLocalFallback(nil)}},
		"zero instances":      {c: good, r: 1, burst: 1, opts: []Option{WithInstances(0)}},
		"negative deny cache": {c: good, r: 1, burst: 1, opts: []Option{WithDenyCache(-1)}},
		"huge deny cache":     {c: good, r: 1, burst: 1, opts: []Option{WithDenyCache(MaxDenyCache + 1)}},
		"negative breaker":    {c: good, r: 1, burst: 1, opts: []Option{WithCircuitBreaker(-1, time.Second)}},
		"breaker no cooldown": {c: good, r: 1, burst: 1, opts: []Option{WithCircuitBreaker(3, 0)}},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := New(tc.c, tc.r, tc.burst, tc.opts...)
			require.ErrorIs(t, err, ErrInvalidOption)
			require.Nil(t, l)
		})
	}

	l, err := New(good, 1, 1, WithLocalFallback(keyed))
	require.NoError(t, err)
	d, err := l.AllowContext(context.Background(), "")
	require.ErrorIs(t, err, ErrEmptyKey)
	require.False(t, d.Allowed)

	cause := errors.New("client went away")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	d, err = l.AllowContext(ctx, "k")
	require.ErrorIs(t, err, cause)
	require.False(t, d.Allowed)
	st := l.Stats()
	require.Equal(t, uint64(2), st.Failed)
	require.Zero(t, st.RoundTrips)
}

func TestFailPolicyString(t *testing.T) {
	require.Equal(t, "FailLocal", FailPolicy(0).String())
	require.Equal(t, "FailOpen", FailOpen.String())
	require.Equal(t, "FailClosed", FailClosed.String())
	require.Equal(t, "FailPolicy(9)", FailPolicy(9).String())
}

// FuzzNew checks that no rate, burst or option value makes New panic, and
// that New accepts exactly the documented domain.
func FuzzNew(f *testing.F) {
	f.Add(1.0, 1, int64(time.Millisecond), 0, 1)
	f.Add(0.0, 0, int64(0), -1, 0)
	f.Add(math.Inf(1), 5, int64(-1), 1<<30, -5)
	f.Add(1e-9, math.MaxInt, int64(1), 10, 3)
	f.Add(2e6, 1, int64(1), 1, 1)
	f.Add(1e-300, 1, int64(1), 0, 1)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	f.Cleanup(func() { _ = c.Close() })
	f.Fuzz(func(t *testing.T, r float64, burst int, timeout int64, cache, instances int) {
		l, err := New(c, rate.Limit(r), burst, WithTimeout(time.Duration(timeout)), WithDenyCache(cache), WithInstances(instances))
		valid := limiter.CheckRate(rate.Limit(r), burst) == nil &&
			timeout > 0 && cache >= 0 && cache <= MaxDenyCache && instances > 0
		if valid && !math.IsInf(r, 1) {
			_, kerr := limiter.NewKeyed(rate.Limit(r), burst)
			require.NoError(t, kerr, "limiter and redisstore must accept the same limits")
			valid = float64(burst)*math.Round(1e6/r) <= maxTolerance
		}
		if valid && !math.IsInf(r, 1) && r/float64(instances) > 0 {
			// The local fallback's own limits also apply.
			_, kerr := limiter.NewKeyed(rate.Limit(r)/rate.Limit(instances), (burst-1)/instances+1)
			valid = kerr == nil
		}
		if valid {
			require.NoError(t, err)
			require.NotNil(t, l)
			return
		}
		require.ErrorIs(t, err, ErrInvalidOption)
		require.Nil(t, l)
	})
}

// TestExampleFlow runs ExampleNew's steps against the test Redis.
func TestExampleFlow(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	rl, err := New(c, 10, 20, WithPrefix(uniquePrefix(t)), WithFailPolicy(FailLocal), WithInstances(4),
		WithDenyCache(10_000), WithTimeout(5*time.Second))
	require.NoError(t, err)
	d, err := rl.AllowContext(context.Background(), "client-42")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 19, d.Remaining)
}

// keyCounter records how many keys each script call names.
type keyCounter struct {
	mu      sync.Mutex
	numKeys []any
}

func (*keyCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *keyCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			h.mu.Lock()
			h.numKeys = append(h.numKeys, cmd.Args()[2])
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (*keyCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestOneKeyPerCall: every script call names exactly one key, which is what
// lets Redis Cluster route it to one node.
func TestOneKeyPerCall(t *testing.T) {
	c := newClient(t, sharedAddr(t))
	h := &keyCounter{}
	c.AddHook(h)
	l := newTestLimiter(t, c, 1, 2)
	require.NoError(t, c.ScriptFlush(context.Background()).Err(), "so EVAL runs too")
	for _, key := range []string{"a", "b", "a", "a", "{tag}x"} {
		_, err := l.AllowContext(context.Background(), key)
		require.NoError(t, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Len(t, h.numKeys, 6, "five EVALSHA and one EVAL after the flush")
	for _, n := range h.numKeys {
		require.EqualValues(t, 1, n)
	}
}
