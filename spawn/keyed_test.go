package spawn_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

func TestPerKeyCaps(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(10), spawn.WithPerKey(2, 2))
	ctx := context.Background()
	release := make(chan struct{})
	block := func(context.Context) error { <-release; return nil }

	require.NoError(t, s.GoKey(ctx, "a", block))
	require.NoError(t, s.GoKey(ctx, "a", block))
	err := s.GoKey(ctx, "a", block)
	require.ErrorIs(t, err, spawn.ErrKeyLimit, "key a is at its cap")
	require.NoError(t, s.GoKey(ctx, "b", block), "other keys are not affected")
	err = s.GoKey(ctx, "c", block)
	require.ErrorIs(t, err, spawn.ErrKeyLimit, "key table is full")
	require.NoError(t, s.Go(ctx, block), "Go is not keyed")
	require.Equal(t, 2, s.Stats().Keys)

	close(release)
	require.NoError(t, s.Wait(ctx))
	require.Equal(t, 0, s.Stats().Keys, "keys leave the table with their last task")
	require.NoError(t, s.GoKey(ctx, "c", nop))
	require.NoError(t, s.Wait(ctx))
	st := s.Stats()
	require.Equal(t, int64(2), st.Rejected)
	require.Equal(t, int64(5), st.Succeeded)
	assertAccounted(t, s)
}

// TestPerKeyReleasedOnRejection checks a key reserved by GoKey is given back
// when the global admission then fails.
func TestPerKeyReleasedOnRejection(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0), spawn.WithMaxWaiters(0), spawn.WithPerKey(1, 1))
	release := make(chan struct{})
	require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
	require.ErrorIs(t, s.GoKey(context.Background(), "a", nop), spawn.ErrSaturated)
	require.Equal(t, 0, s.Stats().Keys)
	close(release)
	require.NoError(t, s.Wait(context.Background()))
	require.NoError(t, s.GoKey(context.Background(), "b", nop))
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}

func TestGoKeyWithoutPerKeyIsGo(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(4))
	for range 10 {
		require.NoError(t, s.GoKey(context.Background(), "same", nop))
	}
	require.NoError(t, s.Wait(context.Background()))
	require.Equal(t, int64(10), s.Stats().Succeeded)
	require.Equal(t, 0, s.Stats().Keys)
}
