package spawn

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
)

// outcome is the single accounted state a task ends in.
type outcome uint8

const (
	succeeded outcome = iota
	failed
	panicked
	timedOut
	canceledRunning // started, and its context ended before it returned
	canceledQueued  // resolved without ever running
)

// execute runs one admitted job and accounts for it exactly once.
func (s *Spawner) execute(j *job) {
	if s.forced.Load() {
		s.end(j, canceledQueued, ErrShutdown)
		return
	}
	if j.ctx != nil && j.ctx.Err() != nil {
		s.end(j, canceledQueued, ctxError(j.ctx))
		return
	}
	ctx := s.taskCtx
	var cancel context.CancelFunc
	if s.cfg.taskTimeout > 0 {
		// Only here does a task cost a context allocation and a timer.
		ctx, cancel = context.WithTimeoutCause(ctx, s.cfg.taskTimeout, ErrTaskTimeout)
	}
	if j.h != nil {
		var timeoutCtx context.Context
		if cancel != nil {
			timeoutCtx = ctx
		}
		var ok bool
		if ctx, ok = j.h.begin(s, timeoutCtx); !ok {
			if cancel != nil {
				cancel()
			}
			s.end(j, canceledQueued, errCanceled)
			return
		}
	}
	s.started.Add(1)
	returned := false
	defer func() {
		if returned {
			return
		}
		// The task panicked, or called runtime.Goexit, in which case
		// recover returns nil and the worker goroutine keeps unwinding
		// after this function (worker's deferred function replaces it).
		pe := &PanicError{Value: recover(), Stack: debug.Stack()}
		if pe.Value == nil {
			pe.Value = ErrGoexit
		}
		if cancel != nil {
			cancel()
		}
		if f := s.cfg.hooks.OnPanic; f != nil {
			f(pe)
		}
		s.end(j, panicked, pe)
	}()
	var err error
	if j.h != nil {
		err = j.h.run(ctx)
	} else {
		err = j.fn(ctx)
	}
	returned = true

	oc := succeeded
	if ctx.Err() != nil {
		// The task's context ended before it returned: it did not finish
		// in time, whatever it returned.
		if context.Cause(ctx) == ErrTaskTimeout {
			oc = timedOut
			if err == nil {
				err = errTimedOut
			}
		} else {
			oc = canceledRunning
			if err == nil {
				err = ctxError(ctx)
				if s.forced.Load() && !errors.Is(err, ErrShutdown) {
					err = errShutdownRunning
				}
			}
		}
	} else if err != nil {
		oc = failed
	}
	if cancel != nil {
		cancel()
	}
	s.end(j, oc, err)
}

// end accounts for a job that ended in oc, resolves its handle and key, and
// releases its admission slot last, so that once Wait sees no admitted task
// every counter, handle and hook is settled.
func (s *Spawner) end(j *job, oc outcome, err error) {
	switch oc {
	case succeeded:
		s.succeeded.Add(1)
	case failed:
		s.failed.Add(1)
	case panicked:
		s.panicked.Add(1)
	case timedOut:
		s.timedOut.Add(1)
	case canceledRunning:
		s.canceledRun.Add(1)
	case canceledQueued:
		s.canceledQueued.Add(1)
	}
	if j.h != nil {
		j.h.end(err)
	}
	if j.key != nil {
		s.keys.release(j.key)
	}
	if f := s.cfg.hooks.OnDone; f != nil {
		f(err)
	}
	n := s.state.Add(-1) &^ closedBit
	if n <= s.lowWater && s.roomWaiting.Load() > 0 && s.signalRoom() {
		// The woken caller was queued to run next on this processor,
		// behind this worker, which may have a queue to drain first.
		// Yield, so that it refills the queue while workers drain it.
		runtime.Gosched()
	}
	if n == 0 {
		s.quiet.broadcast()
	}
}
