package spawn

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// taskCtx is the context.Context of a Submit task when no task timeout is
// configured. It lives inside the Handle, so a Submit allocates no context,
// and it makes its Done channel only when asked for it.
//
// It is canceled by Handle.Cancel, by the task's end, and by Shutdown giving
// up. Shutdown cannot reach every taskCtx cheaply, so the two halves of the
// contract are kept apart: a taskCtx whose Done channel or AfterFunc was
// asked for registers with the spawner (watch) and is canceled by Shutdown
// directly; any other one reports the spawner's forced cancellation in Err,
// which is all a task that never asked for Done can observe. Shutdown
// cancels the registered ones before Err starts reporting it, so Err is
// never non-nil while a Done channel is still open.
//
// Its values are the submit context's, except for the spawner's own keys
// (the ctxKey marking the task); its chain holds no standard cancelable
// context, so context.Cause reports Err.
type taskCtx struct {
	s      *Spawner
	parent context.Context // the submit context (Background for TrySubmit)
	// state holds ctxTouched once Done or AfterFunc was called (after
	// which cancellation goes through lk.mu) and ctxCanceled once
	// canceled. A task that never asks for Done is canceled with one CAS.
	state atomic.Uint32
	// lk is allocated by the first Done or AfterFunc, keeping the handle
	// (which embeds this) small for the tasks that never ask.
	lk atomic.Pointer[ctxLocked]
}

// ctxLocked is the part of a taskCtx that Done and AfterFunc need.
type ctxLocked struct {
	mu      sync.Mutex
	done    chan struct{}
	afters  []*afterFunc
	watched bool
}

// locked returns c's locked part, making it if needed.
func (c *taskCtx) locked() *ctxLocked {
	if l := c.lk.Load(); l != nil {
		return l
	}
	c.lk.CompareAndSwap(nil, new(ctxLocked))
	return c.lk.Load()
}

const (
	ctxTouched uint32 = 1 << iota
	ctxCanceled
)

type afterFunc struct {
	f       func()
	stopped bool // guarded by the ctxLocked's mu
}

func (c *taskCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *taskCtx) Value(key any) any {
	switch {
	case key == ctxKey{}:
		return c.s
	case key == cancelKey, c.parent == nil:
		// The parent's cancelable context is not this one's: hide it,
		// so that context.Cause falls back to Err.
		return nil
	}
	return c.parent.Value(key)
}

func (c *taskCtx) Err() error {
	if c.state.Load()&ctxCanceled != 0 {
		// cancelLocked sets the bit and then closes done, holding mu:
		// wait for it, so that Err is never non-nil while done is open.
		if l := c.lk.Load(); l != nil {
			l.mu.Lock()
			//lint:ignore SA2001 the empty critical section waits for cancelLocked
			l.mu.Unlock()
		}
		return context.Canceled
	}
	if c.s.taskCtx.Err() != nil {
		return context.Canceled
	}
	return nil
}

func (c *taskCtx) Done() <-chan struct{} {
	l := c.locked()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		if !c.touchLocked() {
			l.done = closedChan
			return l.done
		}
		l.done = make(chan struct{})
		c.watchLocked(l)
	}
	return l.done
}

// AfterFunc makes the context package propagate cancellation to contexts
// derived from a taskCtx without starting a goroutine per derivation.
// f runs in its own goroutine once c is canceled, as with
// context.AfterFunc.
func (c *taskCtx) AfterFunc(f func()) (stop func() bool) {
	l := c.locked()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !c.touchLocked() || !c.watchLocked(l) {
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	l.afters = append(l.afters, a)
	return func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if a.stopped {
			return false
		}
		a.stopped = true
		return true
	}
}

func (c *taskCtx) String() string { return "spawn.taskContext" }

// touchLocked moves c to the locked cancellation path, or reports false if
// c is already canceled.
func (c *taskCtx) touchLocked() bool {
	for {
		st := c.state.Load()
		if st&ctxCanceled != 0 {
			return false
		}
		if st&ctxTouched != 0 || c.state.CompareAndSwap(st, st|ctxTouched) {
			return true
		}
	}
}

// watchLocked registers c with its spawner so that Shutdown can cancel it,
// and reports false (after canceling c) if Shutdown already did.
func (c *taskCtx) watchLocked(l *ctxLocked) bool {
	if l.watched {
		return true
	}
	if !c.s.watch(c) {
		c.cancelLocked(l)
		return false
	}
	l.watched = true
	return true
}

// cancel cancels c; it may be called any number of times.
func (c *taskCtx) cancel() {
	for {
		st := c.state.Load()
		if st&ctxCanceled != 0 {
			return
		}
		if st&ctxTouched != 0 {
			break
		}
		// Untouched: no channel or AfterFunc exists, and touchLocked
		// cannot add one without seeing this bit.
		if c.state.CompareAndSwap(st, st|ctxCanceled) {
			return
		}
	}
	// Touched: touchLocked ran under the locked part's mutex, so it
	// exists.
	l := c.lk.Load()
	l.mu.Lock()
	watched := l.watched && c.state.Load()&ctxCanceled == 0
	afters := c.cancelLocked(l)
	l.mu.Unlock()
	if watched {
		c.s.unwatch(c)
	}
	for _, a := range afters {
		go a.f()
	}
}

func (c *taskCtx) cancelLocked(l *ctxLocked) []*afterFunc {
	if c.state.Load()&ctxCanceled != 0 {
		return nil
	}
	c.state.Or(ctxCanceled)
	if l.done != nil {
		close(l.done)
	}
	var run []*afterFunc
	for _, a := range l.afters {
		if !a.stopped {
			a.stopped = true
			run = append(run, a)
		}
	}
	l.afters = nil
	return run
}

// watchSet holds the running taskCtxs that Shutdown must cancel itself.
type watchSet struct {
	mu     sync.Mutex
	m      map[*taskCtx]struct{}
	closed bool // Shutdown gave up: nothing more is registered
}

// watch registers c, or reports false if Shutdown already canceled the
// registered ones.
func (s *Spawner) watch(c *taskCtx) bool {
	s.watched.mu.Lock()
	defer s.watched.mu.Unlock()
	if s.watched.closed {
		return false
	}
	if s.watched.m == nil {
		s.watched.m = make(map[*taskCtx]struct{})
	}
	s.watched.m[c] = struct{}{}
	return true
}

func (s *Spawner) unwatch(c *taskCtx) {
	s.watched.mu.Lock()
	delete(s.watched.m, c)
	s.watched.mu.Unlock()
}

// cancelWatched cancels every registered taskCtx and closes the set.
func (s *Spawner) cancelWatched() {
	s.watched.mu.Lock()
	s.watched.closed = true
	m := s.watched.m
	s.watched.m = nil
	s.watched.mu.Unlock()
	for c := range m {
		l := c.lk.Load() // registered contexts have their locked part
		l.mu.Lock()
		afters := c.cancelLocked(l)
		l.mu.Unlock()
		for _, a := range afters {
			go a.f()
		}
	}
}
