package spawn_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/garrison-go/garrison/spawn"
)

func TestGoRunsTasks(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(4))
	ctx := context.Background()
	var n atomic.Int64
	errBoom := errors.New("boom")
	for i := range 100 {
		require.NoError(t, s.Go(ctx, func(context.Context) error {
			n.Add(1)
			if i%10 == 0 {
				return errBoom
			}
			return nil
		}))
	}
	require.NoError(t, s.Wait(ctx))
	require.Equal(t, int64(100), n.Load())
	st := s.Stats()
	require.Equal(t, int64(100), st.Submitted)
	require.Equal(t, int64(100), st.Started)
	require.Equal(t, int64(90), st.Succeeded)
	require.Equal(t, int64(10), st.Failed)
	assertAccounted(t, s)
}

func TestTryGoSaturated(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(1))
	release := make(chan struct{})
	block := func(context.Context) error { <-release; return nil }
	require.NoError(t, s.TryGo(block))
	require.NoError(t, s.TryGo(block))
	require.ErrorIs(t, s.TryGo(block), spawn.ErrSaturated)
	close(release)
	require.NoError(t, s.Wait(context.Background()))
	st := s.Stats()
	require.Equal(t, int64(1), st.Rejected)
	require.Equal(t, int64(2), st.Succeeded)
	assertAccounted(t, s)
}

func TestQueueIsFIFO(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(10))
	release := make(chan struct{})
	require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
	var mu sync.Mutex
	var order []int
	for i := range 10 {
		require.NoError(t, s.TryGo(func(context.Context) error {
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			return nil
		}))
	}
	close(release)
	require.NoError(t, s.Wait(context.Background()))
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, order)
}

func TestHandOffOnlyQueue(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2), spawn.WithQueue(0))
	release := make(chan struct{})
	block := func(context.Context) error { <-release; return nil }
	require.NoError(t, s.TryGo(block))
	require.NoError(t, s.TryGo(block))
	require.ErrorIs(t, s.TryGo(block), spawn.ErrSaturated)
	close(release)
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}

func TestGoWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
		release := make(chan struct{})
		require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
		ran := make(chan struct{})
		done := make(chan error)
		go func() {
			done <- s.Go(context.Background(), func(context.Context) error { close(ran); return nil })
		}()
		synctest.Wait()
		require.Equal(t, 1, s.Stats().Waiting)
		close(release)
		require.NoError(t, <-done)
		<-ran
		require.NoError(t, s.Wait(context.Background()))
		require.Equal(t, 0, s.Stats().Waiting)
		assertAccounted(t, s)
	})
}

func TestGoWaitEndsWithCtxCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
		release := make(chan struct{})
		require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
		errCause := errors.New("client went away")
		ctx, cancel := context.WithCancelCause(context.Background())
		done := make(chan error)
		go func() { done <- s.Go(ctx, nop) }()
		synctest.Wait()
		cancel(errCause)
		err := <-done
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, errCause)

		// A deadline bounds the wait too.
		dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
		defer dcancel()
		require.ErrorIs(t, s.Go(dctx, nop), context.DeadlineExceeded)

		// An already-done ctx is refused without waiting, even with room.
		close(release)
		require.NoError(t, s.Wait(context.Background()))
		require.ErrorIs(t, s.Go(ctx, nop), errCause)
		st := s.Stats()
		require.Equal(t, int64(3), st.Rejected)
		assertAccounted(t, s)
	})
}

func TestMaxWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0), spawn.WithMaxWaiters(2))
		release := make(chan struct{})
		require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- s.Go(context.Background(), nop) }()
		}
		synctest.Wait()
		require.Equal(t, 2, s.Stats().Waiting)
		require.ErrorIs(t, s.Go(context.Background(), nop), spawn.ErrSaturated)
		close(release)
		require.NoError(t, <-errs)
		require.NoError(t, <-errs)
		require.NoError(t, s.Wait(context.Background()))
		st := s.Stats()
		require.Equal(t, int64(3), st.Succeeded)
		require.Equal(t, int64(1), st.Rejected)
		assertAccounted(t, s)

		// With no waiters allowed, Go behaves like TryGo.
		s0 := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0), spawn.WithMaxWaiters(0))
		release0 := make(chan struct{})
		require.NoError(t, s0.TryGo(func(context.Context) error { <-release0; return nil }))
		require.ErrorIs(t, s0.Go(context.Background(), nop), spawn.ErrSaturated)
		close(release0)
	})
}

func TestQueuedTaskWithDoneCtxIsCanceled(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(4))
	release := make(chan struct{})
	require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Bool
	require.NoError(t, s.Go(ctx, func(context.Context) error { ran.Store(true); return nil }))
	h, err := spawn.Submit(ctx, s, func(context.Context) (int, error) { ran.Store(true); return 1, nil })
	require.NoError(t, err)
	cancel()
	close(release)
	require.NoError(t, s.Wait(context.Background()))
	require.False(t, ran.Load())
	_, err = h.Wait(context.Background())
	require.ErrorIs(t, err, context.Canceled)
	st := s.Stats()
	require.Equal(t, int64(2), st.Canceled)
	require.Equal(t, int64(1), st.Started)
	assertAccounted(t, s)
}

func TestTaskContextIsNotSubmitContext(t *testing.T) {
	s := newSpawner(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	release := make(chan struct{})
	h, err := spawn.Submit(ctx, s, func(tctx context.Context) (error, error) {
		close(started)
		<-release
		return tctx.Err(), nil
	})
	require.NoError(t, err)
	<-started
	cancel() // the request that submitted the task is over; the task is not
	close(release)
	taskErr, err := h.Wait(context.Background())
	require.NoError(t, err)
	require.NoError(t, taskErr)
}

func TestIdleWorkersExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithMaxConcurrent(8), spawn.WithIdleTimeout(time.Second))
		for range 100 {
			require.NoError(t, s.Go(context.Background(), func(context.Context) error {
				time.Sleep(time.Millisecond)
				return nil
			}))
		}
		require.NoError(t, s.Wait(context.Background()))
		require.Positive(t, s.Stats().Workers)
		require.LessOrEqual(t, s.Stats().Workers, 8)
		// Lingering workers are reused by the next task...
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		require.Positive(t, s.Stats().Workers)
		// ...and are gone once idle for at most twice the idle timeout.
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 0, s.Stats().Workers)
	})
}

// TestIdleWorkersExitRealTime checks the same with the real clock and the
// default idle timeout, and with goleak rather than trusting Stats.
func TestIdleWorkersExitRealTime(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(16))
	for range 1000 {
		require.NoError(t, s.Go(context.Background(), nop))
	}
	require.NoError(t, s.Wait(context.Background()))
	require.Eventually(t, func() bool { return s.Stats().Workers == 0 }, 5*time.Second, 5*time.Millisecond)
	// No goroutine is left, though the spawner was not shut down.
	goleak.VerifyNone(t)
}

func TestShutdownDrains(t *testing.T) {
	s, err := spawn.New(spawn.WithMaxConcurrent(2), spawn.WithQueue(10))
	require.NoError(t, err)
	release := make(chan struct{})
	var done atomic.Int64
	for range 12 {
		require.NoError(t, s.TryGo(func(context.Context) error {
			<-release
			done.Add(1)
			return nil
		}))
	}
	shut := make(chan error)
	go func() { shut <- s.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool { return errors.Is(s.TryGo(nop), spawn.ErrClosed) }, 5*time.Second, time.Millisecond)
	close(release)
	require.NoError(t, <-shut)
	require.Equal(t, int64(12), done.Load())
	require.Equal(t, 0, s.Stats().Workers)
	goleak.VerifyNone(t)
	require.ErrorIs(t, s.Go(context.Background(), nop), spawn.ErrClosed)
	_, err = spawn.Submit(context.Background(), s, func(context.Context) (int, error) { return 0, nil })
	require.ErrorIs(t, err, spawn.ErrClosed)
	require.NoError(t, s.Shutdown(context.Background()), "second Shutdown")
	assertAccounted(t, s)
}

func TestShutdownWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := spawn.New(spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
		require.NoError(t, err)
		release := make(chan struct{})
		require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
		waiter := make(chan error)
		go func() { waiter <- s.Go(context.Background(), nop) }()
		synctest.Wait()
		shut := make(chan error)
		go func() { shut <- s.Shutdown(context.Background()) }()
		require.ErrorIs(t, <-waiter, spawn.ErrClosed)
		close(release)
		require.NoError(t, <-shut)
		assertAccounted(t, s)
	})
}

func TestShutdownForced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := spawn.New(spawn.WithMaxConcurrent(2), spawn.WithQueue(10))
		require.NoError(t, err)
		// One running task honors its context, one ignores it.
		causes := make(chan error, 1)
		require.NoError(t, s.TryGo(func(ctx context.Context) error {
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return ctx.Err()
		}))
		stubborn := make(chan struct{})
		require.NoError(t, s.TryGo(func(context.Context) error { <-stubborn; return nil }))
		var handles []*spawn.Handle[int]
		var ran atomic.Bool
		for range 5 {
			h, err := spawn.Submit(context.Background(), s, func(context.Context) (int, error) { ran.Store(true); return 1, nil })
			require.NoError(t, err)
			handles = append(handles, h)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err = s.Shutdown(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// Queued tasks were resolved before Shutdown returned.
		for _, h := range handles {
			select {
			case <-h.Done():
			default:
				t.Fatal("queued handle not resolved by Shutdown")
			}
			_, err := h.Wait(context.Background())
			require.ErrorIs(t, err, spawn.ErrShutdown)
		}
		require.False(t, ran.Load())
		require.ErrorIs(t, <-causes, spawn.ErrShutdown)
		// The stubborn task still holds its slot; Wait can wait for it.
		synctest.Wait()
		require.Equal(t, 1, s.Stats().Running)
		close(stubborn)
		require.NoError(t, s.Wait(context.Background()))
		require.NoError(t, s.Shutdown(context.Background()))
		st := s.Stats()
		// The stubborn task returned nil, but after its context was canceled:
		// it did not finish in time, so it is counted as canceled too.
		require.Equal(t, int64(5+2), st.Canceled)
		require.Equal(t, int64(0), st.Succeeded)
		assertAccounted(t, s)
	})
}

func TestWouldDeadlock(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
	nested := make(chan error, 3)
	require.NoError(t, s.Go(context.Background(), func(ctx context.Context) error {
		nested <- s.Go(ctx, nop)
		// A context derived from the task's is recognized too.
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		nested <- s.GoKey(dctx, "k", nop)
		nested <- s.Wait(ctx)
		return nil
	}))
	require.ErrorIs(t, <-nested, spawn.ErrWouldDeadlock)
	require.ErrorIs(t, <-nested, spawn.ErrWouldDeadlock)
	require.ErrorIs(t, <-nested, spawn.ErrWouldDeadlock)
	require.NoError(t, s.Wait(context.Background()))

	// With room, a nested Go is fine.
	s2 := newSpawner(t, spawn.WithMaxConcurrent(2), spawn.WithQueue(0))
	inner := make(chan struct{})
	require.NoError(t, s2.Go(context.Background(), func(ctx context.Context) error {
		return s2.Go(ctx, func(context.Context) error { close(inner); return nil })
	}))
	<-inner
	require.NoError(t, s2.Wait(context.Background()))
	require.Equal(t, int64(0), s2.Stats().Failed)
}

func TestPanicIsRecovered(t *testing.T) {
	var hooked atomic.Pointer[spawn.PanicError]
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithHooks(spawn.Hooks{
		OnPanic: func(pe *spawn.PanicError) { hooked.Store(pe) },
	}))
	errValue := errors.New("bad input")
	h, err := spawn.Submit(context.Background(), s, func(context.Context) (int, error) { panic(errValue) })
	require.NoError(t, err)
	_, err = h.Wait(context.Background())
	require.ErrorIs(t, err, spawn.ErrPanic)
	require.ErrorIs(t, err, errValue)
	var pe *spawn.PanicError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, errValue, pe.Value)
	require.Contains(t, string(pe.Stack), "TestPanicIsRecovered")
	require.NoError(t, s.Wait(context.Background()))
	require.Same(t, pe, hooked.Load())

	// The worker survived and runs the next task.
	h2, err := spawn.Submit(context.Background(), s, func(context.Context) (string, error) { return "ok", nil })
	require.NoError(t, err)
	v, err := h2.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, "ok", v)
	// A resolved handle does not mean its slot is released yet; Wait does.
	require.NoError(t, s.Wait(context.Background()))
	st := s.Stats()
	require.Equal(t, int64(1), st.Panicked)
	require.Equal(t, int64(1), st.Succeeded)
	assertAccounted(t, s)
}

func TestGoexitIsHandled(t *testing.T) {
	var panics atomic.Int64
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(10), spawn.WithHooks(spawn.Hooks{
		OnPanic: func(*spawn.PanicError) { panics.Add(1) },
	}))
	release := make(chan struct{})
	h, err := spawn.Submit(context.Background(), s, func(context.Context) (int, error) {
		<-release
		runtime.Goexit()
		return 1, nil
	})
	require.NoError(t, err)
	// Tasks queued behind the one that kills its worker still run.
	var ran atomic.Int64
	for range 5 {
		require.NoError(t, s.TryGo(func(context.Context) error { ran.Add(1); return nil }))
	}
	close(release)
	_, err = h.Wait(context.Background())
	require.ErrorIs(t, err, spawn.ErrPanic)
	require.ErrorIs(t, err, spawn.ErrGoexit)
	require.NoError(t, s.Wait(context.Background()))
	require.Equal(t, int64(5), ran.Load())
	require.Equal(t, int64(1), panics.Load())
	st := s.Stats()
	require.Equal(t, int64(1), st.Panicked)
	require.Equal(t, int64(5), st.Succeeded)
	require.LessOrEqual(t, st.Workers, 1)
	assertAccounted(t, s)
	require.NoError(t, s.Shutdown(context.Background()))
	require.Equal(t, 0, s.Stats().Workers)
}

func TestTaskTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0), spawn.WithTaskTimeout(time.Second))

		// A task that honors its context.
		h, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		require.NoError(t, err)
		_, err = h.Wait(context.Background())
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, s.Wait(context.Background()))

		// A task that ignores it keeps its slot past the deadline and is
		// still counted as timed out, though it returns nil.
		release := make(chan struct{})
		h2, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (int, error) {
			<-release
			return 2, nil
		})
		require.NoError(t, err)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.Equal(t, 1, s.Stats().Running)
		require.ErrorIs(t, s.TryGo(nop), spawn.ErrSaturated, "the cap holds past the deadline")
		close(release)
		v, err := h2.Wait(context.Background())
		require.Equal(t, 2, v)
		require.ErrorIs(t, err, spawn.ErrTaskTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, s.Wait(context.Background()))

		// A quick task is not affected.
		require.NoError(t, s.Go(context.Background(), nop))
		require.NoError(t, s.Wait(context.Background()))
		st := s.Stats()
		require.Equal(t, int64(2), st.TimedOut)
		require.Equal(t, int64(1), st.Succeeded)
		assertAccounted(t, s)
	})
}

func TestHandleCancel(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(1))
	started := make(chan struct{})
	running, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	require.NoError(t, err)
	var ran atomic.Bool
	queued, err := spawn.Submit(context.Background(), s, func(context.Context) (int, error) { ran.Store(true); return 0, nil })
	require.NoError(t, err)
	<-started

	queued.Cancel()
	select {
	case <-queued.Done():
	default:
		t.Fatal("Cancel did not resolve the queued handle at once")
	}
	_, err = queued.Wait(context.Background())
	require.ErrorIs(t, err, context.Canceled)

	running.Cancel()
	rv, err := running.Wait(context.Background())
	require.ErrorIs(t, err, context.Canceled, "value %v stats %+v", rv, s.Stats())
	running.Cancel() // no-op once resolved

	require.NoError(t, s.Wait(context.Background()))
	require.False(t, ran.Load())
	st := s.Stats()
	require.Equal(t, int64(2), st.Canceled)
	assertAccounted(t, s)
}

func TestHandleWaitCtx(t *testing.T) {
	s := newSpawner(t)
	release := make(chan struct{})
	h, err := spawn.Submit(context.Background(), s, func(context.Context) (int, error) { <-release; return 7, nil })
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = h.Wait(ctx)
	require.ErrorIs(t, err, context.Canceled)
	close(release)
	v, err := h.Wait(context.Background())
	require.NoError(t, err)
	require.Equal(t, 7, v)
}

func TestWaitCtx(t *testing.T) {
	s := newSpawner(t)
	release := make(chan struct{})
	require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, s.Wait(ctx), context.Canceled)
	close(release)
	require.NoError(t, s.Wait(context.Background()))
}

func TestNilTaskIsRejected(t *testing.T) {
	s := newSpawner(t)
	require.Error(t, s.TryGo(nil))
	require.Error(t, s.Go(context.Background(), nil))
	_, err := spawn.Submit[int](context.Background(), s, nil)
	require.Error(t, err)
	require.Equal(t, int64(3), s.Stats().Rejected)
	assertAccounted(t, s)
}

// TestHooksMayCallSpawner shows hooks run outside internal locks: each hook
// calls back into the spawner, which would deadlock otherwise.
func TestHooksMayCallSpawner(t *testing.T) {
	var s *spawn.Spawner
	var rejects, dones, panics atomic.Int64
	s = newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0), spawn.WithPerKey(1, 1), spawn.WithHooks(spawn.Hooks{
		OnReject: func(err error) { _ = s.Stats(); rejects.Add(1) },
		OnPanic:  func(*spawn.PanicError) { _ = s.Stats(); panics.Add(1) },
		OnDone:   func(error) { _ = s.Stats(); _ = s.TryGo(nop); dones.Add(1) },
	}))
	release := make(chan struct{})
	require.NoError(t, s.GoKey(context.Background(), "k", func(context.Context) error { <-release; panic("x") }))
	require.ErrorIs(t, s.GoKey(context.Background(), "k", nop), spawn.ErrKeyLimit)
	close(release)
	require.Eventually(t, func() bool { return dones.Load() >= 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, s.Wait(context.Background()))
	require.Equal(t, int64(1), panics.Load())
	require.GreaterOrEqual(t, rejects.Load(), int64(1))
	assertAccounted(t, s)
}

// TestIdleWorkerKeepsNoTaskAlive checks that a worker parked between tasks
// holds no reference to the task it ran last: a closure that captured a
// large buffer is collectable while the worker lingers.
func TestIdleWorkerKeepsNoTaskAlive(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithIdleTimeout(time.Hour))
	collected := make(chan struct{})
	func() {
		buf := make([]byte, 1<<20)
		runtime.AddCleanup(&buf[0], func(ch chan struct{}) { close(ch) }, collected)
		require.NoError(t, s.Go(context.Background(), func(context.Context) error {
			buf[0]++
			return nil
		}))
	}()
	require.NoError(t, s.Wait(context.Background()))
	require.Equal(t, 1, s.Stats().Workers, "the worker lingers, parked")
	require.Eventually(t, func() bool {
		runtime.GC()
		select {
		case <-collected:
			return true
		default:
			return false
		}
	}, 5*time.Second, 10*time.Millisecond)
}
