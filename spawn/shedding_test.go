package spawn_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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

// TestStressOverloadControl runs every entry point against a spawner with
// an adaptive limit, queue-time shedding and mixed criticalities, under
// more load than it serves, with cancellations and timeouts, and checks
// that every task ends in exactly one accounted state and every handle
// resolves with a classified error.
func TestStressOverloadControl(t *testing.T) {
	ops := 400
	if testing.Short() {
		ops = 100
	}
	var dones, admitted atomic.Int64
	s, err := spawn.New(
		spawn.WithAdaptiveLimit(1, 8),
		spawn.WithQueue(16),
		spawn.WithMaxWaiters(8),
		spawn.WithQueueTarget(200*time.Microsecond, time.Millisecond),
		spawn.WithTaskTimeout(2*time.Millisecond),
		spawn.WithHooks(spawn.Hooks{OnDone: func(error) { dones.Add(1) }}),
	)
	require.NoError(t, err)
	levels := []spawn.Criticality{spawn.Sheddable, spawn.Normal, spawn.Critical}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range ops {
				ctx := spawn.WithCriticality(context.Background(), levels[(w+i)%3])
				task := func(ctx context.Context) error {
					switch i % 5 {
					case 0:
						<-ctx.Done() // times out
						return ctx.Err()
					case 1:
						return errors.New("failed")
					default:
						time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
						return nil
					}
				}
				switch i % 3 {
				case 0:
					if s.Go(ctx, task) == nil {
						admitted.Add(1)
					}
				case 1:
					if s.TryGo(task) == nil {
						admitted.Add(1)
					}
				default:
					h, err := spawn.Submit(ctx, s, func(ctx context.Context) (int, error) { return i, task(ctx) })
					if err != nil {
						require.ErrorIs(t, err, spawn.ErrSaturated)
						continue
					}
					admitted.Add(1)
					if i%7 == 0 {
						h.Cancel()
					}
					_, err = h.Wait(context.Background())
					if err != nil && !errors.Is(err, spawn.ErrQueueTimeout) && !errors.Is(err, context.Canceled) &&
						!errors.Is(err, context.DeadlineExceeded) && err.Error() != "failed" {
						t.Errorf("unclassified handle error %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, s.Shutdown(context.Background()))
	st := s.Stats()
	assertAccounted(t, s)
	require.Equal(t, admitted.Load(), dones.Load(), "OnDone once per admitted task")
	require.Equal(t, admitted.Load(), st.Submitted-st.Rejected)
	require.Zero(t, st.Running+st.Queued)
	t.Logf("%+v", st)
}

// TestLoad: Load follows the queue's fill and its delay over the target.
func TestLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(4),
			spawn.WithQueueTarget(10*time.Millisecond, 100*time.Millisecond))
		require.Zero(t, s.Load())
		gate1, gate2 := make(chan struct{}), make(chan struct{})
		require.NoError(t, s.TryGo(func(context.Context) error { <-gate1; return nil }))
		synctest.Wait()
		require.Zero(t, s.Load(), "running at the cap with an empty queue is not overload")
		block := func(context.Context) error { <-gate2; return nil }
		require.NoError(t, s.TryGo(block))
		require.NoError(t, s.TryGo(block))
		require.InDelta(t, 0.5, s.Load(), 1e-9)
		time.Sleep(30 * time.Millisecond)
		close(gate1)
		synctest.Wait()
		// The worker took the second task after it waited 30 ms, three
		// targets; the third is still queued.
		require.InDelta(t, 3, s.Load(), 1e-9)
		close(gate2)
		require.NoError(t, s.Wait(context.Background()))
		synctest.Wait()
		require.Zero(t, s.Load(), "an emptied queue resets the delay")
		var nilSpawner *spawn.Spawner
		require.Zero(t, nilSpawner.Load())
	})
}

// TestQueueTargetCloseDrainsLIFO: Close during overload resolves the tasks
// of both parts of the queue (the FIFO ring and the LIFO stack) with
// ErrShutdown, none is lost.
func TestQueueTargetCloseDrainsLIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := spawn.New(spawn.WithMaxConcurrent(1), spawn.WithQueue(400),
			spawn.WithQueueTarget(shedTarget, shedInterval))
		require.NoError(t, err)
		var handles []*spawn.Handle[int]
		work := func(ctx context.Context) (int, error) {
			select {
			case <-time.After(taskTime):
			case <-ctx.Done():
			}
			return 0, nil
		}
		for ms := 0; ms < 300; ms++ {
			for range 2 {
				if h, err := spawn.TrySubmit(s, work); err == nil {
					handles = append(handles, h)
				}
			}
			time.Sleep(time.Millisecond)
		}
		synctest.Wait()
		st := s.Stats()
		require.True(t, st.LIFO)
		require.Positive(t, st.Queued)
		require.NoError(t, s.Close())
		var shutdown int
		for _, h := range handles {
			if _, err := h.Wait(context.Background()); errors.Is(err, spawn.ErrShutdown) {
				shutdown++
			}
		}
		require.Equal(t, st.Queued+st.Running, shutdown, "Close resolves the queued tasks and cancels the running one")
		require.NoError(t, s.Shutdown(context.Background()))
		assertAccounted(t, s)
		require.Zero(t, s.Stats().Queued)
	})
}

// TestQueueTargetShedsGroupTasks: a Group's task shed from a standing
// queue is returned by Group.Wait as ErrQueueTimeout, never lost.
func TestQueueTargetShedsGroupTasks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(400),
			spawn.WithQueueTarget(shedTarget, shedInterval))
		work := func(context.Context) error { time.Sleep(taskTime); return nil }
		flood := func(d time.Duration) {
			for ms := time.Duration(0); ms < d; ms += time.Millisecond {
				_ = s.TryGo(work)
				_ = s.TryGo(work)
				time.Sleep(time.Millisecond)
			}
		}
		flood(300 * time.Millisecond)
		require.True(t, s.Stats().LIFO)
		g, _ := spawn.NewGroup(context.Background(), s, spawn.WithAllErrors())
		var ran atomic.Int64
		for range 20 {
			// As long as the flood's tasks: a task that takes no time
			// would let the worker run all twenty in the instant it
			// reaches the first, before the flood stacks newer work.
			require.NoError(t, g.Go(func(ctx context.Context) error { ran.Add(1); return work(ctx) }))
		}
		// Newer work keeps arriving on top of the group's tasks, which
		// age past the target at the bottom of the stack.
		flood(100 * time.Millisecond)
		err := g.Wait()
		require.ErrorIs(t, err, spawn.ErrQueueTimeout)
		var j interface{ Unwrap() []error }
		require.ErrorAs(t, err, &j)
		require.Equal(t, int64(20), ran.Load()+int64(len(j.Unwrap())), "each group task ran or was shed")
		require.NoError(t, s.Wait(context.Background()))
		assertAccounted(t, s)
	})
}
