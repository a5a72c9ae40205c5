//go:build lockorder || race

package lockorder

import (
	"context"
	"sync"
	"unsafe"
)

// An RWMutex is a reader/writer mutual exclusion lock, a drop-in
// replacement for sync.RWMutex whose acquisitions are order-checked in
// checking builds. The zero value is an unlocked mutex that is its own lock
// class. An RWMutex must not be copied after first use.
//
// Read and write acquisitions are ordered alike: Go's RWMutex blocks new
// readers once a writer waits, so RLock(A), RLock(B) here and RLock(B),
// RLock(A) there deadlock with two waiting writers, and a recursive RLock
// deadlocks with one. Both are reported. Unlock and RUnlock may run on a
// goroutine other than the one that locked; the checker then clears the
// holder's (for RUnlock: some reader's) record. A read lock does not
// identify its reader, so when several goroutines hold read locks such an
// RUnlock may clear the wrong reader's record, until that reader's own
// RUnlock clears the other; locks taken in between may be ordered after
// rw although they were not.
type RWMutex struct {
	mu sync.RWMutex
	lk lockMeta
}

// SetClass makes rw a member of class c; see Mutex.SetClass.
func (rw *RWMutex) SetClass(c *Class) { rw.lk.setClass(c) }

// Lock locks rw for writing, blocking until no reader or writer holds it.
func (rw *RWMutex) Lock() {
	c := classOf(rw, &rw.lk, "RWMutex")
	e := acquire(&rw.lk, c, false, 0)
	if !rw.mu.TryLock() {
		contendedHold(e, &rw.lk, c, false)
		rw.mu.Lock()
	}
	e.acquired()
}

// TryLock tries to lock rw for writing without blocking and reports
// whether it did. Success is recorded as held without an order edge.
func (rw *RWMutex) TryLock() bool {
	if !rw.mu.TryLock() {
		return false
	}
	tried(&rw.lk, classOf(rw, &rw.lk, "RWMutex"), false)
	return true
}

// Unlock unlocks rw for writing. It is a run-time error if rw is not
// locked for writing.
func (rw *RWMutex) Unlock() {
	release(&rw.lk, false)
	rw.mu.Unlock()
}

// RLock locks rw for reading, blocking while a writer holds or waits for
// it. It must not be used for recursive read locking.
func (rw *RWMutex) RLock() {
	c := classOf(rw, &rw.lk, "RWMutex")
	e := acquire(&rw.lk, c, true, 0)
	if !rw.mu.TryRLock() {
		contendedHold(e, &rw.lk, c, true)
		rw.mu.RLock()
	}
	e.acquired()
}

// TryRLock tries to lock rw for reading without blocking and reports
// whether it did. Success is recorded as held without an order edge.
func (rw *RWMutex) TryRLock() bool {
	if !rw.mu.TryRLock() {
		return false
	}
	tried(&rw.lk, classOf(rw, &rw.lk, "RWMutex"), true)
	return true
}

// RUnlock undoes a single RLock. It is a run-time error if rw is not
// locked for reading.
func (rw *RWMutex) RUnlock() {
	release(&rw.lk, true)
	rw.mu.RUnlock()
}

// RLocker returns a sync.Locker whose Lock and Unlock call rw.RLock and
// rw.RUnlock.
func (rw *RWMutex) RLocker() sync.Locker { return (*rlocker)(rw) }

func (rw *RWMutex) orderKey() (int, uint64, uintptr) {
	r, id := rw.lk.orderKey()
	return r, id, uintptr(unsafe.Pointer(rw))
}

func (rw *RWMutex) lockInGroup(group uint64) {
	e := acquire(&rw.lk, classOf(rw, &rw.lk, "RWMutex"), false, group)
	rw.mu.Lock()
	e.acquired()
}

type rlocker RWMutex

func (r *rlocker) Lock()   { (*RWMutex)(r).RLock() }
func (r *rlocker) Unlock() { (*RWMutex)(r).RUnlock() }

func (r *rlocker) orderKey() (int, uint64, uintptr) { return (*RWMutex)(r).orderKey() }

func (r *rlocker) lockInGroup(group uint64) {
	rw := (*RWMutex)(r)
	e := acquire(&rw.lk, classOf(rw, &rw.lk, "RWMutex"), true, group)
	rw.mu.RLock()
	e.acquired()
}

func (rw *RWMutex) lockContext(ctx context.Context, group uint64) error {
	e := acquire(&rw.lk, classOf(rw, &rw.lk, "RWMutex"), false, group)
	if err := pollLock(ctx, rw.mu.TryLock); err != nil {
		e.abandon()
		return err
	}
	e.acquired()
	return nil
}

func (r *rlocker) lockContext(ctx context.Context, group uint64) error {
	rw := (*RWMutex)(r)
	e := acquire(&rw.lk, classOf(rw, &rw.lk, "RWMutex"), true, group)
	if err := pollLock(ctx, rw.mu.TryRLock); err != nil {
		e.abandon()
		return err
	}
	e.acquired()
	return nil
}
