package timeout

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Budget returns the time left before ctx's deadline, and whether ctx has
// a deadline at all. The time left is never negative: it is 0 once the
// deadline has passed. Budget does not look at whether ctx was cancelled.
// A nil ctx has no deadline.
func Budget(ctx context.Context) (remaining time.Duration, ok bool) {
	if ctx == nil {
		return 0, false
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return max(time.Until(deadline), 0), true
}

// Sub derives a context for one step of a larger operation: it gets
// fraction of the time left before ctx's deadline, but at least min, so
// that one slow step or retry cannot eat the whole budget and later steps
// still get their share. Calling Sub again for the next attempt splits
// what is left then, so retries shrink with the budget instead of each
// taking a fixed timeout that may outlive the caller.
//
// Sub returns an error wrapping ErrBudgetExhausted if less than min is
// left (or nothing is, when min is 0), an error wrapping ErrNoDeadline if
// ctx has no deadline, and the context's cause if ctx is already done;
// the returned context and cancel are nil then. fraction must be in
// (0, 1] and min must not be negative, or the error wraps ErrInvalid.
//
// When the step's share runs out, context.Cause of the returned context
// is an *Error naming the step (see Named) and its share as Budget. The
// caller must call cancel once the step is over.
func Sub(ctx context.Context, fraction float64, min time.Duration, opts ...Option) (context.Context, context.CancelFunc, error) {
	if ctx == nil {
		return nil, nil, nilContext("timeout.Sub")
	}
	// The negated comparison also rejects NaN.
	if !(fraction > 0 && fraction <= 1) {
		return nil, nil, invalid("timeout.Sub: fraction %v is outside (0, 1]", fraction)
	}
	if min < 0 {
		return nil, nil, invalid("timeout.Sub: min %v is negative", min)
	}
	if ctx.Err() != nil {
		return nil, nil, ctxError(ctx)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil, nil, fmt.Errorf("%w: timeout.Sub needs a deadline to split", ErrNoDeadline)
	}
	now := time.Now()
	remaining := deadline.Sub(now)
	if remaining <= 0 || remaining < min {
		return nil, nil, fmt.Errorf("%w: %v left, step needs at least %v", ErrBudgetExhausted, max(remaining, 0), min)
	}
	// float64 rounds a remaining time near math.MaxInt64 up to 2^63, and
	// converting that back overflows: keep the whole budget then.
	share := remaining
	if f := float64(remaining) * fraction; f < float64(remaining) {
		share = time.Duration(f)
	}
	share = max(share, min, 1)
	cause := &Error{Op: opName(opts), Budget: share, Elapsed: share}
	stepDeadline := now.Add(share)
	if stepDeadline.After(deadline) {
		stepDeadline = deadline
	}
	sctx, cancel := withStepDeadline(ctx, stepDeadline, cause)
	return sctx, cancel, nil
}

// withStepDeadline derives a context that ends at stepDeadline, never
// later than ctx's own deadline, with cause, or when ctx is cancelled.
//
// context.WithDeadlineCause would not do: given a deadline at or near the
// parent's, the parent's own timer may fire first and end the child with
// the parent's cause, losing the step's. So the step's context is not
// derived from ctx's deadline at all (WithoutCancel keeps ctx's values
// only), and ctx's end is passed on by AfterFunc, except an end by a
// deadline: that deadline is no earlier than stepDeadline, which has then
// come too, and the step's own timer reports the step's cause.
func withStepDeadline(ctx context.Context, stepDeadline time.Time, cause *Error) (context.Context, context.CancelFunc) {
	cctx, cancelCause := context.WithCancelCause(context.WithoutCancel(ctx))
	sctx, cancelTimer := context.WithDeadlineCause(cctx, stepDeadline, cause)
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && !time.Now().Before(stepDeadline) {
			return
		}
		cancelCause(context.Cause(ctx))
	})
	return sctx, func() {
		stop()
		cancelTimer()
		cancelCause(nil)
	}
}
