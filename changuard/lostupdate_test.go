package changuard

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoLostUpdates runs 1000 goroutines x 1000 increments through each
// container; a single lost update shows in the final count.
func TestNoLostUpdates(t *testing.T) {
	goroutines, increments := 1000, 1000
	if testing.Short() {
		increments = 100
	}
	want := goroutines * increments
	hammer := func(inc func(worker int)) {
		var wg sync.WaitGroup
		for w := range goroutines {
			wg.Go(func() {
				for range increments {
					inc(w)
				}
			})
		}
		wg.Wait()
	}

	t.Run("Guarded", func(t *testing.T) {
		t.Parallel()
		var g Guarded[int]
		ctx := context.Background()
		hammer(func(w int) {
			switch w % 3 {
			case 0:
				g.With(func(v *int) { *v++ })
			case 1:
				require.NoError(t, g.WithContext(ctx, func(v *int) { *v++ }))
			default:
				WithResult(&g, func(v *int) struct{} { *v++; return struct{}{} })
			}
		})
		g.Read(func(v int) { assert.Equal(t, want, v) })
	})
	t.Run("Snapshot", func(t *testing.T) {
		t.Parallel()
		var s Snapshot[int]
		hammer(func(int) {
			_, err := s.Update(func(v int) (int, error) { return v + 1, nil })
			if err != nil {
				t.Error(err)
			}
		})
		v, ver := s.Load()
		assert.Equal(t, want, v)
		assert.Equal(t, uint64(want), ver)
	})
	t.Run("Owner", func(t *testing.T) {
		t.Parallel()
		o, err := NewOwner(0, 256)
		require.NoError(t, err)
		ctx := context.Background()
		hammer(func(int) {
			// Posts where there is room, Calls (which wait) otherwise.
			if o.Post(func(v *int) { *v++ }) == nil {
				return
			}
			if _, err := Call(ctx, o, func(v *int) (struct{}, error) { *v++; return struct{}{}, nil }); err != nil {
				t.Error(err)
			}
		})
		v, err := shutdown(ctx, o)
		require.NoError(t, err)
		assert.Equal(t, want, v)
	})
}
