package spawn_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/spawn"
)

// The tests below reproduce the documented behaviour of errgroup.Group and
// conc's ErrorPool/ContextPool against spawn.Group.

// errgroup: "Wait ... returns the first non-nil error (if any) from them."
func TestGroupReturnsFirstError(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(4))
	errFirst, errLater := errors.New("first"), errors.New("later")
	g, ctx := spawn.NewGroup(context.Background(), s, spawn.WithCancelOnError())
	for range 3 {
		require.NoError(t, g.Go(func(context.Context) error {
			<-ctx.Done() // ends only after the first error canceled the group
			return errLater
		}))
	}
	require.NoError(t, g.Go(func(context.Context) error { return errFirst }))
	err := g.Wait()
	require.ErrorIs(t, err, errFirst)
	require.NotErrorIs(t, err, errLater)
	assertAccounted(t, s)
}

// errgroup.WithContext: "The derived Context is canceled the first time a
// function passed to Go returns a non-nil error or the first time Wait
// returns, whichever occurs first."
func TestGroupCancelOnError(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2))
	boom := errors.New("boom")
	g, ctx := spawn.NewGroup(context.Background(), s, spawn.WithCancelOnError())
	sawCancel := make(chan error, 1)
	require.NoError(t, g.Go(func(ctx context.Context) error {
		<-ctx.Done()
		sawCancel <- context.Cause(ctx)
		return ctx.Err()
	}))
	require.NoError(t, g.Go(func(context.Context) error { return boom }))
	require.ErrorIs(t, <-sawCancel, boom, "the task context's cause is the first error")
	require.ErrorIs(t, g.Wait(), boom)
	require.ErrorIs(t, context.Cause(ctx), boom)
	// Go after the group is canceled is refused and says why.
	err := g.Go(nop)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, boom)
}

func TestGroupWithoutCancelOnErrorKeepsRunning(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2))
	g, ctx := spawn.NewGroup(context.Background(), s)
	require.NoError(t, g.Go(func(context.Context) error { return errors.New("x") }))
	release := make(chan struct{})
	var ctxErrAtEnd atomic.Value
	require.NoError(t, g.Go(func(ctx context.Context) error {
		<-release
		ctxErrAtEnd.Store(fmt.Sprint(ctx.Err()))
		return nil
	}))
	require.Eventually(t, func() bool { return s.Stats().Failed == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, ctx.Err(), "no WithCancelOnError: an error does not cancel")
	close(release)
	require.Error(t, g.Wait())
	assert.Equal(t, "<nil>", ctxErrAtEnd.Load())
	require.ErrorIs(t, ctx.Err(), context.Canceled, "Wait cancels the group context")
}

// conc ErrorPool.Wait "returns all errors"; here with WithAllErrors.
func TestGroupAllErrors(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(3))
	g, _ := spawn.NewGroup(context.Background(), s, spawn.WithAllErrors())
	errs := []error{errors.New("a"), errors.New("b"), errors.New("c")}
	for _, e := range errs {
		require.NoError(t, g.Go(func(context.Context) error { return e }))
	}
	require.NoError(t, g.Go(nop))
	err := g.Wait()
	for _, e := range errs {
		require.ErrorIs(t, err, e)
	}
	var j interface{ Unwrap() []error }
	require.ErrorAs(t, err, &j)
	require.Len(t, j.Unwrap(), 3)
}

// errgroup's Wait waits for the group's own goroutines only; on a spawner
// shared with other traffic so does Group.Wait.
func TestGroupWaitsOnlyForItsOwnTasks(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(4))
	block, started := make(chan struct{}), make(chan struct{})
	defer close(block)
	require.NoError(t, s.Go(context.Background(), func(context.Context) error { close(started); <-block; return nil }))
	<-started // admitted is not running yet: Running counts it once it has started
	g, _ := spawn.NewGroup(context.Background(), s)
	var n atomic.Int64
	for range 10 {
		require.NoError(t, g.Go(func(context.Context) error { n.Add(1); return nil }))
	}
	require.NoError(t, g.Wait())
	require.Equal(t, int64(10), n.Load())
	require.Equal(t, 1, s.Stats().Running, "the unrelated task still runs")
}

// conc: "a panic in a task is caught and propagated to the caller of Wait".
func TestGroupPanicIsReturned(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2))
	g, _ := spawn.NewGroup(context.Background(), s)
	require.NoError(t, g.Go(func(context.Context) error { panic("boom") }))
	require.NoError(t, g.Go(nop))
	err := g.Wait()
	require.ErrorIs(t, err, spawn.ErrPanic)
	var pe *spawn.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "boom", pe.Value)
	assert.Contains(t, string(pe.Stack), "TestGroupPanicIsReturned")
	require.NoError(t, s.Wait(context.Background()))
	assert.Equal(t, int64(1), s.Stats().Panicked)
	assertAccounted(t, s)
}

func TestGroupGoexitIsReturned(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1))
	g, _ := spawn.NewGroup(context.Background(), s)
	require.NoError(t, g.Go(func(context.Context) error { runtime.Goexit(); return nil }))
	require.NoError(t, g.Go(nop))
	err := g.Wait()
	require.ErrorIs(t, err, spawn.ErrPanic)
	require.ErrorIs(t, err, spawn.ErrGoexit)
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}

type valueKey struct{}

func TestGroupTaskContextDerivesFromGroupContext(t *testing.T) {
	s := newSpawner(t)
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), valueKey{}, "req-42"))
	g, _ := spawn.NewGroup(parent, s)
	got := make(chan any, 1)
	stop := errors.New("client went away")
	require.NoError(t, g.Go(func(ctx context.Context) error {
		got <- ctx.Value(valueKey{})
		<-ctx.Done()
		return context.Cause(ctx)
	}))
	require.Equal(t, "req-42", <-got)
	cancel(stop)
	require.ErrorIs(t, g.Wait(), stop, "the parent's cancellation reaches the task")
}

// errgroup.SetLimit / conc WithMaxGoroutines: here the spawner's cap.
func TestGroupRunsUnderSpawnerCap(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2), spawn.WithQueue(4))
	g, _ := spawn.NewGroup(context.Background(), s)
	var running, peak atomic.Int64
	for range 50 {
		require.NoError(t, g.Go(func(context.Context) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			runtime.Gosched()
			running.Add(-1)
			return nil
		}))
	}
	require.NoError(t, g.Wait())
	require.LessOrEqual(t, peak.Load(), int64(2))
	assertAccounted(t, s)
}

func TestGroupTryGoSaturated(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
	g, _ := spawn.NewGroup(context.Background(), s)
	release := make(chan struct{})
	require.NoError(t, g.TryGo(func(context.Context) error { <-release; return nil }))
	require.ErrorIs(t, g.TryGo(nop), spawn.ErrSaturated)
	close(release)
	require.NoError(t, g.Wait())
}

func TestGroupAdmissionBoundedByGroupContext(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
	ctx, cancel := context.WithCancel(context.Background())
	g, _ := spawn.NewGroup(ctx, s)
	release := make(chan struct{})
	require.NoError(t, g.Go(func(context.Context) error { <-release; return nil }))
	errc := make(chan error, 1)
	go func() { errc <- g.Go(nop) }()
	require.Eventually(t, func() bool { return s.Stats().Waiting == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	close(release)
	require.NoError(t, g.Wait())
	assertAccounted(t, s)
}

// nest builds a tree of groups depth levels deep, fan wide, and returns the
// number of leaves run.
func nest(ctx context.Context, s *spawn.Spawner, depth, fan int, leaves *atomic.Int64) error {
	if depth == 0 {
		leaves.Add(1)
		return nil
	}
	g, gctx := spawn.NewGroup(ctx, s)
	for range fan {
		if err := g.Go(func(ctx context.Context) error { return nest(ctx, s, depth-1, fan, leaves) }); err != nil {
			return err
		}
	}
	_ = gctx
	return g.Wait()
}

func TestNestedGroupsFiveDeepInFullSpawner(t *testing.T) {
	for _, queue := range []int{0, 10, spawn.DefaultQueue} {
		t.Run(fmt.Sprintf("queue=%d", queue), func(t *testing.T) {
			s := newSpawner(t, spawn.WithMaxConcurrent(2), spawn.WithQueue(queue))
			var leaves atomic.Int64
			done := make(chan error, 1)
			go func() { done <- nest(context.Background(), s, 5, 3, &leaves) }()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Fatal("nested groups deadlocked")
			}
			require.Equal(t, int64(243), leaves.Load())
			require.NoError(t, s.Wait(context.Background()))
			assertAccounted(t, s)
			assert.Equal(t, s.Stats().Submitted, s.Stats().Succeeded)
		})
	}
}

// Several top-level groups, each fanning out nested groups, on one spawner
// whose workers are all taken by waiting parents.
func TestNestedGroupsConcurrentParents(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2), spawn.WithQueue(10))
	var leaves atomic.Int64
	top, _ := spawn.NewGroup(context.Background(), s)
	for range 4 {
		require.NoError(t, top.Go(func(ctx context.Context) error { return nest(ctx, s, 4, 2, &leaves) }))
	}
	done := make(chan error, 1)
	go func() { done <- top.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("nested groups deadlocked")
	}
	require.Equal(t, int64(4*16), leaves.Load())
}

func TestHandleWaitFromTaskRunsQueuedChild(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2), spawn.WithQueue(10))
	parents := make([]*spawn.Handle[int], 2)
	for i := range parents {
		h, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (int, error) {
			child, err := spawn.Submit(ctx, s, func(context.Context) (int, error) { return 21, nil })
			if err != nil {
				return 0, err
			}
			v, err := child.Wait(ctx)
			return 2 * v, err
		})
		require.NoError(t, err)
		parents[i] = h
	}
	for _, h := range parents {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := h.Wait(ctx)
		cancel()
		require.NoError(t, err, "a task waiting on its queued child must not deadlock")
		require.Equal(t, 42, v)
	}
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}

func TestGroupNilInputs(t *testing.T) {
	s := newSpawner(t)
	//lint:ignore SA1012 a nil ctx is what is tested
	g, ctx := spawn.NewGroup(nil, s) //nolint:staticcheck
	require.ErrorIs(t, g.Go(nop), spawn.ErrNilContext)
	require.ErrorIs(t, g.Wait(), spawn.ErrNilContext)
	require.ErrorIs(t, context.Cause(ctx), spawn.ErrNilContext)

	g, _ = spawn.NewGroup(context.Background(), nil)
	require.Error(t, g.Go(nop))
	require.Error(t, g.TryGo(nop))
	require.Error(t, g.Wait())

	var nilGroup *spawn.Group
	require.Error(t, nilGroup.Go(nop))
	require.Error(t, nilGroup.Wait())
	var zero spawn.Group
	require.Error(t, zero.Go(nop))
	require.Error(t, zero.TryGo(nop))
	require.Error(t, zero.Wait())

	g, _ = spawn.NewGroup(context.Background(), s)
	require.Error(t, g.Go(nil))
	require.NoError(t, g.Wait())
}

func TestGroupCanceledByClose(t *testing.T) {
	s, err := spawn.New(spawn.WithMaxConcurrent(1), spawn.WithQueue(4))
	require.NoError(t, err)
	g, _ := spawn.NewGroup(context.Background(), s)
	started := make(chan struct{})
	require.NoError(t, g.Go(func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return context.Cause(ctx)
	}))
	require.NoError(t, g.Go(nop)) // queued: dropped by Close
	<-started
	require.NoError(t, s.Close())
	err = g.Wait()
	require.ErrorIs(t, err, spawn.ErrShutdown)
	require.NoError(t, s.Shutdown(context.Background()))
	assertAccounted(t, s)
}

func TestGroupStress(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(3), spawn.WithQueue(8))
	boom := errors.New("boom")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 20 {
				g, _ := spawn.NewGroup(context.Background(), s, spawn.WithAllErrors())
				var want int
				for k := range 10 {
					err := g.Go(func(ctx context.Context) error {
						switch (i + round + k) % 5 {
						case 0:
							return boom
						case 1:
							panic("stress")
						case 2:
							return nest(ctx, s, 2, 2, new(atomic.Int64))
						}
						return nil
					})
					if !assert.NoError(t, err) {
						return
					}
					if (i+round+k)%5 < 2 {
						want++
					}
				}
				err := g.Wait()
				var j interface{ Unwrap() []error }
				if want == 0 {
					assert.NoError(t, err)
				} else if assert.ErrorAs(t, err, &j) {
					assert.Len(t, j.Unwrap(), want)
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}

// A group task that starts a plain Go task with its own context does not
// make that task part of the group.
func TestGoFromGroupTaskIsNotAGroupTask(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2))
	ctx := context.WithValue(context.Background(), valueKey{}, "v")
	g, _ := spawn.NewGroup(ctx, s)
	release := make(chan struct{})
	childDone := make(chan any, 1)
	require.NoError(t, g.Go(func(ctx context.Context) error {
		return s.Go(ctx, func(ctx context.Context) error {
			<-release
			childDone <- ctx.Value(valueKey{})
			return errors.New("child error, not the group's")
		})
	}))
	require.NoError(t, g.Wait(), "Wait does not wait for, nor report, the plain child")
	close(release)
	require.Equal(t, "v", <-childDone)
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}

func TestGroupStats(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
	g, _ := spawn.NewGroup(context.Background(), s)
	release := make(chan struct{})
	require.NoError(t, g.Go(func(context.Context) error { <-release; return errors.New("boom") }))
	require.ErrorIs(t, g.TryGo(nop), spawn.ErrSaturated)
	require.Equal(t, spawn.GroupStats{Admitted: 1, Rejected: 1, Pending: 1}, g.Stats())
	close(release)
	require.Error(t, g.Wait())
	require.Equal(t, spawn.GroupStats{Admitted: 1, Rejected: 1, Failed: 1}, g.Stats())
	var zero *spawn.Group
	require.Equal(t, spawn.GroupStats{}, zero.Stats())
}
