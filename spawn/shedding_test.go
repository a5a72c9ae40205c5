package spawn_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

const (
	shedTarget   = 10 * time.Millisecond
	shedInterval = 100 * time.Millisecond
	taskTime     = time.Millisecond
)

// shedRun is what one synthetic load run saw.
type shedRun struct {
	maxWait    time.Duration // longest queue wait of a task that ran
	inversions int           // tasks that started before an older one
	ran, shed  int           // handles resolved by running / ErrQueueTimeout
	rejected   int           // TrySubmit refusals
	lifoSeen   bool          // Stats.LIFO was seen true during the load
	stats      spawn.Stats
}

// runLoad submits, on one worker serving a task per taskTime, perMs tasks
// every millisecond for d of fake time, then waits for the spawner to
// drain. Each task records its queue wait and its start order.
func runLoad(t *testing.T, perMs int, d time.Duration, opts ...spawn.Option) shedRun {
	var r shedRun
	opts = append([]spawn.Option{spawn.WithMaxConcurrent(1), spawn.WithQueue(400)}, opts...)
	s := newSpawner(t, opts...)
	var mu sync.Mutex
	last := -1
	var handles []*spawn.Handle[int]
	for seq := 0; time.Duration(seq/perMs)*time.Millisecond < d; seq++ {
		if seq%perMs == 0 && seq > 0 {
			time.Sleep(time.Millisecond)
			r.lifoSeen = r.lifoSeen || s.Stats().LIFO
		}
		submitted := time.Now()
		h, err := spawn.TrySubmit(s, func(context.Context) (int, error) {
			mu.Lock()
			r.maxWait = max(r.maxWait, time.Since(submitted))
			if seq < last {
				r.inversions++
			}
			last = seq
			mu.Unlock()
			time.Sleep(taskTime)
			return seq, nil
		})
		if err != nil {
			require.ErrorIs(t, err, spawn.ErrSaturated)
			r.rejected++
			continue
		}
		handles = append(handles, h)
	}
	require.NoError(t, s.Wait(context.Background()))
	for _, h := range handles {
		_, err := h.Wait(context.Background())
		switch {
		case err == nil:
			r.ran++
		case errors.Is(err, spawn.ErrQueueTimeout):
			r.shed++
		default:
			t.Fatalf("unexpected task error %v", err)
		}
	}
	r.stats = s.Stats()
	assertAccounted(t, s)
	return r
}

// TestQueueTargetBurstDropsNothing: a burst that drains within the
// interval, though it waits well past the target, is not shed.
func TestQueueTargetBurstDropsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 60 tasks at once: the last waits 60 ms, beyond the 10 ms
		// target, but the queue empties before 100 ms have passed.
		r := runLoad(t, 60, time.Millisecond, spawn.WithQueueTarget(shedTarget, shedInterval))
		require.Zero(t, r.shed)
		require.Zero(t, r.stats.Shed)
		require.Zero(t, r.stats.LIFOSwitches)
		require.Equal(t, 60, r.ran)
		require.Greater(t, r.maxWait, shedTarget, "the burst must queue past the target to test anything")
		require.Zero(t, r.inversions, "FIFO while no queue stands")
	})
}

// TestQueueTargetStandingQueue: twice the load one worker serves, for a
// second. Without a target the queue fills and every task waits hundreds
// of milliseconds; with one, stale tasks are shed, the newest run first,
// and no task that ran waited much beyond target + interval. When the
// load stops the queue drains and LIFO switches off.
func TestQueueTargetStandingQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		control := runLoad(t, 2, time.Second)
		require.Zero(t, control.shed)
		require.Zero(t, control.inversions)
		require.Greater(t, control.maxWait, 300*time.Millisecond, "the control must build a standing queue")

		r := runLoad(t, 2, time.Second, spawn.WithQueueTarget(shedTarget, shedInterval))
		t.Logf("control: %+v", control)
		t.Logf("target:  %+v", r)
		require.Positive(t, r.shed)
		require.Equal(t, int64(r.shed), r.stats.Shed)
		require.True(t, r.lifoSeen, "LIFO must switch on under a standing queue")
		require.False(t, r.stats.LIFO, "LIFO must switch off once the queue drained")
		require.GreaterOrEqual(t, r.stats.LIFOSwitches, int64(1))
		require.Positive(t, r.inversions, "newest first under overload")
		require.LessOrEqual(t, r.maxWait, shedTarget+shedInterval+5*taskTime)
		require.Equal(t, r.ran+r.shed+r.rejected, 2000)
		require.Greater(t, r.ran, 900, "shedding must not cost throughput")
	})
}

// TestQueueTargetRecovers: after a standing queue has been shed and the
// load falls below capacity, nothing more is shed.
func TestQueueTargetRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(400),
			spawn.WithQueueTarget(shedTarget, shedInterval))
		work := func(context.Context) error { time.Sleep(taskTime); return nil }
		submit := func(perMs int, d time.Duration) {
			for ms := time.Duration(0); ms < d; ms += time.Millisecond {
				for range perMs {
					_ = s.TryGo(work)
				}
				time.Sleep(time.Millisecond)
			}
		}
		submit(2, 500*time.Millisecond)
		require.True(t, s.Stats().LIFO)
		shed := s.Stats().Shed
		require.Positive(t, shed)
		// Half the capacity: the queue drains, LIFO goes off, and no
		// further task is shed.
		submit(1, 5*time.Millisecond) // keep arriving while it drains
		require.NoError(t, s.Wait(context.Background()))
		require.False(t, s.Stats().LIFO)
		shed = s.Stats().Shed
		succeeded := s.Stats().Succeeded
		for range 200 {
			require.NoError(t, s.TryGo(work))
			time.Sleep(2 * time.Millisecond)
		}
		require.NoError(t, s.Wait(context.Background()))
		st := s.Stats()
		require.False(t, st.LIFO)
		require.Equal(t, shed, st.Shed, "nothing is shed once no queue stands")
		require.Equal(t, succeeded+200, st.Succeeded)
		assertAccounted(t, s)
	})
}

func TestQueueTargetOptionErrors(t *testing.T) {
	for _, c := range [][2]time.Duration{{0, time.Second}, {-1, time.Second}, {time.Second, time.Millisecond}} {
		_, err := spawn.New(spawn.WithQueueTarget(c[0], c[1]))
		require.Error(t, err, "%v", c)
	}
}
