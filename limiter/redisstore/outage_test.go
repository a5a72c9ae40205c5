package redisstore

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/limiter"
)

// TestRedisDownAndBack stops a private Redis mid-run, checks that every
// decision returns within the timeout and follows the fail policy, restarts
// Redis on the same port and checks that decisions go back to it.
func TestRedisDownAndBack(t *testing.T) {
	const timeout = 50 * time.Millisecond
	// latencyBound allows for scheduling delays on a loaded machine under
	// -race; the point is that it is nowhere near the client's own read
	// timeout (seconds) or its dial retries.
	const latencyBound = timeout + 400*time.Millisecond
	const downCalls = 12

	for _, tc := range []struct {
		name   string
		policy FailPolicy
		opts   func(t *testing.T) []Option
		check  func(t *testing.T, i int, d limiter.Decision)
	}{
		{
			name: "FailOpen", policy: FailOpen,
			check: func(t *testing.T, _ int, d limiter.Decision) {
				require.True(t, d.Allowed)
			},
		},
		{
			name: "FailClosed", policy: FailClosed,
			check: func(t *testing.T, _ int, d limiter.Decision) {
				require.False(t, d.Allowed)
				require.Equal(t, limiter.RequestRate, d.Reason)
				require.Equal(t, time.Second, d.RetryAfter)
			},
		},
		{
			name: "FailLocal-fallback", policy: FailLocal,
			opts: func(t *testing.T) []Option {
				k, err := limiter.NewKeyed(1.0/60, 2)
				require.NoError(t, err)
				return []Option{WithLocalFallback(k)}
			},
			check: func(t *testing.T, i int, d limiter.Decision) {
				require.Equal(t, i < 2, d.Allowed, "the local limiter's burst of 2")
			},
		},
		{
			name: "FailLocal-instances", policy: FailLocal,
			opts: func(*testing.T) []Option { return []Option{WithInstances(3)} },
			check: func(t *testing.T, i int, d limiter.Decision) {
				// Burst 9 over 3 instances: 3 each while Redis is away.
				require.Equal(t, i < 3, d.Allowed, "burst/instances")
				require.Equal(t, 3, d.Limit)
			},
		},
	} {
		for _, variant := range []string{"killed", "frozen", "killed/no-breaker", "frozen/no-breaker"} {
			outage, _, _ := strings.Cut(variant, "/")
			breaker := !strings.HasSuffix(variant, "no-breaker")
			t.Run(tc.name+"/"+variant, func(t *testing.T) {
				srv := startServer(t)
				c := newClient(t, srv.addr)
				opts := []Option{WithPrefix(uniquePrefix(t)), WithTimeout(timeout), WithFailPolicy(tc.policy)}
				if tc.opts != nil {
					opts = append(opts, tc.opts(t)...)
				}
				if !breaker {
					opts = append(opts, WithCircuitBreaker(0, 0))
				}
				l, err := New(c, 1.0/60, 9, opts...)
				require.NoError(t, err)
				ctx := context.Background()

				// Up: Redis decides. Generous deadline: only the first
				// connection's setup on a loaded machine is at stake.
				require.Eventually(t, func() bool {
					_, err := l.AllowContext(ctx, "warm")
					return err == nil
				}, 10*time.Second, time.Millisecond)
				d, err := l.AllowContext(ctx, "k")
				require.NoError(t, err)
				require.True(t, d.Allowed)
				require.Equal(t, 8, d.Remaining)

				if outage == "killed" {
					srv.kill()
				} else {
					srv.freeze()
				}
				before := l.Stats()
				var slowest time.Duration
				for i := range downCalls {
					start := time.Now()
					d, err := l.AllowContext(ctx, "k2")
					slowest = max(slowest, time.Since(start))
					require.ErrorIs(t, err, ErrUnavailable, "call %d", i)
					tc.check(t, i, d)
				}
				require.Less(t, slowest, latencyBound, "a decision waited too long for a dead Redis")
				st := l.Stats()
				require.Equal(t, before.FallbackDecisions+downCalls, st.FallbackDecisions)
				require.Equal(t, before.Allowed+before.Denied+downCalls, st.Allowed+st.Denied)
				if breaker {
					require.GreaterOrEqual(t, st.Errors-before.Errors, uint64(DefaultBreakerFailures))
					// The breaker spared most calls the wait.
					require.Less(t, st.RoundTrips-before.RoundTrips, uint64(downCalls))
				} else {
					// Every call tried Redis and the timeout alone bounded it.
					require.Equal(t, before.Errors+downCalls, st.Errors)
					require.Equal(t, before.RoundTrips+downCalls, st.RoundTrips)
				}

				if outage == "killed" {
					srv.start()
				} else {
					srv.thaw()
				}
				require.Eventually(t, func() bool {
					_, err := l.AllowContext(ctx, "probe")
					return err == nil
				}, 10*time.Second, 5*time.Millisecond, "decisions must go back to Redis without a restart")
				before = l.Stats()
				key := "after-" + strconv.Itoa(int(before.RoundTrips))
				d, err = l.AllowContext(ctx, key)
				require.NoError(t, err)
				require.True(t, d.Allowed)
				require.Equal(t, 8, d.Remaining, "a Redis decision, not the fallback's")
				st = l.Stats()
				require.Equal(t, before.FallbackDecisions, st.FallbackDecisions)
				require.Equal(t, before.RoundTrips+1, st.RoundTrips)
				require.False(t, st.BreakerOpen)
			})
		}
	}
}

// TestCallerDeadlineIsNotAnOutage checks that a caller giving up does not
// count against Redis' health or fall back: the caller gets its ctx error.
func TestCallerDeadlineIsNotAnOutage(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.addr)
	l, err := New(c, 1, 5, WithPrefix(uniquePrefix(t)), WithTimeout(5*time.Second), WithCircuitBreaker(1, time.Hour))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := l.AllowContext(context.Background(), "warm")
		return err == nil
	}, 10*time.Second, time.Millisecond)
	srv.freeze()
	defer srv.thaw()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	d, err := l.AllowContext(ctx, "k")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, ErrUnavailable)
	require.False(t, d.Allowed)
	st := l.Stats()
	require.Equal(t, uint64(1), st.Failed)
	require.Zero(t, st.Errors)
	require.Zero(t, st.FallbackDecisions)
	require.False(t, st.BreakerOpen, "one caller's deadline must not open a one-failure breaker")
}
