package spawn_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

// TestStressAccounting hammers one spawner from many submitters with every
// entry point, every kind of task ending and canceled contexts, and checks
// the cap, the per-key cap and the accounting invariant.
func TestStressAccounting(t *testing.T) {
	const (
		maxRunning = 4
		maxPerKey  = 2
		submitters = 16
	)
	ops := 600
	if testing.Short() {
		ops = 150
	}
	var (
		running, maxSeen atomic.Int64
		keyRunning       [4]atomic.Int64
		keyMaxSeen       atomic.Int64
		accepted         atomic.Int64
		rejected         atomic.Int64
		dones            atomic.Int64
		panicsHooked     atomic.Int64
	)
	s := newSpawner(t,
		spawn.WithMaxConcurrent(maxRunning),
		spawn.WithQueue(8),
		spawn.WithMaxWaiters(8),
		spawn.WithPerKey(maxPerKey, 3),
		spawn.WithTaskTimeout(20*time.Millisecond),
		spawn.WithHooks(spawn.Hooks{
			OnPanic: func(*spawn.PanicError) { panicsHooked.Add(1) },
			OnDone:  func(error) { dones.Add(1) },
		}),
	)
	errTask := errors.New("task failed")
	observe := func(c *atomic.Int64, n int64) {
		for {
			old := c.Load()
			if n <= old || c.CompareAndSwap(old, n) {
				return
			}
		}
	}
	task := func(r int, key int) func(context.Context) error {
		return func(ctx context.Context) error {
			observe(&maxSeen, running.Add(1))
			defer running.Add(-1)
			if key >= 0 {
				observe(&keyMaxSeen, keyRunning[key].Add(1))
				defer keyRunning[key].Add(-1)
			}
			runtime.Gosched()
			switch r % 20 {
			case 0:
				return errTask
			case 1:
				panic("stress panic")
			case 2:
				if r%40 == 2 {
					runtime.Goexit()
				}
			case 3:
				<-ctx.Done() // times out
				return ctx.Err()
			}
			return nil
		}
	}

	var handles sync.Map
	var wg sync.WaitGroup
	for g := range submitters {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for range ops {
				r := rng.IntN(1000)
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if rng.IntN(8) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(200))*time.Microsecond)
				}
				var err error
				switch rng.IntN(5) {
				case 0:
					err = s.Go(ctx, task(r, -1))
				case 1:
					err = s.TryGo(task(r, -1))
				case 2:
					key := rng.IntN(4)
					err = s.GoKey(ctx, string(rune('a'+key)), task(r, key))
				case 3, 4:
					var h *spawn.Handle[int]
					f := task(r, -1)
					h, err = spawn.Submit(ctx, s, func(ctx context.Context) (int, error) { return r, f(ctx) })
					if err == nil {
						handles.Store(h, r)
						if rng.IntN(10) == 0 {
							h.Cancel()
						}
					}
				}
				cancel()
				if err != nil {
					rejected.Add(1)
				} else {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, s.Wait(context.Background()))

	st := s.Stats()
	require.LessOrEqual(t, maxSeen.Load(), int64(maxRunning), "cap exceeded")
	require.LessOrEqual(t, keyMaxSeen.Load(), int64(maxPerKey), "per-key cap exceeded")
	require.Equal(t, int64(submitters*ops), st.Submitted)
	require.Equal(t, rejected.Load(), st.Rejected)
	require.Equal(t, accepted.Load(), dones.Load(), "OnDone once per admitted task")
	require.Equal(t, st.Panicked, panicsHooked.Load())
	require.Equal(t, 0, st.Running)
	require.Equal(t, 0, st.Queued)
	require.Equal(t, 0, st.Waiting)
	require.Equal(t, 0, st.Keys)
	assertAccounted(t, s)
	require.Positive(t, st.Succeeded)
	require.Positive(t, st.Failed)
	require.Positive(t, st.Panicked)
	require.Positive(t, st.Rejected)

	// Every handle is resolved, with its own value when it succeeded.
	handles.Range(func(k, v any) bool {
		h := k.(*spawn.Handle[int])
		select {
		case <-h.Done():
		default:
			t.Fatal("handle not resolved after Wait")
		}
		got, err := h.Wait(context.Background())
		if err == nil {
			require.Equal(t, v.(int), got)
		}
		return true
	})
	require.NoError(t, s.Shutdown(context.Background()))
	require.Equal(t, 0, s.Stats().Workers)
}

// TestFloodTryGo sends 1,000,000 TryGo calls at a full spawner: all must be
// rejected without adding goroutines or retaining memory.
func TestFloodTryGo(t *testing.T) {
	const maxRunning, queue = 4, 64
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	s := newSpawner(t, spawn.WithMaxConcurrent(maxRunning), spawn.WithQueue(queue))
	release := make(chan struct{})
	for range maxRunning + queue {
		require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
	}
	require.Eventually(t, func() bool { return s.Stats().Running == maxRunning }, 5*time.Second, time.Millisecond)
	goroutines := runtime.NumGoroutine()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		if err := s.TryGo(nop); !errors.Is(err, spawn.ErrSaturated) {
			t.Fatalf("TryGo on a full spawner returned %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	require.LessOrEqual(t, runtime.NumGoroutine(), goroutines)
	require.Less(t, after.Mallocs-before.Mallocs, uint64(1000), "rejections allocate")
	require.Less(t, int64(after.HeapAlloc)-int64(before.HeapAlloc), int64(1<<20))
	require.Equal(t, int64(n), s.Stats().Rejected)
	close(release)
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}

// TestAdmissionBoundAfterChurn: admission counts the tasks in the spawner
// as admissions less releases, with a cached count of releases that goes
// stale as tasks end. After rounds of churn (tasks that end at once, from
// several submitters), a storm of TryGo with tasks that block must admit
// exactly MaxConcurrent+Queue of them: one more would break the bound, one
// fewer is a false ErrSaturated from a stale count.
func TestAdmissionBoundAfterChurn(t *testing.T) {
	const (
		maxRunning = 3
		queue      = 5
		submitters = 8
		// sheddableShare is 75 % of maxRunning+queue.
		sheddableShare = 6
	)
	s := newSpawner(t, spawn.WithMaxConcurrent(maxRunning), spawn.WithQueue(queue))
	ctx := context.Background()
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		// Churn: short tasks through Go (which waits for room) and TryGo.
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Go(func() {
				for i := range 50 + round*7 + g {
					if i%3 == 0 {
						_ = s.TryGo(nop)
					} else {
						require.NoError(t, s.Go(ctx, nop))
					}
				}
			})
		}
		wg.Wait()
		require.NoError(t, s.Wait(ctx))

		// Storm: blocking tasks until the spawner is full.
		release := make(chan struct{})
		accepted := storm(t, submitters, maxRunning+queue+2, release, s.TryGo)
		st := s.Stats()
		close(release)
		require.Equal(t, int64(maxRunning+queue), accepted, "round %d: %+v", round, st)
		require.Equal(t, maxRunning+queue, st.Running+st.Queued, "round %d", round)
		require.NoError(t, s.Wait(ctx))

		// The same storm from sheddable work, which may fill only its
		// share of the spawner: admission checks that share against the
		// fresh count too, so exactly the share is admitted. First leave
		// the cached count stale by more than the share but less than
		// the capacity: tasks admitted one by one from empty, then ended.
		release = make(chan struct{})
		for range maxRunning + queue - 1 {
			require.NoError(t, s.TryGo(func(context.Context) error { <-release; return nil }))
		}
		close(release)
		require.NoError(t, s.Wait(ctx))
		release = make(chan struct{})
		g, _ := spawn.NewGroup(spawn.WithCriticality(ctx, spawn.Sheddable), s)
		accepted = storm(t, submitters, maxRunning+queue+2, release, g.TryGo)
		close(release)
		require.Equal(t, int64(sheddableShare), accepted, "round %d: sheddable", round)
		require.NoError(t, g.Wait())
		require.NoError(t, s.Wait(ctx))
	}
	assertAccounted(t, s)
}

// storm calls tryGo with tasks that block until release is closed, n times
// from each of submitters goroutines at once, and returns how many were
// admitted; every refusal must be ErrSaturated.
func storm(t *testing.T, submitters, n int, release <-chan struct{}, tryGo func(func(context.Context) error) error) int64 {
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for range submitters {
		wg.Go(func() {
			for range n {
				err := tryGo(func(context.Context) error { <-release; return nil })
				if err == nil {
					accepted.Add(1)
				} else {
					require.ErrorIs(t, err, spawn.ErrSaturated)
				}
			}
		})
	}
	wg.Wait()
	return accepted.Load()
}

// TestStatsExactAcrossWorkers: workers count starts and outcomes on
// separate stripes, which Stats sums. With more workers than stripes and
// rounds of churn from several submitters, the counters and the running
// gauge must be exact: while maxRunning tasks block, Running is maxRunning
// and Started counts them; once all end, every start is in Succeeded or
// Failed, in the numbers the tasks returned.
func TestStatsExactAcrossWorkers(t *testing.T) {
	const maxRunning, submitters, rounds, perRound = 24, 4, 5, 500
	s := newSpawner(t, spawn.WithMaxConcurrent(maxRunning), spawn.WithQueue(submitters*perRound))
	errTask := errors.New("task failed")
	var wantOK, wantErr int64
	for r := range rounds {
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Go(func() {
				for i := range perRound {
					fail := (r+g+i)%3 == 0
					require.NoError(t, s.Go(context.Background(), func(context.Context) error {
						if fail {
							return errTask
						}
						return nil
					}))
				}
			})
		}
		wg.Wait()
		require.NoError(t, s.Wait(context.Background()))
		for g := range submitters {
			for i := range perRound {
				if (r+g+i)%3 == 0 {
					wantErr++
				} else {
					wantOK++
				}
			}
		}
		st := s.Stats()
		require.Equal(t, wantOK, st.Succeeded, "round %d", r)
		require.Equal(t, wantErr, st.Failed, "round %d", r)
		require.Equal(t, wantOK+wantErr, st.Started, "round %d", r)
		require.Zero(t, st.Running)
	}
	release := make(chan struct{})
	var running sync.WaitGroup
	running.Add(maxRunning)
	for range maxRunning {
		require.NoError(t, s.Go(context.Background(), func(context.Context) error {
			running.Done()
			<-release
			return nil
		}))
	}
	running.Wait()
	st := s.Stats()
	require.Equal(t, maxRunning, st.Running)
	require.Equal(t, wantOK+wantErr+maxRunning, st.Started)
	close(release)
	require.NoError(t, s.Wait(context.Background()))
	st = s.Stats()
	require.Zero(t, st.Running)
	require.Equal(t, wantOK+maxRunning, st.Succeeded)
	assertAccounted(t, s)
}
