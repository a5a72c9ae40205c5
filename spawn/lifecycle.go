package spawn

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/garrison-go/garrison/internal/blockhook"
	"github.com/garrison-go/garrison/internal/ctxerr"
)

// Wait blocks until no task of the whole spawner is running or queued, or
// ctx is done, in which case it returns ctx's error wrapping
// context.Cause(ctx). Tasks submitted meanwhile extend the wait, so on a
// spawner shared with other traffic Wait may never return: to wait for a
// batch of one's own, and get its errors and panics back, use a Group
// (NewGroup) on the spawner. Wait reports no task error. It does not stop
// admissions, and idle workers may linger up to the idle timeout after it
// returns (Shutdown ends them). Called with the context of one of this
// spawner's tasks it returns ErrWouldDeadlock, since it would wait for its
// caller.
func (s *Spawner) Wait(ctx context.Context) error {
	if s == nil {
		return errNilSpawner
	}
	if err := ctxerr.Check(ctx); err != nil {
		return err
	}
	if s.isOwnTask(ctx) {
		return ErrWouldDeadlock
	}
	blockhook.Wait(s, blockhook.Done)
	return s.await(ctx, func() bool { return s.pending() == 0 })
}

// Shutdown is the graceful stop: it stops admissions (submissions from now
// on get ErrClosed, callers waiting in Go are woken with ErrClosed), then
// waits for queued and running tasks to finish and for every worker
// goroutine to exit, and returns nil.
//
// If ctx ends first, Shutdown gives up and does what Close does: it cancels
// running tasks' contexts with cause ErrShutdown, resolves every
// still-queued task with ErrShutdown without running it (counted as
// Canceled), and returns ctx's error wrapping context.Cause(ctx). Tasks that
// ignore their context are then still running; call Wait or Shutdown again
// to wait for them. Calling Shutdown again after it returned nil returns
// nil at once. Called with the context of one of this spawner's tasks it
// stops admissions and returns ErrWouldDeadlock at once, since it would
// wait for its caller.
func (s *Spawner) Shutdown(ctx context.Context) error {
	if s == nil {
		return errNilSpawner
	}
	if ctx == nil {
		return ErrNilContext
	}
	s.stopAdmissions()
	if s.isOwnTask(ctx) {
		return ErrWouldDeadlock
	}
	err := s.await(ctx, func() bool { return s.pending() == 0 && s.workers.Load() == 0 })
	if err == nil {
		return nil
	}
	s.force()
	return err
}

// Close is the immediate stop: it stops admissions as Shutdown does,
// cancels running tasks' contexts with cause ErrShutdown, resolves every
// queued task with ErrShutdown without running it (counted as Canceled),
// and returns nil without waiting. Running tasks finish on their own, and
// worker goroutines exit once they have; call Shutdown afterwards to wait
// for that. Close may be called any number of times, and from a task.
func (s *Spawner) Close() error {
	if s == nil {
		return errNilSpawner
	}
	s.stopAdmissions()
	s.force()
	return nil
}

// stopAdmissions closes the spawner to new tasks, once.
func (s *Spawner) stopAdmissions() {
	s.closeOnce.Do(func() {
		// Admission increments state and then checks closedBit in the
		// same word, so after this Or no task can be admitted, and every
		// task admitted before it is counted in the state we wait on.
		s.state.Or(closedBit)
		close(s.closed)
		// Wake parked workers so they retire now. Workers check closedBit
		// before parking; one that parks after this loop finds the
		// buffer full of tokens, one parked before is handed one.
		for {
			select {
			case s.wake <- struct{}{}:
				continue
			default:
			}
			break
		}
	})
}

// force gives up on the admitted tasks: running ones are canceled, queued
// ones dropped.
func (s *Spawner) force() {
	s.forced.Store(true)
	// Cancel the registered Submit contexts before the base context: an
	// unregistered one reports the base's cancellation in Err, and must
	// not before the registered ones' Done channels are closed.
	s.cancelWatched()
	s.cancelTasks(ErrShutdown)
	// Resolve the queue now rather than when busy workers get to it; any
	// job taken concurrently by a worker is dropped there (forced is set).
	var j job
	for s.take(&j) {
		s.drop(&j, ErrShutdown)
	}
}

// await waits until cond holds or ctx is done.
func (s *Spawner) await(ctx context.Context, cond func() bool) error {
	for {
		// Arming before checking pairs with the signalers, which change
		// their counter before looking at the armed flag.
		ch := s.quiet.arm()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctxError(ctx)
		}
	}
}

// notifier is a broadcast that costs its signalers one atomic load while
// nobody waits on it.
type notifier struct {
	armed atomic.Bool
	mu    sync.Mutex
	ch    chan struct{}
}

// arm returns a channel closed by the next broadcast.
func (n *notifier) arm() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	n.armed.Store(true)
	return n.ch
}

func (n *notifier) broadcast() {
	if !n.armed.Load() {
		return
	}
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.armed.Store(false)
	n.mu.Unlock()
}
