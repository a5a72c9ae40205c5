package spawn_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

// dependency is a synthetic downstream that serves capacity requests at
// once in base each; beyond that, latency grows with the concurrency (a
// queue inside the dependency).
type dependency struct {
	base     time.Duration
	capacity atomic.Int64
	inflight atomic.Int64
	peak     atomic.Int64 // most in flight since the last reset
}

func (d *dependency) call(context.Context) error {
	n := d.inflight.Add(1)
	defer d.inflight.Add(-1)
	for p := d.peak.Load(); n > p && !d.peak.CompareAndSwap(p, n); p = d.peak.Load() {
	}
	c := d.capacity.Load()
	time.Sleep(d.base * time.Duration(max(n, c)) / time.Duration(c))
	return nil
}

// drive keeps clients callers submitting to s with Go until stop closes.
func drive(s *spawn.Spawner, clients int, task func(context.Context) error, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.Go(context.Background(), task); err != nil {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	return &wg
}

// TestAdaptiveLimitFollowsCapacity: 64 clients against a dependency that
// serves 8 at once. The limit settles near 8 × tolerance (latency within
// 1.5 × the baseline), far below the 64 the static cap would run; when the
// dependency's capacity drops to 2 the limit falls by more than half; when
// it comes back, the limit grows again.
func TestAdaptiveLimitFollowsCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dep := &dependency{base: 10 * time.Millisecond}
		dep.capacity.Store(8)
		s := newSpawner(t, spawn.WithAdaptiveLimit(1, 64), spawn.WithQueue(16), spawn.WithMaxWaiters(64))
		stop := make(chan struct{})
		wg := drive(s, 64, dep.call, stop)

		phase := func(capacity int64, d time.Duration) (limit int, peak int64) {
			dep.capacity.Store(capacity)
			time.Sleep(d / 2) // converge
			dep.peak.Store(0)
			time.Sleep(d / 2)
			st := s.Stats()
			return st.Adaptive.Limit, dep.peak.Load()
		}
		fast, fastPeak := phase(8, 4*time.Second)
		t.Logf("capacity 8: limit %d, peak in flight %d, %+v", fast, fastPeak, s.Stats().Adaptive)
		require.GreaterOrEqual(t, fast, 6)
		require.LessOrEqual(t, fast, 24)
		require.LessOrEqual(t, fastPeak, int64(32), "the limit must hold the concurrency down")

		slow, _ := phase(2, 4*time.Second)
		t.Logf("capacity 2: limit %d, %+v", slow, s.Stats().Adaptive)
		require.Less(t, slow, fast/2)

		again, _ := phase(8, 4*time.Second)
		t.Logf("capacity 8 again: limit %d, %+v", again, s.Stats().Adaptive)
		require.Greater(t, again, slow)

		close(stop)
		wg.Wait()
		require.NoError(t, s.Wait(context.Background()))
		st := s.Stats()
		require.LessOrEqual(t, st.Workers, 64)
		require.Equal(t, "gradient2", st.Adaptive.Algorithm)
		require.Positive(t, st.Adaptive.Baseline)
		assertAccounted(t, s)
	})
}

// TestAdaptiveLimitBacksOffOnTimeouts: tasks that all exceed their task
// timeout count as dropped and take the limit down to its minimum.
func TestAdaptiveLimitBacksOffOnTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithAdaptiveLimit(2, 32, spawn.AdaptiveInitial(32)),
			spawn.WithTaskTimeout(5*time.Millisecond))
		stuck := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		stop := make(chan struct{})
		wg := drive(s, 32, stuck, stop)
		time.Sleep(time.Second)
		close(stop)
		wg.Wait()
		require.NoError(t, s.Wait(context.Background()))
		st := s.Stats()
		require.Equal(t, 2, st.Adaptive.Limit)
		require.Positive(t, st.Adaptive.Dropped)
		require.Equal(t, st.TimedOut, int64(st.Adaptive.Dropped))
		assertAccounted(t, s)
	})
}

// TestAdaptiveLimitWorkersFollowLimit: once the limit falls, workers above
// it retire after their task, so no more than limit tasks run.
func TestAdaptiveLimitWorkersFollowLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithAdaptiveLimit(1, 16, spawn.AdaptiveInitial(16)),
			spawn.WithTaskTimeout(5*time.Millisecond))
		var running, peak atomic.Int64
		task := func(ctx context.Context) error {
			n := running.Add(1)
			defer running.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-ctx.Done() // every task times out: the limit falls to 1
			return ctx.Err()
		}
		stop := make(chan struct{})
		wg := drive(s, 16, task, stop)
		time.Sleep(500 * time.Millisecond)
		require.Equal(t, 1, s.Stats().Adaptive.Limit)
		peak.Store(0)
		time.Sleep(500 * time.Millisecond)
		require.Equal(t, int64(1), peak.Load())
		require.LessOrEqual(t, s.Stats().Workers, 1)
		close(stop)
		wg.Wait()
		require.NoError(t, s.Wait(context.Background()))
		assertAccounted(t, s)
	})
}

func TestAdaptiveLimitOptions(t *testing.T) {
	_, err := spawn.New(spawn.WithMaxConcurrent(8), spawn.WithAdaptiveLimit(1, 16))
	require.ErrorContains(t, err, "exceeds WithMaxConcurrent")
	_, err = spawn.New(spawn.WithAdaptiveLimit(0, 16))
	require.Error(t, err)
	_, err = spawn.New(spawn.WithAdaptiveLimit(1, 16, nil))
	require.Error(t, err)
	_, err = spawn.New(spawn.WithAdaptiveLimit(1, 16, spawn.AdaptiveTolerance(0.5)))
	require.Error(t, err)
	_, err = spawn.New(spawn.WithAdaptiveLimit(4, 16, spawn.AdaptiveInitial(2)))
	require.Error(t, err)
	s := newSpawner(t, spawn.WithAdaptiveLimit(1, 16, spawn.AdaptiveAIMD(), spawn.AdaptiveInitial(3)))
	st := s.Stats().Adaptive
	require.Equal(t, "aimd", st.Algorithm)
	require.Equal(t, 3, st.Limit)
	require.Equal(t, 16, st.Max)
	// MaxConcurrent is the adaptive max: 16 running plus the queue.
	gate := make(chan struct{})
	n := 0
	for s.TryGo(func(context.Context) error { <-gate; return nil }) == nil {
		n++
	}
	require.Equal(t, 3+spawn.DefaultQueue, n, "the capacity is the current limit plus the queue")
	close(gate)
	require.NoError(t, s.Wait(context.Background()))
	require.Zero(t, s.Stats().Adaptive.Dropped)
}
