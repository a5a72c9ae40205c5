package spawn_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

// TestCriticalityShares fills a static spawner of capacity 20 level by
// level: sheddable work stops at 75 %, normal at 90 %, critical and
// unmarked work at 100 %, and the refusals are counted by level.
func TestCriticalityShares(t *testing.T) {
	for _, adaptive := range []bool{false, true} {
		opts := []spawn.Option{spawn.WithMaxConcurrent(1), spawn.WithQueue(19), spawn.WithMaxWaiters(0)}
		if adaptive {
			// The limit stays at 1 (Initial, Min and Max) so that the
			// capacity is again 1 + 19.
			opts = []spawn.Option{spawn.WithAdaptiveLimit(1, 1), spawn.WithQueue(19), spawn.WithMaxWaiters(0)}
		}
		s := newSpawner(t, opts...)
		gate := make(chan struct{})
		block := func(context.Context) error { <-gate; return nil }
		fill := func(c spawn.Criticality) int {
			ctx := spawn.WithCriticality(context.Background(), c)
			n := 0
			for {
				err := s.Go(ctx, block)
				if err != nil {
					require.ErrorIs(t, err, spawn.ErrSaturated)
					return n
				}
				n++
			}
		}
		require.Equal(t, 15, fill(spawn.Sheddable), "adaptive=%v", adaptive)
		require.Equal(t, 3, fill(spawn.Normal))
		// Room is reserved for critical work only: sheddable and normal
		// work are refused now.
		require.Zero(t, fill(spawn.Sheddable))
		require.Equal(t, 2, fill(spawn.Critical))
		require.ErrorIs(t, s.TryGo(block), spawn.ErrSaturated)
		st := s.Stats()
		require.Equal(t, int64(2), st.RejectedSheddable)
		require.Equal(t, int64(1), st.RejectedNormal)
		require.Equal(t, int64(1), st.RejectedCritical)
		require.Equal(t, int64(5), st.Rejected)
		close(gate)
		require.NoError(t, s.Wait(context.Background()))
		assertAccounted(t, s)
	}
}

// TestCriticalityUnmarkedFillsAll: work that carries no criticality may
// fill the whole capacity, as it did before priorities.
func TestCriticalityUnmarkedFillsAll(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2), spawn.WithQueue(18))
	gate := make(chan struct{})
	n := 0
	for s.TryGo(func(context.Context) error { <-gate; return nil }) == nil {
		n++
	}
	require.Equal(t, 20, n)
	close(gate)
	require.NoError(t, s.Wait(context.Background()))
}

// TestCriticalityWaiterAdmittedByShare: a sheddable caller waiting in Go
// is admitted once the spawner falls back under its share.
func TestCriticalityWaiterAdmittedByShare(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(3))
	gates := make([]chan struct{}, 4)
	for i := range gates {
		gates[i] = make(chan struct{})
		g := gates[i]
		require.NoError(t, s.TryGo(func(context.Context) error { <-g; return nil }))
	}
	ctx := spawn.WithCriticality(context.Background(), spawn.Sheddable)
	done := make(chan error, 1)
	go func() { done <- s.Go(ctx, func(context.Context) error { return nil }) }()
	// Capacity 4, sheddable share 3: two tasks must end.
	close(gates[0])
	close(gates[1])
	require.NoError(t, <-done)
	for _, g := range gates[2:] {
		close(g)
	}
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}
