package spawn_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithRate(10, 1)) // one token per 100ms
		require.NoError(t, s.TryGo(nop))
		require.ErrorIs(t, s.TryGo(nop), spawn.ErrRateLimited)

		// Go waits for the next token.
		start := time.Now()
		require.NoError(t, s.Go(context.Background(), nop))
		require.Equal(t, 100*time.Millisecond, time.Since(start))

		// Unless it is due after the ctx deadline: then it fails at once.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		start = time.Now()
		require.ErrorIs(t, s.Go(ctx, nop), spawn.ErrRateLimited)
		require.Zero(t, time.Since(start))

		// A canceled wait gives its token back.
		ctx2, cancel2 := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Go(ctx2, nop) }()
		synctest.Wait()
		require.Equal(t, 1, s.Stats().Waiting)
		cancel2()
		require.ErrorIs(t, <-done, context.Canceled)

		time.Sleep(100 * time.Millisecond)
		require.NoError(t, s.TryGo(nop))
		require.NoError(t, s.Wait(context.Background()))
		st := s.Stats()
		require.Equal(t, int64(3), st.Succeeded)
		require.Equal(t, int64(3), st.Rejected)
		assertAccounted(t, s)
	})
}

func TestRateWaitersAreCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithRate(1, 1), spawn.WithMaxWaiters(1))
		require.NoError(t, s.TryGo(nop))
		done := make(chan error)
		go func() { done <- s.Go(context.Background(), nop) }()
		synctest.Wait()
		require.ErrorIs(t, s.Go(context.Background(), nop), spawn.ErrRateLimited)
		require.NoError(t, <-done)
		require.NoError(t, s.Wait(context.Background()))
		assertAccounted(t, s)
	})
}
