package timeout

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Run calls fn on the calling goroutine with a context that expires after
// d, and returns what fn returned. It starts no goroutine: fn must honour
// its context (use a Detacher for code that does not). The context's
// resources are always released before Run returns, even if fn panics.
//
// If the deadline passed and fn returned an error, Run returns an *Error
// naming the operation (see Named), the budget d and the time elapsed;
// inside fn, context.Cause(ctx) is an *Error too. If fn returned nil, Run
// returns nil even when the deadline has passed: the work completed.
//
// An earlier deadline or a cancellation of ctx wins over d and is reported
// as ctx's: the returned error wraps context.Cause(ctx), so an enclosing
// Run's *Error names the enclosing operation. If ctx is already done, fn is
// not called. A nil ctx or fn, or a d that is not positive, is rejected
// with an error wrapping ErrInvalid.
func Run(ctx context.Context, d time.Duration, fn func(context.Context) error, opts ...Option) error {
	if fn == nil {
		return invalid("timeout.Run: nil fn")
	}
	tctx, cancel, cause, err := begin(ctx, d, opts, "timeout.Run")
	if err != nil {
		return err
	}
	defer cancel()
	return end(tctx, cause, fn(tctx))
}

// Do is Run for a function that returns a value as well as an error. It
// returns fn's value as fn returned it, together with the error Run would
// return; if fn is not called the value is the zero T.
func Do[T any](ctx context.Context, d time.Duration, fn func(context.Context) (T, error), opts ...Option) (T, error) {
	var v T
	if fn == nil {
		return v, invalid("timeout.Do: nil fn")
	}
	tctx, cancel, cause, err := begin(ctx, d, opts, "timeout.Do")
	if err != nil {
		return v, err
	}
	defer cancel()
	v, err = fn(tctx)
	return v, end(tctx, cause, err)
}

// begin validates the arguments and derives the call's context.
func begin(ctx context.Context, d time.Duration, opts []Option, who string) (context.Context, context.CancelFunc, *Error, error) {
	if ctx == nil {
		return nil, nil, nil, nilContext(who)
	}
	if d <= 0 {
		return nil, nil, nil, invalid("%s: duration %v is not positive", who, d)
	}
	if ctx.Err() != nil {
		return nil, nil, nil, ctxError(ctx)
	}
	cause := causeFor(opName(opts), d)
	tctx, cancel := context.WithTimeoutCause(ctx, d, cause)
	return tctx, cancel, cause, nil
}

// causes holds recently used causes. context.WithTimeoutCause needs its
// cause before anyone knows whether the deadline will hit, so a fresh
// *Error per call would cost an allocation on every call that finishes in
// time. Calls usually repeat the same operation with the same timeout, so
// a small direct-mapped table of immutable causes makes that allocation
// rare. A collision only costs the allocation it would have cost anyway.
// The identity test in end stays sound: a call can only meet its own
// cause pointer in a parent of the same name and budget, whose expiry it
// would report identically.
var causes [64]atomic.Pointer[Error]

func causeFor(op string, d time.Duration) *Error {
	h := uint64(d) ^ uint64(len(op))<<32
	if n := len(op); n > 0 {
		h ^= uint64(op[0])<<40 ^ uint64(op[n-1])<<48
	}
	slot := &causes[(h*0x9E3779B97F4A7C15)>>58]
	if e := slot.Load(); e != nil && e.Budget == d && e.Op == op {
		return e
	}
	e := &Error{Op: op, Budget: d, Elapsed: d}
	slot.Store(e)
	return e
}

// end turns fn's result into the call's result. The success path reads no
// clock and allocates nothing: the time elapsed is only measured once we
// know the deadline hit.
func end(tctx context.Context, cause *Error, err error) error {
	if err == nil || tctx.Err() == nil {
		return err
	}
	why := context.Cause(tctx)
	if why == error(cause) {
		return expired(tctx, cause, err)
	}
	// The parent ended the call first: its deadline, or a cancellation.
	return fromParent(tctx, why, err)
}

// expired builds the returned *Error. The start of the call is recovered
// from the deadline WithTimeoutCause computed, so Run never reads the clock
// when fn finishes in time.
func expired(tctx context.Context, cause *Error, err error) *Error {
	elapsed := cause.Budget
	if deadline, ok := tctx.Deadline(); ok {
		elapsed = max(time.Since(deadline.Add(-cause.Budget)), cause.Budget)
	}
	if err == context.DeadlineExceeded || redundant(err, cause) {
		err = nil
	}
	return &Error{Op: cause.Op, Budget: cause.Budget, Elapsed: elapsed, Err: err, cause: cause}
}

// redundant reports whether err says no more than cause: it is cause, or
// the copy of it that a nested call returned (see own).
func redundant(err error, cause *Error) bool {
	e, ok := err.(*Error)
	return ok && (e == cause || e.cause == cause && e.Err == nil)
}

// fromParent attributes err to the parent's cause why, without wrapping
// twice what fn already wrapped.
func fromParent(ctx context.Context, why, err error) error {
	switch {
	case errors.Is(err, why):
		return err
	case err == ctx.Err():
		return causeError(ctx, why)
	default:
		return fmt.Errorf("%w: %w", err, own(ctx, why))
	}
}

// ctxError is the error for a context that is done: its cause, made to
// match ctx.Err() with errors.Is when the cause does not already.
func ctxError(ctx context.Context) error {
	return causeError(ctx, context.Cause(ctx))
}

func causeError(ctx context.Context, why error) error {
	ctxErr := ctx.Err()
	why = own(ctx, why)
	if why == nil || errors.Is(why, ctxErr) {
		if why == nil {
			return ctxErr
		}
		return why
	}
	return fmt.Errorf("%w: %w", ctxErr, why)
}

// own returns a copy of why if it is an *Error, and why otherwise. A cause
// from causeFor is shared by every call with the same name and budget, so
// handing it out as a call's result would let one caller's edit of its
// *Error change what every later call reports. Only failing calls pay for
// the copy, which also measures Elapsed: the deadline that ended ctx is
// the cause's, so its start is the deadline minus its budget.
func own(ctx context.Context, why error) error {
	e, ok := why.(*Error)
	if !ok {
		return why
	}
	c := *e
	c.cause = e
	// A deadline not yet passed did not end ctx: the cause was given to a
	// cancellation, and its own Elapsed is all we know.
	if deadline, ok := ctx.Deadline(); ok {
		if late := time.Since(deadline); late >= 0 {
			c.Elapsed = max(c.Budget+late, c.Elapsed)
		}
	}
	return &c
}
