// Package panics holds garrison's one panic policy, shared by spawn,
// changuard and timeout so that they cannot drift apart:
//
//   - A panic in code a garrison type runs for the caller (a task, a
//     callback, a detached function) is recovered where it happens and
//     carried as an [*Error] holding the value and the stack of the
//     panicking goroutine, never lost.
//   - Every [*Error] matches [ErrPanic] with errors.Is, and the panic value
//     with errors.Is or errors.As when that value is an error.
//   - A function that calls runtime.Goexit (t.FailNow does) instead of
//     returning is reported the same way, with [ErrGoexit] as its value:
//     the caller gets no result either way. Goexit is recognized by a nil
//     recover in a deferred function of a call that did not return, since
//     panic(nil) recovers as a *runtime.PanicNilError since Go 1.21.
//   - The error reaches the owner: returned from a Wait or a Call when
//     someone waits for the result, else given to the hook the user set,
//     else logged through slog.Default() with its stack by [Report], at
//     most a burst of [LogBurst] and then one record per [LogEvery], the
//     records suppressed meanwhile counted in the next one. It never
//     crashes the process silently and is never dropped silently.
//
// The exported packages re-export [Error] as their PanicError (a type
// alias) and [ErrPanic] as their ErrPanic, so one errors.As target catches
// a panic from any of them.
package panics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

var (
	// ErrPanic is matched (errors.Is) by every *Error.
	ErrPanic = errors.New("garrison: panicked")

	// ErrGoexit is the Value of the *Error reported for a function that
	// called runtime.Goexit instead of returning.
	ErrGoexit = errors.New("garrison: called runtime.Goexit")
)

// Error is a panic (or runtime.Goexit) recovered from a function a
// garrison type ran for the caller.
type Error struct {
	// Value is what the function passed to panic, or ErrGoexit.
	Value any
	// Stack is the panicking goroutine's stack, captured inside the
	// deferred recover, so it shows where the panic happened.
	Stack []byte

	op string // who ran the function: "spawn: task"
}

// New returns the *Error for value v recovered by a deferred function of
// a call to a function that did not return; op names what panicked
// ("spawn: task"). A nil v means the function called runtime.Goexit. New
// must be called from the deferred function itself (directly or a fixed
// number of frames below it), so that the stack shows the panic site.
func New(op string, v any) *Error {
	if v == nil {
		v = ErrGoexit
	}
	return &Error{Value: v, Stack: debug.Stack(), op: op}
}

// Error returns what panicked, the panic value and the stack.
func (e *Error) Error() string {
	op := e.op
	if op == "" {
		op = "garrison"
	}
	if e.Value == ErrGoexit {
		return fmt.Sprintf("%s called runtime.Goexit\n\n%s", op, e.Stack)
	}
	return fmt.Sprintf("%s panicked: %v\n\n%s", op, e.Value, e.Stack)
}

// Is reports whether target is ErrPanic.
func (e *Error) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value if it is an error, else nil.
func (e *Error) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Logging limits of [Report]: a burst of LogBurst records, then at most one
// per LogEvery. A panic loop must not turn into a log flood (the log is a
// shared, often synchronous, resource: flooding it is a DoS of its own).
const (
	LogBurst = 10
	LogEvery = time.Second
)

// logLimiter is a token bucket shared by every package of the module.
var logLimiter = limiter{tokens: LogBurst}

type limiter struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int64
}

// allow takes a token at now, and returns how many records were suppressed
// since the last allowed one.
func (l *limiter) allow(now time.Time) (ok bool, suppressed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(LogBurst, l.tokens+float64(now.Sub(l.last))/float64(LogEvery))
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Report logs e through slog.Default() at error level, with its value and
// stack, unless the rate limit is exhausted (the record is then counted
// and the count reported with the next one). Packages call it for panics
// that have no other owner: no hook set and nobody waiting for a result.
func Report(e *Error) { ReportTo(nil, e) }

// ReportTo is Report to logger instead of slog.Default() (a nil logger
// means slog.Default()), under the same shared rate limit: spawn's
// WithLogger sends a spawner's unowned panics there.
func ReportTo(logger *slog.Logger, e *Error) {
	if logger == nil {
		logger = slog.Default()
	}
	ok, suppressed := logLimiter.allow(time.Now())
	if !ok {
		return
	}
	op := e.op
	if op == "" {
		op = "garrison"
	}
	attrs := []slog.Attr{
		slog.String("op", op),
		slog.String("panic", fmt.Sprint(e.Value)),
		slog.String("stack", string(e.Stack)),
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	logger.LogAttrs(context.Background(), slog.LevelError, "recovered panic with no hook to report it to", attrs...)
}

// ResetLogLimit refills the log limiter to a full burst, so that a test
// that checks what Report logs does not depend on the panics logged by the
// tests before it.
func ResetLogLimit() {
	logLimiter.mu.Lock()
	defer logLimiter.mu.Unlock()
	logLimiter.tokens, logLimiter.last, logLimiter.suppressed = LogBurst, time.Time{}, 0
}
