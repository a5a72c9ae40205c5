package spawn

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestWakeIsPassedOnPastUnpublishedJob plays a pusher that stalls between
// claiming its queue slot and publishing its job A, while another
// submitter's job B lands behind it. B's wake-up finds nothing poppable,
// so the worker woken later for A must pass the wake-up on for B; else B
// waits for an idle tick while A (which waits for B) holds that worker.
func TestWakeIsPassedOnPastUnpublishedJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(WithMaxConcurrent(3), WithIdleTimeout(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Shutdown(context.Background()) }()
		gate := make(chan struct{})
		for range 3 {
			if err := s.TryGo(func(context.Context) error { <-gate; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		close(gate)
		synctest.Wait() // three parked workers

		// The stalled pusher of A: admitted, slot claimed, not published.
		if _, err := s.tryAdmit(context.Background()); err != nil {
			t.Fatal(err)
		}
		pos := s.q.tail.Add(1) - 1

		start := time.Now()
		handoff := make(chan struct{})
		var waited time.Duration
		if err := s.TryGo(func(context.Context) error {
			waited = time.Since(start)
			close(handoff)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // B's wake-up was spent; every worker is parked

		sl := &s.q.slots[pos&s.q.mask]
		sl.j = job{fn: func(context.Context) error { <-handoff; return nil }}
		sl.seq.Store(pos + 1)
		s.pushed()

		if err := s.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if waited != 0 {
			t.Fatalf("B waited %v for an idle tick beside parked workers", waited)
		}
		if st := s.Stats(); st.Succeeded != 5 || st.Submitted != 5 {
			t.Fatalf("stats %+v", st)
		}
	})
}
