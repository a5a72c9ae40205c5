package lockorder

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrTimeout is returned by LockTimeout when the lock was not acquired in
// time. It wraps context.DeadlineExceeded.
var ErrTimeout = fmt.Errorf("lockorder: lock not acquired before the timeout: %w", context.DeadlineExceeded)

const (
	timedLocked  = 1 << iota // the lock is held
	timedWaiters             // the queue is non-empty; Unlock must hand off
)

// A TimedMutex is a mutual exclusion lock whose acquisition can give up:
// LockContext returns when ctx ends and LockTimeout after a duration. The
// zero value is an unlocked mutex that is its own lock class. A TimedMutex
// must not be copied after first use; it participates in order checking
// like Mutex.
//
// The uncontended path is one compare-and-swap. Contended waiters queue
// in FIFO order, each blocked on its own channel, and Unlock hands the lock
// directly to the first of them, so newcomers cannot starve a waiter and
// blocked goroutines are durably blocked for testing/synctest (a waiter on
// a sync.Mutex is not).
type TimedMutex struct {
	state atomic.Uint32
	mu    sync.Mutex // guards queue
	queue []chan struct{}

	contended atomic.Uint64
	abandoned atomic.Uint64
	lk        lockMeta
}

// TimedStats is a snapshot of a TimedMutex's counters.
type TimedStats struct {
	Locked    bool   // held at the time of the snapshot
	Waiters   int    // goroutines queued for the lock
	Contended uint64 // acquisitions that had to wait
	Abandoned uint64 // LockContext/LockTimeout calls that gave up
}

// Stats returns a snapshot of t's counters.
func (t *TimedMutex) Stats() TimedStats {
	t.mu.Lock()
	n := len(t.queue)
	t.mu.Unlock()
	return TimedStats{
		Locked:    t.state.Load()&timedLocked != 0,
		Waiters:   n,
		Contended: t.contended.Load(),
		Abandoned: t.abandoned.Load(),
	}
}

// SetClass makes t a member of class c; see Mutex.SetClass.
func (t *TimedMutex) SetClass(c *Class) { t.lk.setClass(c) }

// Lock locks t, blocking until it is available.
func (t *TimedMutex) Lock() {
	h := t.enter(0)
	if !t.state.CompareAndSwap(0, timedLocked) {
		t.wait(nil, nil)
	}
	h.acquired()
}

// TryLock locks t if it is free and reports whether it did. It does not
// overtake queued waiters.
func (t *TimedMutex) TryLock() bool {
	if !t.state.CompareAndSwap(0, timedLocked) {
		return false
	}
	t.enteredTry()
	return true
}

// LockContext locks t, blocking until it is available or ctx ends. It
// returns nil once t is held. If ctx ends first (or has already ended) t is
// not held and the error wraps ctx.Err() and context.Cause(ctx).
func (t *TimedMutex) LockContext(ctx context.Context) error {
	done := ctx.Done()
	if done != nil {
		select {
		case <-done:
			t.abandoned.Add(1)
			return ctxError(ctx)
		default:
		}
	}
	h := t.enter(0)
	if t.state.CompareAndSwap(0, timedLocked) || t.wait(done, nil) {
		h.acquired()
		return nil
	}
	h.abandon()
	t.abandoned.Add(1)
	return ctxError(ctx)
}

// LockTimeout locks t, blocking for at most d. It returns nil once t is
// held and ErrTimeout if d elapsed first; d <= 0 means a single try.
func (t *TimedMutex) LockTimeout(d time.Duration) error {
	if d <= 0 {
		// A single try cannot block, so, like TryLock, it is not
		// order-checked.
		if t.TryLock() {
			return nil
		}
		t.abandoned.Add(1)
		return ErrTimeout
	}
	h := t.enter(0)
	if t.state.CompareAndSwap(0, timedLocked) {
		h.acquired()
		return nil
	}
	timer := time.NewTimer(d)
	ok := t.wait(nil, timer.C)
	timer.Stop()
	if ok {
		h.acquired()
		return nil
	}
	h.abandon()
	t.abandoned.Add(1)
	return ErrTimeout
}

// Unlock unlocks t, handing it to the longest waiter if there is one. It
// panics if t is not locked. Any goroutine may unlock.
func (t *TimedMutex) Unlock() {
	t.leave()
	if !t.state.CompareAndSwap(timedLocked, 0) {
		t.unlockSlow()
	}
}

// wait queues the caller until the lock is handed to it (true) or done or
// expired fires (false, lock not held).
func (t *TimedMutex) wait(done <-chan struct{}, expired <-chan time.Time) bool {
	t.contended.Add(1)
	// Critical sections are usually short: yielding a few times before
	// queueing often finds the lock free and avoids a sleep and a handoff.
	// Only a free lock with an empty queue can be taken here, so this
	// never overtakes a queued waiter.
	for range 4 {
		runtime.Gosched()
		if t.state.CompareAndSwap(0, timedLocked) {
			return true
		}
	}
	t.mu.Lock()
	for {
		s := t.state.Load()
		if s&timedLocked == 0 {
			if t.state.CompareAndSwap(s, s|timedLocked) {
				t.mu.Unlock()
				return true
			}
			continue
		}
		// Setting the waiters bit under t.mu, while the lock is held,
		// makes the holder's Unlock fail its fast path and come to the
		// queue, which it can only read after we have joined it.
		if t.state.CompareAndSwap(s, s|timedWaiters) {
			break
		}
	}
	// Not pooled: a channel made inside a testing/synctest bubble must not
	// be used outside it.
	ready := make(chan struct{}, 1)
	t.queue = append(t.queue, ready)
	t.mu.Unlock()

	select {
	case <-ready:
		return true
	case <-done:
	case <-expired:
	}
	t.mu.Lock()
	for i, q := range t.queue {
		if q == ready {
			t.queue = append(t.queue[:i], t.queue[i+1:]...)
			if len(t.queue) == 0 {
				t.state.And(^uint32(timedWaiters))
			}
			t.mu.Unlock()
			return false
		}
	}
	t.mu.Unlock()
	// Unlock handed the lock over while we were giving up. The caller was
	// told by ctx that it gave up first, so pass the lock on rather than
	// return success late.
	<-ready
	if !t.state.CompareAndSwap(timedLocked, 0) {
		t.unlockSlow()
	}
	return false
}

func (t *TimedMutex) unlockSlow() {
	t.mu.Lock()
	if t.state.Load()&timedLocked == 0 {
		t.mu.Unlock()
		panic("lockorder: Unlock of unlocked TimedMutex")
	}
	if len(t.queue) == 0 {
		t.state.Store(0)
		t.mu.Unlock()
		return
	}
	next := t.queue[0]
	t.queue[0] = nil
	t.queue = t.queue[1:]
	if len(t.queue) == 0 {
		t.queue = nil
		t.state.Store(timedLocked)
	}
	// Direct handoff: the lock stays held and now belongs to next. The
	// send cannot block (buffer of one, sent once) and happens under t.mu,
	// so a waiter that gives up and finds itself dequeued knows the token
	// is already in its channel.
	next <- struct{}{}
	t.mu.Unlock()
}

func (t *TimedMutex) orderKey() (int, uint64, uintptr) {
	r, id := t.lk.orderKey()
	return r, id, uintptr(unsafe.Pointer(t))
}

func (t *TimedMutex) lockInGroup(group uint64) {
	h := t.enter(group)
	if !t.state.CompareAndSwap(0, timedLocked) {
		t.wait(nil, nil)
	}
	h.acquired()
}

// ctxError explains why a wait ended, keeping both ctx.Err() and the cause
// visible to errors.Is.
func ctxError(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return fmt.Errorf("lockorder: lock not acquired: %w", err)
	}
	return fmt.Errorf("lockorder: lock not acquired: %w: %w", err, cause)
}
