// Package ctxerr holds garrison's one rule for contexts, shared by every
// exported package so that they cannot drift apart:
//
//   - A nil context is a caller's bug reported as an error that matches
//     [ErrNilContext], never a nil-pointer panic inside the library.
//   - A context that is already done when a blocking call begins fails that
//     call at once, with no side effect, even if the resource is free: the
//     context becoming done happened before the call, so the call prefers to
//     fail (the rule golang.org/x/sync/semaphore follows).
//   - The error of a call that ended because its context ended matches both
//     ctx.Err() (context.Canceled or context.DeadlineExceeded) and
//     context.Cause(ctx) with errors.Is.
package ctxerr

import (
	"context"
	"errors"
	"fmt"
)

// ErrNilContext is the error for a nil context. Exported packages re-export
// this one value, so errors.Is matches it whichever package reported it.
var ErrNilContext = errors.New("nil context")

// Err returns the error for a done ctx: ctx.Err(), wrapping
// context.Cause(ctx) as well when the cause says more. It returns nil while
// ctx is not done.
func Err(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	switch {
	case cause == nil || cause == err:
		return err
	case errors.Is(cause, err):
		// The cause already matches err (for example a timeout error that
		// is also context.DeadlineExceeded): it alone carries both.
		return cause
	default:
		return fmt.Errorf("%w: %w", err, cause)
	}
}

// Check applies the rule at the start of a blocking call: [ErrNilContext]
// for a nil ctx, [Err] for a ctx already done, nil otherwise.
func Check(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	return Err(ctx)
}
