package spawn_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/garrison-go/garrison/internal/panics"
	"github.com/garrison-go/garrison/spawn"
)

// Every way of submitting with a ctx hands the task ctx's values, not its
// cancellation.
func TestTaskContextCarriesValuesNotCancellation(t *testing.T) {
	for _, timeout := range []bool{false, true} {
		opts := []spawn.Option{spawn.WithMaxConcurrent(4)}
		if timeout {
			opts = append(opts, spawn.WithTaskTimeout(time.Hour))
		}
		s := newSpawner(t, opts...)
		submits := map[string]func(ctx context.Context, task func(context.Context) error) error{
			"Go": s.Go,
			"GoKey": func(ctx context.Context, task func(context.Context) error) error {
				return s.GoKey(ctx, "tenant", task)
			},
			"Submit": func(ctx context.Context, task func(context.Context) error) error {
				_, err := spawn.Submit(ctx, s, func(ctx context.Context) (int, error) { return 0, task(ctx) })
				return err
			},
		}
		for name, submit := range submits {
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(context.WithValue(context.Background(), valueKey{}, "req-7"))
				type seen struct {
					v          any
					err, cause error
				}
				got := make(chan seen, 1)
				started, canceled := make(chan struct{}), make(chan struct{})
				require.NoError(t, submit(ctx, func(tctx context.Context) error {
					v := tctx.Value(valueKey{})
					close(started)
					<-canceled
					got <- seen{v, tctx.Err(), context.Cause(tctx)}
					return nil
				}))
				// Once running, the task no longer depends on ctx (a task
				// still queued when its submitter leaves is dropped).
				<-started
				cancel(errors.New("submitter left"))
				close(canceled)
				r := <-got
				assert.Equal(t, "req-7", r.v)
				assert.NoError(t, r.err, "the submitter's cancellation does not reach the task")
				assert.NoError(t, r.cause, "nor does its cause")
			})
		}
		require.NoError(t, s.Wait(context.Background()))
		assertAccounted(t, s)
	}
}

// A child submitted by a task with the task's context sees the values of
// the parent's submitter.
func TestValuesReachGrandchildren(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2))
	ctx := context.WithValue(context.Background(), valueKey{}, "trace-1")
	got := make(chan any, 1)
	require.NoError(t, s.Go(ctx, func(ctx context.Context) error {
		return s.Go(ctx, func(ctx context.Context) error {
			got <- ctx.Value(valueKey{})
			return nil
		})
	}))
	assert.Equal(t, "trace-1", <-got)
}

// sliceCtx is a context of an incomparable type: == on two interfaces
// holding it panics.
type sliceCtx struct {
	context.Context
	tags []string
}

func (c sliceCtx) Value(key any) any {
	if key == (tagKey{}) {
		return c.tags[0]
	}
	return c.Context.Value(key)
}

type tagKey struct{}

// The spawner reuses the values context of the last submit context while
// tasks keep coming from it, which compares contexts: a context of an
// incomparable type must neither panic nor be mistaken for another.
func TestIncomparableSubmitContext(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(2))
	ptr := context.WithValue(context.Background(), tagKey{}, "pointer")
	got := make(chan any, 6)
	task := func(ctx context.Context) error { got <- ctx.Value(tagKey{}); return nil }
	for _, ctx := range []context.Context{
		sliceCtx{context.Background(), []string{"a"}},
		sliceCtx{context.Background(), []string{"b"}},
		ptr,
		sliceCtx{context.Background(), []string{"c"}},
		ptr,
		sliceCtx{context.Background(), []string{"d"}},
	} {
		require.NoError(t, s.Go(ctx, task))
		want := ctx.Value(tagKey{})
		require.Equal(t, want, <-got)
	}
	require.NoError(t, s.Wait(context.Background()))
}

func TestTryVariantsCarryNoValues(t *testing.T) {
	s := newSpawner(t, spawn.WithPerKey(2, 4))
	got := make(chan any, 3)
	require.NoError(t, s.TryGo(func(ctx context.Context) error { got <- ctx.Value(valueKey{}); return nil }))
	require.NoError(t, s.TryGoKey("k", func(ctx context.Context) error { got <- ctx.Value(valueKey{}); return nil }))
	h, err := spawn.TrySubmit(s, func(ctx context.Context) (any, error) { return ctx.Value(valueKey{}), nil })
	require.NoError(t, err)
	v, err := h.Wait(context.Background())
	require.NoError(t, err)
	assert.Nil(t, v)
	assert.Nil(t, <-got)
	assert.Nil(t, <-got)
}

func TestTryGoKeyLimits(t *testing.T) {
	s := newSpawner(t, spawn.WithPerKey(1, 4), spawn.WithMaxConcurrent(4))
	release := make(chan struct{})
	require.NoError(t, s.TryGoKey("a", func(context.Context) error { <-release; return nil }))
	require.ErrorIs(t, s.TryGoKey("a", nop), spawn.ErrKeyLimit)
	require.NoError(t, s.TryGoKey("b", nop))
	close(release)
	require.NoError(t, s.Wait(context.Background()))
	assertAccounted(t, s)
}

func TestTrySubmitSaturated(t *testing.T) {
	s := newSpawner(t, spawn.WithMaxConcurrent(1), spawn.WithQueue(0))
	release := make(chan struct{})
	_, err := spawn.TrySubmit(s, func(context.Context) (int, error) { <-release; return 1, nil })
	require.NoError(t, err)
	h, err := spawn.TrySubmit(s, func(context.Context) (int, error) { return 2, nil })
	require.ErrorIs(t, err, spawn.ErrSaturated)
	require.Nil(t, h)
	close(release)
}

// A child started from a task with the task's context is never silently
// dropped because its parent returned: with a task timeout, and from a
// Submit task, as with a plain Go task.
func TestChildOfTaskRunsAfterParentReturns(t *testing.T) {
	cases := map[string][]spawn.Option{
		"plain":       {spawn.WithMaxConcurrent(1), spawn.WithQueue(4)},
		"taskTimeout": {spawn.WithMaxConcurrent(1), spawn.WithQueue(4), spawn.WithTaskTimeout(time.Hour)},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			s := newSpawner(t, opts...)
			ran := make(chan struct{}, 2)
			child := func(context.Context) error { ran <- struct{}{}; return nil }
			require.NoError(t, s.Go(context.Background(), func(ctx context.Context) error {
				return s.Go(ctx, child) // queued: the only worker is ours
			}))
			h, err := spawn.Submit(context.Background(), s, func(ctx context.Context) (int, error) {
				return 0, s.Go(ctx, child)
			})
			require.NoError(t, err)
			_, err = h.Wait(context.Background())
			require.NoError(t, err)
			<-ran
			<-ran
			require.NoError(t, s.Wait(context.Background()))
			st := s.Stats()
			assert.Zero(t, st.Canceled)
			assert.Equal(t, int64(4), st.Succeeded)
		})
	}
}

func TestNilInputsAreErrors(t *testing.T) {
	s := newSpawner(t)
	//lint:file-ignore SA1012 nil contexts are what is tested
	require.ErrorIs(t, s.Go(nil, nop), spawn.ErrNilContext)         //nolint:staticcheck
	require.ErrorIs(t, s.GoKey(nil, "k", nop), spawn.ErrNilContext) //nolint:staticcheck
	require.ErrorIs(t, s.Wait(nil), spawn.ErrNilContext)            //nolint:staticcheck
	_, err := spawn.Submit[int](nil, s, nil)                        //nolint:staticcheck
	require.ErrorIs(t, err, spawn.ErrNilContext)
	require.Error(t, s.Go(context.Background(), nil))
	require.Error(t, s.TryGo(nil))
	require.Error(t, s.TryGoKey("k", nil))
	_, err = spawn.TrySubmit[int](s, nil)
	require.Error(t, err)

	var ns *spawn.Spawner
	require.Error(t, ns.Go(context.Background(), nop))
	require.Error(t, ns.TryGo(nop))
	require.Error(t, ns.GoKey(context.Background(), "k", nop))
	require.Error(t, ns.TryGoKey("k", nop))
	require.Error(t, ns.Wait(context.Background()))
	require.Error(t, ns.Shutdown(context.Background()))
	require.Error(t, ns.Close())
	_, err = spawn.Submit(context.Background(), ns, func(context.Context) (int, error) { return 0, nil })
	require.Error(t, err)
	var nh *spawn.Handle[int]
	_, err = nh.Wait(context.Background())
	require.Error(t, err)
	require.ErrorIs(t, s.Shutdown(nil), spawn.ErrNilContext) //nolint:staticcheck
	assertAccounted(t, s)
}

func TestDoneContextFailsAtOnce(t *testing.T) {
	s := newSpawner(t)
	cause := errors.New("deadline of the request")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	err := s.Go(ctx, nop)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, cause)
	_, err = spawn.Submit(ctx, s, func(context.Context) (int, error) { return 1, nil })
	require.ErrorIs(t, err, cause)
	require.ErrorIs(t, s.Wait(ctx), cause)
	g, _ := spawn.NewGroup(ctx, s)
	require.ErrorIs(t, g.Go(nop), cause)
	require.Equal(t, int64(0), s.Stats().Started)
}

func TestCloseIsImmediate(t *testing.T) {
	s, err := spawn.New(spawn.WithMaxConcurrent(1), spawn.WithQueue(4))
	require.NoError(t, err)
	started := make(chan struct{})
	causes := make(chan error, 1)
	require.NoError(t, s.Go(context.Background(), func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil
	}))
	h, err := spawn.Submit(context.Background(), s, func(context.Context) (int, error) { return 1, nil })
	require.NoError(t, err)
	<-started
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-causes, spawn.ErrShutdown)
	_, err = h.Wait(context.Background())
	require.ErrorIs(t, err, spawn.ErrShutdown, "the queued task is dropped")
	require.ErrorIs(t, s.Go(context.Background(), nop), spawn.ErrClosed)
	require.NoError(t, s.Close(), "Close is idempotent")
	require.NoError(t, s.Shutdown(context.Background()))
	assertAccounted(t, s)
}

func TestQueueSizeIsBoundedWithReason(t *testing.T) {
	_, err := spawn.New(spawn.WithQueue(1 << 22))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "allocated up front")
	_, err = spawn.New(spawn.WithMaxConcurrent(1<<22), spawn.WithQueue(0))
	require.Error(t, err)
}

// syncBuffer is a bytes.Buffer safe for a slog handler and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestGoPanicWithoutHookIsLogged(t *testing.T) {
	var buf syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	panics.ResetLogLimit()

	s := newSpawner(t)
	require.NoError(t, s.Go(context.Background(), func(context.Context) error { panic("unowned boom") }))
	require.NoError(t, s.Wait(context.Background()))
	out := buf.String()
	assert.Contains(t, out, "unowned boom")
	assert.Contains(t, out, "stack=")
	assert.Contains(t, out, "TestGoPanicWithoutHookIsLogged")
	assert.Equal(t, int64(1), s.Stats().Panicked)

	// A flood of panics is rate limited, not logged once each.
	for range 100 {
		require.NoError(t, s.Go(context.Background(), func(context.Context) error { panic("flood") }))
	}
	require.NoError(t, s.Wait(context.Background()))
	assert.LessOrEqual(t, bytes.Count([]byte(buf.String()), []byte("flood")), panics.LogBurst+1)
}

func TestPanicErrorIsSharedAcrossPackages(t *testing.T) {
	s := newSpawner(t)
	h, err := spawn.Submit(context.Background(), s, func(context.Context) (int, error) { panic(context.DeadlineExceeded) })
	require.NoError(t, err)
	_, err = h.Wait(context.Background())
	require.ErrorIs(t, err, spawn.ErrPanic)
	require.ErrorIs(t, err, context.DeadlineExceeded, "an error panic value unwraps")
}
