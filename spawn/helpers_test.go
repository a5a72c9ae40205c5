package spawn_test

import (
	"context"
	"testing"
	"time"

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
// ended in exactly one state. It first waits (boundedly) for the spawner to
// settle: a Group's Wait, or a Handle's, returns once its tasks are
// accounted, a moment before their admission slots are released.
func assertAccounted(t testing.TB, s *spawn.Spawner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.Wait(ctx) // a test may check a spawner with tasks still parked on purpose
	st := s.Stats()
	sum := st.Succeeded + st.Failed + st.Panicked + st.Rejected + st.Canceled + st.TimedOut + st.Shed + int64(st.Running) + int64(st.Queued)
	require.Equal(t, st.Submitted, sum, "accounting invariant broken: %+v", st)
}

func nop(context.Context) error { return nil }
