package spawn_test

import (
	"context"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

// TestSubmitContextPropagates checks the context a Submit task gets behaves
// like a standard cancelable context: derived contexts and AfterFunc see
// its cancellation, deriving starts no goroutine, and it ends with the task.
func TestSubmitContextPropagates(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1))
	type result struct {
		goroutinesAdded int
		derivedErr      error
		afterRan        bool
		deadlineSet     bool
		errBefore       error
	}
	started := make(chan struct{})
	h, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (result, error) {
		var r result
		r.errBefore = ctx.Err()
		_, r.deadlineSet = ctx.Deadline()
		before := runtime.NumGoroutine()
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		withTimeout, cancel2 := context.WithTimeout(ctx, time.Hour)
		defer cancel2()
		ran := make(chan struct{})
		context.AfterFunc(ctx, func() { close(ran) })
		r.goroutinesAdded = runtime.NumGoroutine() - before
		close(started)
		<-derived.Done()
		<-withTimeout.Done()
		<-ran
		r.afterRan = true
		r.derivedErr = derived.Err()
		return r, ctx.Err()
	})
	require.NoError(t, err)
	<-started
	h.Cancel()
	r, err := h.Wait(context.Background())
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, r.errBefore)
	require.False(t, r.deadlineSet)
	require.Zero(t, r.goroutinesAdded, "deriving from the task context started goroutines")
	require.ErrorIs(t, r.derivedErr, context.Canceled)
	require.True(t, r.afterRan)
	require.NoError(t, s.Wait(context.Background()))
	require.Equal(t, int64(1), s.Stats().Canceled)
}

func TestSubmitContextEndsWithTask(t *testing.T) {
	s := newSpawner(t)
	h, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (context.Context, error) {
		return ctx, nil
	})
	require.NoError(t, err)
	ctx, err := h.Wait(context.Background())
	require.NoError(t, err)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("task context not canceled after the task returned")
	}
	require.ErrorIs(t, ctx.Err(), context.Canceled)
	// A late AfterFunc still runs.
	ran := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(ran) })
	<-ran
	require.False(t, stop())
}

func TestSubmitContextAfterFuncStop(t *testing.T) {
	s := newSpawner(t)
	h, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (bool, error) {
		stop := context.AfterFunc(ctx, func() { panic("stopped AfterFunc ran") })
		return stop(), nil
	})
	require.NoError(t, err)
	stopped, err := h.Wait(context.Background())
	require.NoError(t, err)
	require.True(t, stopped)
}

// TestShutdownForcedSubmit checks Shutdown reaches running Submit tasks,
// whether they wait on Done or only poll Err.
func TestShutdownForcedSubmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := spawn.New(spawn.WithMaxConcurrent(3))
		require.NoError(t, err)
		waiting, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		require.NoError(t, err)
		polling, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (int, error) {
			for ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			return 0, ctx.Err()
		})
		require.NoError(t, err)
		derived, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (int, error) {
			d, cancel := context.WithCancel(ctx)
			defer cancel()
			<-d.Done()
			return 0, nil // returns nil, but after its context ended
		})
		require.NoError(t, err)
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, s.Shutdown(ctx), context.Canceled)
		for _, h := range []*spawn.Handle[int]{waiting, polling, derived} {
			_, err := h.Wait(context.Background())
			require.ErrorIs(t, err, context.Canceled)
		}
		_, err = derived.Wait(context.Background())
		require.ErrorIs(t, err, spawn.ErrShutdown)
		require.NoError(t, s.Shutdown(context.Background()))
		require.Equal(t, int64(3), s.Stats().Canceled)
		assertAccounted(t, s)
	})
}

func TestSubmitWouldDeadlock(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
	h, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (error, error) {
		_, err := spawn.Submit(ctx, s, func(context.Context) (int, error) { return 0, nil })
		return err, nil
	})
	require.NoError(t, err)
	nestedErr, err := h.Wait(context.Background())
	require.NoError(t, err)
	require.ErrorIs(t, nestedErr, spawn.ErrWouldDeadlock)
}
