package timeout

import (
	"context"
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
		return nil, nil, invalid("timeout.Sub: nil context")
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
	remaining, ok := Budget(ctx)
	if !ok {
		return nil, nil, fmt.Errorf("%w: timeout.Sub needs a deadline to split", ErrNoDeadline)
	}
	if remaining <= 0 || remaining < min {
		return nil, nil, fmt.Errorf("%w: %v left, step needs at least %v", ErrBudgetExhausted, remaining, min)
	}
	// float64 rounds a remaining time near math.MaxInt64 up to 2^63, and
	// converting that back overflows: keep the whole budget then.
	share := remaining
	if f := float64(remaining) * fraction; f < float64(remaining) {
		share = time.Duration(f)
	}
	share = max(share, min, 1)
	cause := &Error{Op: opName(opts), Budget: share, Elapsed: share}
	sctx, cancel := context.WithTimeoutCause(ctx, share, cause)
	return sctx, cancel, nil
}
