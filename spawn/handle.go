package spawn

import (
	"context"
	"sync/atomic"

	"github.com/garrison-go/garrison/internal/ctxerr"
)

// Handle states. A handle goes queued -> running -> resolving -> done, or
// queued -> resolving -> done when it is resolved without running (Cancel,
// a done submit context, Shutdown). Whoever moves it to resolving writes
// the result; readers trust the result once they see done.
const (
	handleQueued uint32 = iota
	handleRunning
	handleResolving
	handleDone
)

// closedChan is returned by Done for handles resolved before anyone asked
// for their channel.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Handle is the result of a task started with Submit: a future that
// resolves exactly once, when the task returns, panics, or is dropped
// without running. Handles are created by Submit; the zero value is not
// usable.
type Handle[T any] struct {
	task    func(context.Context) (T, error)
	state   atomic.Uint32
	claimed atomic.Uint32                 // unclaimed, claimedByWorker or claimedByHelper
	doneCh  atomic.Pointer[chan struct{}] // made on demand by Done
	// The task's context: tctx, part of this allocation, unless a task
	// timeout is configured, in which case a standard context derived
	// from the timeout context is canceled through stdCancel (set by
	// begin before the state becomes running).
	tctx      taskCtx
	stdCancel context.CancelCauseFunc
	val       T
	err       error
}

// Submit runs task on s like Go (same admission, waiting and errors) and
// returns a Handle for its result, or a nil Handle and the rejection error.
// A Submit costs one allocation more than Go (the handle, which is also the
// task's context); the handle's channel and the context's Done channel are
// made only if someone asks for them while the task is unresolved.
//
// The task's context carries ctx's values but not its cancellation (ctx
// bounds the wait for admission and the time spent queued, as for Go).
// Unless WithTaskTimeout is set, the task's context is provided by the
// spawner: context.Cause reports context.Canceled for it, and the cause
// (Cancel, ErrShutdown) is in the error the handle resolves with.
func Submit[T any](ctx context.Context, s *Spawner, task func(context.Context) (T, error)) (*Handle[T], error) {
	return submitHandle(ctx, s, task, true)
}

// TrySubmit is Submit that never blocks, as TryGo is to Go: it returns the
// Handle once the task is admitted, or a nil Handle and ErrSaturated,
// ErrRateLimited, ErrOverloaded or ErrClosed. The task's context carries no
// submitter's values.
func TrySubmit[T any](s *Spawner, task func(context.Context) (T, error)) (*Handle[T], error) {
	return submitHandle(context.Background(), s, task, false)
}

func submitHandle[T any](ctx context.Context, s *Spawner, task func(context.Context) (T, error), wait bool) (*Handle[T], error) {
	if s == nil {
		return nil, errNilSpawner
	}
	if ctx == nil {
		return nil, s.reject(ErrNilContext)
	}
	if task == nil {
		return nil, s.reject(errNilTask)
	}
	h := &Handle[T]{task: task}
	h.tctx.s, h.tctx.parent = s, ctx
	if err := s.submit(ctx, job{h: h, ctx: ctx}, "", false, wait); err != nil {
		return nil, err
	}
	return h, nil
}

// Wait blocks until the task is resolved and returns its value and error,
// or until ctx is done, in which case it returns the zero value and ctx's
// error wrapping context.Cause(ctx); the task is not affected. A ctx
// already done fails at once. The error of a resolved task is what
// Hooks.OnDone receives: nil, the task's error, a *PanicError, an
// ErrTaskTimeout deadline error, a cancellation error (context.Canceled
// from Cancel, ErrShutdown, or the submit ctx's error), or ErrQueueTimeout
// if queue-time shedding dropped the task (see WithQueueTarget).
//
// Called from a task of the same spawner, with that task's context (or one
// derived from it), Wait on a task still queued runs it right away on the
// caller's goroutine instead of waiting for a worker: the caller holds a
// worker, and in a full spawner the task may be queued behind the caller's
// own slot (help-while-waiting, as fork-join pools do). The cap on running
// tasks holds, since the caller is blocked meanwhile.
func (h *Handle[T]) Wait(ctx context.Context) (T, error) {
	var zero T
	if h == nil {
		return zero, errNilHandle
	}
	if err := ctxerr.Check(ctx); err != nil {
		return zero, err
	}
	if h.state.Load() == handleQueued && h.tctx.s.isOwnTask(ctx) && h.claim(claimedByHelper) {
		h.tctx.s.run(&job{h: h, ctx: h.tctx.parent}, nil)
	}
	if h.state.Load() != handleDone {
		select {
		case <-h.Done():
		case <-ctx.Done():
			return zero, ctxError(ctx)
		}
	}
	return h.val, h.err
}

// Done returns a channel closed once the task is resolved.
func (h *Handle[T]) Done() <-chan struct{} {
	p := h.doneCh.Load()
	if p == nil {
		ch := make(chan struct{})
		if h.doneCh.CompareAndSwap(nil, &ch) {
			p = &ch
		} else {
			p = h.doneCh.Load()
		}
	}
	// resolve stores handleDone and then loads doneCh; we stored (or
	// loaded) doneCh and then load the state. If resolve missed the
	// channel, we see handleDone here; otherwise resolve closes it.
	if h.state.Load() == handleDone {
		return closedChan
	}
	return *p
}

// Cancel asks the task to stop and never blocks. A queued task is resolved
// at once with an error matching context.Canceled and will not run (its
// slot is freed, and it is counted as Canceled, when a worker dequeues it).
// A running task has its context canceled; it is counted as Canceled if it
// then returns before finishing. Cancel on a resolved task does nothing.
func (h *Handle[T]) Cancel() {
	for {
		switch h.state.Load() {
		case handleQueued:
			if h.state.CompareAndSwap(handleQueued, handleResolving) {
				h.resolve(errCanceled)
				return
			}
		case handleRunning:
			// begin set stdCancel before its CAS to running, which this
			// load observed.
			if h.stdCancel != nil {
				h.stdCancel(context.Canceled)
			} else {
				h.tctx.cancel()
			}
			return
		default:
			return
		}
	}
}

// resolve publishes err; the caller has moved the state to resolving.
func (h *Handle[T]) resolve(err error) {
	h.err = err
	h.state.Store(handleDone)
	if p := h.doneCh.Load(); p != nil {
		close(*p)
	}
}

func (h *Handle[T]) claim(by uint32) bool { return h.claimed.CompareAndSwap(unclaimed, by) }

func (h *Handle[T]) base(s *Spawner, submitCtx context.Context) context.Context {
	return s.valuesFor(submitCtx)
}

func (h *Handle[T]) begin(s *Spawner, timeoutCtx context.Context) (context.Context, bool) {
	var ctx context.Context
	if timeoutCtx != nil {
		ctx, h.stdCancel = context.WithCancelCause(timeoutCtx)
	} else {
		ctx = &h.tctx
	}
	if !h.state.CompareAndSwap(handleQueued, handleRunning) {
		if h.stdCancel != nil {
			h.stdCancel(nil)
		}
		return nil, false
	}
	return ctx, true
}

func (h *Handle[T]) run(ctx context.Context) error {
	v, err := h.task(ctx)
	h.val = v
	return err
}

func (h *Handle[T]) end(err error) {
	for {
		st := h.state.Load()
		if st == handleResolving || st == handleDone {
			return
		}
		if h.state.CompareAndSwap(st, handleResolving) {
			h.resolve(err)
			if st == handleRunning {
				// Like a standard context, the task's context ends with
				// the task, releasing what was derived from it.
				if h.stdCancel != nil {
					h.stdCancel(context.Canceled)
				} else {
					h.tctx.cancel()
				}
			}
			return
		}
	}
}
