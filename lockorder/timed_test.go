package lockorder

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTimedDeadlockResolvesUnderSynctest builds a real AB/BA deadlock on
// two TimedMutexes. Both goroutines are durably blocked, so the bubble's
// clock advances, the shorter deadline fires and its goroutine backs off.
// In checking builds the inversion is also reported, once.
func TestTimedDeadlockResolvesUnderSynctest(t *testing.T) {
	var reports atomic.Int32
	defer SetHandler(func(e *OrderError) {
		if errors.Is(e, ErrInversion) {
			reports.Add(1)
		}
	})()
	synctest.Test(t, func(t *testing.T) {
		var a, b TimedMutex
		a.SetClass(NewClass("timed.A", 0))
		b.SetClass(NewClass("timed.B", 0))
		aHeld, bHeld := make(chan struct{}), make(chan struct{})
		var errFirst, errSecond error
		var wg sync.WaitGroup
		wg.Go(func() {
			a.Lock()
			close(aHeld)
			<-bHeld
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			errFirst = b.LockContext(ctx)
			if errFirst == nil {
				b.Unlock()
			}
			a.Unlock()
		})
		wg.Go(func() {
			b.Lock()
			close(bHeld)
			<-aHeld
			ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
			defer cancel()
			errSecond = a.LockContext(ctx)
			if errSecond == nil {
				a.Unlock()
			}
			b.Unlock()
		})
		start := time.Now()
		wg.Wait()
		require.ErrorIs(t, errFirst, context.DeadlineExceeded)
		require.NoError(t, errSecond)
		require.Equal(t, time.Second, time.Since(start))
		require.Equal(t, uint64(1), a.Stats().Contended)
		require.Equal(t, uint64(1), b.Stats().Abandoned)
	})
	if Enabled() {
		require.Equal(t, int32(1), reports.Load())
	} else {
		require.Zero(t, reports.Load())
	}
}

func TestLockContextErrors(t *testing.T) {
	var m TimedMutex
	cause := errors.New("client went away")

	// Already-ended ctx: fail even though the lock is free.
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	err := m.LockContext(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, cause)
	require.Contains(t, err.Error(), "lock not acquired")
	require.True(t, m.TryLock(), "not taken")

	// Ends while waiting.
	ctx2, cancel2 := context.WithCancelCause(context.Background())
	done := make(chan error)
	go func() { done <- m.LockContext(ctx2) }()
	require.Eventually(t, func() bool { return m.Stats().Waiters == 1 }, 5*time.Second, time.Millisecond)
	cancel2(cause)
	err = <-done
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, cause)
	s := m.Stats()
	require.Equal(t, TimedStats{Locked: true, Contended: 1, Abandoned: 2}, s)
	m.Unlock()
	require.NoError(t, m.LockContext(context.Background()))
	m.Unlock()
}

func TestLockTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m TimedMutex
		require.NoError(t, m.LockTimeout(time.Second))
		// Waiting on a lock this goroutine holds is itself reported in
		// checking builds, so the waits run on other goroutines.
		got := make(chan error)
		start := time.Now()
		go func() { got <- m.LockTimeout(time.Second) }()
		err := <-got
		require.ErrorIs(t, err, ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, time.Second, time.Since(start))
		go func() { got <- m.LockTimeout(0) }()
		require.ErrorIs(t, <-got, ErrTimeout)

		go func() { got <- m.LockTimeout(time.Minute) }()
		synctest.Wait()
		m.Unlock() // hands the lock to the waiter, which now owns it
		require.NoError(t, <-got)
		m.Unlock()
		require.Equal(t, TimedStats{Contended: 2, Abandoned: 2}, m.Stats())
	})
}

func TestTimedHandsOffInFIFOOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m TimedMutex
		m.Lock()
		var order []int
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				m.Lock()
				order = append(order, i)
				m.Unlock()
			})
			synctest.Wait() // i is queued before i+1 starts
		}
		require.Equal(t, 5, m.Stats().Waiters)
		// A newcomer cannot overtake the queue.
		require.False(t, m.TryLock())
		m.Unlock()
		wg.Wait()
		require.Equal(t, []int{0, 1, 2, 3, 4}, order)
	})
}

func TestTimedUnlockOfUnlockedPanics(t *testing.T) {
	var m TimedMutex
	require.PanicsWithValue(t, "lockorder: Unlock of unlocked TimedMutex", m.Unlock)
}

// TestTimedStressWithCancellation: goroutines hammer one TimedMutex with
// Lock, LockContext and LockTimeout under random deadlines. Every call ends
// in exactly one state (acquired, or abandoned with an error), the counter
// it guards is exact, and the mutex ends unlocked with an empty queue.
func TestTimedStressWithCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m TimedMutex
		const goroutines = 24
		iters := 200
		if testing.Short() {
			iters = 50
		}
		var guarded, acquired, failed int64
		var failedAtomic atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), 3))
				for range iters {
					var err error
					switch rng.IntN(3) {
					case 0:
						m.Lock()
					case 1:
						ctx, cancel := context.WithTimeout(t.Context(), time.Duration(rng.IntN(50))*time.Microsecond)
						err = m.LockContext(ctx)
						cancel()
					default:
						err = m.LockTimeout(time.Duration(rng.IntN(50)) * time.Microsecond)
					}
					if err != nil {
						failedAtomic.Add(1)
						continue
					}
					guarded++
					acquired++
					if rng.IntN(2) == 0 {
						time.Sleep(time.Duration(rng.IntN(20)) * time.Microsecond)
					}
					m.Unlock()
				}
			})
		}
		wg.Wait()
		failed = failedAtomic.Load()
		require.Equal(t, int64(goroutines*iters), acquired+failed)
		require.Equal(t, acquired, guarded)
		s := m.Stats()
		require.False(t, s.Locked)
		require.Zero(t, s.Waiters)
		require.Equal(t, uint64(failed), s.Abandoned)
		require.Positive(t, failed)
		require.Positive(t, s.Contended)
	})
}

// TestLockContextNilContext checks that a nil ctx is an error, not a
// panic, and leaves the mutex untouched.
func TestLockContextNilContext(t *testing.T) {
	var m TimedMutex
	//lint:ignore SA1012 a nil ctx is the input under test
	err := m.LockContext(nil) //nolint:staticcheck
	require.ErrorIs(t, err, ErrNilContext)
	require.True(t, m.TryLock(), "still free")
	m.Unlock()
	assert.Equal(t, uint64(1), m.Stats().Abandoned)
}
