package changuard

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustOwner[T any](t testing.TB, init T, mailbox int) *Owner[T] {
	t.Helper()
	o, err := NewOwner(init, mailbox)
	require.NoError(t, err)
	return o
}

func TestNewOwnerValidates(t *testing.T) {
	_, err := NewOwner(0, 0)
	assert.ErrorIs(t, err, ErrInvalidCapacity)
	assert.ErrorContains(t, err, "NewOwner")
	// Used to crash the process: makechan: size out of range.
	_, err = NewOwner(0, 1<<62)
	assert.ErrorIs(t, err, ErrInvalidCapacity)
	assert.ErrorContains(t, err, "MaxCapacity")
}

func TestOwnerCallPostStop(t *testing.T) {
	ctx := context.Background()
	o := mustOwner(t, []string{}, 4)
	require.NoError(t, o.Post(func(s *[]string) { *s = append(*s, "a") }))
	n, err := Call(ctx, o, func(s *[]string) (int, error) {
		*s = append(*s, "b")
		return len(*s), nil
	})
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	errApp := errors.New("app")
	_, err = Call(ctx, o, func(*[]string) (int, error) { return 0, errApp })
	assert.ErrorIs(t, err, errApp)

	final, err := shutdown(ctx, o)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, final)
	again, err := shutdown(ctx, o)
	require.NoError(t, err)
	assert.Equal(t, final, again, "Stop is idempotent")
	<-o.Done()

	assert.ErrorIs(t, o.Post(func(*[]string) {}), ErrStopped)
	_, err = Call(ctx, o, func(*[]string) (int, error) { return 0, nil })
	assert.ErrorIs(t, err, ErrStopped)
	assert.Equal(t, uint64(3), o.Stats().Completed)
}

func TestOwnerStopRunsQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := mustOwner(t, 0, 8)
		gate := make(chan struct{})
		require.NoError(t, o.Post(func(*int) { <-gate }))
		synctest.Wait() // the owner is now running the gated job
		for range 8 {
			require.NoError(t, o.Post(func(v *int) { *v++ }))
		}
		assert.ErrorIs(t, o.Post(func(*int) {}), ErrFull)
		// Calls waiting for room when Stop comes are released, not lost.
		callErr := make(chan error)
		go func() {
			_, err := Call(context.Background(), o, func(*int) (int, error) { return 0, nil })
			callErr <- err
		}()
		synctest.Wait()
		stopped := make(chan int)
		go func() {
			v, err := shutdown(context.Background(), o)
			assert.NoError(t, err)
			stopped <- v
		}()
		assert.ErrorIs(t, <-callErr, ErrStopped)
		close(gate)
		assert.Equal(t, 8, <-stopped, "every job queued before Stop ran")
		s := o.Stats()
		assert.Equal(t, uint64(9), s.Completed)
		assert.Equal(t, uint64(1), s.Rejected)
	})
}

func TestOwnerStopCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := mustOwner(t, 0, 1)
		gate := make(chan struct{})
		require.NoError(t, o.Post(func(*int) { <-gate }))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := shutdown(ctx, o)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		close(gate)
		<-o.Done()
	})
}

func TestOwnerPanics(t *testing.T) {
	ctx := context.Background()
	o := mustOwner(t, 0, 4)
	_, err := Call(ctx, o, func(*int) (int, error) { panic("call boom") })
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, ErrPanic)
	assert.Equal(t, "call boom", pe.Value)
	assert.Contains(t, string(pe.Stack), "owner_test.go")
	assert.Contains(t, pe.Error(), "call boom")

	sentinel := errors.New("inner")
	_, err = Call(ctx, o, func(*int) (int, error) { panic(sentinel) })
	assert.ErrorIs(t, err, sentinel, "a panic with an error value unwraps to it")

	require.NoError(t, o.Post(func(*int) { panic("post boom") }))
	v, err := Call(ctx, o, func(v *int) (int, error) { *v++; return *v, nil })
	require.NoError(t, err, "the owner survived the panics")
	assert.Equal(t, 1, v)
	s := o.Stats()
	assert.Equal(t, uint64(3), s.Panics)
	assert.Equal(t, uint64(4), s.Completed, "functions that panicked count as completed")
	require.NotNil(t, s.LastPanic)
	assert.Equal(t, "post boom", s.LastPanic.Value)
	_, err = shutdown(ctx, o)
	require.NoError(t, err)
}

func TestOwnerCallCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := mustOwner(t, 0, 1)
		gate := make(chan struct{})
		require.NoError(t, o.Post(func(*int) { <-gate }))
		synctest.Wait()

		// Enqueued but never started: f must not run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := Call(ctx, o, func(v *int) (int, error) {
			t.Error("abandoned Call ran")
			return 0, nil
		})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, "Owner.Call")

		// Mailbox full (the abandoned job still holds the slot): the
		// enqueue itself is bounded by ctx.
		ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
		defer cancel2()
		_, err = Call(ctx2, o, func(*int) (int, error) { return 0, nil })
		assert.ErrorIs(t, err, context.DeadlineExceeded)

		close(gate)
		synctest.Wait()

		// Started, then ctx ends: Call returns at once, f finishes, its
		// effect stays.
		started := make(chan struct{})
		finish := make(chan struct{})
		ctx3, cancel3 := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() {
			_, err := Call(ctx3, o, func(v *int) (int, error) {
				close(started)
				<-finish
				*v = 42
				return 0, nil
			})
			errc <- err
		}()
		<-started
		cancel3()
		assert.ErrorIs(t, <-errc, context.Canceled)
		close(finish)
		final, err := shutdown(context.Background(), o)
		require.NoError(t, err)
		assert.Equal(t, 42, final)
		assert.Equal(t, uint64(1), o.Stats().Skipped)
	})
}

func TestOwnerConcurrentStop(t *testing.T) {
	o := mustOwner(t, 0, 16)
	var wg sync.WaitGroup
	var ok, stopped [8]int
	for w := range 8 {
		wg.Go(func() {
			for {
				_, err := Call(context.Background(), o, func(v *int) (struct{}, error) { *v++; return struct{}{}, nil })
				if errors.Is(err, ErrStopped) {
					stopped[w]++
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				ok[w]++
			}
		})
	}
	for {
		if v, _ := Call(context.Background(), o, func(v *int) (int, error) { return *v, nil }); v >= 500 {
			break
		}
	}
	final, err := shutdown(context.Background(), o)
	require.NoError(t, err)
	wg.Wait()
	sum := 0
	for w := range 8 {
		sum += ok[w]
		assert.Equal(t, 1, stopped[w])
	}
	assert.Equal(t, sum, final, "every Call that returned nil ran exactly once")
}

func TestOwnerSurvivesGoexit(t *testing.T) {
	o := mustOwner(t, 0, 2)
	_, err := Call(context.Background(), o, func(*int) (int, error) {
		runtime.Goexit()
		return 0, nil
	})
	assert.ErrorContains(t, err, "Goexit")
	require.NoError(t, o.Post(func(*int) { runtime.Goexit() }))
	v, err := Call(context.Background(), o, func(v *int) (int, error) { *v++; return *v, nil })
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	_, err = shutdown(context.Background(), o)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), o.Stats().Completed, "a function that called Goexit ran: it is counted")
}

// TestOwnerCallCancelStress races ctx expiries against results. A Call
// that returns nil must carry its own f's result, and the state must count
// exactly the functions that ran.
func TestOwnerCallCancelStress(t *testing.T) {
	o := mustOwner(t, 0, 8)
	workers, iters := 16, 500
	if testing.Short() {
		iters = 100
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range iters {
				id := w*iters + i + 1
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%20)*time.Microsecond)
				got, err := Call(ctx, o, func(n *int) (int, error) {
					*n++
					return id, nil
				})
				cancel()
				if err == nil && got != id {
					t.Errorf("Call %d returned %d", id, got)
				}
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Call %d: %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	ran, err := shutdown(context.Background(), o)
	require.NoError(t, err)
	s := o.Stats()
	assert.Equal(t, uint64(ran), s.Completed, "every function that ran is counted once")
	notQueued := o.mailbox.Stats().Canceled
	assert.Equal(t, uint64(workers*iters), s.Completed+s.Skipped+notQueued,
		"every Call ran, was skipped, or gave up before it was queued")
	t.Logf("ran %d, skipped %d, not queued %d", s.Completed, s.Skipped, notQueued)
}

// shutdown stops o gracefully and returns its final value.
func shutdown[T any](ctx context.Context, o *Owner[T]) (T, error) {
	if err := o.Shutdown(ctx); err != nil {
		var zero T
		return zero, err
	}
	return o.Final()
}

// TestOwnerCloseDiscardsQueued: Close is the immediate stop. The function
// running finishes, the queued ones never run, their Calls get ErrStopped,
// and every job is accounted for once.
func TestOwnerCloseDiscardsQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := mustOwner(t, 0, 8)
		gate := make(chan struct{})
		require.NoError(t, o.Post(func(v *int) { <-gate; *v++ }))
		require.NoError(t, o.Post(func(v *int) { *v += 100 }))
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := Call(context.Background(), o, func(v *int) (int, error) { *v += 1000; return *v, nil })
				errs <- err
			}()
		}
		synctest.Wait()
		require.NoError(t, o.Close())
		require.NoError(t, o.Close(), "Close is idempotent")
		assert.ErrorIs(t, o.Post(func(*int) {}), ErrStopped)
		_, err := o.Final()
		assert.ErrorIs(t, err, ErrRunning, "the running function still owns the value")
		close(gate)
		for range 2 {
			assert.ErrorIs(t, <-errs, ErrStopped)
		}
		<-o.Done()
		v, err := o.Final()
		require.NoError(t, err)
		assert.Equal(t, 1, v, "only the running function ran")
		s := o.Stats()
		assert.Equal(t, uint64(1), s.Completed)
		assert.Equal(t, uint64(3), s.Discarded)
		require.NoError(t, o.Shutdown(context.Background()), "Shutdown after Close returns once stopped")
	})
}

func TestOwnerNilAndDoneContext(t *testing.T) {
	o := mustOwner(t, 0, 2)
	//lint:ignore SA1012 a nil ctx is the input under test
	_, err := Call(nil, o, func(v *int) (int, error) { return *v, nil }) //nolint:staticcheck
	require.ErrorIs(t, err, ErrNilContext)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Call(ctx, o, func(v *int) (int, error) { *v++; return *v, nil })
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, o.Shutdown(ctx), context.Canceled)
	//lint:ignore SA1012 a nil ctx is the input under test
	require.ErrorIs(t, o.Shutdown(nil), ErrNilContext) //nolint:staticcheck
	require.Error(t, o.Post(nil))
	_, err = Call[int, int](context.Background(), o, nil)
	require.Error(t, err)
	v, err := shutdown(context.Background(), o)
	require.NoError(t, err)
	assert.Equal(t, 0, v, "nothing ran: the failed calls had no effect")
	assert.Equal(t, OwnerStats{}, o.Stats())
}

// TestOwnerCloseStress races Close against Calls (some cancelled) and
// Posts, and checks that every job accepted ends in exactly one of
// Completed, Skipped and Discarded, and every Call in exactly one outcome.
func TestOwnerCloseStress(t *testing.T) {
	for round := range 20 {
		o := mustOwner(t, 0, 4)
		var accepted, ok, stopped, canceled, full, postStopped, posts, calls atomic.Int64
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Go(func() {
				for i := range 40 {
					if (g+i)%3 == 0 {
						posts.Add(1)
						switch err := o.Post(func(v *int) { *v++ }); {
						case err == nil:
							accepted.Add(1)
						case errors.Is(err, ErrFull):
							full.Add(1)
						case errors.Is(err, ErrStopped):
							postStopped.Add(1)
						default:
							t.Errorf("Post: %v", err)
						}
						continue
					}
					calls.Add(1)
					ctx, cancel := context.WithCancel(context.Background())
					if i%5 == 0 {
						go cancel()
					}
					_, err := Call(ctx, o, func(v *int) (int, error) { *v++; return *v, nil })
					cancel()
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, ErrStopped):
						stopped.Add(1)
					case errors.Is(err, context.Canceled):
						canceled.Add(1)
					default:
						t.Errorf("Call: %v", err)
					}
				}
			})
		}
		if round%2 == 0 {
			_ = o.Close()
		} else {
			go func() { _ = o.Close() }()
		}
		wg.Wait()
		require.NoError(t, o.Shutdown(context.Background()))
		v, err := o.Final()
		require.NoError(t, err)
		s := o.Stats()
		assert.Equal(t, uint64(v), s.Completed, "every completed job incremented once")
		assert.GreaterOrEqual(t, s.Completed, uint64(ok.Load()))
		assert.Equal(t, 0, s.Queued)
		assert.Equal(t, s.Completed+s.Skipped+s.Discarded, o.mailbox.Stats().Sent,
			"every job accepted into the mailbox ran, was skipped or was discarded")
		assert.Equal(t, posts.Load(), accepted.Load()+full.Load()+postStopped.Load())
		assert.Equal(t, calls.Load(), ok.Load()+stopped.Load()+canceled.Load())
	}
}
