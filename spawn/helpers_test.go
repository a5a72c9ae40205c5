package spawn_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

// newSpawner builds a spawner that is shut down when the test ends.
func newSpawner(t testing.TB, opts ...spawn.Option) *spawn.Spawner {
	t.Helper()
	s, err := spawn.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = s.Shutdown(context.Background())
	})
	return s
}

// assertAccounted checks, on a quiescent spawner, that every submitted task
// ended in exactly one state.
func assertAccounted(t testing.TB, s *spawn.Spawner) {
	t.Helper()
	st := s.Stats()
	sum := st.Succeeded + st.Failed + st.Panicked + st.Rejected + st.Canceled + st.TimedOut + st.Shed + int64(st.Running) + int64(st.Queued)
	require.Equal(t, st.Submitted, sum, "accounting invariant broken: %+v", st)
}

func nop(context.Context) error { return nil }
