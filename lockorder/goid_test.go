//go:build lockorder || race

package lockorder

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGoidMatchesRuntimeStack is the verification the checker relies on:
// the id read by the fast path equals the one runtime.Stack prints, on many
// goroutines alive at once.
func TestGoidMatchesRuntimeStack(t *testing.T) {
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		require.GreaterOrEqual(t, goidOffset, 0, "fast goroutine id not verified on %s", runtime.GOARCH)
	}
	const n = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	type pair struct{ fast, slow int64 }
	got := make([]pair, n)
	for i := range n {
		wg.Go(func() {
			<-start
			got[i] = pair{curGoid(), stackGoid()}
		})
	}
	close(start)
	wg.Wait()
	seen := make(map[int64]bool)
	for _, p := range got {
		require.NotZero(t, p.slow)
		require.Equal(t, p.slow, p.fast)
		require.False(t, seen[p.fast], "duplicate goroutine id %d", p.fast)
		seen[p.fast] = true
	}
	require.Equal(t, stackGoid(), curGoid())
	require.Equal(t, goidOffset >= 0, Stats().FastGoroutineID)
}

func TestGoidOffsetSearchIsStable(t *testing.T) {
	require.Equal(t, goidOffset, findGoidOffset())
}

func BenchmarkGoid(b *testing.B) {
	for b.Loop() {
		curGoid()
	}
}

// TestStackFallbackDetectsInversion runs the checker on the slow,
// always-correct goroutine id path that unverified layouts fall back to.
func TestStackFallbackDetectsInversion(t *testing.T) {
	saved := goidOffset
	goidOffset = -1
	defer func() { goidOffset = saved }()
	require.False(t, Stats().FastGoroutineID)

	c := collect(t)
	a, b := classed("slow.A", 0), classed("slow.B", 0)
	run(func() { lockAB(a, b) })
	run(func() { lockAB(b, a) })
	require.Len(t, c.all(), 1)
	require.ErrorIs(t, c.all()[0], ErrInversion)
	require.Zero(t, heldHere())
}
