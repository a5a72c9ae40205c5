package timeout

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBudget(t *testing.T) {
	left, ok := Budget(context.Background())
	assert.False(t, ok)
	assert.Zero(t, left)

	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		left, ok := Budget(ctx)
		assert.True(t, ok)
		assert.Equal(t, time.Second, left)

		time.Sleep(300 * time.Millisecond)
		left, _ = Budget(ctx)
		assert.Equal(t, 700*time.Millisecond, left)

		time.Sleep(time.Second)
		left, ok = Budget(ctx)
		assert.True(t, ok)
		assert.Zero(t, left, "never negative")
	})
}

func TestSubSplitsTheRemainingBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()

		step, stepCancel, err := Sub(ctx, 0.25, 0, Named("resize"))
		require.NoError(t, err)
		left, _ := Budget(step)
		assert.Equal(t, 250*time.Millisecond, left)
		<-step.Done()
		var te *Error
		require.ErrorAs(t, context.Cause(step), &te)
		assert.Equal(t, "resize", te.Op)
		assert.Equal(t, 250*time.Millisecond, te.Budget)
		assert.NoError(t, ctx.Err(), "the parent goes on")
		stepCancel()

		// The minimum wins over a small fraction while the budget allows.
		step, stepCancel, err = Sub(ctx, 0.01, 100*time.Millisecond)
		require.NoError(t, err)
		left, _ = Budget(step)
		assert.Equal(t, 100*time.Millisecond, left)
		stepCancel()
	})
}

// TestSubBudgetsAcrossRetries has every attempt hang until its share runs
// out: the attempts shrink with what is left and the whole operation
// stays inside the caller's deadline.
func TestSubBudgetsAcrossRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()

		var shares []time.Duration
		var err error
		for attempt := 0; ; attempt++ {
			err = func() error {
				actx, cancel, err := Sub(ctx, 0.5, 100*time.Millisecond, Named("attempt"))
				if err != nil {
					return err
				}
				defer cancel()
				left, _ := Budget(actx)
				shares = append(shares, left)
				<-actx.Done()
				return context.Cause(actx)
			}()
			if errors.Is(err, ErrBudgetExhausted) {
				break
			}
			var te *Error
			require.ErrorAs(t, err, &te)
			assert.Equal(t, "attempt", te.Op)
			require.Less(t, attempt, 10)
		}
		assert.Equal(t, []time.Duration{
			500 * time.Millisecond, 250 * time.Millisecond, 125 * time.Millisecond,
			// 125ms left: half of it is below the minimum, so the minimum.
			100 * time.Millisecond,
		}, shares)
		assert.Contains(t, err.Error(), "25ms left, step needs at least 100ms")
		assert.Equal(t, 975*time.Millisecond, time.Since(start))
		assert.NoError(t, ctx.Err(), "no attempt outlived the caller's deadline")
	})
}

func TestSubRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		for _, f := range []float64{0, -0.5, 1.0001, math.NaN(), math.Inf(1), math.Inf(-1)} {
			_, _, err := Sub(ctx, f, 0)
			assert.ErrorIs(t, err, ErrInvalid, "fraction %v", f)
		}
		_, _, err := Sub(ctx, 0.5, -time.Second)
		assert.ErrorIs(t, err, ErrInvalid)
		var nilCtx context.Context
		_, _, err = Sub(nilCtx, 0.5, 0)
		assert.ErrorIs(t, err, ErrInvalid)

		_, _, err = Sub(t.Context(), 0.5, 0)
		assert.ErrorIs(t, err, ErrNoDeadline)

		_, _, err = Sub(ctx, 1, 2*time.Second)
		assert.ErrorIs(t, err, ErrBudgetExhausted)

		sctx, scancel, err := Sub(ctx, 1, time.Second)
		require.NoError(t, err, "exactly min left is enough")
		scancel()
		assert.ErrorIs(t, sctx.Err(), context.Canceled)

		time.Sleep(2 * time.Second)
		_, _, err = Sub(ctx, 1, 0)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "a done parent reports its own error")
	})
}

// FuzzSub checks that any fraction, minimum and remaining budget give
// either a valid error or a child whose budget is within the parent's
// and at least the minimum.
func FuzzSub(f *testing.F) {
	f.Add(0.5, int64(0), int64(time.Second))
	f.Add(1.0, int64(time.Second), int64(time.Second))
	f.Add(1e-300, int64(1), int64(10))
	f.Add(math.NaN(), int64(-1), int64(0))
	f.Add(0.999999, int64(math.MaxInt64), int64(math.MaxInt64))
	f.Add(1.0, int64(0), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, fraction float64, min, remaining int64) {
		synctest.Test(t, func(t *testing.T) {
			ctx := t.Context()
			if remaining > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Duration(remaining))
				defer cancel()
			}
			sctx, cancel, err := Sub(ctx, fraction, time.Duration(min))
			if err != nil {
				assert.Nil(t, sctx)
				assert.True(t, errors.Is(err, ErrInvalid) || errors.Is(err, ErrNoDeadline) ||
					errors.Is(err, ErrBudgetExhausted), "%v", err)
				return
			}
			defer cancel()
			assert.True(t, fraction > 0 && fraction <= 1)
			left, ok := Budget(sctx)
			require.True(t, ok)
			assert.LessOrEqual(t, left, time.Duration(remaining))
			assert.GreaterOrEqual(t, left, time.Duration(min))
			assert.GreaterOrEqual(t, float64(left), fraction*float64(remaining)*(1-1e-9)-1, "the share is fraction of what is left")
			assert.Positive(t, left)
		})
	})
}

// TestSubFarDeadline checks a deadline too far away for float64 to hold
// exactly, such as context.WithTimeout(ctx, math.MaxInt64) used to mean
// "no limit": the whole remaining budget must not collapse to 1ns.
func TestSubFarDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), math.MaxInt64)
		defer cancel()
		sctx, scancel, err := Sub(ctx, 1, 0)
		require.NoError(t, err)
		defer scancel()
		left, _ := Budget(sctx)
		want, _ := Budget(ctx)
		assert.Equal(t, want, left)
	})
}

func TestBudgetNilContext(t *testing.T) {
	var nilCtx context.Context
	left, ok := Budget(nilCtx)
	assert.False(t, ok)
	assert.Zero(t, left)
}

// TestSubWholeBudgetKeepsItsCause: a step given all that is left (fraction
// 1, or a min that reaches the parent's deadline) used to inherit the
// parent's deadline, and with it the parent's cause, instead of the
// documented *Error naming the step.
func TestSubWholeBudgetKeepsItsCause(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fraction float64
		min      time.Duration
	}{
		{"fraction 1", 1, 0},
		{"min equals remaining", 0.1, time.Second},
		{"min just under remaining", 0.1, time.Second - time.Nanosecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				step, stepCancel, err := Sub(ctx, tc.fraction, tc.min, Named("whole"))
				require.NoError(t, err)
				defer stepCancel()
				d, _ := step.Deadline()
				pd, _ := ctx.Deadline()
				assert.False(t, d.After(pd), "the step never outlives its parent")
				<-step.Done()
				assert.ErrorIs(t, step.Err(), context.DeadlineExceeded)
				var te *Error
				require.ErrorAs(t, context.Cause(step), &te, "cause %v", context.Cause(step))
				assert.Equal(t, "whole", te.Op)
				<-ctx.Done()
			})
		})
	}
}

// TestSubFollowsParentCancellation: a step ends with its parent's
// cancellation and reports the parent's cause.
func TestSubFollowsParentCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base, cancelBase := context.WithTimeout(t.Context(), time.Second)
		defer cancelBase()
		ctx, cancel := context.WithCancelCause(base)
		step, stepCancel, err := Sub(ctx, 1, 0)
		require.NoError(t, err)
		defer stepCancel()
		why := errors.New("client left")
		cancel(why)
		<-step.Done()
		assert.ErrorIs(t, step.Err(), context.Canceled)
		assert.ErrorIs(t, context.Cause(step), why)
	})
}
