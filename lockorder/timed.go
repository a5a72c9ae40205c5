package lockorder

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/garrison-go/garrison/internal/ctxerr"
	"github.com/garrison-go/garrison/internal/ctxlock"
)

// ErrTimeout is returned by LockTimeout when the lock was not acquired in
// time. It wraps context.DeadlineExceeded.
var ErrTimeout = fmt.Errorf("lockorder: lock not acquired before the timeout: %w", context.DeadlineExceeded)

// ErrNilContext is returned (wrapped) by LockContext for a nil context: a
// caller's bug reported as an error, never a panic. It is the same value
// in every garrison package.
var ErrNilContext = ctxerr.ErrNilContext

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
// a sync.Mutex is not). The lock is the one changuard.Guarded uses, in its
// FIFO mode.
type TimedMutex struct {
	l ctxlock.RW
	// failedFast counts the calls that gave up without queueing: a ctx
	// already done, or LockTimeout with d <= 0 on a busy lock.
	failedFast atomic.Uint64
	lk         lockMeta
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
	s := t.l.Stats()
	return TimedStats{
		Locked:    s.Locked,
		Waiters:   s.Waiting,
		Contended: s.Contended,
		Abandoned: s.Canceled + t.failedFast.Load(),
	}
}

// SetClass makes t a member of class c; see Mutex.SetClass.
func (t *TimedMutex) SetClass(c *Class) { t.lk.setClass(c) }

// Lock locks t, blocking until it is available.
func (t *TimedMutex) Lock() {
	h := t.enter(0)
	t.l.Lock(true)
	h.acquired()
}

// TryLock locks t if it is free and reports whether it did. It does not
// overtake queued waiters.
func (t *TimedMutex) TryLock() bool {
	if !t.l.TryLock() {
		return false
	}
	t.enteredTry()
	return true
}

// LockContext locks t, blocking until it is available or ctx ends. It
// returns nil once t is held. If ctx ends first t is not held and the
// error matches both ctx.Err() and context.Cause(ctx). A ctx that is
// already done fails at once even if t is free, and a nil ctx fails with
// an error matching [ErrNilContext]: neither is order-checked, since
// neither waits.
func (t *TimedMutex) LockContext(ctx context.Context) error {
	if err := ctxerr.Check(ctx); err != nil {
		t.failedFast.Add(1)
		return fmt.Errorf("lockorder: lock not acquired: %w", err)
	}
	h := t.enter(0)
	if t.l.LockWait(true, ctx.Done(), nil) {
		h.acquired()
		return nil
	}
	h.abandon()
	return fmt.Errorf("lockorder: lock not acquired: %w", ctxerr.Err(ctx))
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
		t.failedFast.Add(1)
		return ErrTimeout
	}
	h := t.enter(0)
	if t.l.TryLock() {
		h.acquired()
		return nil
	}
	timer := time.NewTimer(d)
	ok := t.l.LockWait(true, nil, timer.C)
	timer.Stop()
	if ok {
		h.acquired()
		return nil
	}
	h.abandon()
	return ErrTimeout
}

// Unlock unlocks t, handing it to the longest waiter if there is one. It
// panics if t is not locked. Any goroutine may unlock.
func (t *TimedMutex) Unlock() {
	t.leave()
	if !t.l.Unlock() {
		panic("lockorder: Unlock of unlocked TimedMutex")
	}
}

func (t *TimedMutex) orderKey() (int, uint64, uintptr) {
	r, id := t.lk.orderKey()
	return r, id, uintptr(unsafe.Pointer(t))
}

func (t *TimedMutex) lockInGroup(group uint64) {
	h := t.enter(group)
	t.l.Lock(true)
	h.acquired()
}
