package lockorder

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/garrison-go/garrison/internal/ctxerr"
	"github.com/stretchr/testify/require"
)

type plainLocker struct{}

func (plainLocker) Lock()   {}
func (plainLocker) Unlock() {}

func TestLockAllContextRejectsBadInput(t *testing.T) {
	var a Mutex
	//lint:ignore SA1012 a nil context is the input under test
	err := LockAllContext(nil, &a) //nolint:staticcheck
	require.ErrorIs(t, err, ctxerr.ErrNilContext)
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("client gone")
	cancel(cause)
	err = LockAllContext(ctx, &a)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, cause)
	require.ErrorIs(t, LockAllContext(context.Background(), &a, &a), ErrDuplicateLock)
	require.ErrorIs(t, LockAllContext(context.Background(), &a, plainLocker{}), ErrNotBounded)
	require.True(t, a.TryLock(), "nothing was locked")
	a.Unlock()
}

// TestLockAllContextGivesUpAndReleases: one lock of the set is held
// elsewhere; when ctx ends, the ones taken are released.
func TestLockAllContextGivesUpAndReleases(t *testing.T) {
	var a, b Mutex
	var rw RWMutex
	var tm TimedMutex
	var foreign sync.Mutex
	for _, busy := range []sync.Locker{&b, &rw, rw.RLockerForTest(), &tm, &foreign} {
		run(busy.Lock) // held by another goroutine, which adds no edge here
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := LockAllContext(ctx, &a, &b, &rw, &tm, &foreign)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "%T", busy)
		busy.Unlock()
		for _, l := range []interface{ TryLock() bool }{&a, &b, &rw, &tm, &foreign} {
			require.True(t, l.TryLock(), "%T was released", l)
		}
		a.Unlock()
		b.Unlock()
		rw.Unlock()
		tm.Unlock()
		foreign.Unlock()
	}
}

// RLockerForTest returns rw's read locker as the concrete type, so that
// "busy" above can be a read lock that blocks the write lock in the set.
func (rw *RWMutex) RLockerForTest() sync.Locker { return rw.RLocker() }

func TestLockAllContextWaitsForRelease(t *testing.T) {
	var a, b Mutex
	var tm TimedMutex
	run(b.Lock)
	run(tm.Lock)
	done := make(chan error)
	go func() { done <- LockAllContext(context.Background(), &tm, &a, &b) }()
	b.Unlock()
	tm.Unlock()
	require.NoError(t, <-done)
	require.False(t, a.TryLock())
	require.False(t, b.TryLock())
	require.False(t, tm.TryLock())
	UnlockAll(&a, &b, &tm)
}
