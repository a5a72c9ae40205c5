package timeout

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestNewDetacherRejectsBadCap(t *testing.T) {
	for _, n := range []int{0, -1} {
		d, err := NewDetacher(n)
		assert.ErrorIs(t, err, ErrInvalid)
		assert.Nil(t, d)
	}
	var zero Detacher
	err := zero.Run(context.Background(), time.Second, func(context.Context) error { return nil })
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestDetacherRejectsBadInput(t *testing.T) {
	d, err := NewDetacher(1)
	require.NoError(t, err)
	called := false
	fn := func(context.Context) error { called = true; return nil }
	var nilCtx context.Context
	assert.ErrorIs(t, d.Run(context.Background(), 0, fn), ErrInvalid)
	assert.ErrorIs(t, d.Run(context.Background(), -1, fn), ErrInvalid)
	assert.ErrorIs(t, d.Run(context.Background(), time.Second, nil), ErrInvalid)
	assert.ErrorIs(t, d.Run(nilCtx, time.Second, fn), ErrInvalid)
	assert.False(t, called)
	assert.Equal(t, DetacherStats{Max: 1}, d.Stats(), "invalid calls are not counted")
}

func TestDetacherFnHonouringContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := NewDetacher(2)
		require.NoError(t, err)
		require.NoError(t, d.Run(t.Context(), time.Second, func(context.Context) error { return nil }))

		errBoom := errors.New("boom")
		assert.Same(t, errBoom, d.Run(t.Context(), time.Second, func(context.Context) error { return errBoom }))

		err = d.Run(t.Context(), time.Second, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}, Named("upstream"))
		var te *Error
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "upstream", te.Op)
		synctest.Wait()
		st := d.Stats()
		assert.Equal(t, 0, st.Running)
		// The last call either saw fn return or abandoned it at the
		// deadline; both are accounted.
		assert.Equal(t, uint64(3), st.Completed+st.TimedOut)
		assert.Equal(t, st.TimedOut, st.LateReturns)
	})
}

func TestDetacherReturnsAtDeadlineAndCountsUntilReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := NewDetacher(4)
		require.NoError(t, err)
		release := make(chan struct{})
		start := time.Now()
		err = d.Run(t.Context(), 100*time.Millisecond, func(context.Context) error {
			<-release // ignores its context
			return nil
		}, Named("legacy"))
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "returns at the deadline")
		var te *Error
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "legacy", te.Op)
		assert.Equal(t, 100*time.Millisecond, te.Elapsed)
		assert.ErrorIs(t, err, context.DeadlineExceeded)

		time.Sleep(time.Hour)
		assert.Equal(t, 1, d.Abandoned(), "still counted while fn runs")
		assert.Equal(t, 1, d.Stats().Running)

		close(release)
		synctest.Wait()
		assert.Equal(t, 0, d.Abandoned())
		assert.Equal(t, DetacherStats{Max: 4, TimedOut: 1, LateReturns: 1}, d.Stats())
	})
}

func TestDetacherCapIsNeverExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 3
		d, err := NewDetacher(limit)
		require.NoError(t, err)
		release := make(chan struct{})
		stuck := func(context.Context) error { <-release; return nil }

		var wg sync.WaitGroup
		for range limit {
			wg.Go(func() {
				assert.ErrorIs(t, d.Run(t.Context(), 10*time.Millisecond, stuck), ErrTimeout)
			})
		}
		wg.Wait()
		assert.Equal(t, limit, d.Abandoned())

		called := false
		err = d.Run(t.Context(), time.Second, func(context.Context) error { called = true; return nil })
		assert.ErrorIs(t, err, ErrTooManyRunning)
		assert.Contains(t, err.Error(), "3 abandoned")
		assert.False(t, called, "fn must not start past the limit")

		release <- struct{}{} // one abandoned fn returns and frees its slot
		synctest.Wait()
		assert.Equal(t, limit-1, d.Abandoned())
		assert.NoError(t, d.Run(t.Context(), time.Second, func(context.Context) error { return nil }))

		close(release)
		synctest.Wait()
		assert.Equal(t, DetacherStats{Max: limit, Completed: 1, TimedOut: 3, Rejected: 1, LateReturns: 3}, d.Stats())
	})
}

func TestDetacherCountsCallsStillInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A call in time holds its slot: it could be abandoned at any
		// moment, and the cap must hold then too.
		d, err := NewDetacher(1)
		require.NoError(t, err)
		release := make(chan struct{})
		go func() {
			_ = d.Run(t.Context(), time.Hour, func(context.Context) error { <-release; return nil })
		}()
		synctest.Wait()
		assert.ErrorIs(t, d.Run(t.Context(), time.Hour, func(context.Context) error { return nil }), ErrTooManyRunning)
		assert.Equal(t, 0, d.Abandoned())
		close(release)
		synctest.Wait()
	})
}

func TestDetacherParentCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := NewDetacher(1)
		require.NoError(t, err)
		errShutdown := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(10*time.Millisecond, func() { cancel(errShutdown) })
		release := make(chan struct{})
		err = d.Run(ctx, time.Hour, func(context.Context) error { <-release; return nil })
		assert.ErrorIs(t, err, errShutdown)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, d.Abandoned())

		err = d.Run(ctx, time.Hour, func(context.Context) error { return nil })
		assert.ErrorIs(t, err, errShutdown, "a done context starts nothing")
		close(release)
		synctest.Wait()
		assert.Equal(t, DetacherStats{Max: 1, TimedOut: 1, Canceled: 1, LateReturns: 1}, d.Stats())
	})
}

func TestDetacherPanicReachesWaitingCaller(t *testing.T) {
	d, err := NewDetacher(1)
	require.NoError(t, err)
	defer func() {
		p, ok := recover().(*PanicError)
		require.True(t, ok)
		assert.Equal(t, "boom", p.Value)
		assert.Contains(t, string(p.Stack), "detach_test.go")
		assert.Contains(t, p.Error(), "boom")
		assert.Equal(t, 0, d.Stats().Running)
	}()
	_ = d.Run(context.Background(), time.Hour, func(context.Context) error { panic("boom") })
	t.Fatal("Run must re-panic")
}

// TestDetacherStress runs many callers with fns that take random times,
// some ignoring their context, and checks the cap and the accounting.
func TestDetacherStress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			limit   = 16
			callers = 64
		)
		calls := 100
		if testing.Short() {
			calls = 20
		}
		d, err := NewDetacher(limit)
		require.NoError(t, err)
		var running, peak atomic.Int64
		fn := func(ctx context.Context) error {
			n := running.Add(1)
			defer running.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			work := time.Duration(rand.IntN(20)) * time.Millisecond
			if rand.IntN(2) == 0 {
				time.Sleep(work) // ignores ctx
				return nil
			}
			select {
			case <-time.After(work):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var wg sync.WaitGroup
		var ok, timedOut, rejected atomic.Int64
		for range callers {
			wg.Go(func() {
				for range calls {
					err := d.Run(t.Context(), 10*time.Millisecond, fn)
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, ErrTooManyRunning):
						rejected.Add(1)
						time.Sleep(time.Millisecond)
					case errors.Is(err, ErrTimeout):
						timedOut.Add(1)
					default:
						t.Errorf("unexpected error %v", err)
					}
					assert.LessOrEqual(t, d.Abandoned(), limit)
					assert.LessOrEqual(t, d.Stats().Running, limit)
				}
			})
		}
		wg.Wait()
		require.NoError(t, d.Wait(t.Context()), "abandoned fns return")
		st := d.Stats()
		assert.LessOrEqual(t, peak.Load(), int64(limit), "more fns ran at once than the limit")
		assert.Equal(t, uint64(callers*calls), st.Completed+st.TimedOut+st.Rejected, "every call is accounted once")
		assert.Equal(t, uint64(rejected.Load()), st.Rejected)
		assert.Equal(t, uint64(ok.Load()+timedOut.Load()), st.Completed+st.TimedOut)
		assert.Equal(t, st.TimedOut, st.LateReturns, "every abandoned fn returned and was counted")
		assert.Equal(t, 0, st.Running)
		assert.Equal(t, 0, st.Abandoned)
		assert.NotZero(t, st.TimedOut)
		assert.NotZero(t, st.Rejected)
	})
}

func TestDetacherLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	d, err := NewDetacher(8)
	require.NoError(t, err)
	release := make(chan struct{})
	for range 8 {
		err := d.Run(context.Background(), time.Millisecond, func(context.Context) error { <-release; return nil })
		require.ErrorIs(t, err, ErrTimeout)
	}
	require.Equal(t, 8, d.Abandoned())
	close(release)
	require.Eventually(t, func() bool { return d.Stats().Running == 0 }, 10*time.Second, time.Millisecond)
}

func TestDetacherGoexitReachesWaitingCaller(t *testing.T) {
	d, err := NewDetacher(1)
	require.NoError(t, err)
	defer func() {
		p, ok := recover().(*PanicError)
		require.True(t, ok)
		assert.ErrorIs(t, p, errGoexit)
		assert.Equal(t, 0, d.Stats().Running)
	}()
	_ = d.Run(context.Background(), time.Hour, func(context.Context) error { runtime.Goexit(); return nil })
	t.Fatal("Run must re-panic")
}

func TestDetacherWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := NewDetacher(4)
		require.NoError(t, err)
		require.NoError(t, d.Wait(t.Context()), "nothing running: returns at once")

		release := make(chan struct{})
		for range 3 {
			require.ErrorIs(t, d.Run(t.Context(), time.Millisecond, func(context.Context) error {
				<-release
				return nil
			}), ErrTimeout)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		assert.ErrorIs(t, d.Wait(ctx), context.DeadlineExceeded, "gives up with its context")

		var waiters sync.WaitGroup
		returned := make(chan struct{})
		for range 3 {
			waiters.Go(func() {
				assert.NoError(t, d.Wait(t.Context()))
			})
		}
		go func() { waiters.Wait(); close(returned) }()
		synctest.Wait()
		select {
		case <-returned:
			t.Fatal("Wait returned while abandoned fns still run")
		default:
		}
		release <- struct{}{}
		release <- struct{}{}
		synctest.Wait()
		select {
		case <-returned:
			t.Fatal("Wait returned while an abandoned fn still runs")
		default:
		}
		close(release)
		<-returned
		assert.Equal(t, 0, d.Stats().Running)
	})
}

func TestDetacherWaitRejectsNilContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := NewDetacher(1)
		require.NoError(t, err)
		release := make(chan struct{})
		require.ErrorIs(t, d.Run(t.Context(), time.Millisecond, func(context.Context) error {
			<-release
			return nil
		}), ErrTimeout)
		var nilCtx context.Context
		assert.ErrorIs(t, d.Wait(nilCtx), ErrInvalid)
		close(release)
		require.NoError(t, d.Wait(t.Context()))
	})
}

// TestDetacherShutdownAndClose: Shutdown refuses new calls and waits for
// every fn, abandoned or not; Close refuses new calls and returns at once.
func TestDetacherShutdownAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := NewDetacher(4)
		require.NoError(t, err)
		release := make(chan struct{})
		require.ErrorIs(t, d.Run(t.Context(), time.Millisecond, func(context.Context) error {
			<-release
			return nil
		}), ErrTimeout)

		done, cancel := context.WithCancel(t.Context())
		cancel()
		require.ErrorIs(t, d.Shutdown(done), context.Canceled, "a done ctx fails at once")
		require.NoError(t, d.Run(t.Context(), time.Second, func(context.Context) error { return nil }),
			"the failed Shutdown did not close d")

		shut := make(chan error, 1)
		go func() { shut <- d.Shutdown(t.Context()) }()
		synctest.Wait()
		err = d.Run(t.Context(), time.Second, func(context.Context) error { return nil })
		require.ErrorIs(t, err, ErrClosed)
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v while an abandoned fn still runs", err)
		default:
		}
		close(release)
		require.NoError(t, <-shut)
		s := d.Stats()
		assert.Equal(t, 0, s.Running)
		assert.Equal(t, uint64(1), s.Rejected)
		assert.Equal(t, uint64(1), s.LateReturns)

		d2, err := NewDetacher(1)
		require.NoError(t, err)
		require.NoError(t, d2.Close())
		require.NoError(t, d2.Close(), "idempotent")
		require.ErrorIs(t, d2.Run(t.Context(), time.Second, func(context.Context) error { return nil }), ErrClosed)
		require.NoError(t, d2.Shutdown(t.Context()), "nothing running")
	})
}

// TestDetacherCapCountsRunningCalls pins what the cap means: calls running
// at once, none of them abandoned.
func TestDetacherCapCountsRunningCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := NewDetacher(1)
		require.NoError(t, err)
		started, release := make(chan struct{}), make(chan struct{})
		go func() {
			_ = d.Run(t.Context(), time.Hour, func(context.Context) error {
				close(started)
				<-release
				return nil
			})
		}()
		<-started
		assert.Equal(t, 0, d.Abandoned())
		err = d.Run(t.Context(), time.Second, func(context.Context) error { return nil })
		require.ErrorIs(t, err, ErrTooManyRunning)
		close(release)
		require.NoError(t, d.Wait(t.Context()))
	})
}
