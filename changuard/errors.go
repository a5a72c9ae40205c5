package changuard

import (
	"errors"
	"github.com/garrison-go/garrison/internal/ctxerr"
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

	// ErrStopped is returned by Call and Post once Owner.Shutdown or
	// Owner.Close has begun, and by a Call whose function was discarded
	// by Close before it ran.
	ErrStopped = errors.New("changuard: owner stopped")

	// ErrRunning is returned by Owner.Final while the owner goroutine has
	// not exited yet.
	ErrRunning = errors.New("changuard: owner still running")

	// ErrInvalidCapacity is wrapped by the error NewChan and NewOwner
	// return for a capacity or mailbox size out of bounds; the message
	// says which bound.
	ErrInvalidCapacity = errors.New("changuard: invalid capacity")

	// ErrNilContext is returned (wrapped) by every method given a nil
	// context: a caller's bug reported as an error, never a panic. It is
	// the same value in every garrison package.
	ErrNilContext = ctxerr.ErrNilContext

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
