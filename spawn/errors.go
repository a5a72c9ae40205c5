package spawn

import (
	"context"
	"errors"
	"fmt"

	"github.com/garrison-go/garrison/internal/ctxerr"
	"github.com/garrison-go/garrison/internal/panics"
)

// Rejection reasons. A task refused by Go, TryGo, GoKey or Submit never runs
// and is counted in Stats.Rejected; the returned error matches exactly one of
// these with errors.Is (or is a context error, see Go).
var (
	// ErrSaturated means MaxConcurrent tasks are running, the queue is full
	// and the caller may not wait: it called TryGo, or MaxWaiters callers
	// are already waiting.
	ErrSaturated = errors.New("spawn: saturated")

	// ErrRateLimited means the admission rate set by WithRate was exceeded
	// and the caller could not wait for a token.
	ErrRateLimited = errors.New("spawn: admission rate exceeded")

	// ErrKeyLimit means GoKey's key already has maxPerKey tasks running,
	// queued or waiting, or the key is new and the key table is full.
	ErrKeyLimit = errors.New("spawn: per-key limit reached")

	// ErrOverloaded means the overload guard last saw the process above one
	// of its thresholds (heap bytes or goroutines).
	ErrOverloaded = errors.New("spawn: process overloaded")

	// ErrClosed means Shutdown has been called: the spawner admits nothing.
	ErrClosed = errors.New("spawn: spawner is shut down")

	// ErrWouldDeadlock means a task of this spawner called Go or GoKey on
	// it, with the task's own context (or one derived from it), while the
	// spawner was full. Waiting would hold the caller's slot while it waits
	// for a slot, which deadlocks once every running task does the same.
	ErrWouldDeadlock = errors.New("spawn: task would wait for room in its own spawner")
)

// Why an admitted task ended without succeeding.
var (
	// ErrShutdown is the cause given to tasks that Shutdown gave up on: a
	// queued task is resolved with it without running, and a running task's
	// context is canceled with it as the cause.
	ErrShutdown = errors.New("spawn: canceled by shutdown")

	// ErrTaskTimeout is the context cause of a task whose WithTaskTimeout
	// deadline passed. Errors reported for such tasks match both it and
	// context.DeadlineExceeded.
	ErrTaskTimeout = errors.New("spawn: task timeout")

	// ErrQueueTimeout is the error of a queued task dropped without running
	// by queue-time shedding (WithQueueTarget): it waited longer than the
	// target while the queue stood above it. Such a task is counted in
	// Stats.Shed.
	ErrQueueTimeout = errors.New("spawn: shed: queued longer than the queue target under a standing queue")

	// ErrPanic matches every *PanicError with errors.Is. It is the same
	// value as changuard.ErrPanic and timeout.ErrPanic: garrison has one
	// panic policy (see PanicError).
	ErrPanic = panics.ErrPanic

	// ErrGoexit is the Value of the *PanicError reported for a task that
	// called runtime.Goexit (for example through t.FailNow) instead of
	// returning. Such a task is counted as Panicked.
	ErrGoexit = panics.ErrGoexit

	// ErrNilContext is returned for a nil context; it is the one value
	// every garrison package returns for that mistake.
	ErrNilContext = ctxerr.ErrNilContext
)

// Preallocated variants that say more precisely why, so that rejecting
// costs no allocation. Each matches its sentinel with errors.Is.
var (
	errWaitersFull = fmt.Errorf("%w: MaxWaiters callers already wait", ErrSaturated)
	errReserved    = fmt.Errorf("%w: the capacity left is reserved for more critical work", ErrSaturated)
	errKeyBusy     = fmt.Errorf("%w: key has maxPerKey tasks admitted", ErrKeyLimit)
	errKeyTable    = fmt.Errorf("%w: key table is full", ErrKeyLimit)
	errRateTooLate = fmt.Errorf("%w: next token is due after the context deadline", ErrRateLimited)
	errNilTask     = errors.New("spawn: nil task")
	errNilSpawner  = errors.New("spawn: nil *Spawner")
	errNilHandle   = errors.New("spawn: nil *Handle")
	errNilGroup    = errors.New("spawn: nil or zero Group: create it with NewGroup")
	errTimedOut    = fmt.Errorf("%w: %w", context.DeadlineExceeded, ErrTaskTimeout)
	errCanceled    = fmt.Errorf("spawn: task canceled: %w", context.Canceled)

	errShutdownRunning = fmt.Errorf("%w: %w", context.Canceled, ErrShutdown)
)

// PanicError is the error of a task (or a Coalescer function) that
// panicked or called runtime.Goexit: its Value (what was passed to panic,
// or ErrGoexit) and its Stack, captured where the panic happened. It
// matches ErrPanic with errors.Is, and the panic value with errors.Is or
// errors.As when that value is an error.
//
// The policy is the same in spawn, changuard and timeout (the three
// PanicError names are one type): a panic reaches its owner and is never
// silent. In spawn, a Submit task's panic is returned by Handle.Wait, a
// Group task's by Group.Wait, a Coalescer function's by Do to every caller;
// a Go, TryGo, GoKey or TryGoKey task has no one waiting, so its panic goes
// to Hooks.OnPanic, or, with no hook, is logged through slog.Default() with
// its stack (a burst of 10 records, then at most one per second, counting
// the suppressed ones). In every case the worker survives and the task is
// counted as Panicked.
type PanicError = panics.Error

// ctxError returns ctx's error, wrapping context.Cause(ctx) as well when
// the cause says more, so that callers can match either with errors.Is.
func ctxError(ctx context.Context) error { return ctxerr.Err(ctx) }
