package changuard

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGuardedZeroValue(t *testing.T) {
	var g Guarded[map[string]int]
	g.With(func(m *map[string]int) {
		if *m == nil {
			*m = map[string]int{}
		}
		(*m)["a"]++
	})
	n := WithResult(&g, func(m *map[string]int) int { return (*m)["a"] })
	assert.Equal(t, 1, n)
	var got int
	g.Read(func(m map[string]int) { got = m["a"] })
	assert.Equal(t, 1, got)
	require.NoError(t, g.WithContext(context.Background(), func(m *map[string]int) { (*m)["a"]++ }))
	assert.True(t, g.TryWith(func(m *map[string]int) { (*m)["a"]++ }))
	assert.Equal(t, 3, WithResult(&g, func(m *map[string]int) int { return (*m)["a"] }))
	assert.Equal(t, GuardedStats{}, g.Stats())
}

func TestGuardedPanicReleasesLock(t *testing.T) {
	g := NewGuarded(0)
	assert.PanicsWithValue(t, "boom", func() {
		g.With(func(v *int) {
			*v = 1
			panic("boom")
		})
	})
	assert.PanicsWithValue(t, "boom", func() { g.Read(func(int) { panic("boom") }) })
	assert.PanicsWithValue(t, "boom", func() {
		_ = g.WithContext(context.Background(), func(*int) { panic("boom") })
	})
	assert.PanicsWithValue(t, "boom", func() {
		WithResult(g, func(*int) int { panic("boom") })
	})
	// The lock is free again: a non-blocking acquire succeeds.
	assert.True(t, g.TryWith(func(v *int) { assert.Equal(t, 1, *v) }))
}

func TestGuardedTryWithBusy(t *testing.T) {
	g := NewGuarded(0)
	g.With(func(*int) {
		assert.False(t, g.TryWith(func(*int) { t.Error("ran while locked") }))
	})
}

func TestGuardedWithContextCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGuarded(0)
		release := make(chan struct{})
		held := make(chan struct{})
		go g.With(func(*int) {
			close(held)
			<-release
		})
		<-held

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := g.WithContext(ctx, func(*int) { t.Error("f ran without the lock") })
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorContains(t, err, "Guarded.WithContext")
		assert.Equal(t, time.Second, time.Since(start))

		cause := errors.New("shed")
		ctx2, cancel2 := context.WithCancelCause(context.Background())
		errc := make(chan error)
		go func() { errc <- g.WithContext(ctx2, func(*int) {}) }()
		synctest.Wait()
		assert.Equal(t, 1, g.Stats().Waiting, "the waiter is durably blocked")
		cancel2(cause)
		assert.ErrorIs(t, <-errc, cause)

		close(release)
		synctest.Wait()
		s := g.Stats()
		assert.Equal(t, uint64(2), s.Canceled)
		assert.Equal(t, uint64(2), s.Contended)
		assert.Equal(t, 0, s.Waiting)
		assert.True(t, g.TryWith(func(*int) {}), "cancelled waiters left the lock free")
	})
}

// A writer that gives up must not strand the readers queued behind it.
func TestGuardedCanceledWriterUnblocksReaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGuarded(7)
		release := make(chan struct{})
		held := make(chan struct{})
		go g.Read(func(int) {
			close(held)
			<-release
		})
		<-held
		ctx, cancel := context.WithCancel(context.Background())
		werr := make(chan error)
		go func() { werr <- g.WithContext(ctx, func(*int) {}) }()
		synctest.Wait()
		var readers sync.WaitGroup
		var reads atomic.Int32
		for range 3 {
			readers.Go(func() { g.Read(func(v int) { reads.Add(1) }) })
		}
		synctest.Wait()
		assert.Equal(t, int32(0), reads.Load(), "readers queue behind the waiting writer")
		cancel()
		assert.ErrorIs(t, <-werr, context.Canceled)
		readers.Wait()
		assert.Equal(t, int32(3), reads.Load())
		close(release)
	})
}

// TestGuardedExclusion hammers With, WithContext and Read and checks that
// writers never overlap each other or readers.
func TestGuardedExclusion(t *testing.T) {
	type state struct{ a, b int }
	g := NewGuarded(state{})
	var inside atomic.Int32
	var wg sync.WaitGroup
	workers, iters := 8, 2000
	if testing.Short() {
		iters = 300
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for w := range workers {
		wg.Go(func() {
			for i := range iters {
				switch (w + i) % 3 {
				case 0:
					g.With(func(s *state) {
						if inside.Add(1) != 1 {
							t.Error("writers overlap")
						}
						s.a++
						s.b++
						inside.Add(-1)
					})
				case 1:
					err := g.WithContext(ctx, func(s *state) {
						if inside.Add(1) != 1 {
							t.Error("writers overlap")
						}
						s.a++
						s.b++
						inside.Add(-1)
					})
					if err != nil {
						t.Error(err)
					}
				default:
					g.Read(func(s state) {
						if inside.Load() != 0 {
							t.Error("reader overlaps a writer")
						}
						if s.a != s.b {
							t.Error("torn read")
						}
					})
				}
			}
		})
	}
	wg.Wait()
	var want int
	for w := range workers {
		for i := range iters {
			if (w+i)%3 != 2 {
				want++
			}
		}
	}
	g.Read(func(s state) { assert.Equal(t, want, s.a) })
	assert.Equal(t, 0, g.Stats().Waiting)
}

// TestGuardedCancelStress races ctx expiries against hand-offs: waiters give
// up while the lock is being handed to them or to the waiter behind them.
// A lost wake-up would hang the test; a double grant would show in inside.
func TestGuardedCancelStress(t *testing.T) {
	g := NewGuarded(0)
	var inside atomic.Int32
	var succeeded atomic.Int64
	workers, iters := 16, 1000
	if testing.Short() {
		iters = 200
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range iters {
				body := func(v *int) {
					if inside.Add(1) != 1 {
						t.Error("two holders")
					}
					*v++
					inside.Add(-1)
				}
				switch (w + i) % 4 {
				case 0:
					g.With(body)
					succeeded.Add(1)
				case 1:
					g.Read(func(int) {
						if inside.Load() != 0 {
							t.Error("reader with a writer")
						}
					})
				default:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%50)*time.Microsecond)
					if g.WithContext(ctx, body) == nil {
						succeeded.Add(1)
					}
					cancel()
				}
			}
		})
	}
	wg.Wait()
	g.Read(func(v int) { assert.Equal(t, int(succeeded.Load()), v) })
	s := g.Stats()
	assert.Equal(t, 0, s.Waiting)
	assert.True(t, g.TryWith(func(*int) {}), "lock left free")
	t.Logf("contended %d, canceled %d", s.Contended, s.Canceled)
}

// TestGuardedDoneContextFailsAtOnce: WithContext used to take a free lock
// even with a ctx already done, against the rule of internal/ctxerr.
func TestGuardedDoneContextFailsAtOnce(t *testing.T) {
	var g Guarded[int]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := g.WithContext(ctx, func(*int) { ran = true })
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, ran)
	//lint:ignore SA1012 a nil ctx is the input under test
	err = g.WithContext(nil, func(*int) { ran = true }) //nolint:staticcheck
	require.ErrorIs(t, err, ErrNilContext)
	assert.False(t, ran)
	require.Error(t, g.WithContext(context.Background(), nil))
	assert.True(t, g.TryWith(func(*int) {}), "lock left free")
}
