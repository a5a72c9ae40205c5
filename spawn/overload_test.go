package spawn_test

import (
	"context"
	"math"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

func TestOverloadGuardHeap(t *testing.T) {
	var events []spawn.OverloadEvent
	s := newSpawner(t, spawn.WithOverloadGuard(spawn.OverloadGuard{
		MaxHeapBytes: 1, // any live heap is over
		OnCrossing:   func(ev spawn.OverloadEvent) { events = append(events, ev) },
	}))
	require.ErrorIs(t, s.TryGo(nop), spawn.ErrOverloaded)
	require.ErrorIs(t, s.Go(context.Background(), nop), spawn.ErrOverloaded)
	require.True(t, s.Stats().Overloaded)
	require.Len(t, events, 1, "one crossing, reported once")
	require.True(t, events[0].Overloaded)
	require.Positive(t, events[0].HeapBytes)
	require.Positive(t, events[0].Goroutines)
	assertAccounted(t, s)
}

// TestOverloadGuardGoroutines drives the goroutine count over the threshold
// and back, with the fake clock of a synctest bubble, and checks the guard
// samples at most once per SampleEvery.
func TestOverloadGuardGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var events []spawn.OverloadEvent
		// Leave a wide margin: goroutines of other tests may still be exiting.
		limit := runtime.NumGoroutine() + 500
		s := newSpawner(t, spawn.WithOverloadGuard(spawn.OverloadGuard{
			MaxGoroutines: limit,
			SampleEvery:   time.Second,
			OnCrossing: func(ev spawn.OverloadEvent) {
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
			},
		}))
		require.NoError(t, s.TryGo(nop)) // first sample: under the limit
		require.NoError(t, s.Wait(context.Background()))

		// Six times the margin: the goroutines of earlier tests that were
		// still exiting when limit was read may be gone by now, and the
		// count must cross the limit however many of them there were.
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range 3000 {
			wg.Go(func() { <-release })
		}
		synctest.Wait()
		// Not sampled again yet: the stale verdict admits.
		require.NoError(t, s.TryGo(nop))
		time.Sleep(time.Second)
		require.ErrorIs(t, s.TryGo(nop), spawn.ErrOverloaded)
		require.ErrorIs(t, s.TryGo(nop), spawn.ErrOverloaded)

		close(release)
		wg.Wait()
		time.Sleep(time.Second)
		require.NoError(t, s.TryGo(nop))
		require.NoError(t, s.Wait(context.Background()))
		assertAccounted(t, s)

		mu.Lock()
		defer mu.Unlock()
		require.Len(t, events, 2)
		require.True(t, events[0].Overloaded)
		require.Greater(t, events[0].Goroutines, limit)
		require.False(t, events[1].Overloaded)
	})
}

// TestOverloadGuardLongPeriod checks a huge SampleEvery (read as "sample
// once") does not overflow the next due time into sampling on every call.
func TestOverloadGuardLongPeriod(t *testing.T) {
	s := newSpawner(t, spawn.WithOverloadGuard(spawn.OverloadGuard{
		// A wide margin: goroutines that earlier tests leave exiting or
		// starting must not push the one sample over the limit.
		MaxGoroutines: runtime.NumGoroutine() + 2000,
		SampleEvery:   time.Duration(math.MaxInt64),
	}))
	require.NoError(t, s.TryGo(nop)) // the one sample: under the limit
	release := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	for range 2500 {
		wg.Go(func() { <-release })
	}
	require.NoError(t, s.TryGo(nop), "sampled again before SampleEvery passed")
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}
