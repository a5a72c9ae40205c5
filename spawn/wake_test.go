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

// TestQueuedTaskDoesNotWaitBesideParkedWorker pushes two tasks while one
// worker spins on the empty queue and another is parked. The spinner takes
// the first task, which waits for the second: the parked worker must be
// woken for it at once, not when its idle ticker happens to fire. With one
// processor the submitter pushes both tasks between two polls of the
// spinner; the fake clock shows any wait for the ticker.
func TestQueuedTaskDoesNotWaitBesideParkedWorker(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for i := range 20 {
		synctest.Test(t, func(t *testing.T) {
			s := newSpawner(t, spawn.WithMaxConcurrent(2), spawn.WithIdleTimeout(time.Hour))
			g1, g2 := make(chan struct{}), make(chan struct{})
			require.NoError(t, s.TryGo(func(context.Context) error { <-g1; return nil }))
			require.NoError(t, s.TryGo(func(context.Context) error { <-g2; return nil }))
			synctest.Wait()
			close(g1)
			synctest.Wait() // the first worker is parked
			close(g2)
			runtime.Gosched() // the second worker finishes and starts spinning
			start := time.Now()
			handoff := make(chan struct{})
			var waited time.Duration
			require.NoError(t, s.TryGo(func(context.Context) error {
				<-handoff
				waited = time.Since(start)
				return nil
			}))
			require.NoError(t, s.TryGo(func(context.Context) error { close(handoff); return nil }))
			require.NoError(t, s.Wait(context.Background()))
			require.Zero(t, waited, "iteration %d: a task waited for an idle tick", i)
			assertAccounted(t, s)
		})
	}
}

// TestAccountedWhileCallersWait checks the accounting invariant while
// callers are parked in Go, for room and for a rate token: nothing moves,
// so the spawner is quiescent, and a parked caller's task is in none of the
// states yet.
func TestAccountedWhileCallersWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(1))
		release := make(chan struct{})
		block := func(context.Context) error { <-release; return nil }
		require.NoError(t, s.TryGo(block))
		require.NoError(t, s.TryGo(block))
		done := make(chan error)
		go func() { done <- s.Go(context.Background(), nop) }()
		synctest.Wait()
		require.Equal(t, 1, s.Stats().Waiting)
		assertAccounted(t, s)
		close(release)
		require.NoError(t, <-done)
		require.NoError(t, s.Wait(context.Background()))
		require.Equal(t, int64(3), s.Stats().Submitted)
		assertAccounted(t, s)

		r := newSpawner(t, spawn.WithRate(1, 1))
		require.NoError(t, r.TryGo(nop))
		go func() { done <- r.Go(context.Background(), nop) }()
		synctest.Wait()
		require.Equal(t, 1, r.Stats().Waiting)
		assertAccounted(t, r)
		require.NoError(t, <-done)
		require.NoError(t, r.Wait(context.Background()))
		require.Equal(t, int64(2), r.Stats().Submitted)
		assertAccounted(t, r)
	})
}
