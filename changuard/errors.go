package changuard

import (
	"context"
	"errors"
	"fmt"

	"github.com/garrison-go/garrison/internal/panics"
)

var (
	// ErrClosed is returned by Recv once a Chan is closed and drained, and is
	// matched (errors.Is) by every *ClosedError.
	ErrClosed = errors.New("changuard: chan closed")

	// ErrFull is returned when a value or job is refused because a bounded
	// buffer is full: TrySend on a full Chan, Send under the Reject policy,
	// and Owner.Post on a full mailbox.
	ErrFull = errors.New("changuard: buffer full")

	// ErrStopped is returned by Call and Post once Owner.Stop has begun.
	ErrStopped = errors.New("changuard: owner stopped")

	// ErrPanic is matched (errors.Is) by every *PanicError. It is the
	// same value as spawn.ErrPanic and timeout.ErrPanic.
	ErrPanic = panics.ErrPanic
)

// ClosedError is returned by Send and TrySend when the Chan was closed
// before the value could be delivered. It hands the value back to the
// sender, so a value is never lost silently. errors.Is(err, ErrClosed)
// reports true for it.
type ClosedError[T any] struct {
	// Value is the value that was not delivered.
	Value T
}

// Error says that the send failed because the Chan is closed; the value
// is in e.Value, not in the message.
func (e *ClosedError[T]) Error() string { return "changuard: send on closed chan (value handed back)" }

// Is reports whether target is ErrClosed.
func (e *ClosedError[T]) Is(target error) bool { return target == ErrClosed }

// PanicError carries a panic recovered from a callback run by an Owner,
// with the stack of the goroutine that panicked. errors.Is(err, ErrPanic)
// reports true for it; if the panic value is an error, errors.Is and
// errors.As also see through to it. A callback that calls runtime.Goexit
// is reported the same way, with the value panics' ErrGoexit. It is one
// type with spawn.PanicError and timeout.PanicError: garrison has one panic
// policy, documented on spawn.PanicError.
type PanicError = panics.Error

func newPanicError(op string, v any) *PanicError { return panics.New(op, v) }

// ctxError wraps the reason ctx ended, naming the operation. Both ctx.Err()
// and context.Cause(ctx) stay visible to errors.Is, so a caller can test for
// context.DeadlineExceeded even when a custom cause was set.
func ctxError(op string, ctx context.Context) error {
	err := ctx.Err()
	cause := context.Cause(ctx)
	if cause == nil || cause == err || errors.Is(cause, err) {
		return fmt.Errorf("changuard: %s: %w", op, cause)
	}
	return fmt.Errorf("changuard: %s: %w: %w", op, err, cause)
}
