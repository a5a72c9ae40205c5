package spawn_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

func newCoalescer[T any](t *testing.T, maxKeys int) *spawn.Coalescer[T] {
	t.Helper()
	c, err := spawn.NewCoalescer[T](maxKeys)
	require.NoError(t, err)
	return c
}

// 1,000 concurrent callers on one key run fn once and all get its result;
// half of them come with a cancelable ctx, so both execution modes are
// exercised.
func TestCoalescerThousandCallersRunOnce(t *testing.T) {
	for _, cancelable := range []bool{false, true} {
		c := newCoalescer[int](t, 4)
		const n = 1000
		var runs atomic.Int64
		release := make(chan struct{})
		fn := func(context.Context) (int, error) {
			runs.Add(1)
			<-release
			return 42, nil
		}
		ctx := context.Background()
		if cancelable {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		var wg sync.WaitGroup
		var sharedN atomic.Int64
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, shared, err := c.Do(ctx, "hot", fn)
				assert.NoError(t, err)
				assert.Equal(t, 42, v)
				if shared {
					sharedN.Add(1)
				}
			}()
		}
		require.Eventually(t, func() bool { return c.Stats().Joined == n-1 }, 30*time.Second, time.Millisecond)
		close(release)
		wg.Wait()
		assert.Equal(t, int64(1), runs.Load())
		assert.Equal(t, int64(n), sharedN.Load())
		st := c.Stats()
		assert.Equal(t, st.Calls, st.Executions+st.Joined+st.Rejected)
		assert.Zero(t, st.InFlight)
		assert.Zero(t, st.Keys)
	}
}

func TestCoalescerLeavingCallerGetsCtxError(t *testing.T) {
	c := newCoalescer[string](t, 4)
	fnCtx := make(chan context.Context, 1)
	release := make(chan struct{})
	fn := func(ctx context.Context) (string, error) {
		fnCtx <- ctx
		<-release
		return "v", nil
	}
	withDeadline, cancelDeadline := context.WithTimeout(context.WithValue(context.Background(), valueKey{}, "first"), time.Hour)
	defer cancelDeadline()
	ctx1, cancel1 := context.WithCancelCause(withDeadline)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	type res struct {
		v      string
		shared bool
		err    error
	}
	r1, r2 := make(chan res, 1), make(chan res, 1)
	go func() { v, s, err := c.Do(ctx1, "k", fn); r1 <- res{v, s, err} }()
	wctx := <-fnCtx
	assert.Equal(t, "first", wctx.Value(valueKey{}), "fn sees the starting caller's values")
	_, hasDeadline := wctx.Deadline()
	assert.False(t, hasDeadline, "but not its deadline")
	child, cancelChild := context.WithCancel(wctx)
	defer cancelChild()
	go func() { v, s, err := c.Do(ctx2, "k", fn); r2 <- res{v, s, err} }()
	require.Eventually(t, func() bool { return c.Stats().Joined == 1 }, 10*time.Second, time.Millisecond)

	left := errors.New("first caller left")
	cancel1(left)
	got := <-r1
	require.ErrorIs(t, got.err, context.Canceled)
	require.ErrorIs(t, got.err, left)
	require.NoError(t, wctx.Err(), "another caller still waits: the work goes on")
	require.NoError(t, context.Cause(wctx), "the first caller's cause does not show through")
	require.NoError(t, context.Cause(child))

	close(release)
	got = <-r2
	require.NoError(t, got.err)
	assert.Equal(t, "v", got.v)
	assert.True(t, got.shared)
	assert.Equal(t, int64(1), c.Stats().Left)
}

func TestCoalescerCancelsWorkWhenEveryCallerLeft(t *testing.T) {
	c := newCoalescer[int](t, 1)
	fnCtx := make(chan context.Context, 1)
	fn := func(ctx context.Context) (int, error) {
		fnCtx <- ctx
		<-ctx.Done()
		return 0, context.Cause(ctx)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, _, err := c.Do(ctx, "k", fn); errc <- err }()
	wctx := <-fnCtx
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	<-wctx.Done()
	require.ErrorIs(t, context.Cause(wctx), spawn.ErrAbandoned)
	// The abandoned execution counts against maxKeys until fn returns,
	// then a new call for the key starts afresh.
	require.Eventually(t, func() bool { return c.Stats().InFlight == 0 }, 10*time.Second, time.Millisecond)
	v, shared, err := c.Do(context.Background(), "k", func(context.Context) (int, error) { return 7, nil })
	require.NoError(t, err)
	assert.False(t, shared)
	assert.Equal(t, 7, v)
}

func TestCoalescerBoundsKeysInFlight(t *testing.T) {
	c := newCoalescer[int](t, 2)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	fn := func(context.Context) (int, error) { started <- struct{}{}; <-release; return 1, nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, k := range []string{"a", "b"} {
		wg.Add(1)
		go func() { defer wg.Done(); _, _, _ = c.Do(ctx, k, fn) }()
	}
	<-started
	<-started
	_, _, err := c.Do(ctx, "c", fn)
	require.ErrorIs(t, err, spawn.ErrSaturated)
	close(release)
	wg.Wait()
	assert.Equal(t, int64(1), c.Stats().Rejected)
}

func TestCoalescerPanicReachesEveryWaiter(t *testing.T) {
	c := newCoalescer[int](t, 1)
	release := make(chan struct{})
	fn := func(context.Context) (int, error) { <-release; panic("cold cache") }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 10
	errs := make(chan error, n)
	for range n {
		go func() { _, _, err := c.Do(ctx, "k", fn); errs <- err }()
	}
	require.Eventually(t, func() bool { return c.Stats().Joined == n-1 }, 10*time.Second, time.Millisecond)
	close(release)
	for range n {
		err := <-errs
		require.ErrorIs(t, err, spawn.ErrPanic)
		var pe *spawn.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "cold cache", pe.Value)
	}
	assert.Equal(t, int64(1), c.Stats().Panicked)

	// Inline mode (a ctx that cannot end) recovers too.
	_, _, err := c.Do(context.Background(), "k", fn)
	require.ErrorIs(t, err, spawn.ErrPanic)
}

func TestCoalescerInputs(t *testing.T) {
	_, err := spawn.NewCoalescer[int](0)
	require.Error(t, err)
	c := newCoalescer[int](t, 1)
	//lint:ignore SA1012 a nil ctx is what is tested
	_, _, err = c.Do(nil, "k", func(context.Context) (int, error) { return 1, nil }) //nolint:staticcheck
	require.ErrorIs(t, err, spawn.ErrNilContext)
	_, _, err = c.Do(context.Background(), "k", nil)
	require.Error(t, err)
	var nc *spawn.Coalescer[int]
	_, _, err = nc.Do(context.Background(), "k", func(context.Context) (int, error) { return 1, nil })
	require.Error(t, err)
	var zc spawn.Coalescer[int]
	_, _, err = zc.Do(context.Background(), "k", func(context.Context) (int, error) { return 1, nil })
	require.Error(t, err)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	_, _, err = c.Do(done, "k", func(context.Context) (int, error) { ran = true; return 1, nil })
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, ran)
}

func TestCoalescerStress(t *testing.T) {
	c := newCoalescer[int](t, 3)
	var wg sync.WaitGroup
	var runs atomic.Int64
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 200 {
				// Callers that cannot leave (Background) mixed with ones
				// that can, some of them already gone: both kinds join
				// executions both kinds started.
				ctx, cancel := context.WithCancel(context.Background())
				if (i+k)%7 == 0 {
					cancel()
				}
				if (i+k)%3 == 0 {
					ctx = context.Background()
				}
				key := []string{"a", "b", "c", "d"}[(i*k)%4]
				v, _, err := c.Do(ctx, key, func(context.Context) (int, error) { runs.Add(1); return len(key), nil })
				cancel()
				switch {
				case err == nil:
					assert.Equal(t, 1, v)
				case errors.Is(err, spawn.ErrSaturated), errors.Is(err, context.Canceled):
				default:
					t.Errorf("unexpected error %v", err)
				}
			}
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool { return c.Stats().InFlight == 0 }, 10*time.Second, time.Millisecond)
	st := c.Stats()
	assert.Equal(t, st.Calls, st.Executions+st.Joined+st.Rejected)
	assert.Equal(t, runs.Load(), st.Executions)
	assert.Zero(t, st.Keys)
}

// Callers that cannot leave and callers that can join one execution, each
// kind started by either: every caller still waiting gets the result, the
// one that left gets its ctx error, and the execution is not canceled
// while a caller that cannot leave waits for it.
func TestCoalescerMixedCallers(t *testing.T) {
	for _, starterCancelable := range []bool{false, true} {
		c := newCoalescer[int](t, 1)
		started, release := make(chan struct{}), make(chan struct{})
		var runs atomic.Int64
		fn := func(ctx context.Context) (int, error) {
			runs.Add(1)
			close(started)
			select {
			case <-release:
				return 5, nil
			case <-ctx.Done():
				return 0, context.Cause(ctx)
			}
		}
		starterCtx, cancelStarter := context.WithCancel(context.Background())
		defer cancelStarter()
		if !starterCancelable {
			starterCtx = context.Background()
		}
		type result struct {
			v   int
			err error
		}
		starter := make(chan result, 1)
		go func() { v, _, err := c.Do(starterCtx, "k", fn); starter <- result{v, err} }()
		<-started
		leaverCtx, leave := context.WithCancel(context.Background())
		stayerCtx, cancelStayer := context.WithCancel(context.Background())
		defer cancelStayer()
		const joiners = 6
		results := make(chan result, joiners)
		for i := range joiners {
			ctx := []context.Context{context.Background(), stayerCtx, leaverCtx}[i%3]
			go func() { v, _, err := c.Do(ctx, "k", fn); results <- result{v, err} }()
		}
		require.Eventually(t, func() bool { return c.Stats().Joined == joiners }, 10*time.Second, time.Millisecond)
		leave()
		if starterCancelable {
			// The starter leaves too: the callers that cannot leave keep
			// the execution alive.
			cancelStarter()
			assert.ErrorIs(t, (<-starter).err, context.Canceled)
		}
		for range joiners / 3 {
			assert.ErrorIs(t, (<-results).err, context.Canceled)
		}
		close(release)
		for range joiners - joiners/3 {
			r := <-results
			assert.NoError(t, r.err)
			assert.Equal(t, 5, r.v)
		}
		if !starterCancelable {
			r := <-starter
			assert.NoError(t, r.err)
			assert.Equal(t, 5, r.v)
		}
		assert.Equal(t, int64(1), runs.Load())
		st := c.Stats()
		assert.Equal(t, int64(joiners/3)+map[bool]int64{false: 0, true: 1}[starterCancelable], st.Left)
		assert.Zero(t, st.Keys)
	}
}

// An abandoned execution that ends after a new one for its key has started
// must not remove the new one: a later caller joins the new execution
// rather than starting a third.
func TestCoalescerAbandonedExecutionLeavesNewOneAlone(t *testing.T) {
	c := newCoalescer[int](t, 2)
	release1, release2 := make(chan struct{}), make(chan struct{})
	started := make(chan int, 2)
	var runs atomic.Int64
	fn := func(release chan struct{}, v int) func(context.Context) (int, error) {
		return func(context.Context) (int, error) {
			runs.Add(1)
			started <- v
			<-release // ignores its ctx, as slow work may
			return v, nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, _, err := c.Do(ctx, "k", fn(release1, 1)); first <- err }()
	require.Equal(t, 1, <-started)
	cancel() // the only caller leaves: execution 1 is abandoned
	require.ErrorIs(t, <-first, context.Canceled)

	second := make(chan int, 1)
	go func() { v, _, _ := c.Do(context.Background(), "k", fn(release2, 2)); second <- v }()
	require.Equal(t, 2, <-started)
	close(release1) // execution 1 ends while execution 2 runs
	require.Eventually(t, func() bool { return c.Stats().InFlight == 1 }, 10*time.Second, time.Millisecond)

	third := make(chan int, 1)
	go func() { v, _, _ := c.Do(context.Background(), "k", fn(release2, 3)); third <- v }()
	require.Eventually(t, func() bool { return c.Stats().Joined == 1 }, 10*time.Second, time.Millisecond)
	close(release2)
	assert.Equal(t, 2, <-second)
	assert.Equal(t, 2, <-third, "the third caller joined execution 2")
	assert.Equal(t, int64(2), runs.Load())
}
