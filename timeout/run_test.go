package timeout

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func waitDone(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestRunReturnsWhatFnReturns(t *testing.T) {
	require.NoError(t, Run(context.Background(), time.Hour, func(context.Context) error { return nil }))

	errBoom := errors.New("boom")
	err := Run(context.Background(), time.Hour, func(context.Context) error { return errBoom })
	assert.Same(t, errBoom, err, "an error before the deadline passes through untouched")
}

func TestRunDeadlineIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var inside error
		err := Run(t.Context(), 100*time.Millisecond, func(ctx context.Context) error {
			err := waitDone(ctx)
			inside = context.Cause(ctx)
			return err
		}, Named("db.query"))
		assert.Equal(t, 100*time.Millisecond, time.Since(start))

		var te *Error
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "db.query", te.Op)
		assert.Equal(t, 100*time.Millisecond, te.Budget)
		assert.Equal(t, 100*time.Millisecond, te.Elapsed)
		assert.NoError(t, te.Err, "a bare context error is not repeated in Err")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, ErrTimeout)
		assert.Contains(t, err.Error(), "db.query")
		assert.Contains(t, err.Error(), "100ms")

		var cause *Error
		require.ErrorAs(t, inside, &cause, "fn sees an *Error as its context's cause")
		assert.Equal(t, "db.query", cause.Op)
		assert.ErrorIs(t, inside, context.DeadlineExceeded)
	})
}

func TestRunElapsedCountsTheOverrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errSlow := errors.New("upstream reset")
		err := Run(t.Context(), 100*time.Millisecond, func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(50 * time.Millisecond)
			return errSlow
		})
		var te *Error
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "", te.Op)
		assert.Equal(t, 150*time.Millisecond, te.Elapsed)
		assert.ErrorIs(t, err, errSlow, "fn's own error is kept")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "150ms")
		assert.Contains(t, err.Error(), "upstream reset")
	})
}

func TestRunNilAfterDeadlineIsSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		err := Run(t.Context(), 10*time.Millisecond, func(ctx context.Context) error {
			time.Sleep(20 * time.Millisecond)
			return nil
		})
		assert.NoError(t, err)
	})
}

func TestRunNestedDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The parent's deadline is earlier: the inner call ends with it and
		// reports the outer operation.
		var innerErr error
		outerErr := Run(t.Context(), 50*time.Millisecond, func(ctx context.Context) error {
			innerErr = Run(ctx, time.Second, waitDone, Named("inner"))
			return innerErr
		}, Named("outer"))
		var te *Error
		require.ErrorAs(t, innerErr, &te)
		assert.Equal(t, "outer", te.Op)
		assert.Equal(t, 50*time.Millisecond, te.Budget)
		require.ErrorAs(t, outerErr, &te)
		assert.Equal(t, "outer", te.Op)

		// The inner deadline is earlier: it reports itself, and the outer
		// call succeeds if fn handles the failure.
		outerErr = Run(t.Context(), time.Second, func(ctx context.Context) error {
			innerErr = Run(ctx, 10*time.Millisecond, waitDone, Named("inner"))
			return nil
		}, Named("outer"))
		assert.NoError(t, outerErr)
		require.ErrorAs(t, innerErr, &te)
		assert.Equal(t, "inner", te.Op)
	})
}

func TestRunParentCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errShutdown := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(10*time.Millisecond, func() { cancel(errShutdown) })
		err := Run(ctx, time.Second, waitDone, Named("work"))
		assert.ErrorIs(t, err, errShutdown)
		assert.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, ErrTimeout)

		// fn wrapping the context error keeps its text and gains the cause.
		ctx, cancel = context.WithCancelCause(t.Context())
		time.AfterFunc(10*time.Millisecond, func() { cancel(errShutdown) })
		err = Run(ctx, time.Second, func(ctx context.Context) error {
			<-ctx.Done()
			return errors.Join(errors.New("read body"), ctx.Err())
		})
		assert.ErrorIs(t, err, errShutdown)
		assert.Contains(t, err.Error(), "read body")
	})
}

func TestRunParentAlreadyDone(t *testing.T) {
	errShutdown := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errShutdown)
	called := false
	fn := func(context.Context) error { called = true; return nil }
	err := Run(ctx, time.Second, fn)
	assert.ErrorIs(t, err, errShutdown)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = Do(ctx, time.Second, func(context.Context) (int, error) { called = true; return 1, nil })
	assert.ErrorIs(t, err, errShutdown)
	assert.False(t, called, "fn must not start on a done context")
}

func TestRunStartsNoGoroutineAndAlwaysCancels(t *testing.T) {
	before := runtime.NumGoroutine()
	var seen context.Context
	err := Run(context.Background(), time.Hour, func(ctx context.Context) error {
		seen = ctx
		// At most: goroutines left by earlier tests may still be exiting.
		assert.LessOrEqual(t, runtime.NumGoroutine(), before, "Run started a goroutine")
		return nil
	})
	require.NoError(t, err)
	assert.ErrorIs(t, seen.Err(), context.Canceled, "cancel must be called on return")

	func() {
		defer func() { assert.Equal(t, "boom", recover()) }()
		_ = Run(context.Background(), time.Hour, func(ctx context.Context) error {
			seen = ctx
			panic("boom")
		})
	}()
	assert.ErrorIs(t, seen.Err(), context.Canceled, "cancel must be called when fn panics")
}

func TestRunRejectsBadInput(t *testing.T) {
	called := false
	fn := func(context.Context) error { called = true; return nil }
	dfn := func(context.Context) (int, error) { called = true; return 1, nil }
	var nilCtx context.Context
	for name, err := range map[string]error{
		"zero":     Run(context.Background(), 0, fn),
		"negative": Run(context.Background(), -time.Second, fn),
		"nil fn":   Run(context.Background(), time.Second, nil),
		"nil ctx":  Run(nilCtx, time.Second, fn),
		"Do zero":  func() error { _, err := Do(context.Background(), 0, dfn); return err }(),
		"Do nil fn": func() error {
			_, err := Do[int](context.Background(), time.Second, nil)
			return err
		}(),
	} {
		assert.ErrorIs(t, err, ErrInvalid, name)
		assert.True(t, strings.HasPrefix(err.Error(), "timeout: invalid argument: timeout."), "%s: %v", name, err)
		assert.Equal(t, name == "nil ctx", errors.Is(err, ErrNilContext), name)
	}
	assert.False(t, called)
}

func TestDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v, err := Do(t.Context(), time.Second, func(context.Context) (string, error) { return "ok", nil })
		require.NoError(t, err)
		assert.Equal(t, "ok", v)

		v, err = Do(t.Context(), 10*time.Millisecond, func(ctx context.Context) (string, error) {
			return "partial", waitDone(ctx)
		}, Named("fetch"))
		assert.Equal(t, "partial", v, "fn's value is returned with the error")
		var te *Error
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "fetch", te.Op)
		assert.Equal(t, 10*time.Millisecond, te.Elapsed)
	})
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Op: "x", Budget: time.Second, Elapsed: time.Second}
	assert.Equal(t, "timeout: x exceeded its 1s budget", e.Error())
	e = &Error{Budget: time.Second, Elapsed: 2 * time.Second, Err: errors.New("eof")}
	assert.Equal(t, "timeout: operation exceeded its 1s budget (returned after 2s): eof", e.Error())
	assert.True(t, e.Timeout())
}

func TestCausesAreReusedNotShared(t *testing.T) {
	a := causeFor("db.query", time.Second)
	assert.Same(t, a, causeFor("db.query", time.Second), "same op and budget reuse the cause")
	b := causeFor("db.query", 2*time.Second)
	assert.Equal(t, 2*time.Second, b.Budget)
	c := causeFor("db.qvery", time.Second)
	assert.Equal(t, "db.qvery", c.Op)
	assert.Equal(t, "db.query", causeFor("db.query", time.Second).Op)

	synctest.Test(t, func(t *testing.T) {
		var cause error
		err := Run(t.Context(), time.Millisecond, func(ctx context.Context) error {
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}, Named("db.query"))
		assert.NotSame(t, cause, err, "the returned *Error is the call's own")
	})
}

func TestRunConcurrentOpsKeepTheirNames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				op := fmt.Sprintf("op%d", i%8)
				d := time.Duration(1+i%3) * time.Millisecond
				err := Run(t.Context(), d, func(ctx context.Context) error {
					err := waitDone(ctx)
					var te *Error
					if assert.ErrorAs(t, context.Cause(ctx), &te) {
						assert.Equal(t, op, te.Op)
						assert.Equal(t, d, te.Budget)
					}
					return err
				}, Named(op))
				var te *Error
				require.ErrorAs(t, err, &te)
				assert.Equal(t, op, te.Op)
				assert.Equal(t, d, te.Budget)
			})
		}
		wg.Wait()
	})
}

// TestParentCauseIsNotHandedOut checks that a call ended by its parent's
// deadline returns a copy of the parent's cause: causes are shared by every
// call with the same name and budget, and a caller that edits the *Error it
// got back must not change what other calls see.
func TestParentCauseIsNotHandedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget = 50 * time.Millisecond
		shared := causeFor("outer", budget)
		var results []error
		var parentCause error
		_ = Run(t.Context(), budget, func(ctx context.Context) error {
			d, err := NewDetacher(1)
			require.NoError(t, err)
			release := make(chan struct{})
			defer close(release)
			results = append(results,
				Run(ctx, time.Second, waitDone, Named("inner")),
				Run(ctx, time.Second, func(ctx context.Context) error {
					<-ctx.Done()
					return errors.Join(errors.New("read body"), ctx.Err())
				}),
				d.Run(ctx, time.Second, func(context.Context) error { <-release; return nil }),
				Run(ctx, time.Second, waitDone), // ctx is already done
			)
			parentCause = context.Cause(ctx)
			return ctx.Err()
		}, Named("outer"))
		for i, err := range results {
			assert.ErrorIs(t, err, parentCause, "result %d wraps the parent's cause", i)
			var te *Error
			require.ErrorAs(t, err, &te, "result %d", i)
			assert.Equal(t, "outer", te.Op, "result %d is reported as the parent's", i)
			assert.NotSame(t, shared, te, "result %d is the shared cause", i)
			te.Err = errors.New("scribbled")
		}
		var cause error
		_ = Run(t.Context(), budget, func(ctx context.Context) error {
			err := waitDone(ctx)
			cause = context.Cause(ctx)
			return err
		}, Named("outer"))
		assert.NotContains(t, cause.Error(), "scribbled")
	})
}

// TestParentDeadlineReportsParentElapsed checks what a call ended by its
// parent's deadline returns, and what the parent then returns for it.
func TestParentDeadlineReportsParentElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inner error
		outer := Run(t.Context(), 50*time.Millisecond, func(ctx context.Context) error {
			inner = Run(ctx, time.Second, func(ctx context.Context) error {
				err := waitDone(ctx)
				time.Sleep(30 * time.Millisecond) // slow to notice
				return err
			}, Named("inner"))
			return inner
		}, Named("outer"))

		var te *Error
		require.ErrorAs(t, inner, &te)
		assert.Equal(t, "outer", te.Op)
		assert.Equal(t, 50*time.Millisecond, te.Budget)
		assert.Equal(t, 80*time.Millisecond, te.Elapsed, "the parent's time, from its start")

		require.ErrorAs(t, outer, &te)
		assert.Equal(t, 80*time.Millisecond, te.Elapsed)
		assert.Equal(t, "timeout: outer exceeded its 50ms budget (returned after 80ms)", outer.Error(),
			"the parent's own expiry is not repeated")
	})
}
