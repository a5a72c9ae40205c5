package spawn

import (
	"context"
	"errors"
	"runtime"

	"github.com/garrison-go/garrison/internal/blockhook"
	"github.com/garrison-go/garrison/internal/panics"
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
	shedQueued      // dropped by queue-time shedding without running
)

// Who claimed a runner job: the worker that dequeued it, or a task that
// waited for it and ran it itself (see Handle.Wait and Group.Wait).
const (
	unclaimed uint32 = iota
	claimedByWorker
	claimedByHelper
)

// execute runs one dequeued job, unless a waiting task already ran it, and
// then releases its admission slot.
func (s *Spawner) execute(j *job, w *workerState) {
	// Deferred, so that the slot is released after a task that called
	// runtime.Goexit too (run has accounted for it by then).
	defer s.release(j)
	if j.h == nil || j.h.claim(claimedByWorker) {
		s.run(j, w)
	}
}

// run runs one admitted job and accounts for it exactly once; it does not
// release the job's admission slot (see release). w may be nil when the job
// runs on the goroutine of a task that helps while it waits.
func (s *Spawner) run(j *job, w *workerState) {
	if s.forced.Load() {
		s.account(j, canceledQueued, ErrShutdown, ErrShutdown)
		return
	}
	// A queued task whose submitter gave up is dropped, unless the
	// submitter is a task of this spawner: a task's context ends when the
	// task returns, and a child it started must not vanish because its
	// parent did not wait for it. The check costs nothing for a live ctx.
	if j.ctx != nil && j.ctx.Err() != nil && !s.isOwnTask(j.ctx) {
		err := ctxError(j.ctx)
		s.account(j, canceledQueued, err, err)
		return
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if s.cfg.taskTimeout > 0 {
		// Only here does a task cost a context allocation and a timer.
		var base context.Context
		if j.h != nil {
			base = j.h.base(s, j.ctx)
		} else {
			base = s.valuesFor(j.ctx)
		}
		ctx, cancel = context.WithTimeoutCause(base, s.cfg.taskTimeout, ErrTaskTimeout)
	}
	if j.h != nil {
		var ok bool
		if ctx, ok = j.h.begin(s, ctx); !ok {
			if cancel != nil {
				cancel()
			}
			s.account(j, canceledQueued, errCanceled, errCanceled)
			return
		}
	} else if ctx == nil {
		ctx = s.valuesFor(j.ctx)
	}
	if j.enq == shedMark {
		// After begin, so that a Handle canceled while queued stays
		// Canceled; before anything else, so that a shed task never runs.
		if cancel != nil {
			cancel()
		}
		s.account(j, shedQueued, ErrQueueTimeout, ErrQueueTimeout)
		return
	}
	// The adaptive limit times one task in 32, picked from the count of
	// tasks started on this stripe, and costs the others two multiplies:
	// the worker cap, not the limit, bounds concurrency.
	st := &s.stripes[0]
	if w != nil {
		st = w.st
	}
	seq := st.started.Add(1)
	var start int64
	if s.lim != nil && s.lim.Timed(uint64(seq)) {
		start = s.lim.Now()
	}
	blockhook.Begin(s, blockhook.Done)
	defer blockhook.End(s, blockhook.Done)
	returned := false
	defer func() {
		if returned {
			return
		}
		// The task panicked, or called runtime.Goexit, in which case
		// recover returns nil and this goroutine keeps unwinding after
		// this function (worker's deferred function replaces it).
		pe := panics.New("spawn: task", recover())
		if cancel != nil {
			cancel()
		}
		if f := s.cfg.hooks.OnPanic; f != nil {
			f(pe)
		} else if _, grouped := j.ctx.(*groupMark); j.h == nil && !grouped {
			// Nobody waits for a Go task's result: without a hook, the
			// log is the only owner left. (Group.Wait returns a group
			// task's panic, Handle.Wait a Submit task's.)
			panics.ReportTo(s.cfg.logger, pe)
		}
		s.account(j, panicked, pe, pe)
	}()
	var err error
	if j.h != nil {
		err = j.h.run(ctx)
	} else {
		err = j.fn(ctx)
	}
	returned = true

	own := err
	oc := succeeded
	if ctx.Err() != nil {
		// The task's context ended before it returned: it did not finish
		// in time, whatever it returned.
		if context.Cause(ctx) == ErrTaskTimeout {
			oc = timedOut
			if err == nil {
				err = errTimedOut
				own = err
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
		st.failed.Add(1)
	} else {
		st.succeeded.Add(1)
	}
	if cancel != nil {
		cancel()
	}
	if s.lim != nil {
		s.observe(start, oc, err)
	}
	s.account(j, oc, err, own)
}

// account counts a job that ended in oc, resolves its handle and calls
// OnDone. The job's admission slot is released afterwards by release, so
// that once Wait sees no admitted task every counter, handle and hook is
// settled. A job run by a helping task is accounted on the helper, and its
// slot released when a worker dequeues it; the helper is itself a running
// task, so Wait cannot see the spawner idle in between.
//
// own is the task's result for its owner: what the task returned (or its
// panic, its timeout, why it was dropped), where err is how it was
// classified (a task that returned nil after its context was canceled is
// Canceled, but did not fail).
func (s *Spawner) account(j *job, oc outcome, err, own error) {
	switch oc {
	case succeeded, failed:
		// Counted by run, on the worker's stripe.
	case panicked:
		s.panicked.Add(1)
	case timedOut:
		s.timedOut.Add(1)
	case canceledRunning:
		s.canceledRun.Add(1)
	case canceledQueued:
		s.canceledQueued.Add(1)
	case shedQueued:
		s.shed.Add(1)
	}
	if j.h != nil {
		j.h.end(err)
	} else if m, ok := j.ctx.(*groupMark); ok {
		m.gc.g.record(own)
		m.gc.g.taskDone()
	}
	if f := s.cfg.hooks.OnDone; f != nil {
		f(err)
	}
}

// release gives back the admission slot (and key) of a dequeued job.
func (s *Spawner) release(j *job) {
	if j.key != nil {
		s.keys.release(j.key)
	}
	// Count the release, then look for callers waiting for room or for
	// quiet: each of them counts itself (roomWaiting, quiet's armed flag)
	// before it reads pending, so with sequentially consistent atomics
	// either it sees this release or this release sees it. The tasks in
	// the spawner are read only if someone waits.
	s.released.Add(1)
	if s.roomWaiting.Load() > 0 && s.pending() <= s.lowMark() && s.signalRoom() {
		// The woken caller was queued to run next on this processor,
		// behind this worker, which may have a queue to drain first.
		// Yield, so that it refills the queue while workers drain it.
		runtime.Gosched()
	}
	if s.quiet.armed.Load() && s.pending() == 0 {
		s.quiet.broadcast()
	}
}

// drop resolves a dequeued job without running it (Shutdown giving up).
func (s *Spawner) drop(j *job, err error) {
	if j.h == nil || j.h.claim(claimedByWorker) {
		s.account(j, canceledQueued, err, err)
	}
	s.release(j)
}

// runInline runs j on the calling task's goroutine without an admission
// slot: the caller is a running task of s that would otherwise wait for a
// slot it may itself be holding. The caller's slot covers the work, so the
// cap on running tasks holds. The task is counted as submitted and ends in
// one state like any other.
func (s *Spawner) runInline(j *job) {
	s.inline.Add(1)
	s.run(j, nil)
}
