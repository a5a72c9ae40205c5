package timeout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/garrison-go/garrison/internal/ctxerr"
)

var (
	// ErrTimeout matches every *Error: errors.Is(err, ErrTimeout) reports
	// whether a limit set by this package ran out.
	ErrTimeout = errors.New("timeout: deadline exceeded")

	// ErrInvalid is wrapped by every rejection of bad input (a duration
	// that is not positive, a fraction outside (0, 1], a nil function or
	// context); the message says which argument was wrong.
	ErrInvalid = errors.New("timeout: invalid argument")

	// ErrTooManyRunning is returned by Detacher.Run when every slot is
	// held by a call whose fn has not returned yet, abandoned or not; fn is
	// not started.
	ErrTooManyRunning = errors.New("timeout: too many detached calls running")

	// ErrClosed is returned by Detacher.Run once the Detacher's Shutdown
	// or Close has begun; fn is not started.
	ErrClosed = errors.New("timeout: detacher closed")

	// ErrNilContext is wrapped, together with ErrInvalid, by the error for
	// a nil context: a caller's bug reported as an error, never a panic.
	// It is the same value in every garrison package.
	ErrNilContext = ctxerr.ErrNilContext

	// ErrBudgetExhausted is returned by Sub when less than the requested
	// minimum is left before the parent's deadline.
	ErrBudgetExhausted = errors.New("timeout: budget exhausted")

	// ErrNoDeadline is returned by Sub when the parent has no deadline to
	// split.
	ErrNoDeadline = errors.New("timeout: context has no deadline")

	// ErrStalled is wrapped by the cause of a context that a Watchdog
	// cancelled because its Token stopped beating.
	ErrStalled = errors.New("timeout: work stalled")
)

// Error reports that an operation ran out of its time budget. It is the
// context cause (context.Cause) seen by the operation once its deadline
// passes, with Elapsed equal to Budget, and the error returned by Run, Do
// and Detacher.Run, with Elapsed measured when the call returned.
//
// errors.Is(err, ErrTimeout) and errors.Is(err, context.DeadlineExceeded)
// both hold for an *Error, so code written against the standard context
// errors keeps working.
//
// The *Error returned by a call is its own, also when the call was ended
// by an enclosing operation's deadline: it is then a copy of that
// operation's cause, with Elapsed measured from that operation's start,
// and errors.Is(err, context.Cause(ctx)) holds. The *Error seen through
// context.Cause may be shared by other calls with the same name and
// budget (that sharing is what lets Run avoid an allocation), so it must
// be treated as read-only.
type Error struct {
	// Op names the operation (see Named); empty if it was not named.
	Op string
	// Budget is the time the operation was given.
	Budget time.Duration
	// Elapsed is the time from the start of the operation to the moment
	// the error was built; at least Budget.
	Elapsed time.Duration
	// Err is what fn returned after its deadline passed (usually the
	// context's error), or nil if fn was abandoned by a Detacher or the
	// Error is the context cause itself.
	Err error

	// cause is the context cause this Error reports, which may be shared
	// (see causeFor): errors.Is matches it without handing it out.
	cause *Error
}

// Error describes which operation ran out of time and by how much.
func (e *Error) Error() string {
	op := e.Op
	if op == "" {
		op = "operation"
	}
	msg := fmt.Sprintf("timeout: %s exceeded its %v budget", op, e.Budget)
	if e.Elapsed > e.Budget {
		msg += fmt.Sprintf(" (returned after %v)", e.Elapsed)
	}
	if e.Err != nil && e.Err != context.DeadlineExceeded {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrTimeout, context.DeadlineExceeded, or
// the context cause that e reports, so errors.Is(err, context.Cause(ctx))
// holds for the error a call returns.
func (e *Error) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded ||
		e.cause != nil && target == error(e.cause)
}

// Unwrap returns what fn returned, so errors.Is and errors.As also see
// fn's own error.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports true, like net.Error, so callers that test for a
// Timeout method treat an *Error as a timeout.
func (e *Error) Timeout() bool { return true }

// nilContext is the error for a nil ctx: it matches both ErrInvalid and
// ErrNilContext.
func nilContext(who string) error {
	return fmt.Errorf("%w: %s: %w", ErrInvalid, who, ErrNilContext)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
